//! Storage for Ledgerport, in the domain's words.
//!
//! [`Store`] is the interface the server and the command line use: the sum of ten narrow traits
//! ([`WorldStore`], [`CredentialStore`], [`ReportStore`], [`SettlementStore`], [`PortalStore`],
//! [`OperationsStore`], [`OutboxStore`], [`RequestStore`], [`NotificationStore`], [`WebhookStore`]; `use ledgerport_store::prelude::*` to call them). [`SqlStore`] implements
//! them once for both databases (`sql/`, with the settlement engine's transactions in
//! `settlement/`); `sqlite`, the embedded default, and `postgres`, for several servers on one
//! database, hold only what differs ([`open`] picks one by URL). The tests every backend must pass
//! live in the dev-only `ledgerport-testkit` crate.
//!
//! Queries that read a ledger's entries take a [`LedgerAccess`], and a ledger's description comes
//! back [`Guarded`] with its facts, so neither can be read without an access decision
//! ([`ledgerport_core::access`]). A read with the decision compiles:
//!
//! ```no_run
//! use ledgerport_core::access::{self, Principal};
//! use ledgerport_core::ids::{LedgerId, Topic};
//! use ledgerport_store::prelude::*;
//! async fn read(store: &dyn Store, who: &Principal, id: &LedgerId) {
//!     let ledger = store.ledger(id).await.unwrap();
//!     let (access, view) = access::open(who, ledger).unwrap();
//!     let _currency = view.ledger.currency;
//!     let _entries = store.feed_page(&access, Topic::Funds, 0, 100).await.unwrap();
//! }
//! ```
//!
//! Reading entries with a ledger id instead of a decision does not:
//!
//! ```compile_fail,E0308
//! use ledgerport_core::ids::{LedgerId, Topic};
//! use ledgerport_store::prelude::*;
//! async fn read(store: &dyn Store, id: &LedgerId) {
//!     let _entries = store.feed_page(id, Topic::Funds, 0, 100).await.unwrap();
//! }
//! ```
//!
//! nor does reading a ledger's description without one:
//!
//! ```compile_fail,E0609
//! use ledgerport_core::ids::LedgerId;
//! use ledgerport_store::prelude::*;
//! async fn read(store: &dyn Store, id: &LedgerId) {
//!     let ledger = store.ledger(id).await.unwrap().unwrap();
//!     let _currency = ledger.ledger.currency;
//! }
//! ```

mod error;
#[cfg(feature = "fault-injection")]
pub mod faults;
mod model;
mod notification;
mod outbox;
mod portal;
pub mod postgres;
mod rows;
mod settlement;
mod sql;
pub mod sqlite;
mod traits;
mod webhook;
mod wire_json;

pub use error::StoreError;
pub use model::*;
pub use notification::*;
pub use outbox::*;
pub use portal::*;
pub use sql::SqlStore;
pub use traits::{
    CredentialStore, NotificationStore, OperationsStore, OutboxStore, PortalStore, ReportStore,
    RequestStore, SettlementStore, WebhookStore, WorldStore,
};
pub use webhook::*;

use ledgerport_core::clock::Clock;
use ledgerport_core::ids::Msn;
use ledgerport_core::world::{GrantScope, RowId};
use std::sync::Arc;

pub type Result<T> = std::result::Result<T, StoreError>;

/// Opens the store `url` names, bringing its schema up to date: `sqlite://PATH` (or
/// `sqlite::memory:`) or `postgres://USER@HOST:PORT/DB` (`postgresql://` too).
pub async fn open(url: &str, clock: Arc<dyn Clock>) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(url, clock).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PostgresStore::open(url, clock).await?))
    } else {
        Err(StoreError::Invalid(
            "database URL: use sqlite://PATH or postgres://USER@HOST:PORT/DB".into(),
        ))
    }
}

/// A partner's request for access, as it asks: the merchant by organisation number, the sales
/// units (empty: all), the proposed scope and a message.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAccessRequest {
    pub partner: RowId,
    pub org_id: String,
    pub units: Vec<Msn>,
    pub scope: GrantScope,
    pub message: String,
}

/// A merchant's answer to a partner's invitation link: the partner's proposal as the signed link
/// carries it, the units the merchant chose, and the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationAnswer {
    /// The link's own id (random, carried by the signed link): each merchant answers a link once.
    pub invitation: String,
    pub partner: RowId,
    pub merchant: RowId,
    /// The sales units the merchant chose; empty: all of its units.
    pub units: Vec<Msn>,
    /// The scope the partner proposed.
    pub proposed: GrantScope,
    /// `Some(scope)`: grant within `scope`, which may narrow the proposal, never widen it;
    /// `None`: decline.
    pub grant: Option<GrantScope>,
}

/// Which access requests to list: a partner's, a merchant's, or (both `None`) all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestFilter {
    pub partner: Option<RowId>,
    pub merchant: Option<RowId>,
}

/// Who made a change; recorded with every state change in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

impl Actor {
    pub fn new(s: impl Into<String>) -> Self {
        Actor(s.into())
    }
}

/// The whole store: the sum of its ten parts. Every type that has them all is a `Store`, so
/// `Arc<dyn Store>` serves callers that need several; import [`prelude`] to call them.
pub trait Store:
    WorldStore
    + CredentialStore
    + ReportStore
    + SettlementStore
    + PortalStore
    + OperationsStore
    + OutboxStore
    + RequestStore
    + NotificationStore
    + WebhookStore
    + Send
    + Sync
    + 'static
{
}

impl<T> Store for T where
    T: WorldStore
        + CredentialStore
        + ReportStore
        + SettlementStore
        + PortalStore
        + OperationsStore
        + OutboxStore
        + RequestStore
        + NotificationStore
        + WebhookStore
        + Send
        + Sync
        + 'static
{
}

/// The store's traits, for callers: `use ledgerport_store::prelude::*;`.
pub mod prelude {
    pub use crate::Store;
    pub use crate::traits::{
        CredentialStore, NotificationStore, OperationsStore, OutboxStore, PortalStore, ReportStore,
        RequestStore, SettlementStore, WebhookStore, WorldStore,
    };
}

/// Connections of a store's pool: `size` open, of which `idle` are not lent out (so
/// `size - idle` are in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
}
