//! Test support for Ledgerport, used only as a dev-dependency (and by the benchmark): nothing
//! here ships in the `ledgerport` binary.
//!
//! - [`camt053`]: camt.053 documents checked against the official XSD with `xmllint` and read
//!   back with an independent reader from PyPI (installed at test time);
//! - [`contract`]: the tests every [`Store`](ledgerport_store::Store) backend must pass, run by
//!   [`store_contract_tests!`] on each backend;
//! - [`testing`]: a fresh store per test (a SQLite file, or a PostgreSQL database of its own
//!   when `DATABASE_URL` names a server) and the guard of PostgreSQL-only tests;
//! - [`world`]: the one fluent builder of test worlds (merchants, sales units, ledgers, partners,
//!   grants, keys, entries).

pub mod camt053;
pub mod contract;
pub mod testing;
pub mod world;

pub use world::{Keys, World, WorldBuilder};
