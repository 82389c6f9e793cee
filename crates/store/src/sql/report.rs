//! [`ReportStore`] on SQL: a page of entries comes back as one row, the page's entries as one
//! JSON array parsed in one pass, rather than one row (and, on SQLite, one hand-off from the
//! connection's worker thread) per entry. A date page is the backend's own query
//! ([`Dialect::DATE_PAGE_ROWS`]): SQLite reads the date's runs of entries, PostgreSQL an index.
//! The Report API's pages (`feed_page_wire`, `date_page_wire`) are rows instead, whose JSON
//! `crate::wire_json` writes: here from sqlx's rows, on a SQLite file from rusqlite's on the
//! caller's thread (`crate::sqlite::direct`).

use super::{Dialect, SqlStore, args};
use crate::rows::{DateProofRow, entries_from_page_json, entry_columns};
use crate::settlement::proofs::{STATES_QUERY, proofs_query, state_of_row};
use crate::wire_json::{SqlxEntryRow, page_of_rows};
use crate::{ReportStore, Result, StoreError, WirePage};
use async_trait::async_trait;
use ledgerport_core::access::LedgerAccess;
use ledgerport_core::entry::Entry;
use ledgerport_core::ids::{LedgerDate, Topic};
use ledgerport_core::proof::{DateDigestState, DateProof};
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

/// One page of a feed as entry rows for [`crate::wire_json`]: `$1` ledger, `$2` topic, `$3`
/// after seq, `$4` the page's size plus one (the last row only tells that more follow), and with
/// `in_period` `$5` and `$6` the grant's first and last date.
pub(super) fn feed_page_wire(in_period: bool) -> String {
    let period = if in_period {
        " AND ledger_date >= $5 AND ledger_date <= $6"
    } else {
        ""
    };
    format!(
        "SELECT {} FROM entries WHERE ledger_id = $1 AND topic = $2 AND seq > $3{period} \
         ORDER BY seq LIMIT $4",
        entry_columns!("")
    )
}

/// One page of a date as entry rows for [`crate::wire_json`]: as [`date_page`], `$5` the page's
/// size plus one.
pub(super) fn date_page_wire<DB: Dialect>() -> String {
    format!(
        "SELECT {} FROM ({}) p ORDER BY p.seq",
        entry_columns!("p."),
        DB::DATE_PAGE_ROWS
    )
}

#[async_trait]
impl<DB: Dialect> ReportStore for SqlStore<DB> {
    async fn feed_page_wire(
        &self,
        access: &LedgerAccess,
        topic: Topic,
        after_seq: i64,
        limit: u32,
        personal_data: bool,
    ) -> Result<WirePage> {
        if let Some(d) = &self.direct {
            let scope = access.scope();
            let period = (scope.from.is_some() || scope.to.is_some()).then(|| period_of(access));
            return d.feed_page_wire(
                access.ledger_id().as_str(),
                i64::from(topic.code()),
                after_seq,
                limit,
                period
                    .as_ref()
                    .map(|(from, to)| (from.as_str(), to.as_str())),
                personal_data,
            );
        }
        // One row more than the page: whether it exists is whether more follow, read in the
        // same statement, so in the same snapshot as the page.
        let (params, in_period) = feed_params(access, topic, after_seq, i64::from(limit) + 1);
        let statement = self.statements.feed_page_wire[usize::from(in_period)].clone();
        let rows: Vec<SqlxEntryRow> = self.all(AssertSqlSafe(statement), params).await?;
        page_of_rows(&rows, limit, personal_data)
    }

    async fn date_page_wire(
        &self,
        access: &LedgerAccess,
        topic: Topic,
        date: LedgerDate,
        after_seq: i64,
        limit: u32,
        personal_data: bool,
    ) -> Result<WirePage> {
        // As `date_page`: nothing of a date outside the grant's period.
        if access.check_date(date).is_err() {
            return Ok(WirePage::empty());
        }
        if let Some(d) = &self.direct {
            return d.date_page_wire(
                access.ledger_id().as_str(),
                i64::from(topic.code()),
                &date.to_string(),
                after_seq,
                limit,
                personal_data,
            );
        }
        let rows: Vec<SqlxEntryRow> = self
            .all(
                AssertSqlSafe(self.statements.date_page_wire.clone()),
                args![
                    access.ledger_id().as_str(),
                    i64::from(topic.code()),
                    date.to_string(),
                    after_seq,
                    i64::from(limit) + 1,
                ],
            )
            .await?;
        page_of_rows(&rows, limit, personal_data)
    }

    async fn feed_page(
        &self,
        access: &LedgerAccess,
        topic: Topic,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<Entry>> {
        let (params, in_period) = feed_params(access, topic, after_seq, i64::from(limit));
        let statement = if in_period {
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

    async fn date_digest_states(
        &self,
        access: &LedgerAccess,
        topic: Topic,
    ) -> Result<Vec<(LedgerDate, DateDigestState)>> {
        if access.check_topic(topic).is_err() {
            return Ok(Vec::new());
        }
        let rows: Vec<(String, i64, i64, i64, i64, String)> = self
            .all(
                STATES_QUERY,
                args![access.ledger_id().as_str(), i64::from(topic.code())],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let (date, state) = state_of_row(row)?;
            if access.check_date(date).is_ok() {
                out.push((date, state));
            }
        }
        Ok(out)
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

/// The parameters of a feed page's statement, and whether the grant limits it to a period: the
/// feed of such a grant holds only the entries of its dates (the `_in_period` statements take
/// the period as two more parameters), at the ledger's own positions, so cursors stay the
/// ledger's.
fn feed_params(
    access: &LedgerAccess,
    topic: Topic,
    after_seq: i64,
    limit: i64,
) -> (Vec<super::Arg>, bool) {
    let mut params = args![
        access.ledger_id().as_str(),
        i64::from(topic.code()),
        after_seq,
        limit,
    ];
    let scope = access.scope();
    let in_period = scope.from.is_some() || scope.to.is_some();
    if in_period {
        let (from, to) = period_of(access);
        params.push(from.into());
        params.push(to.into());
    }
    (params, in_period)
}

/// The first and last date of the grant's period as the statements compare them (open ends as
/// dates before and after any ledger date).
fn period_of(access: &LedgerAccess) -> (String, String) {
    let scope = access.scope();
    let from = scope.from.map_or("0000-01-01".into(), |d| d.to_string());
    let to = scope.to.map_or("9999-12-31".into(), |d| d.to_string());
    (from, to)
}
