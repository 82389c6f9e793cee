//! Ledgerport's domain, free of web and database types.
//!
//! Everything that arrives from outside is parsed into the newtypes of [`ids`] once, at the edge;
//! code inside the system never re-validates a string. The access policy ([`access`]) is a pure
//! function so it can be tested exhaustively with a table, and the capability it hands out
//! ([`access::LedgerAccess`]) is what every reporting query of the store requires.

pub mod access;
pub mod camt053;
pub mod chain;
pub mod changes;
pub mod clock;
pub mod engine;
pub mod entry;
pub mod error;
pub mod ids;
pub mod notices;
pub mod proof;
pub mod statement;
pub mod verify;
pub mod world;

pub use error::ParseError;
