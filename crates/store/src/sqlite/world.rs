//! The world's statements SQLite writes its own way: lists gathered with `json_group_array`.

use crate::rows::ledger_columns;

/// The ledger with its units in one query (every feed and date page reads it).
pub(super) const LEDGER_WITH_UNITS: &str = concat!(
    "SELECT ",
    ledger_columns!(),
    ", (SELECT json_group_array(json_array(su.msn, su.merchant_id, su.name, su.kind, su.country, \
     su.handle, su.created_at) ORDER BY lu.position) \
     FROM ledger_units lu JOIN sales_units su ON su.msn = lu.msn WHERE lu.ledger_id = l.ledger_id) AS units \
     FROM ledgers l JOIN merchants m ON m.id = l.owner_merchant_id WHERE l.ledger_id = $1"
);

/// One query, not three: each query is a round trip to sqlx's worker thread.
pub(super) const LEDGER_FACTS: &str = "SELECT l.owner_merchant_id, \
     (SELECT json_group_array(su.handle ORDER BY lu.position) FROM ledger_units lu \
      JOIN sales_units su ON su.msn = lu.msn WHERE lu.ledger_id = l.ledger_id), \
     (SELECT json_group_array(g.partner_id) FROM grants g JOIN partners p ON p.id = g.partner_id \
      WHERE g.ledger_id = l.ledger_id AND p.state = 'approved') \
     FROM ledgers l WHERE l.ledger_id = $1";
