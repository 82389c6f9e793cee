//! Storage for Ledgerport, in the domain's words.
//!
//! [`Store`] is the one interface the server and the command line use; each backend implements all
//! of it (`sqlite`, the embedded default, and `postgres`, for several servers on one database;
//! [`open`] picks one by URL), and [`contract`] holds the tests every backend must pass.
//!
//! Queries that read a ledger's entries take a [`LedgerAccess`], and a ledger's description comes
//! back [`Guarded`] with its facts, so neither can be read without an access decision
//! ([`ledgerport_core::access`]). A read with the decision compiles:
//!
//! ```no_run
//! use ledgerport_core::access::{self, Principal};
//! use ledgerport_core::ids::{LedgerId, Topic};
//! use ledgerport_store::Store;
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
//! use ledgerport_store::Store;
//! async fn read(store: &dyn Store, id: &LedgerId) {
//!     let _entries = store.feed_page(id, Topic::Funds, 0, 100).await.unwrap();
//! }
//! ```
//!
//! nor does reading a ledger's description without one:
//!
//! ```compile_fail,E0609
//! use ledgerport_core::ids::LedgerId;
//! use ledgerport_store::Store;
//! async fn read(store: &dyn Store, id: &LedgerId) {
//!     let ledger = store.ledger(id).await.unwrap().unwrap();
//!     let _currency = ledger.ledger.currency;
//! }
//! ```

pub mod contract;
mod error;
mod model;
mod portal;
pub mod postgres;
pub mod sqlite;
pub mod testing;

pub use error::StoreError;
pub use model::*;
pub use portal::*;

use async_trait::async_trait;
use jiff::Timestamp;
use ledgerport_core::access::{Guarded, LedgerAccess, ListScope};
use ledgerport_core::clock::Clock;
use ledgerport_core::engine::PaymentEvent;
use ledgerport_core::entry::{Entry, NewEntry};
use ledgerport_core::ids::{LedgerDate, LedgerId, Msn, RecipientHandle, Topic};
use ledgerport_core::world::{ApiKey, Grant, Merchant, Partner, PartnerState, RowId, SalesUnit};
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

/// Who made a change; recorded with every state change in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

impl Actor {
    pub fn new(s: impl Into<String>) -> Self {
        Actor(s.into())
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    // --- merchants and sales units ---
    async fn create_merchant(&self, by: &Actor, m: NewMerchant) -> Result<Merchant>;
    async fn merchants(&self) -> Result<Vec<Merchant>>;
    async fn merchant(&self, id: RowId) -> Result<Option<Merchant>>;
    async fn merchant_by_org(&self, org_id: &str) -> Result<Option<Merchant>>;
    async fn create_sales_unit(&self, by: &Actor, u: NewSalesUnit) -> Result<SalesUnit>;
    async fn sales_units(&self, merchant: Option<RowId>) -> Result<Vec<SalesUnit>>;
    async fn sales_unit(&self, msn: Msn) -> Result<Option<SalesUnit>>;

    // --- ledgers ---
    async fn create_ledger(&self, by: &Actor, l: NewLedger) -> Result<LedgerView>;
    /// Every ledger, for the operator's and the server's own tasks (closing, metrics, building
    /// the world); never for a reader acting for a key or a portal user.
    async fn ledgers(&self) -> Result<Vec<LedgerView>>;
    /// One ledger in one round trip: what the access policy needs (owner, handles, standing
    /// grants of approved partners) and its description, which only a decision opens.
    async fn ledger(&self, id: &LedgerId) -> Result<Option<Guarded<LedgerView>>>;
    /// One keyset page of the ledgers a listing scope covers, ordered by `ledgerId`, after `after`,
    /// each to be opened by a decision like [`Store::ledger`]'s.
    async fn ledgers_in_scope(
        &self,
        scope: &ListScope,
        handle: Option<&RecipientHandle>,
        after: Option<&LedgerId>,
        limit: u32,
    ) -> Result<Vec<Guarded<LedgerView>>>;

    // --- partners ---
    async fn create_partner(&self, by: &Actor, p: NewPartner) -> Result<Partner>;
    async fn partners(&self) -> Result<Vec<Partner>>;
    async fn partner(&self, id: RowId) -> Result<Option<Partner>>;
    /// Moves a partner along the operator's paths ([`PartnerState::may_become`]).
    async fn set_partner_state(&self, by: &Actor, id: RowId, to: PartnerState) -> Result<Partner>;

    // --- keys ---
    async fn create_key(&self, by: &Actor, k: NewKey) -> Result<ApiKey>;
    async fn keys(&self) -> Result<Vec<ApiKey>>;
    async fn key(&self, id: RowId) -> Result<Option<ApiKey>>;
    async fn key_by_client_id(&self, client_id: &str) -> Result<Option<ApiKey>>;
    async fn key_by_subscription_key(&self, key: &str) -> Result<Option<ApiKey>>;
    /// The key with this client id and, for a partner's key, its partner's state: everything
    /// token issuance checks, read together (a backend answers it in one query; this default
    /// takes two).
    async fn key_with_partner_state(
        &self,
        client_id: &str,
    ) -> Result<Option<(ApiKey, Option<PartnerState>)>> {
        let Some(key) = self.key_by_client_id(client_id).await? else {
            return Ok(None);
        };
        let state = match key.owner {
            ledgerport_core::world::KeyOwner::Partner(p) => self.partner(p).await?.map(|p| p.state),
            _ => None,
        };
        Ok(Some((key, state)))
    }
    /// Replaces the secret and raises the generation, so tokens from the old secret stop working.
    async fn replace_secret(&self, by: &Actor, id: RowId, secret_hash: [u8; 32]) -> Result<ApiKey>;
    async fn revoke_key(&self, by: &Actor, id: RowId) -> Result<ApiKey>;

    // --- grants ---
    async fn create_grant(&self, by: &Actor, partner: RowId, ledger: &LedgerId) -> Result<Grant>;
    /// Returns whether a grant was there to remove.
    async fn remove_grant(&self, by: &Actor, partner: RowId, ledger: &LedgerId) -> Result<bool>;
    async fn grants(&self, partner: Option<RowId>, ledger: Option<&LedgerId>)
    -> Result<Vec<Grant>>;

    // --- entries ---
    /// The one way entries reach a ledger: assigns the next sequence numbers and chains balances
    /// from the topic's last entry, atomically.
    async fn append_entries(
        &self,
        ledger: &LedgerId,
        topic: Topic,
        entries: Vec<NewEntry>,
    ) -> Result<Vec<Entry>>;
    /// Entries after `after_seq` in feed order, at most `limit`.
    async fn feed_page(
        &self,
        access: &LedgerAccess,
        topic: Topic,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<Entry>>;
    /// Entries of one ledger date after `after_seq`, at most `limit`.
    async fn date_page(
        &self,
        access: &LedgerAccess,
        topic: Topic,
        date: LedgerDate,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<Entry>>;

    // --- the settlement engine ---
    /// Applies payment events in order with the engine's rules ([`ledgerport_core::engine`]).
    /// Each accepted event's entries, its pspReference totals and its id are written together;
    /// a rejected event writes nothing; an event id applied before answers as it did then. The
    /// whole batch is one transaction: on a database error nothing is written and the caller
    /// may post the batch again.
    async fn ingest_events(
        &self,
        events: Vec<PaymentEvent>,
        now: Timestamp,
    ) -> Result<Vec<EventOutcome>>;
    /// Closes every payout period of the ledger that `now` has passed, oldest first, each in its
    /// own transaction together with the ledger's progress, so a run stopped at any point is
    /// completed by the next without writing anything twice.
    async fn close_due(&self, ledger: &LedgerId, now: Timestamp) -> Result<Vec<ClosedPeriod>>;

    // --- the server's own keys ---
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>>;
    async fn add_signing_key(&self, by: &Actor, key: SigningKeyRecord) -> Result<()>;
    async fn retire_signing_key(&self, by: &Actor, kid: &str) -> Result<()>;
    /// Returns the secret called `name`, storing `candidate` first if there is none yet; every
    /// process sharing the database gets the same value.
    async fn server_secret(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>>;

    // --- coordination of server processes ---
    /// Takes or renews the lease called `name` for `holder` until `until`, if it is free, has
    /// lapsed (it expires at or before `now`) or is already `holder`'s; returns whether `holder`
    /// holds it now. Server processes sharing a database run the closing task only while they
    /// hold the `closing` lease, so one process at a time does it.
    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool>;

    // --- logs ---
    async fn record_access(&self, rec: NewAccessRecord) -> Result<()>;
    async fn access_log(&self, filter: &AccessLogFilter) -> Result<Vec<AccessRecord>>;
    async fn audit_log(&self, limit: u32) -> Result<Vec<AuditRecord>>;

    /// Readiness: fails when the database is unreachable or its schema is not the one this build
    /// migrates to (another process migrated it further, or a migration is missing).
    async fn ping(&self) -> Result<()>;

    /// The connection pool right now, for the `ledgerport_db_pool_connections` metric: no
    /// query, no waiting. A backend without a pool reports zeros.
    fn pool_stats(&self) -> PoolStats;

    // --- portal ---
    // People who sign in to the portal, their sessions and failed sign-ins. Emails are trimmed
    // and lowercased by the store, on the way in and in lookups.

    /// Creates a portal user (audited). An email already taken is a `Conflict`; an unknown
    /// merchant or partner is `NotFound`.
    async fn create_portal_user(&self, by: &Actor, u: NewPortalUser) -> Result<PortalUser>;
    /// A public application: the partner (state applied, as [`Store::create_partner`]) and its
    /// first partner user, both or neither (audited). An email already taken is a `Conflict`
    /// and writes nothing.
    async fn apply_as_partner(
        &self,
        by: &Actor,
        p: NewPartner,
        email: &str,
        password_hash: &str,
    ) -> Result<(Partner, PortalUser)>;
    async fn portal_user(&self, id: RowId) -> Result<Option<PortalUser>>;
    async fn portal_user_by_email(&self, email: &str) -> Result<Option<PortalUser>>;
    /// Every portal user, in creation order.
    async fn portal_users(&self) -> Result<Vec<PortalUser>>;
    /// Starts a session known by the SHA-256 of its token, until `expires_at`.
    async fn create_session(
        &self,
        user: RowId,
        token_hash: [u8; 32],
        csrf_token: &str,
        expires_at: Timestamp,
    ) -> Result<()>;
    /// The session with this token hash, unless it has expired by the store's clock.
    async fn session(&self, token_hash: [u8; 32]) -> Result<Option<PortalSession>>;
    /// Ends a session (sign-out); returns whether there was one.
    async fn delete_session(&self, token_hash: [u8; 32]) -> Result<bool>;
    /// Counts one more failed sign-in for `email` (known or not) at the store's clock.
    async fn record_sign_in_failure(&self, email: &str) -> Result<SignInFailures>;
    async fn sign_in_failures(&self, email: &str) -> Result<SignInFailures>;
    /// Forgets `email`'s failed sign-ins (after a successful one).
    async fn clear_sign_in_failures(&self, email: &str) -> Result<()>;
}

/// The one statement both backends take a lease with (`$1` name, `$2` holder, `$3` until, `$4`
/// now, in milliseconds): it writes a row only when the lease is free, lapsed or the holder's own,
/// so "one row affected" means "held", decided by the database in one statement.
pub(crate) const LEASE_UPSERT: &str = "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
     WHERE leases.holder = excluded.holder OR leases.expires_at <= $4";

/// Connections of a store's pool: `size` open, of which `idle` are not lent out (so
/// `size - idle` are in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
}
