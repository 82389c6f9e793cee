//! [`ReportStore`] on SQL: a page of entries comes back as one row, the page's entries as one
//! JSON array parsed in one pass, rather than one row (and, on SQLite, one hand-off from the
//! connection's worker thread) per entry. A date page is the backend's own query
//! ([`Dialect::DATE_PAGE_ROWS`]): SQLite reads the date's runs of entries, PostgreSQL an index.

use super::{Dialect, SqlStore, args};
use crate::rows::{DateProofRow, entries_from_page_json, entry_columns};
use crate::settlement::proofs::proofs_query;
use crate::{ReportStore, Result, StoreError};
use async_trait::async_trait;
use ledgerport_core::access::LedgerAccess;
use ledgerport_core::entry::Entry;
use ledgerport_core::ids::{LedgerDate, Topic};
use ledgerport_core::proof::DateProof;
use sqlx::AssertSqlSafe;

/// The entries of a JSON page, each a JSON array of the columns `entries_from_page_json` reads,
/// in seq order by the aggregate's own ORDER BY (an ordered subquery alone does not promise it).
pub(crate) fn page_of<DB: Dialect>() -> String {
    DB::json_list(&format!("{}({})", DB::JSON_ROW, entry_columns!()), "seq")
}

/// One page of a date: `$1` ledger, `$2` topic, `$3` date, `$4` after seq, `$5` limit.
pub(super) fn date_page<DB: Dialect>() -> String {
    format!("SELECT {} FROM ({}) p", page_of::<DB>(), DB::DATE_PAGE_ROWS)
}

/// One page of a feed: `$1` ledger, `$2` topic, `$3` after seq, `$4` limit.
pub(super) fn feed_page<DB: Dialect>() -> String {
    format!(
        "SELECT {} FROM (SELECT * FROM entries WHERE ledger_id = $1 AND topic = $2 AND seq > $3 \
         ORDER BY seq LIMIT $4) p",
        page_of::<DB>()
    )
}

/// One page of a feed limited to a grant's ledger-date period: as [`feed_page`], and `$5` the
/// first date, `$6` the last (`YYYY-MM-DD` compares as text). Unlimited readers keep the plain
/// statement.
pub(super) fn feed_page_in_period<DB: Dialect>() -> String {
    format!(
        "SELECT {} FROM (SELECT * FROM entries WHERE ledger_id = $1 AND topic = $2 AND seq > $3 \
         AND ledger_date >= $5 AND ledger_date <= $6 ORDER BY seq LIMIT $4) p",
        page_of::<DB>()
    )
}

#[async_trait]
impl<DB: Dialect> ReportStore for SqlStore<DB> {
    async fn feed_page(
        &self,
        access: &LedgerAccess,
        topic: Topic,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<Entry>> {
        let mut params = args![
            access.ledger_id().as_str(),
            i64::from(topic.code()),
            after_seq,
            i64::from(limit),
        ];
        // The feed of a grant limited to a period holds only the entries of its dates; the
        // positions (and so the cursors) are the ledger's own.
        let scope = access.scope();
        let statement = if scope.from.is_some() || scope.to.is_some() {
            params.push(
                scope
                    .from
                    .map_or("0000-01-01".into(), |d| d.to_string())
                    .into(),
            );
            params.push(
                scope
                    .to
                    .map_or("9999-12-31".into(), |d| d.to_string())
                    .into(),
            );
            self.statements.feed_page_in_period.clone()
        } else {
            self.statements.feed_page.clone()
        };
        let (page,): (String,) = self.one(AssertSqlSafe(statement), params).await?;
        entries_from_page_json(&page)
    }

    async fn refunded_captures(&self, access: &LedgerAccess) -> Result<Vec<(String, String)>> {
        self.all(
            "SELECT psp_reference, refund_of FROM payments WHERE ledger_id = $1 \
             AND refund_of IS NOT NULL ORDER BY psp_reference",
            args![access.ledger_id().as_str()],
        )
        .await
    }

    async fn date_proof(
        &self,
        access: &LedgerAccess,
        topic: Topic,
        date: LedgerDate,
    ) -> Result<Option<DateProof>> {
        if access.check_topic(topic).is_err() || access.check_date(date).is_err() {
            return Ok(None);
        }
        let row: Option<DateProofRow> = self
            .opt(
                AssertSqlSafe(proofs_query(true)),
                args![
                    access.ledger_id().as_str(),
                    i64::from(topic.code()),
                    date.to_string()
                ],
            )
            .await?;
        row.map(DateProofRow::into_proof).transpose()
    }

    async fn date_proofs(&self, access: &LedgerAccess, topic: Topic) -> Result<Vec<DateProof>> {
        if access.check_topic(topic).is_err() {
            return Ok(Vec::new());
        }
        let rows: Vec<DateProofRow> = self
            .all(
                AssertSqlSafe(proofs_query(false)),
                args![access.ledger_id().as_str(), i64::from(topic.code())],
            )
            .await?;
        rows.into_iter()
            .map(DateProofRow::into_proof)
            .filter(|p| {
                p.as_ref()
                    .map_or(true, |p| access.check_date(p.ledger_date).is_ok())
            })
            .collect()
    }

    async fn balance_before_date(
        &self,
        access: &LedgerAccess,
        topic: Topic,
        date: LedgerDate,
    ) -> Result<i64> {
        // The balance at the start of a date outside the grant's period would tell what
        // happened outside it.
        if let Err(e) = access.check_date(date) {
            return Err(StoreError::Invalid(e.to_string()));
        }
        let row: Option<(i64,)> = self
            .opt(
                DB::BALANCE_BEFORE_DATE,
                args![
                    access.ledger_id().as_str(),
                    i64::from(topic.code()),
                    date.to_string(),
                ],
            )
            .await?;
        Ok(row.map_or(0, |(b,)| b))
    }

    async fn date_page(
        &self,
        access: &LedgerAccess,
        topic: Topic,
        date: LedgerDate,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<Entry>> {
        // A date outside the grant's period holds nothing for this reader (the server answers
        // 403 before asking; this keeps every other reader of the store within the scope too).
        if access.check_date(date).is_err() {
            return Ok(Vec::new());
        }
        let (page,): (String,) = self
            .one(
                AssertSqlSafe(self.statements.date_page.clone()),
                args![
                    access.ledger_id().as_str(),
                    i64::from(topic.code()),
                    date.to_string(),
                    after_seq,
                    i64::from(limit),
                ],
            )
            .await?;
        entries_from_page_json(&page)
    }
}
