//! [`OperationsStore`] on SQL: the closing lease, the access and audit logs, readiness.

use super::{Arg, Dialect, SqlStore, args};
use crate::rows::{AccessRow, AuditRow};
use crate::{
    AccessLogFilter, AccessRecord, AuditRecord, NewAccessRecord, OperationsStore, PoolStats,
    Result, StoreError,
};
use async_trait::async_trait;
use jiff::Timestamp;
use ledgerport_core::world::KeyKind;
use sqlx::AssertSqlSafe;

/// The one statement a lease is taken with (`$1` name, `$2` holder, `$3` until, `$4` now, in
/// milliseconds): it writes a row only when the lease is free, lapsed or the holder's own, so
/// "one row affected" means "held", decided by the database in one statement.
const LEASE_UPSERT: &str = "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
     WHERE leases.holder = excluded.holder OR leases.expires_at <= $4";

/// The access log's filter, one statement for the page and the count: `$1` ledger, `$2` partner,
/// `$3` owning merchant, `$4` with credentials (1) or without (0), `$5` from, `$6` until. Times
/// are stored in one fixed-width UTC format, so they compare as text on both backends.
macro_rules! access_where {
    () => {
        "($1 IS NULL OR a.ledger_id = $1) \
     AND ($2 IS NULL OR a.partner_id = $2) \
     AND ($3 IS NULL OR a.ledger_id IN (SELECT ledger_id FROM ledgers WHERE owner_merchant_id = $3)) \
     AND ($4 IS NULL OR ($4 = 1) = (a.key_id IS NOT NULL)) \
     AND ($5 IS NULL OR a.at >= $5) \
     AND ($6 IS NULL OR a.at < $6)"
    };
}

#[async_trait]
impl<DB: Dialect> OperationsStore for SqlStore<DB> {
    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool> {
        let n = self
            .write_one(
                LEASE_UPSERT,
                args![name, holder, until.as_millisecond(), now.as_millisecond()],
            )
            .await?;
        Ok(n == 1)
    }

    async fn record_accesses(&self, recs: Vec<NewAccessRecord>) -> Result<()> {
        // Every Report API request waits for its row: on SQLite it is written by the access
        // log's own writer, never behind an ingestion batch; on a SQLite file by a thread of
        // its own (`sqlite::log_writer`).
        let at = self.now();
        let rows = recs.into_iter().map(|r| access_log_row(&at, r));
        if let Some(writer) = &self.log_writer {
            return writer.record(rows.collect()).await;
        }
        let mut tx = self.begin_access_log().await?;
        let insert = access_log_insert(DB::ACCESS_LOG);
        for row in rows {
            tx.execute(AssertSqlSafe(insert.clone()), row).await?;
        }
        tx.commit().await
    }

    async fn access_log(&self, f: &AccessLogFilter) -> Result<Vec<AccessRecord>> {
        let sql = format!(
            concat!(
                "SELECT * FROM {} a WHERE ",
                access_where!(),
                " AND ($7 IS NULL OR a.id < $7) ORDER BY a.id DESC LIMIT $8"
            ),
            DB::ACCESS_LOG
        );
        let rows: Vec<AccessRow> = self
            .all(
                AssertSqlSafe(sql),
                args![
                    f.ledger_id.as_ref().map(|l| l.as_str()),
                    f.partner_id,
                    f.owner_merchant_id,
                    f.authenticated.map(i64::from),
                    f.from.clone(),
                    f.until.clone(),
                    f.before_id,
                    i64::from(if f.limit == 0 { 100 } else { f.limit }),
                ],
            )
            .await?;
        rows.into_iter().map(AccessRow::into_domain).collect()
    }

    async fn count_access(&self, f: &AccessLogFilter) -> Result<u64> {
        let sql = format!(
            concat!("SELECT COUNT(*) FROM {} a WHERE ", access_where!()),
            DB::ACCESS_LOG
        );
        let (n,): (i64,) = self
            .one(
                AssertSqlSafe(sql),
                args![
                    f.ledger_id.as_ref().map(|l| l.as_str()),
                    f.partner_id,
                    f.owner_merchant_id,
                    f.authenticated.map(i64::from),
                    f.from.clone(),
                    f.until.clone(),
                ],
            )
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn prune_access_log(&self, before: &str) -> Result<u64> {
        let mut tx = self.begin_access_log().await?;
        let n = tx
            .execute(
                AssertSqlSafe(format!("DELETE FROM {} WHERE at < $1", DB::ACCESS_LOG)),
                args![before],
            )
            .await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn audit_log(&self, limit: u32) -> Result<Vec<AuditRecord>> {
        let rows: Vec<AuditRow> = self
            .all(
                "SELECT * FROM audit_log ORDER BY id DESC LIMIT $1",
                args![i64::from(limit)],
            )
            .await?;
        Ok(rows.into_iter().map(AuditRecord::from).collect())
    }

    async fn ping(&self) -> Result<()> {
        let (applied,): (Option<i64>,) = self.one(super::migrate::APPLIED, args![]).await?;
        let wanted = DB::MIGRATIONS.last().map(|(v, _, _)| *v);
        if applied != wanted {
            return Err(StoreError::Invalid(format!(
                "database schema is at migration {applied:?}, this build needs {wanted:?}"
            )));
        }
        Ok(())
    }

    fn pool_stats(&self) -> PoolStats {
        PoolStats {
            size: self.read.size(),
            idle: u32::try_from(self.read.num_idle()).unwrap_or(u32::MAX),
        }
    }
}

/// The values of [`access_log_insert`]'s parameters: the instant, then the record's fields.
pub(crate) fn access_log_row(at: &str, r: NewAccessRecord) -> Vec<Arg> {
    args![
        at,
        r.request_id,
        r.key_id,
        r.key_kind.map(KeyKind::as_str),
        r.client_id,
        r.partner_id,
        r.merchant_id,
        r.msn.map(|m| i64::from(m.get())),
        r.ledger_id,
        r.endpoint,
        i64::from(r.status),
        r.topic,
        r.ledger_date,
        r.feed_after,
        r.personal_data,
        r.result,
    ]
}

/// The statement that writes one access-log row into `table`: `at` (`$1`), then the fields of
/// a [`NewAccessRecord`] in their order ([`access_log_row`]).
pub(crate) fn access_log_insert(table: &str) -> String {
    format!(
        "INSERT INTO {table} (at, request_id, key_id, key_kind, client_id, partner_id, \
         merchant_id, msn, ledger_id, endpoint, status, topic, ledger_date, feed_after, \
         personal_data, result) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    )
}
