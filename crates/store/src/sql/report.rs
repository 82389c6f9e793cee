//! [`ReportStore`] on SQL: a page of entries comes back as one row, the page's entries as one
//! JSON array parsed in one pass, rather than one row (and, on SQLite, one hand-off from the
//! connection's worker thread) per entry. Each backend writes the page query its own way
//! ([`Dialect::FEED_PAGE`], [`Dialect::DATE_PAGE`]).

use super::{Dialect, SqlStore, args};
use crate::rows::entries_from_page_json;
use crate::{ReportStore, Result};
use async_trait::async_trait;
use ledgerport_core::access::LedgerAccess;
use ledgerport_core::entry::Entry;
use ledgerport_core::ids::{LedgerDate, Topic};

#[async_trait]
impl<DB: Dialect> ReportStore for SqlStore<DB> {
    async fn feed_page(
        &self,
        access: &LedgerAccess,
        topic: Topic,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<Entry>> {
        let (page,): (String,) = self
            .one(
                DB::FEED_PAGE,
                args![
                    access.ledger_id().as_str(),
                    i64::from(topic.code()),
                    after_seq,
                    i64::from(limit),
                ],
            )
            .await?;
        entries_from_page_json(&page)
    }

    async fn date_page(
        &self,
        access: &LedgerAccess,
        topic: Topic,
        date: LedgerDate,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<Entry>> {
        let (page,): (String,) = self
            .one(
                DB::DATE_PAGE,
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
