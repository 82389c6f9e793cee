//! Pages of entries on PostgreSQL: one row holding the page as a JSON array, as on SQLite: one
//! value to hand over and decode instead of a row per entry. Date pages read the
//! `entries_by_date` index.

use crate::rows::entry_columns;

pub(super) const FEED_PAGE: &str = concat!(
    "SELECT COALESCE(json_agg(json_build_array(",
    entry_columns!(),
    ") ORDER BY seq)::text, '[]') FROM \
     (SELECT * FROM entries WHERE ledger_id = $1 AND topic = $2 AND seq > $3 ORDER BY seq LIMIT $4) p"
);

pub(super) const DATE_PAGE: &str = concat!(
    "SELECT COALESCE(json_agg(json_build_array(",
    entry_columns!(),
    ") ORDER BY seq)::text, '[]') FROM \
     (SELECT * FROM entries WHERE ledger_id = $1 AND topic = $2 AND ledger_date = $3 AND seq > $4 \
      ORDER BY seq LIMIT $5) p"
);
