//! `ledgerport-bench ingest --floor`: SQLite's own time for the rows an ingestion run wrote, as
//! the floor the engine's rate is compared with.
//!
//! After the engine's run, the rows it left in the three tables every event writes to (`events`,
//! `payments`, `entries`) are read back and written again, by SQLite alone, into a fresh database
//! of the same schema: one prepared single-row INSERT per row, the rows of each batch of the run
//! in one transaction, with the PRAGMAs of the settlement's connection. A batch's rows are those
//! of its events (`e<i>`, `p<i>`, `order-<i>`: the numbering of [`crate::ingest`]). What the floor
//! leaves out is the engine's own work: its reads (ledgers, chain ends, earlier answers), the
//! dates' runs and digest states, the refunds' updates of their captures, the closings (and
//! their entries) and everything in Rust. So the engine can approach the floor but not pass it: a rate far below it
//! is the engine's, one close to it is SQLite's.

use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};
use std::path::Path;
use std::time::Instant;

/// The tables each event writes a row to, with the column that names the event the row is of,
/// and that event's number's prefix in it.
const TABLES: [(&str, &str, &str); 3] = [
    ("events", "event_id", "e"),
    ("payments", "psp_reference", "p"),
    ("entries", "reference", "order-"),
];

fn err(e: impl std::fmt::Display) -> String {
    format!("bench: floor: {e}")
}

/// One table's rows, grouped by the batch of their event.
struct TableRows {
    insert: String,
    batches: Vec<Vec<Vec<Value>>>,
}

/// Reads back what the engine wrote to `engine_db` in batches of `batch` events, writes the same
/// rows into `floor_db` (a fresh, migrated database of the same schema) by SQLite alone, and
/// returns the rate in events per second and how many rows were written.
pub fn measure(
    engine_db: &Path,
    floor_db: &Path,
    events: u64,
    batch: usize,
) -> Result<(f64, usize), String> {
    let batches = usize::try_from(events.div_ceil(batch as u64)).map_err(err)?;
    let src = Connection::open(engine_db).map_err(err)?;
    let tables = TABLES
        .iter()
        .map(|&(table, key, prefix)| read_table(&src, table, key, prefix, batch, batches))
        .collect::<Result<Vec<_>, _>>()?;
    drop(src);
    let rows = tables.iter().flat_map(|t| &t.batches).map(Vec::len).sum();

    let c = Connection::open(floor_db).map_err(err)?;
    // As the settlement's connection (`DirectSettle::connect` in the store).
    c.pragma_update(None, "synchronous", "NORMAL")
        .map_err(err)?;
    c.pragma_update(None, "foreign_keys", false).map_err(err)?;
    c.pragma_update(None, "wal_autocheckpoint", 10_000)
        .map_err(err)?;
    c.pragma_update(None, "cache_size", -32768).map_err(err)?;
    let began = Instant::now();
    for b in 0..batches {
        c.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
        for t in &tables {
            let mut insert = c.prepare_cached(&t.insert).map_err(err)?;
            for row in t.batches.get(b).into_iter().flatten() {
                insert.execute(params_from_iter(row)).map_err(err)?;
            }
        }
        c.execute_batch("COMMIT").map_err(err)?;
    }
    Ok((events as f64 / began.elapsed().as_secs_f64(), rows))
}

/// The rows of `table`, each in the batch of the event its `key` column numbers.
fn read_table(
    src: &Connection,
    table: &str,
    key: &str,
    prefix: &str,
    batch: usize,
    batches: usize,
) -> Result<TableRows, String> {
    let mut select = src
        .prepare(&format!("SELECT * FROM {table}"))
        .map_err(err)?;
    let columns: Vec<String> = select
        .column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let key_at = columns
        .iter()
        .position(|c| c == key)
        .ok_or_else(|| err(format!("{table} has no column {key}")))?;
    let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
    let insert = format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        columns.join(", "),
        placeholders.join(", ")
    );
    let mut out: Vec<Vec<Vec<Value>>> = vec![Vec::new(); batches];
    let mut rows = select.query([]).map_err(err)?;
    while let Some(row) = rows.next().map_err(err)? {
        let values = (0..columns.len())
            .map(|i| row.get::<_, Value>(i))
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        let event = match values.get(key_at) {
            Some(Value::Text(t)) => t.strip_prefix(prefix).and_then(|n| n.parse::<usize>().ok()),
            _ => None,
        };
        // The closings' entries (fees retained, payouts) are of no event: left out, as the
        // closings are.
        let Some(event) = event else { continue };
        out.get_mut(event / batch)
            .ok_or_else(|| err(format!("{table}.{key} names an event beyond the run")))?
            .push(values);
    }
    Ok(TableRows {
        insert,
        batches: out,
    })
}
