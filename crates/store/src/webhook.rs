//! Domain events and webhooks as the store holds them: the events changes write in their own
//! transactions ([`DomainEvent`]), the endpoints merchants and partners register
//! ([`WebhookEndpoint`]), one event's delivery to one endpoint ([`WebhookDelivery`]) and each
//! attempt of it ([`WebhookAttempt`], the delivery log).

use jiff::Timestamp;
use ledgerport_core::ids::{LedgerDate, LedgerId};
use ledgerport_core::world::RowId;

/// The event types, as webhook payloads name them and endpoints filter by.
pub const EVENT_TYPES: &[&str] = &[
    LEDGER_DATE_CLOSED,
    PAYOUT_SCHEDULED,
    GRANT_CREATED,
    GRANT_CHANGED,
    GRANT_REMOVED,
    GRANT_EXPIRED,
    PARTNER_APPROVED,
    PARTNER_SUSPENDED,
];
pub const LEDGER_DATE_CLOSED: &str = "ledger.date.closed";
pub const PAYOUT_SCHEDULED: &str = "payout.scheduled";
pub const GRANT_CREATED: &str = "grant.created";
pub const GRANT_CHANGED: &str = "grant.changed";
pub const GRANT_REMOVED: &str = "grant.removed";
pub const GRANT_EXPIRED: &str = "grant.expired";
pub const PARTNER_APPROVED: &str = "partner.approved";
pub const PARTNER_SUSPENDED: &str = "partner.suspended";

/// The longest a delivery is retried: an endpoint still failing a delivery this long after the
/// event is disabled and its owner told.
pub const RETRY_PERIOD: jiff::SignedDuration = jiff::SignedDuration::from_hours(72);

/// One event from the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainEvent {
    pub id: RowId,
    pub event_type: String,
    /// The ledger it is about, if any, and its place in that ledger's events (1, 2, ...).
    pub ledger_id: Option<LedgerId>,
    pub ledger_seq: Option<i64>,
    /// The partner it is about: a grant's grantee, or the partner whose state changed.
    pub partner_id: Option<RowId>,
    /// The ledger date of a date-closed event.
    pub ledger_date: Option<LedgerDate>,
    /// The event's data, a JSON object (as text).
    pub data: String,
    pub created_at: Timestamp,
}

/// Who an endpoint belongs to: a merchant gets the events of its own ledgers, a partner those of
/// the ledgers it is entitled to and its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOwner {
    Merchant(RowId),
    Partner(RowId),
}

/// An endpoint to register. `secret` is as the store keeps it (sealed by the server); `uid` is
/// the endpoint's public id (`ep_...`), chosen by the caller so the seal can be bound to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhookEndpoint {
    pub uid: String,
    pub owner: WebhookOwner,
    pub url: String,
    /// The event types wanted; empty means every type.
    pub event_types: Vec<String>,
    pub secret: Vec<u8>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: RowId,
    pub uid: String,
    pub owner: WebhookOwner,
    pub url: String,
    /// Empty: every type.
    pub event_types: Vec<String>,
    /// Sealed as the server stored it.
    pub secret: Vec<u8>,
    /// The secret before the last rotation, which signs too until `previous_secret_until`.
    pub previous_secret: Option<Vec<u8>>,
    pub previous_secret_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub disabled_at: Option<Timestamp>,
    pub disabled_reason: Option<String>,
}

/// Without the secrets (the never-log list).
impl std::fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("id", &self.id)
            .field("uid", &self.uid)
            .field("owner", &self.owner)
            .field("url", &self.url)
            .field("event_types", &self.event_types)
            .field("previous_secret_until", &self.previous_secret_until)
            .field("disabled_at", &self.disabled_at)
            .finish_non_exhaustive()
    }
}

impl WebhookEndpoint {
    /// Whether this endpoint wants events of `event_type`.
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type)
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// To be attempted (again).
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Given up after [`RETRY_PERIOD`]; the endpoint was disabled.
    Failed,
    /// Not sent: the endpoint's owner was not entitled to the event when it was to be delivered.
    Withheld,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::Withheld => "withheld",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => DeliveryState::Pending,
            "delivered" => DeliveryState::Delivered,
            "failed" => DeliveryState::Failed,
            "withheld" => DeliveryState::Withheld,
            _ => return None,
        })
    }
}

/// One event for one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub id: RowId,
    pub event: DomainEvent,
    pub endpoint_id: RowId,
    pub state: DeliveryState,
    pub created_at: Timestamp,
    /// Since when it has been failing: the event's time, or the latest manual redelivery's.
    pub retry_since: Timestamp,
    /// Attempts begun so far.
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub last_attempt_at: Option<Timestamp>,
    /// The HTTP status of the latest attempt, if the endpoint answered.
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<u64>,
    pub finished_at: Option<Timestamp>,
}

impl WebhookDelivery {
    /// The `webhook-id`: the same for every attempt of this event to this endpoint.
    pub fn message_id(&self) -> String {
        format!("msg_{}_{}", self.event.id, self.endpoint_id)
    }
}

/// One attempt in the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAttempt {
    pub id: RowId,
    pub delivery_id: RowId,
    pub at: Timestamp,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub latency_ms: u64,
}

/// What an attempt came to, and what happens to the delivery next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Answered 2xx: done.
    Delivered,
    /// Failed: try again at this instant.
    RetryAt(Timestamp),
    /// Failed for longer than [`RETRY_PERIOD`]: give up and disable the endpoint, telling its
    /// owner.
    GiveUp,
    /// Not sent, as the owner is not entitled to the event (no attempt is logged).
    Withheld,
}

/// An attempt to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub at: Timestamp,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub latency_ms: u64,
    pub outcome: AttemptOutcome,
}
