//! The store's interface in nine parts, each what one kind of caller needs. [`crate::Store`] is
//! their sum (every type with all nine is a `Store`), so a caller holding `Arc<dyn Store>` calls
//! any of them once [`crate::prelude`] is imported.

use crate::webhook::{
    AttemptRecord, DomainEvent, NewWebhookEndpoint, WebhookAttempt, WebhookDelivery,
    WebhookEndpoint, WebhookOwner,
};
use crate::{
    AccessLogFilter, AccessRecord, Actor, AuditRecord, ClosedPeriod, EventOutcome,
    InvitationAnswer, LedgerView, NewAccessRecord, NewAccessRequest, NewKey, NewLedger, NewMail,
    NewMerchant, NewPartner, NewPortalUser, NewSalesUnit, Notification, OutboxMail, OutboxSummary,
    PoolStats, PortalSession, PortalUser, RequestFilter, Result, SignInFailures, SigningKeyRecord,
    WirePage,
};
use async_trait::async_trait;
use jiff::Timestamp;
use ledgerport_core::access::{Guarded, LedgerAccess, ListScope};
use ledgerport_core::engine::PaymentEvent;
use ledgerport_core::entry::{Entry, NewEntry};
use ledgerport_core::ids::{LedgerDate, LedgerId, Msn, RecipientHandle, Topic};
use ledgerport_core::proof::{DateDigestState, DateProof};
use ledgerport_core::world::{
    AccessRequest, ApiKey, Grant, GrantScope, Merchant, Partner, PartnerState, RowId, SalesUnit,
};

/// Merchants, sales units, ledgers, partners and grants: the world the access policy reads.
#[async_trait]
pub trait WorldStore: Send + Sync {
    async fn create_merchant(&self, by: &Actor, m: NewMerchant) -> Result<Merchant>;
    async fn merchants(&self) -> Result<Vec<Merchant>>;
    async fn merchant(&self, id: RowId) -> Result<Option<Merchant>>;
    async fn merchant_by_org(&self, org_id: &str) -> Result<Option<Merchant>>;
    async fn create_sales_unit(&self, by: &Actor, u: NewSalesUnit) -> Result<SalesUnit>;
    async fn sales_units(&self, merchant: Option<RowId>) -> Result<Vec<SalesUnit>>;
    async fn sales_unit(&self, msn: Msn) -> Result<Option<SalesUnit>>;

    async fn create_ledger(&self, by: &Actor, l: NewLedger) -> Result<LedgerView>;
    /// Every ledger, for the operator's and the server's own tasks (closing, metrics, building
    /// the world); never for a reader acting for a key or a portal user.
    async fn ledgers(&self) -> Result<Vec<LedgerView>>;
    /// One ledger in one round trip: what the access policy needs (owner, handles, standing
    /// grants of approved partners) and its description, which only a decision opens.
    async fn ledger(&self, id: &LedgerId) -> Result<Option<Guarded<LedgerView>>>;
    /// One keyset page of the ledgers a listing scope covers, ordered by `ledgerId`, after `after`,
    /// each to be opened by a decision like [`WorldStore::ledger`]'s.
    async fn ledgers_in_scope(
        &self,
        scope: &ListScope,
        handle: Option<&RecipientHandle>,
        after: Option<&LedgerId>,
        limit: u32,
    ) -> Result<Vec<Guarded<LedgerView>>>;

    async fn create_partner(&self, by: &Actor, p: NewPartner) -> Result<Partner>;
    async fn partners(&self) -> Result<Vec<Partner>>;
    async fn partner(&self, id: RowId) -> Result<Option<Partner>>;
    /// Moves a partner along the operator's paths ([`PartnerState::may_become`]).
    async fn set_partner_state(&self, by: &Actor, id: RowId, to: PartnerState) -> Result<Partner>;

    /// Grants `ledger` to `partner` within `scope` (checked by [`GrantScope::check`]: an
    /// `Invalid` naming the field). Only an approved accounting partner may be granted.
    /// Creating, changing and removing a grant tell both sides of it in the same transaction
    /// (portal notifications and mails, [`ledgerport_core::notices::grant_notices`]).
    async fn create_grant(
        &self,
        by: &Actor,
        partner: RowId,
        ledger: &LedgerId,
        scope: &GrantScope,
    ) -> Result<Grant>;
    /// Changes the scope of `partner`'s grant on `ledger` (audited, and told of when it
    /// differs from the scope before); `NotFound` without one.
    /// An expired grant may be given a later expiry, which makes it stand again.
    async fn set_grant_scope(
        &self,
        by: &Actor,
        partner: RowId,
        ledger: &LedgerId,
        scope: &GrantScope,
    ) -> Result<Grant>;
    /// Returns whether a grant was there to remove.
    async fn remove_grant(&self, by: &Actor, partner: RowId, ledger: &LedgerId) -> Result<bool>;
    /// Grants as stored, expired ones included (with their scopes, so the merchant's portal can
    /// show them as expired); for what a partner may read, ask the policy through `ledger` or
    /// `ledgers_in_scope`.
    async fn grants(&self, partner: Option<RowId>, ledger: Option<&LedgerId>)
    -> Result<Vec<Grant>>;
}

/// API keys and the server's own secrets: what token issuance and authentication read.
#[async_trait]
pub trait CredentialStore: Send + Sync {
    async fn create_key(&self, by: &Actor, k: NewKey) -> Result<ApiKey>;
    async fn keys(&self) -> Result<Vec<ApiKey>>;
    async fn key(&self, id: RowId) -> Result<Option<ApiKey>>;
    async fn key_by_client_id(&self, client_id: &str) -> Result<Option<ApiKey>>;
    async fn key_by_subscription_key(&self, key: &str) -> Result<Option<ApiKey>>;
    /// The key with this client id and, for a partner's key, its partner's state: everything
    /// token issuance checks, read together in one query.
    async fn key_with_partner_state(
        &self,
        client_id: &str,
    ) -> Result<Option<(ApiKey, Option<PartnerState>)>>;
    /// Replaces the secret and raises the generation, so tokens from the old secret stop working.
    async fn replace_secret(&self, by: &Actor, id: RowId, secret_hash: [u8; 32]) -> Result<ApiKey>;
    async fn revoke_key(&self, by: &Actor, id: RowId) -> Result<ApiKey>;

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>>;
    async fn add_signing_key(&self, by: &Actor, key: SigningKeyRecord) -> Result<()>;
    async fn retire_signing_key(&self, by: &Actor, kid: &str) -> Result<()>;
    /// Returns the secret called `name`, storing `candidate` first if there is none yet; every
    /// process sharing the database gets the same value.
    async fn server_secret(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>>;
}

/// Reading a ledger's entries: only with a [`LedgerAccess`], the access policy's "yes".
#[async_trait]
pub trait ReportStore: Send + Sync {
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
    /// What [`ReportStore::feed_page`] reads, already in the Report API's JSON ([`WirePage`]):
    /// payer details only when `personal_data`.
    async fn feed_page_wire(
        &self,
        access: &LedgerAccess,
        topic: Topic,
        after_seq: i64,
        limit: u32,
        personal_data: bool,
    ) -> Result<WirePage>;
    /// What [`ReportStore::date_page`] reads, already in the Report API's JSON ([`WirePage`]).
    async fn date_page_wire(
        &self,
        access: &LedgerAccess,
        topic: Topic,
        date: LedgerDate,
        after_seq: i64,
        limit: u32,
        personal_data: bool,
    ) -> Result<WirePage>;
    /// The refunds booked with their own pspReference: (the refund's pspReference, the
    /// pspReference of the capture it refunds), in pspReference order. The entries do not name
    /// the capture; `verify` counts these refunds against it.
    async fn refunded_captures(&self, access: &LedgerAccess) -> Result<Vec<(String, String)>>;
    /// The completeness proof of one closed date of a topic ([`DateProof`]), written when the
    /// date closed; `None` for a date the engine has not closed (open dates, and dates before
    /// the ledger's first) and for a topic or date outside the reader's grant.
    async fn date_proof(
        &self,
        access: &LedgerAccess,
        topic: Topic,
        date: LedgerDate,
    ) -> Result<Option<DateProof>>;
    /// Every proof of a topic in date order, for `verify` (a grant's topics and period apply).
    async fn date_proofs(&self, access: &LedgerAccess, topic: Topic) -> Result<Vec<DateProof>>;
    /// The digest state the store keeps for each date of a topic that has entries or is closed
    /// ([`DateDigestState`]: what the date's entries give, from which its proof is made when it
    /// closes), in date order, for `verify` (a grant's topics and period apply).
    async fn date_digest_states(
        &self,
        access: &LedgerAccess,
        topic: Topic,
    ) -> Result<Vec<(LedgerDate, DateDigestState)>>;
    /// The topic's balance at the start of `date`: after the last entry of the latest earlier
    /// ledger date, 0 when there is none (a statement's opening balance, also of a period
    /// without entries). A date outside the reader's grant period is `Invalid`.
    async fn balance_before_date(
        &self,
        access: &LedgerAccess,
        topic: Topic,
        date: LedgerDate,
    ) -> Result<i64>;
}

/// Writing entries: the settlement engine and the one way entries reach a ledger.
#[async_trait]
pub trait SettlementStore: Send + Sync {
    /// Assigns the next sequence numbers and chains balances from the topic's last entry,
    /// atomically.
    async fn append_entries(
        &self,
        ledger: &LedgerId,
        topic: Topic,
        entries: Vec<NewEntry>,
    ) -> Result<Vec<Entry>>;
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
}

/// People who sign in to the portal, their sessions and failed sign-ins. Emails are trimmed and
/// lowercased by the store, on the way in and in lookups.
#[async_trait]
pub trait PortalStore: Send + Sync {
    /// Creates a portal user (audited). An email already taken is a `Conflict`; an unknown
    /// merchant or partner is `NotFound`.
    async fn create_portal_user(&self, by: &Actor, u: NewPortalUser) -> Result<PortalUser>;
    /// A public application: the partner (state applied, as `create_partner`), its first
    /// partner user and the `mails` to send about it, all or nothing (audited). An email
    /// already taken is a `Conflict` and writes nothing, not even the mails.
    async fn apply_as_partner(
        &self,
        by: &Actor,
        p: NewPartner,
        email: &str,
        password_hash: &str,
        mails: &[NewMail],
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

/// Running the service: the closing lease, the access and audit logs, readiness and the pool.
#[async_trait]
pub trait OperationsStore: Send + Sync {
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

    async fn record_access(&self, rec: NewAccessRecord) -> Result<()> {
        self.record_accesses(vec![rec]).await
    }
    /// Records these requests in one transaction: a listing's row per ledger costs one commit.
    async fn record_accesses(&self, recs: Vec<NewAccessRecord>) -> Result<()>;
    /// The records the filter selects, newest first, at most `limit` (100 when 0).
    async fn access_log(&self, filter: &AccessLogFilter) -> Result<Vec<AccessRecord>>;
    /// How many records the filter selects (its `limit` and `before_id` aside).
    async fn count_access(&self, filter: &AccessLogFilter) -> Result<u64>;
    /// Deletes the records made before `before` (the log's time format); returns how many.
    async fn prune_access_log(&self, before: &str) -> Result<u64>;
    async fn audit_log(&self, limit: u32) -> Result<Vec<AuditRecord>>;

    /// Readiness: fails when the database is unreachable or its schema is not the one this build
    /// migrates to (another process migrated it further, or a migration is missing).
    async fn ping(&self) -> Result<()>;

    /// The connection pool right now, for the `ledgerport_db_pool_connections` metric: no
    /// query, no waiting. A backend without a pool reports zeros.
    fn pool_stats(&self) -> PoolStats;
}

/// The mail outbox: e-mails waiting for the server's sender, which delivers them over SMTP.
///
/// A change that tells someone of itself by mail writes the mail in its own transaction (its
/// method takes the mails, as [`PortalStore::apply_as_partner`] does), so a mail exists exactly
/// when its change does; [`OutboxStore::enqueue_mail`] is for a mail that goes with no change.
/// Senders claim due mails for a while, so processes sharing the database never send one mail
/// at the same time; a mail is marked sent once, after which nothing claims it again.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Enqueues one mail on its own, due at once. A recipient that is not one address, or a
    /// recipient or subject with a line break, is `Invalid` naming the field.
    async fn enqueue_mail(&self, mail: NewMail) -> Result<OutboxMail>;
    /// Claims for `holder` until `until` up to `limit` mails due at `now` (not sent, not given
    /// up on, their next attempt reached, unclaimed or their claim lapsed), soonest due first, counting an attempt
    /// on each. No other holder claims them before `until`.
    async fn claim_mails(
        &self,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxMail>>;
    /// Marks a mail `holder` has claimed as sent at `at` and releases it. False when `holder`
    /// no longer holds it (another took it after the claim lapsed) or it was sent already.
    async fn mark_mail_sent(&self, id: RowId, holder: &str, at: Timestamp) -> Result<bool>;
    /// Records a failed attempt of a mail `holder` has claimed: why, and not to try again
    /// before `retry_at`; releases it. False as for [`OutboxStore::mark_mail_sent`].
    async fn mark_mail_failed(
        &self,
        id: RowId,
        holder: &str,
        error: &str,
        retry_at: Timestamp,
    ) -> Result<bool>;
    /// Gives up on a mail `holder` has claimed: records why, marks it failed at `at` and
    /// releases it. Nothing claims it again until [`OutboxStore::retry_mails`]. False as for
    /// [`OutboxStore::mark_mail_sent`].
    async fn give_up_mail(
        &self,
        id: RowId,
        holder: &str,
        error: &str,
        at: Timestamp,
    ) -> Result<bool>;
    /// The mails not sent yet (given up on or not), soonest due first; with `include_sent`, every mail, newest
    /// first. At most `limit`.
    async fn outbox(&self, include_sent: bool, limit: u32) -> Result<Vec<OutboxMail>>;
    /// The mails waiting, at a glance.
    async fn outbox_summary(&self) -> Result<OutboxSummary>;
    /// Makes the mail `id` (or every mail not sent) due at `now`, e.g. after the SMTP server
    /// is fixed; returns how many. A mail given up on is tried again, its give-up time counted
    /// anew from `now`. Claims are left alone: a mail being sent stays with its sender.
    async fn retry_mails(&self, id: Option<RowId>, now: Timestamp) -> Result<u64>;
}

/// Partners' access requests and the merchant's answers. Whose request a caller may see or
/// decide is the caller's to check (the portal by the signed-in organisation); the rules of the
/// request itself are the core's ([`ledgerport_core::changes`]). Each step tells the other
/// side's portal users, by notification and mail in the step's own transaction
/// ([`ledgerport_core::notices::request_notices`]).
#[async_trait]
pub trait RequestStore: Send + Sync {
    /// Records a pending request (audited). Only an approved accounting partner may ask; the
    /// scope must pass [`GrantScope::check`] and the message the core's bound, each an
    /// `Invalid` naming the field. An organisation number that names no merchant is stored all
    /// the same, with no merchant: the partner's answer is the same either way.
    async fn create_access_request(&self, by: &Actor, r: NewAccessRequest)
    -> Result<AccessRequest>;
    /// Requests, newest first.
    async fn access_requests(&self, filter: &RequestFilter) -> Result<Vec<AccessRequest>>;
    async fn access_request(&self, id: RowId) -> Result<Option<AccessRequest>>;
    /// The ledgers an approval of request `id` would grant: the merchant's ledgers that settle
    /// for a unit asked for, or all of them when the request names none.
    async fn request_ledgers(&self, id: RowId) -> Result<Vec<LedgerId>>;
    /// Approves a pending request within `scope`, which may narrow the proposed scope but never
    /// widen it (`Invalid` naming the field): grants the request's ledgers to the partner and
    /// marks it approved in one transaction, and returns the ledgers newly granted (a ledger the
    /// partner holds already keeps its grant as it is). No ledger to grant is `Invalid`.
    async fn approve_access_request(
        &self,
        by: &Actor,
        id: RowId,
        scope: &GrantScope,
    ) -> Result<(AccessRequest, Vec<LedgerId>)>;
    /// Declines a pending request; nothing is granted.
    async fn decline_access_request(&self, by: &Actor, id: RowId) -> Result<AccessRequest>;
    /// The partner takes back a pending request.
    async fn withdraw_access_request(&self, by: &Actor, id: RowId) -> Result<AccessRequest>;
    /// A merchant answers a partner's invitation link: records the request the invitation
    /// stands for, already approved (granting as [`RequestStore::approve_access_request`]
    /// does) or declined, in one transaction, and tells the partner. A merchant's second
    /// answer to one invitation is a `Conflict`; a partner that may no longer be granted, a
    /// widening scope or no ledger to grant is `Invalid` naming the field.
    async fn answer_invitation(
        &self,
        by: &Actor,
        answer: InvitationAnswer,
    ) -> Result<(AccessRequest, Vec<LedgerId>)>;
}

/// Portal notifications: what portal users have been told of grants and access requests. Grant
/// changes and each step of a request write them in their own transactions (with the mails that
/// tell the same); these methods read them, mark them read, and write the expiry notices.
#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// `user`'s notifications, newest first: at most `limit`, those older than `before` (an
    /// id from the previous page) when given.
    async fn notifications(
        &self,
        user: RowId,
        before: Option<RowId>,
        limit: u32,
    ) -> Result<Vec<Notification>>;
    /// How many of `user`'s notifications are unread.
    async fn unread_notifications(&self, user: RowId) -> Result<u64>;
    /// Marks notification `id` read if it is `user`'s and unread; false otherwise (another
    /// user's notification is left alone, as an unknown one).
    async fn mark_notification_read(&self, user: RowId, id: RowId) -> Result<bool>;
    /// Marks every unread notification of `user` read; returns how many.
    async fn mark_all_notifications_read(&self, user: RowId) -> Result<u64>;
    /// Tells both sides of every grant that expires within the warning period
    /// ([`ledgerport_core::notices::EXPIRY_WARNING`]) or has expired at `now`, once per grant
    /// and expiry: the notice is recorded on the grant in the transaction that writes it, so
    /// repeated calls and several processes write each once. Returns the notifications written.
    async fn notify_grant_expiries(&self, now: Timestamp) -> Result<u64>;
}

/// Domain events and webhooks. Changes write their events in their own transactions (with a
/// delivery for every endpoint that may want each); the server's sender claims due deliveries,
/// asks the access policy whether the endpoint's owner may still see the event, and records each
/// attempt. Whose endpoint a caller may manage is the caller's to check.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Told (`notify_one`) each time a transaction of this store handle that wrote a domain
    /// event commits, so a sender in this process can start at once rather than at its next
    /// poll; `None` for a store that cannot tell. Events written by other processes on the same
    /// database are found by polling.
    fn webhook_events_written(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }
    /// Registers an endpoint (audited). A URL that is not http(s) with a host, or an unknown
    /// event type, is `Invalid` naming the field.
    async fn create_webhook_endpoint(
        &self,
        by: &Actor,
        e: NewWebhookEndpoint,
    ) -> Result<WebhookEndpoint>;
    /// The endpoints of `owner` (every endpoint when `None`), in creation order.
    async fn webhook_endpoints(&self, owner: Option<WebhookOwner>) -> Result<Vec<WebhookEndpoint>>;
    async fn webhook_endpoint(&self, uid: &str) -> Result<Option<WebhookEndpoint>>;
    async fn webhook_endpoint_by_id(&self, id: RowId) -> Result<Option<WebhookEndpoint>>;
    /// Deletes an endpoint with its deliveries and their log; false if there was none.
    async fn delete_webhook_endpoint(&self, by: &Actor, uid: &str) -> Result<bool>;
    /// Makes `secret` the endpoint's secret; the one before keeps signing until
    /// `previous_until`. `NotFound` without the endpoint.
    async fn rotate_webhook_secret(
        &self,
        by: &Actor,
        uid: &str,
        secret: Vec<u8>,
        previous_until: Timestamp,
    ) -> Result<WebhookEndpoint>;
    /// Enables a disabled endpoint again; its pending deliveries are due at once, with a fresh
    /// retry period.
    async fn enable_webhook_endpoint(&self, by: &Actor, uid: &str) -> Result<WebhookEndpoint>;
    /// Events after id `after` (of one ledger, or all), in id order, at most `limit`.
    async fn domain_events(
        &self,
        ledger: Option<&LedgerId>,
        after: RowId,
        limit: u32,
    ) -> Result<Vec<DomainEvent>>;
    /// Claims for `holder` until `until` up to `limit` deliveries due at `now` (pending, their
    /// next attempt reached, unclaimed or their claim lapsed, their endpoint enabled), soonest
    /// due first, counting an attempt on each. No other holder claims them before `until`.
    async fn claim_webhook_deliveries(
        &self,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>>;
    /// Records an attempt of a delivery `holder` has claimed and what follows
    /// ([`crate::AttemptOutcome`]), releasing it; giving up disables the endpoint and tells its
    /// owner's portal users, once. False when `holder` no longer holds it.
    async fn record_webhook_attempt(
        &self,
        id: RowId,
        holder: &str,
        rec: AttemptRecord,
    ) -> Result<bool>;
    /// [`WebhookStore::record_webhook_attempt`] for several deliveries in one transaction: a
    /// sender that finished many attempts together waits for one commit, not one each. For each,
    /// whether `holder` still held it (one it no longer held is left as it is).
    async fn record_webhook_attempts(
        &self,
        holder: &str,
        attempts: &[(RowId, AttemptRecord)],
    ) -> Result<Vec<bool>>;
    /// An endpoint's deliveries, newest first, older than `before` when given, at most `limit`.
    async fn webhook_deliveries(
        &self,
        endpoint: RowId,
        before: Option<RowId>,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>>;
    async fn webhook_delivery(&self, id: RowId) -> Result<Option<WebhookDelivery>>;
    /// A delivery's attempts, oldest first: the delivery log.
    async fn webhook_attempts(&self, delivery: RowId) -> Result<Vec<WebhookAttempt>>;
    /// Makes a delivery due again at once (whatever its state; audited), the same `webhook-id`;
    /// false if there is none.
    async fn redeliver_webhook(&self, by: &Actor, delivery: RowId) -> Result<bool>;
}
