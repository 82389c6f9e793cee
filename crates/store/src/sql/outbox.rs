//! [`OutboxStore`] on SQL (migration `0007_mail_outbox.sql`), and [`WriteTx::enqueue`], with
//! which a change writes its mails in its own transaction.
//!
//! Claiming is one `UPDATE` that marks the chosen rows with the holder and a lapse time. The
//! conditions that make a mail claimable are repeated outside the query that chooses it, so
//! on PostgreSQL a row another process claimed meanwhile is re-checked after its lock is
//! released and skipped rather than claimed twice; `FOR UPDATE SKIP LOCKED` there lets the
//! processes pass each other's rows instead of waiting ([`Dialect::SKIP_LOCKED`]). SQLite has
//! one writer at a time, so its claims never meet.

use super::{Dialect, SqlStore, WriteTx, args};
use crate::rows::ts;
use crate::{NewMail, OutboxMail, OutboxStore, OutboxSummary, Result, StoreError};
use async_trait::async_trait;
use jiff::Timestamp;
use ledgerport_core::entry::wire_time;
use ledgerport_core::world::RowId;

/// Checks a mail before it is written: one plain address, and nothing in the headers that could
/// start another header.
fn check(mail: &NewMail) -> Result<()> {
    let r = mail.recipient.as_str();
    let one_address = r.len() <= 254
        && r.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        })
        && !r
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || ",;<>\"".contains(c));
    if !one_address {
        return Err(StoreError::Invalid(format!(
            "recipient: must be one e-mail address, got {r:?}"
        )));
    }
    if mail.subject.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "subject: must not hold line breaks or other control characters".into(),
        ));
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct MailRow {
    id: i64,
    recipient: String,
    subject: String,
    body: String,
    created_at: String,
    attempts: i64,
    next_attempt_at: String,
    last_attempt_at: Option<String>,
    last_error: Option<String>,
    sent_at: Option<String>,
    failed_at: Option<String>,
    trying_since: Option<String>,
}

impl MailRow {
    fn into_domain(self) -> Result<OutboxMail> {
        Ok(OutboxMail {
            id: self.id,
            recipient: self.recipient,
            subject: self.subject,
            body: self.body,
            created_at: ts(&self.created_at)?,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            next_attempt_at: ts(&self.next_attempt_at)?,
            last_attempt_at: self.last_attempt_at.as_deref().map(ts).transpose()?,
            last_error: self.last_error,
            sent_at: self.sent_at.as_deref().map(ts).transpose()?,
            failed_at: self.failed_at.as_deref().map(ts).transpose()?,
            trying_since: ts(self.trying_since.as_deref().unwrap_or(&self.created_at))?,
        })
    }
}

const COLUMNS: &str = "id, recipient, subject, body, created_at, attempts, next_attempt_at, \
     last_attempt_at, last_error, sent_at, failed_at, trying_since";

impl<DB: Dialect> WriteTx<DB> {
    /// Writes `mail` in this transaction, due at `at` (the store's now, wire form).
    pub(crate) async fn enqueue(&mut self, at: &str, mail: &NewMail) -> Result<RowId> {
        check(mail)?;
        let (id,): (i64,) = self
            .one(
                "INSERT INTO mail_outbox (recipient, subject, body, created_at, next_attempt_at) \
                 VALUES ($1, $2, $3, $4, $4) RETURNING id",
                args![&mail.recipient, &mail.subject, &mail.body, at],
            )
            .await?;
        Ok(id)
    }
}

impl<DB: Dialect> SqlStore<DB> {
    async fn mail(&self, id: RowId) -> Result<OutboxMail> {
        let row: Option<MailRow> = self
            .opt(
                sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM mail_outbox WHERE id = $1")),
                args![id],
            )
            .await?;
        row.ok_or_else(|| StoreError::NotFound(format!("mail {id}")))?
            .into_domain()
    }
}

#[async_trait]
impl<DB: Dialect> OutboxStore for SqlStore<DB> {
    async fn enqueue_mail(&self, mail: NewMail) -> Result<OutboxMail> {
        let mut tx = self.begin().await?;
        let id = tx.enqueue(&self.now(), &mail).await?;
        tx.commit().await?;
        self.mail(id).await
    }

    async fn claim_mails(
        &self,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxMail>> {
        let claimable = "sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $3 AND (claimed_until IS NULL OR claimed_until <= $3)";
        // The choice is a CTE, which both databases evaluate once: PostgreSQL may run a plain
        // `IN (subquery)` again per row, and its LIMIT would then not bound the claim.
        let sql = format!(
            "WITH chosen AS (SELECT id FROM mail_outbox WHERE {claimable} \
             ORDER BY next_attempt_at, id LIMIT $4{}) \
             UPDATE mail_outbox SET claimed_by = $1, claimed_until = $2, attempts = attempts + 1, \
             last_attempt_at = $3 \
             WHERE id IN (SELECT id FROM chosen) AND {claimable} RETURNING {COLUMNS}",
            DB::SKIP_LOCKED
        );
        let mut tx = self.begin().await?;
        let rows: Vec<MailRow> = tx
            .all(
                sqlx::AssertSqlSafe(sql),
                args![holder, wire_time(until), wire_time(now), i64::from(limit)],
            )
            .await?;
        tx.commit().await?;
        let mut mails = rows
            .into_iter()
            .map(MailRow::into_domain)
            .collect::<Result<Vec<_>>>()?;
        // RETURNING promises no order.
        mails.sort_by_key(|m| (m.next_attempt_at, m.id));
        Ok(mails)
    }

    async fn mark_mail_sent(&self, id: RowId, holder: &str, at: Timestamp) -> Result<bool> {
        let n = self
            .write_one(
                "UPDATE mail_outbox SET sent_at = $3, claimed_by = NULL, claimed_until = NULL \
                 WHERE id = $1 AND claimed_by = $2 AND sent_at IS NULL",
                args![id, holder, wire_time(at)],
            )
            .await?;
        Ok(n == 1)
    }

    async fn mark_mail_failed(
        &self,
        id: RowId,
        holder: &str,
        error: &str,
        retry_at: Timestamp,
    ) -> Result<bool> {
        let n = self
            .write_one(
                "UPDATE mail_outbox SET last_error = $3, next_attempt_at = $4, claimed_by = NULL, \
                 claimed_until = NULL WHERE id = $1 AND claimed_by = $2 AND sent_at IS NULL",
                args![id, holder, error, wire_time(retry_at)],
            )
            .await?;
        Ok(n == 1)
    }

    async fn give_up_mail(
        &self,
        id: RowId,
        holder: &str,
        error: &str,
        at: Timestamp,
    ) -> Result<bool> {
        let n = self
            .write_one(
                "UPDATE mail_outbox SET last_error = $3, failed_at = $4, claimed_by = NULL, \
                 claimed_until = NULL WHERE id = $1 AND claimed_by = $2 AND sent_at IS NULL",
                args![id, holder, error, wire_time(at)],
            )
            .await?;
        Ok(n == 1)
    }

    async fn outbox(&self, include_sent: bool, limit: u32) -> Result<Vec<OutboxMail>> {
        let sql = if include_sent {
            format!("SELECT {COLUMNS} FROM mail_outbox ORDER BY id DESC LIMIT $1")
        } else {
            format!(
                "SELECT {COLUMNS} FROM mail_outbox WHERE sent_at IS NULL \
                 ORDER BY next_attempt_at, id LIMIT $1"
            )
        };
        let rows: Vec<MailRow> = self
            .all(sqlx::AssertSqlSafe(sql), args![i64::from(limit)])
            .await?;
        rows.into_iter().map(MailRow::into_domain).collect()
    }

    async fn outbox_summary(&self) -> Result<OutboxSummary> {
        let (pending, oldest): (i64, Option<String>) = self
            .one(
                "SELECT COUNT(*), MIN(created_at) FROM mail_outbox \
                 WHERE sent_at IS NULL AND failed_at IS NULL",
                args![],
            )
            .await?;
        let (failed,): (i64,) = self
            .one(
                "SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NOT NULL",
                args![],
            )
            .await?;
        let last_error: Option<(Option<String>,)> = self
            .opt(
                "SELECT last_error FROM mail_outbox WHERE sent_at IS NULL \
                 AND last_error IS NOT NULL ORDER BY last_attempt_at DESC, id DESC LIMIT 1",
                args![],
            )
            .await?;
        Ok(OutboxSummary {
            pending: u64::try_from(pending).unwrap_or(0),
            failed: u64::try_from(failed).unwrap_or(0),
            oldest: oldest.as_deref().map(ts).transpose()?,
            last_error: last_error.and_then(|(e,)| e),
        })
    }

    async fn retry_mails(&self, id: Option<RowId>, now: Timestamp) -> Result<u64> {
        // A mail given up on starts a new give-up period now; one still being tried keeps its
        // own.
        self.write_one(
            "UPDATE mail_outbox SET next_attempt_at = $1, \
             trying_since = CASE WHEN failed_at IS NULL THEN trying_since ELSE $1 END, \
             failed_at = NULL \
             WHERE sent_at IS NULL AND ($2 IS NULL OR id = $2)",
            args![wire_time(now), id],
        )
        .await
    }
}
