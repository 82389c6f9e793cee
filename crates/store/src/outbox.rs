//! The mail outbox's shapes: a mail to enqueue, a mail as the outbox holds it, and the queue at a
//! glance for the operator.

use jiff::Timestamp;
use ledgerport_core::world::RowId;

/// A mail to send: one recipient, a subject and a plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMail {
    pub recipient: String,
    pub subject: String,
    pub body: String,
}

/// A mail in the outbox, sent or waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMail {
    pub id: RowId,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub created_at: Timestamp,
    /// Delivery attempts begun so far.
    pub attempts: u32,
    /// Not to be tried before this.
    pub next_attempt_at: Timestamp,
    pub last_attempt_at: Option<Timestamp>,
    /// Why the latest attempt failed, if it did.
    pub last_error: Option<String>,
    pub sent_at: Option<Timestamp>,
    /// When the sender gave up on the mail (a permanent refusal, or failing for longer than
    /// the give-up time); such a mail waits for the operator's retry.
    pub failed_at: Option<Timestamp>,
    /// Since when the mail has been tried: its creation, or the operator's latest retry of it
    /// after it failed. The give-up time counts from here.
    pub trying_since: Timestamp,
}

/// The mails waiting, at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutboxSummary {
    /// Mails not sent yet and not given up on.
    pub pending: u64,
    /// Mails the sender gave up on, waiting for the operator's retry.
    pub failed: u64,
    /// When the oldest of them was enqueued.
    pub oldest: Option<Timestamp>,
    /// The error of the most recent failed attempt among the mails not sent (given up or not).
    pub last_error: Option<String>,
}
