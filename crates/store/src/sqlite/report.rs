//! Date pages on SQLite: not a scan of the ledger up to the date (seconds on millions of
//! entries) but the date's runs in seq order (CROSS JOIN keeps them the outer loop), each a
//! primary-key range of entries, so a page reads only its own rows, with no sort.

use crate::sql::report::page_of;
use sqlx::Sqlite;

pub(super) fn date_page() -> String {
    format!(
        "SELECT {} FROM (SELECT e.* FROM entry_dates d CROSS JOIN entries e \
         ON e.ledger_id = d.ledger_id AND e.topic = d.topic AND e.seq BETWEEN d.first_seq AND d.last_seq \
         WHERE d.ledger_id = $1 AND d.topic = $2 AND d.ledger_date = $3 AND d.last_seq > $4 AND e.seq > $4 \
         ORDER BY d.first_seq, e.seq LIMIT $5)",
        page_of::<Sqlite>()
    )
}
