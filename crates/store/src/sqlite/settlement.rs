//! The settlement engine's SQL on SQLite. No ledger locks: the store's write turn makes every
//! write transaction the only one. Inserts are `INSERT OR FAIL`, which needs no statement
//! journal. Which entries a ledger date holds is kept as runs of consecutive sequence numbers
//! (`entry_dates`, migration 3), extended as entries are written, rather than an index entry
//! per entry: date pages and closing sums read primary-key ranges.

use super::push_json_string;
use crate::Result;
use crate::StoreError;
use crate::settlement::SettleSql;
use crate::sql::{Arg, Tx};
use ledgerport_core::chain::DateRun;
use sqlx::Sqlite;

impl SettleSql for Sqlite {
    const LOCK_LEDGERS: Option<&'static str> = None;
    const INSERT: &'static str = "INSERT OR FAIL INTO";
    const REJECTED_TAIL: &'static str = "";
    const PAYMENTS_UPSERT: (&'static str, &'static str) = (
        "INSERT OR REPLACE INTO payments (ledger_id, psp_reference, captured, refunded, disputed, \
         returned, refund_of)",
        "",
    );
    const CHAIN_ENDS_FROM: &'static str = "(SELECT value AS l FROM json_each($1)) k \
         CROSS JOIN (SELECT 0 AS t UNION ALL SELECT 1) tt \
         JOIN entries e ON e.ledger_id = k.l AND e.topic = tt.t \
          AND e.seq = (SELECT MAX(x.seq) FROM entries x WHERE x.ledger_id = k.l AND x.topic = tt.t)";
    const PAIRS: &'static str = "(SELECT json_extract(value, '$[0]') AS l, json_extract(value, '$[1]') AS p \
         FROM json_each($1)) k";
    /// The period's dates' runs, each a primary-key range of entries.
    const PERIOD_ENTRIES_FROM: &'static str = "entry_dates d CROSS JOIN entries e \
         ON e.ledger_id = d.ledger_id AND e.topic = d.topic AND e.seq BETWEEN d.first_seq AND d.last_seq \
         WHERE d.ledger_id = $1 AND d.topic IN (0, 1) AND d.ledger_date > $2 AND d.ledger_date <= $3";

    fn pairs(pairs: &[(String, String)]) -> Vec<Arg> {
        let mut json = String::from("[");
        for (i, (ledger, psp)) in pairs.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            json.push('[');
            push_json_string(&mut json, ledger);
            json.push(',');
            push_json_string(&mut json, psp);
            json.push(']');
        }
        json.push(']');
        vec![Arg::Text(json)]
    }

    async fn write_runs(tx: &mut impl Tx<Self>, runs: Vec<DateRun>) -> Result<()> {
        let (extended, new): (Vec<DateRun>, Vec<DateRun>) =
            runs.into_iter().partition(|r| r.continues_stored);
        // Extend the stored runs in one statement: [ledger, topic, date, old last, new last].
        if !extended.is_empty() {
            let mut json = String::from("[");
            for (i, r) in extended.iter().enumerate() {
                if i > 0 {
                    json.push(',');
                }
                json.push('[');
                push_json_string(&mut json, r.ledger_id.as_str());
                // Dates never need escaping.
                json.push_str(&format!(
                    ",{},\"{}\",{},{}]",
                    r.topic.code(),
                    r.date,
                    r.first_seq - 1,
                    r.last_seq
                ));
            }
            json.push(']');
            let n = tx
                .execute(
                    "UPDATE entry_dates SET last_seq = json_extract(k.value, '$[4]') FROM json_each($1) k \
                     WHERE entry_dates.ledger_id = json_extract(k.value, '$[0]') \
                       AND entry_dates.topic = json_extract(k.value, '$[1]') \
                       AND entry_dates.ledger_date = json_extract(k.value, '$[2]') \
                       AND entry_dates.last_seq = json_extract(k.value, '$[3]')",
                    vec![Arg::Text(json)],
                )
                .await?;
            if n != extended.len() as u64 {
                return Err(StoreError::Corrupt(format!(
                    "entry_dates: {n} of {} runs found to extend",
                    extended.len()
                )));
            }
        }
        let rows = new
            .into_iter()
            .map(|r| {
                vec![
                    Arg::Text(r.ledger_id.as_str().to_owned()),
                    Arg::Int(i64::from(r.topic.code())),
                    Arg::Text(r.date.to_string()),
                    Arg::Int(r.first_seq),
                    Arg::Int(r.last_seq),
                ]
            })
            .collect();
        tx.insert_rows(
            "INSERT OR FAIL INTO entry_dates (ledger_id, topic, ledger_date, first_seq, last_seq)",
            5,
            "",
            rows,
        )
        .await
    }
}
