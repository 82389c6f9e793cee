//! The access log's rows written by a thread of its own with a connection of its own (rusqlite),
//! on a SQLite file.
//!
//! Every Report API request waits until its row is committed. Through sqlx, a batch of rows is
//! a `BEGIN`, an `INSERT` per row and a `COMMIT`, each handed to the driver's worker thread and
//! its answer handed back: a lone reader's row (the full download, page after page) waited
//! about 0.4 ms for those hand-offs, of about 2 ms a page (BENCHMARKS.md, "What limits each
//! missed target now"). Here a batch is handed over once: the thread runs the transaction and
//! answers when it has committed.
//!
//! The thread writes the log's own file (`access_log::path_of`), which nothing else writes but
//! the rare pruning and the one-time move of an older database's rows (through sqlx's `log`
//! connection): SQLite's file lock orders them, and each side waits for the other
//! (`busy_timeout`). The file is in WAL mode with `synchronous=NORMAL`, as the ledger database:
//! a committed row survives a crash of the process. In memory there is no file and no thread;
//! the rows go through sqlx (`SqlStore::record_accesses`).
//!
//! The simulator's fault points are on the ledger database's writes; it writes no access log.

use super::direct::db;
use super::value;
use crate::sql::Arg;
use crate::{Result, StoreError};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, params_from_iter};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::oneshot;

/// One call's rows (each the statement's parameters) and where the result goes.
type Job = (Vec<Vec<Value>>, oneshot::Sender<Result<()>>);

/// The handle the store sends batches to. The thread ends, closing its connection, when the
/// handle is dropped.
pub(crate) struct LogWriter {
    jobs: mpsc::Sender<Job>,
}

impl LogWriter {
    /// Opens the log file at `path` (created and migrated by `access_log`) and starts the thread.
    /// The connection is opened and the statement prepared here, so a file that cannot be
    /// written fails the store's opening rather than the first request.
    pub(crate) fn open(path: &Path, insert: &str) -> Result<LogWriter> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(db)?;
        // The file is in WAL mode already (persistent); synchronous is per connection.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        conn.prepare_cached(insert).map_err(db)?;
        let insert = insert.to_owned();
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                for (rows, done) in rx {
                    let _ = done.send(write(&conn, &insert, &rows));
                }
            })
            .map_err(|e| stopped(&format!("could not start: {e}")))?;
        Ok(LogWriter { jobs })
    }

    /// Writes `rows` (the values of the statement's parameters, `access_log_row`) in one
    /// transaction, and returns once it has committed.
    pub(crate) async fn record(&self, rows: Vec<Vec<Arg>>) -> Result<()> {
        let rows = rows
            .into_iter()
            .map(|row| row.into_iter().map(value).collect())
            .collect();
        let (done, result) = oneshot::channel();
        let gone = || stopped("has stopped");
        self.jobs.send((rows, done)).map_err(|_| gone())?;
        result.await.map_err(|_| gone())?
    }
}

fn stopped(what: &str) -> StoreError {
    StoreError::Database(crate::error::DbError(
        format!("the access-log thread {what}").into(),
    ))
}

/// The rows in one transaction, rolled back whole if one fails.
fn write(conn: &Connection, insert: &str, rows: &[Vec<Value>]) -> Result<()> {
    // IMMEDIATE: the write lock is taken (or waited for) at the start, never upgraded midway.
    conn.execute_batch("BEGIN IMMEDIATE").map_err(db)?;
    let written = (|| {
        let mut stmt = conn.prepare_cached(insert)?;
        for row in rows {
            stmt.execute(params_from_iter(row))?;
        }
        conn.execute_batch("COMMIT")
    })();
    if let Err(e) = written {
        // A failed COMMIT leaves the transaction open; a failed INSERT too.
        let _ = conn.execute_batch("ROLLBACK");
        return Err(db(e));
    }
    Ok(())
}
