//! The settlement engine's SQL on PostgreSQL. Processes write at once, so a transaction first
//! locks the rows of the ledgers it writes, in ledger id order (two batches touching the same
//! ledgers cannot deadlock). Dates are served by the `entries_by_date` index, so there are no
//! date runs to keep.

use crate::Result;
use crate::settlement::SettleSql;
use crate::sql::{Arg, List, WriteTx};
use ledgerport_core::chain::DateRun;
use sqlx::Postgres;

impl SettleSql for Postgres {
    const LOCK_LEDGERS: Option<&'static str> = Some(
        "SELECT ledger_id FROM ledgers WHERE ledger_id = ANY($1) ORDER BY ledger_id FOR UPDATE",
    );
    const INSERT: &'static str = "INSERT INTO";
    // An unknown MSN locks no ledger: two processes may reject the same event at once.
    const REJECTED_TAIL: &'static str = " ON CONFLICT (event_id) DO NOTHING";
    const PAYMENTS_UPSERT: (&'static str, &'static str) = (
        "INSERT INTO payments (ledger_id, psp_reference, captured, refunded)",
        " ON CONFLICT (ledger_id, psp_reference) DO UPDATE SET captured = EXCLUDED.captured, \
         refunded = EXCLUDED.refunded",
    );
    const CHAIN_ENDS: &'static str = "SELECT e.ledger_id, e.topic, e.seq, e.balance_after, e.ledger_date \
         FROM unnest($1::text[]) AS k(l) CROSS JOIN (VALUES (0::bigint), (1::bigint)) AS tt(t) \
         CROSS JOIN LATERAL (SELECT x.ledger_id, x.topic, x.seq, x.balance_after, x.ledger_date FROM entries x \
          WHERE x.ledger_id = k.l AND x.topic = tt.t ORDER BY x.seq DESC LIMIT 1) e";
    const PAYMENT_TOTALS: &'static str = "SELECT DISTINCT pm.ledger_id, pm.psp_reference, pm.captured, pm.refunded \
         FROM unnest($1::text[], $2::text[]) AS k(l, p) \
         JOIN payments pm ON pm.ledger_id = k.l AND pm.psp_reference = k.p";
    const PERIOD_SUMS: &'static str = "SELECT \
         COALESCE(SUM(CASE WHEN entry_type = 'capture-fee' THEN amount END), 0)::BIGINT, \
         COALESCE(SUM(CASE WHEN topic = 0 THEN amount END), 0)::BIGINT, \
         COALESCE(SUM(CASE WHEN topic = 1 THEN amount END), 0)::BIGINT \
         FROM entries WHERE ledger_id = $1 AND topic IN (0, 1) AND ledger_date > $2 AND ledger_date <= $3";

    fn pairs(pairs: &[(String, String)]) -> Vec<Arg> {
        let (ledgers, refs) = pairs.iter().cloned().unzip();
        vec![
            Arg::List(List::Texts(ledgers)),
            Arg::List(List::Texts(refs)),
        ]
    }

    async fn write_runs(_tx: &mut WriteTx<Self>, _runs: Vec<DateRun>) -> Result<()> {
        Ok(())
    }
}
