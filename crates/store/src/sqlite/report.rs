//! Pages of entries on SQLite: one row holding the page as a JSON array, in seq order by the
//! aggregate's own ORDER BY (an ordered subquery alone does not promise it).

use crate::rows::entry_columns;

pub(super) const FEED_PAGE: &str = concat!(
    "SELECT json_group_array(json_array(",
    entry_columns!(),
    ") ORDER BY seq) FROM \
     (SELECT * FROM entries WHERE ledger_id = $1 AND topic = $2 AND seq > $3 ORDER BY seq LIMIT $4)"
);

/// Not a scan of the ledger up to the date (seconds on millions of entries): the date's runs in
/// seq order (CROSS JOIN keeps them the outer loop), each a primary-key range of entries, so a
/// page reads only its own rows, with no sort.
pub(super) const DATE_PAGE: &str = concat!(
    "SELECT json_group_array(json_array(",
    entry_columns!(),
    ") ORDER BY seq) FROM \
     (SELECT e.* FROM entry_dates d CROSS JOIN entries e \
      ON e.ledger_id = d.ledger_id AND e.topic = d.topic AND e.seq BETWEEN d.first_seq AND d.last_seq \
      WHERE d.ledger_id = $1 AND d.topic = $2 AND d.ledger_date = $3 AND d.last_seq > $4 AND e.seq > $4 \
      ORDER BY d.first_seq, e.seq LIMIT $5)"
);
