//! The world's statements PostgreSQL writes its own way: lists gathered with `json_agg`, which
//! gives NULL rather than an empty array over no rows.

use crate::rows::ledger_columns;

/// The ledger with its units in one query (every feed and date page reads it).
pub(super) const LEDGER_WITH_UNITS: &str = concat!(
    "SELECT ",
    ledger_columns!(),
    ", (SELECT COALESCE(json_agg(json_build_array(su.msn, su.merchant_id, su.name, su.kind, \
     su.country, su.handle, su.created_at) ORDER BY lu.position), '[]')::text \
     FROM ledger_units lu JOIN sales_units su ON su.msn = lu.msn WHERE lu.ledger_id = l.ledger_id) AS units \
     FROM ledgers l JOIN merchants m ON m.id = l.owner_merchant_id WHERE l.ledger_id = $1"
);

pub(super) const LEDGER_FACTS: &str = "SELECT l.owner_merchant_id, \
     (SELECT COALESCE(json_agg(su.handle ORDER BY lu.position), '[]')::text FROM ledger_units lu \
      JOIN sales_units su ON su.msn = lu.msn WHERE lu.ledger_id = l.ledger_id), \
     (SELECT COALESCE(json_agg(g.partner_id), '[]')::text FROM grants g \
      JOIN partners p ON p.id = g.partner_id WHERE g.ledger_id = l.ledger_id AND p.state = 'approved') \
     FROM ledgers l WHERE l.ledger_id = $1";
