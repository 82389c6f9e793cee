//! [`NotificationStore`] on SQL (migration `0009_notifications.sql`), and
//! [`WriteTx::notify_grant`] and [`WriteTx::notify_request`], with which a grant change or an
//! access request's step writes its notifications and mails in its own transaction. Who is told what is the core's rule ([`notices::grant_notices`]); this
//! module only finds the people and writes what the rule says.

use super::{Dialect, SqlStore, Tx, WriteTx, args};
use crate::rows::ts;
use crate::{NewMail, Notification, NotificationStore, Result};
use async_trait::async_trait;
use jiff::Timestamp;
use ledgerport_core::entry::wire_time;
use ledgerport_core::ids::LedgerId;
use ledgerport_core::notices::{
    self, GrantChange, GrantParties, Notice, RequestEvent, RequestParties, Side,
};
use ledgerport_core::world::{AccessRequest, RowId};

#[derive(sqlx::FromRow)]
struct NotificationRow {
    id: i64,
    user_id: i64,
    kind: String,
    text: String,
    link: Option<String>,
    created_at: String,
    read_at: Option<String>,
}

impl NotificationRow {
    fn into_domain(self) -> Result<Notification> {
        Ok(Notification {
            id: self.id,
            user_id: self.user_id,
            kind: self.kind,
            text: self.text,
            link: self.link,
            created_at: ts(&self.created_at)?,
            read_at: self.read_at.as_deref().map(ts).transpose()?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct PartiesRow {
    partner_name: String,
    merchant_name: String,
    merchant_id: i64,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    email: String,
}

impl<DB: Dialect> WriteTx<DB> {
    /// Tells both sides of `partner`'s grant on `ledger` of `change` in this transaction: a
    /// notification to every portal user of the ledger's owner and of the partner, and a mail
    /// to each through the outbox, and the change's domain event ([`super::events::grant_event`]).
    /// `at` is the store's now (wire form). Returns how many
    /// notifications were written.
    pub(crate) async fn notify_grant(
        &mut self,
        at: &str,
        partner: RowId,
        ledger: &LedgerId,
        change: &GrantChange,
    ) -> Result<u64> {
        // The grant's domain event goes with its notices (an expiry warning has none).
        if let Some(event) = super::events::grant_event(partner, ledger, change) {
            self.record_event(at, event).await?;
        }
        let Some(p): Option<PartiesRow> = self
            .opt(
                "SELECT p.name AS partner_name, m.name AS merchant_name, m.id AS merchant_id \
                 FROM partners p, ledgers l JOIN merchants m ON m.id = l.owner_merchant_id \
                 WHERE p.id = $1 AND l.ledger_id = $2",
                args![partner, ledger.as_str()],
            )
            .await?
        else {
            // The grant's foreign keys make both exist; nothing to tell without them.
            return Ok(0);
        };
        let units: Vec<(String,)> = self
            .all(
                "SELECT s.name FROM ledger_units lu JOIN sales_units s ON s.msn = lu.msn \
                 WHERE lu.ledger_id = $1 ORDER BY lu.position",
                args![ledger.as_str()],
            )
            .await?;
        let parties = GrantParties {
            partner_name: p.partner_name,
            merchant_name: p.merchant_name,
            ledger_id: ledger.as_str().to_owned(),
            units: units.into_iter().map(|(n,)| n).collect(),
        };
        let merchant_users: Vec<UserRow> = self
            .all(
                "SELECT id, email FROM portal_users WHERE merchant_id = $1 ORDER BY id",
                args![p.merchant_id],
            )
            .await?;
        let partner_users: Vec<UserRow> = self
            .all(
                "SELECT id, email FROM portal_users WHERE partner_id = $1 ORDER BY id",
                args![partner],
            )
            .await?;
        let mut written = 0;
        for notice in notices::grant_notices(change, &parties) {
            let users = match notice.side {
                Side::Merchant => &merchant_users,
                Side::Partner => &partner_users,
            };
            written += self.tell(at, users, &notice).await?;
        }
        Ok(written)
    }

    /// Writes `notice` for each of `users`: a portal notification and a mail through the
    /// outbox. Returns how many users were told.
    async fn tell(&mut self, at: &str, users: &[UserRow], notice: &Notice) -> Result<u64> {
        let mut written = 0;
        for u in users {
            self.execute(
                "INSERT INTO notifications (user_id, kind, text, link, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
                args![u.id, notice.kind, &notice.text, notice.link, at],
            )
            .await?;
            let mail = NewMail {
                recipient: u.email.clone(),
                subject: notice.subject.clone(),
                body: format!(
                    "{}\n\nYour notifications are in the Ledgerport portal under \
                     Notifications.\n",
                    notice.text
                ),
            };
            self.enqueue(at, &mail).await?;
            written += 1;
        }
        Ok(written)
    }

    /// Tells the other side of request `r` of `event` in this transaction
    /// ([`notices::request_notices`]): every portal user of the merchant or of the partner. A
    /// request naming no merchant tells nobody (no merchant may learn of it, and the partner
    /// acted itself). Returns how many notifications were written.
    pub(crate) async fn notify_request(
        &mut self,
        at: &str,
        r: &AccessRequest,
        event: &RequestEvent,
    ) -> Result<u64> {
        let Some(merchant) = r.merchant_id else {
            return Ok(0);
        };
        let Some((partner_name, merchant_name)): Option<(String, String)> = self
            .opt(
                "SELECT p.name, m.name FROM partners p, merchants m WHERE p.id = $1 AND m.id = $2",
                args![r.partner_id, merchant],
            )
            .await?
        else {
            // The request's foreign keys make both exist.
            return Ok(0);
        };
        let parties = RequestParties {
            partner_name,
            merchant_name,
            units: r.units.iter().map(|m| m.to_string()).collect(),
            proposed: r.scope,
            invitation: r.invitation,
        };
        let mut written = 0;
        for notice in notices::request_notices(event, &parties) {
            let users: Vec<UserRow> = match notice.side {
                Side::Merchant => {
                    self.all(
                        "SELECT id, email FROM portal_users WHERE merchant_id = $1 ORDER BY id",
                        args![merchant],
                    )
                    .await?
                }
                Side::Partner => {
                    self.all(
                        "SELECT id, email FROM portal_users WHERE partner_id = $1 ORDER BY id",
                        args![r.partner_id],
                    )
                    .await?
                }
            };
            written += self.tell(at, &users, &notice).await?;
        }
        Ok(written)
    }
}

#[derive(sqlx::FromRow)]
struct DueRow {
    partner_id: i64,
    ledger_id: String,
    expires_at: String,
}

#[async_trait]
impl<DB: Dialect> NotificationStore for SqlStore<DB> {
    async fn notifications(
        &self,
        user: RowId,
        before: Option<RowId>,
        limit: u32,
    ) -> Result<Vec<Notification>> {
        let rows: Vec<NotificationRow> = self
            .all(
                "SELECT id, user_id, kind, text, link, created_at, read_at FROM notifications \
                 WHERE user_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
                args![user, before, i64::from(limit)],
            )
            .await?;
        rows.into_iter().map(NotificationRow::into_domain).collect()
    }

    async fn unread_notifications(&self, user: RowId) -> Result<u64> {
        let (n,): (i64,) = self
            .one(
                "SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL",
                args![user],
            )
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn mark_notification_read(&self, user: RowId, id: RowId) -> Result<bool> {
        let n = self
            .write_one(
                "UPDATE notifications SET read_at = $3 \
                 WHERE id = $1 AND user_id = $2 AND read_at IS NULL",
                args![id, user, self.now()],
            )
            .await?;
        Ok(n > 0)
    }

    async fn mark_all_notifications_read(&self, user: RowId) -> Result<u64> {
        self.write_one(
            "UPDATE notifications SET read_at = $2 WHERE user_id = $1 AND read_at IS NULL",
            args![user, self.now()],
        )
        .await
    }

    async fn notify_grant_expiries(&self, now: Timestamp) -> Result<u64> {
        let horizon = now
            .checked_add(notices::EXPIRY_WARNING)
            .map_err(|e| crate::StoreError::Invalid(format!("now: {e}")))?;
        let due: Vec<DueRow> = self
            .all(
                "SELECT partner_id, ledger_id, expires_at FROM grants \
                 WHERE expires_at IS NOT NULL AND expires_at <= $1 \
                 AND (expired_notice_for IS NULL OR expired_notice_for <> expires_at) \
                 AND (expires_at <= $2 \
                      OR expiring_notice_for IS NULL OR expiring_notice_for <> expires_at) \
                 ORDER BY expires_at, partner_id, ledger_id",
                args![wire_time(horizon), wire_time(now)],
            )
            .await?;
        let mut written = 0;
        for row in due {
            let Some(change) = notices::expiry_notice_due(Some(ts(&row.expires_at)?), now) else {
                continue;
            };
            let column = match change {
                GrantChange::Expired(_) => "expired_notice_for",
                _ => "expiring_notice_for",
            };
            let ledger = LedgerId::parse("ledger_id", &row.ledger_id)?;
            let mut tx = self.begin().await?;
            // Recording the notice and writing it are one transaction, and the record is
            // conditional: of several processes (or ticks) only the one whose UPDATE changed
            // the row writes the notice.
            let claimed = tx
                .execute(
                    sqlx::AssertSqlSafe(format!(
                        "UPDATE grants SET {column} = expires_at \
                         WHERE partner_id = $1 AND ledger_id = $2 AND expires_at = $3 \
                         AND ({column} IS NULL OR {column} <> expires_at)"
                    )),
                    args![row.partner_id, ledger.as_str(), &row.expires_at],
                )
                .await?;
            if claimed == 1 {
                written += tx
                    .notify_grant(&self.now(), row.partner_id, &ledger, &change)
                    .await?;
            }
            tx.commit().await?;
        }
        Ok(written)
    }
}
