//! The settlement engine's SQL on PostgreSQL. Processes write at once, so a transaction first
//! locks the rows of the ledgers it writes, in ledger id order (two batches touching the same
//! ledgers cannot deadlock). Dates are served by the `entries_by_date` index, so there are no
//! date runs to keep.

use crate::settlement::SettleSql;
use sqlx::Postgres;

impl SettleSql for Postgres {
    const LOCK_LEDGERS: Option<&'static str> = Some(
        "SELECT ledger_id FROM ledgers WHERE ledger_id = ANY($1) ORDER BY ledger_id FOR UPDATE",
    );
    const INSERT: &'static str = "INSERT INTO";
    // An unknown MSN locks no ledger: two processes may reject the same event at once.
    const REJECTED_TAIL: &'static str = " ON CONFLICT (event_id) DO NOTHING";
    const PAYMENTS_UPSERT: (&'static str, &'static str) = (
        "INSERT INTO payments (ledger_id, psp_reference, captured, refunded, disputed, returned, \
         refund_of)",
        " ON CONFLICT (ledger_id, psp_reference) DO UPDATE SET captured = EXCLUDED.captured, \
         refunded = EXCLUDED.refunded, disputed = EXCLUDED.disputed, returned = EXCLUDED.returned, \
         refund_of = EXCLUDED.refund_of",
    );
    const CHAIN_ENDS_FROM: &'static str = "unnest($1::text[]) AS k(l) \
         CROSS JOIN (VALUES (0::bigint), (1::bigint)) AS tt(t) \
         CROSS JOIN LATERAL (SELECT x.ledger_id, x.topic, x.seq, x.balance_after, x.ledger_date FROM entries x \
          WHERE x.ledger_id = k.l AND x.topic = tt.t ORDER BY x.seq DESC LIMIT 1) e";
    const PAIRS: &'static str = "unnest($1::text[], $2::text[]) AS k(l, p)";
    /// The `entries_by_date` index.
    const PERIOD_ENTRIES_FROM: &'static str = "entries e WHERE e.ledger_id = $1 AND e.topic IN (0, 1) \
         AND e.ledger_date > $2 AND e.ledger_date <= $3";
}
