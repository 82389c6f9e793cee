//! The access log in a SQLite database of its own, attached to every connection as `log`.
//!
//! Every Report API request waits until its access-log row is committed. In the ledger database
//! that commit needs SQLite's one write turn, which an ingestion batch holds for tens of
//! milliseconds, so reads waited behind ingestion. In a file of its own (`<database>-access-log`,
//! with its own WAL) the log has its own writer: one connection and a turn of its own, and a
//! transaction that writes only `log.access_log` takes only that file's write lock. The rows are
//! written by a thread of their own (`log_writer`); pruning and the move below go through the
//! `log` connection, and SQLite's file lock orders the two. Readers see both files on every
//! connection, so the portal's and the admin's filters (which join the ledgers) stay one
//! statement.
//!
//! The file is in WAL mode with `synchronous=NORMAL`, as the ledger database: a commit is in its
//! WAL before it returns, so a crash of the process loses no committed row. No transaction
//! writes both files (SQLite makes such a transaction atomic per file only): moving the rows of
//! a database from before the file existed (migration 17 renamed its table `access_log_moving`)
//! copies them in one transaction of the log and drops the old table in a later one of the
//! ledger database, so a crash between them copies again, keeping each row's id once.
//!
//! An in-memory database attaches an in-memory log to its one connection (which must keep its
//! one connection): the log then shares the ledger database's writer, as before.

use crate::Result;
use crate::sql::SqlStore;
use sqlx::pool::PoolConnectionMetadata;
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use sqlx::{Executor, Sqlite};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::Mutex;

/// What the log's file name adds to the ledger database's.
pub const SUFFIX: &str = "-access-log";

/// Every file of a SQLite database at a path, as suffixes of that path: the ledger database, the
/// access log, and the WAL and shared-memory file of each. A backup or a removal takes them all.
pub const FILE_SUFFIXES: [&str; 6] = [
    "",
    "-wal",
    "-shm",
    SUFFIX,
    "-access-log-wal",
    "-access-log-shm",
];

/// The access log's file next to the database file at `db`.
pub fn path_of(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(SUFFIX);
    PathBuf::from(p)
}

/// The log's schema (version 1 in the file's `user_version`): the ledger database's table as
/// migrations 1 and 11 left it, with its indexes.
const SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS log.access_log (
    id                INTEGER PRIMARY KEY,
    at                TEXT NOT NULL,
    request_id        TEXT NOT NULL,
    key_id            INTEGER,
    key_kind          TEXT,
    client_id         TEXT,
    partner_id        INTEGER,
    merchant_id       INTEGER,
    msn               INTEGER,
    ledger_id         TEXT,
    endpoint          TEXT NOT NULL,
    status            INTEGER NOT NULL,
    topic             TEXT,
    ledger_date       TEXT,
    feed_after        INTEGER,
    personal_data     TEXT,
    result            TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS log.access_log_by_ledger ON access_log (ledger_id, id);
CREATE INDEX IF NOT EXISTS log.access_log_by_at ON access_log (at);
CREATE INDEX IF NOT EXISTS log.access_log_by_partner ON access_log (partner_id, id);
PRAGMA log.user_version = 1;";

/// The columns copied from the old table, in both tables' order.
const COLUMNS: &str = "id, at, request_id, key_id, key_kind, client_id, partner_id, merchant_id, \
     msn, ledger_id, endpoint, status, topic, ledger_date, feed_after, personal_data, result";

/// What a pool runs on each new connection: attaches the log ([`attach`]).
pub(super) fn attacher(
    file: Option<PathBuf>,
) -> impl for<'c> Fn(&'c mut SqliteConnection, PoolConnectionMetadata) -> AttachFuture<'c>
+ Clone
+ Send
+ Sync
+ 'static {
    move |conn, _| {
        let file = file.clone();
        Box::pin(async move { attach(conn, file.as_deref()).await })
    }
}

/// The future of [`attacher`]'s function.
pub(super) type AttachFuture<'c> = Pin<Box<dyn Future<Output = sqlx::Result<()>> + Send + 'c>>;

/// Attaches the log (`file`, or a private in-memory database for `None`) to a new connection.
pub(super) async fn attach(conn: &mut SqliteConnection, file: Option<&Path>) -> sqlx::Result<()> {
    let name = file.map_or_else(|| ":memory:".to_owned(), |f| f.display().to_string());
    sqlx::query("ATTACH DATABASE ?1 AS log")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    if file.is_some() {
        // Per attached database: the connection's options set them for `main` only.
        conn.execute(
            "PRAGMA log.journal_mode = WAL; PRAGMA log.synchronous = NORMAL; \
             PRAGMA log.cache_size = -8192;",
        )
        .await?;
    }
    Ok(())
}

/// Makes the log's table if the file is new.
pub(super) async fn create(pool: &SqlitePool) -> Result<()> {
    sqlx::raw_sql(SCHEMA).execute(pool).await?;
    Ok(())
}

/// Gives `store` the log's writer (`log`, one connection of a file's own), then moves the rows
/// of the table migration 17 renamed into the log, if it is still there.
pub(super) async fn start(store: &mut SqlStore<Sqlite>, log: Option<SqlitePool>) -> Result<()> {
    if let Some(pool) = log {
        store.access_log = Some((pool, Arc::new(Mutex::new(()))));
    }
    let (old,): (i64,) = store
        .one(
            "SELECT COUNT(*) FROM main.sqlite_master WHERE type = 'table' AND name = 'access_log_moving'",
            crate::sql::args![],
        )
        .await?;
    if old == 0 {
        return Ok(());
    }
    // The copy commits in the log only (the old table is only read); ids kept, so a copy
    // repeated after a crash adds nothing.
    let mut tx = store.begin_access_log().await?;
    let copied = tx
        .execute(
            sqlx::AssertSqlSafe(format!(
                "INSERT OR IGNORE INTO log.access_log ({COLUMNS}) \
                 SELECT {COLUMNS} FROM main.access_log_moving ORDER BY id"
            )),
            crate::sql::args![],
        )
        .await?;
    tx.commit().await?;
    let mut tx = store.begin().await?;
    tx.execute(
        "DROP TABLE IF EXISTS main.access_log_moving",
        crate::sql::args![],
    )
    .await?;
    tx.commit().await?;
    if copied > 0 {
        tracing::info!(
            rows = copied,
            "moved the access log into its own database file"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;
    use crate::sql::migrate;
    use crate::sqlite::SqliteStore;
    use crate::{AccessLogFilter, NewAccessRecord};
    use ledgerport_core::clock::{Clock, SystemClock};
    use std::time::Duration;

    /// A database file path of its own, removed with every file of the database when dropped.
    struct TempDb(PathBuf);

    impl TempDb {
        fn new(name: &str) -> TempDb {
            TempDb(std::env::temp_dir().join(format!(
                "ledgerport-{name}-{}-{}.db",
                std::process::id(),
                SystemClock.now().as_nanosecond()
            )))
        }

        fn url(&self) -> String {
            format!("sqlite://{}", self.0.display())
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            for suffix in FILE_SUFFIXES {
                let mut p = self.0.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
    }

    fn row(request_id: &str) -> NewAccessRecord {
        NewAccessRecord {
            request_id: request_id.into(),
            ledger_id: Some("100001".into()),
            endpoint: "feed".into(),
            status: 200,
            ..NewAccessRecord::default()
        }
    }

    async fn request_ids(store: &dyn Store) -> Vec<(i64, String)> {
        store
            .access_log(&AccessLogFilter::default())
            .await
            .expect("access log")
            .into_iter()
            .map(|r| (r.id, r.rec.request_id))
            .collect()
    }

    #[tokio::test]
    async fn an_access_log_row_is_written_while_a_transaction_holds_the_ledger_databases_writer() {
        // Arrange: a ledger write transaction holding the store's turn and SQLite's write lock
        // on the ledger database, as an ingestion batch does.
        let db = TempDb::new("log-turn");
        let store = SqliteStore::open(&db.url(), Arc::new(SystemClock))
            .await
            .expect("store");
        let mut ledger_tx = store.begin().await.expect("ledger transaction");
        ledger_tx
            .execute(
                "INSERT INTO leases (name, holder, expires_at) VALUES ('x', 'y', 0)",
                crate::sql::args![],
            )
            .await
            .expect("ledger write");

        // Act
        let written = tokio::time::timeout(
            Duration::from_secs(2),
            store.record_accesses(vec![row("r1")]),
        )
        .await;
        let listed = request_ids(&store).await;
        ledger_tx.commit().await.expect("commit");

        // Assert
        assert!(
            matches!(written, Ok(Ok(()))),
            "the access log waited for the ledger database's writer: {written:?}"
        );
        assert_eq!(listed, vec![(1, "r1".to_owned())]);
        assert!(
            std::fs::metadata(path_of(&db.0)).is_ok(),
            "no access-log file"
        );
    }

    #[tokio::test]
    async fn rows_of_an_older_database_move_to_the_log_file_keep_their_ids_and_survive_restarts() {
        // Arrange: a database migrated to 16 with two access-log rows in its own table.
        let db = TempDb::new("log-move");
        {
            let mut conn =
                <SqliteConnection as sqlx::Connection>::connect(&format!("{}?mode=rwc", db.url()))
                    .await
                    .expect("connect");
            migrate::migrator::<Sqlite>()
                .run_direct(Some(16), &mut conn, false)
                .await
                .expect("migrations to 16");
            sqlx::raw_sql(
                "INSERT INTO access_log (id, at, request_id, endpoint, status, result) VALUES \
                 (7, '2024-04-05T08:00:00.000000Z', 'old-1', 'feed', 200, 'ok'), \
                 (9, '2024-04-05T08:00:01.000000Z', 'old-2', 'dates', 404, 'no date')",
            )
            .execute(&mut conn)
            .await
            .expect("old rows");
        }

        // Act: open (moves), write a row, and open again twice.
        let store = SqliteStore::open(&db.url(), Arc::new(SystemClock))
            .await
            .expect("store");
        store
            .record_accesses(vec![row("new-1")])
            .await
            .expect("new row");
        drop(store);
        let _again = SqliteStore::open(&db.url(), Arc::new(SystemClock))
            .await
            .expect("reopen");
        let store = SqliteStore::open(&db.url(), Arc::new(SystemClock))
            .await
            .expect("reopen");

        // Assert
        assert_eq!(
            request_ids(&store).await,
            vec![
                (10, "new-1".to_owned()),
                (9, "old-2".to_owned()),
                (7, "old-1".to_owned())
            ]
        );
        let (old_tables,): (i64,) = store
            .one(
                "SELECT COUNT(*) FROM main.sqlite_master WHERE name LIKE 'access_log%'",
                crate::sql::args![],
            )
            .await
            .expect("tables");
        assert_eq!(
            old_tables, 0,
            "the ledger database kept an access-log table"
        );
    }

    #[tokio::test]
    async fn a_copy_repeated_after_a_crash_before_the_old_table_was_dropped_adds_nothing() {
        // Arrange: a store whose log holds the copied rows while the old table is still there,
        // as a crash between the copy and the drop leaves it.
        let db = TempDb::new("log-recopy");
        let store = SqliteStore::open(&db.url(), Arc::new(SystemClock))
            .await
            .expect("store");
        store
            .record_accesses(vec![row("a"), row("b")])
            .await
            .expect("rows");
        sqlx::raw_sql(
            "CREATE TABLE main.access_log_moving AS SELECT * FROM log.access_log; \
             INSERT INTO main.access_log_moving (id, at, request_id, endpoint, status, result) \
             VALUES (100, '2024-04-05T08:00:00.000000Z', 'c', 'feed', 200, '')",
        )
        .execute(&store.access_log.as_ref().expect("own writer").0)
        .await
        .expect("old table");
        drop(store);

        // Act
        let store = SqliteStore::open(&db.url(), Arc::new(SystemClock))
            .await
            .expect("reopen");

        // Assert
        assert_eq!(
            request_ids(&store).await,
            vec![
                (100, "c".to_owned()),
                (2, "b".to_owned()),
                (1, "a".to_owned())
            ]
        );
    }

    #[tokio::test]
    async fn a_row_waits_while_pruning_holds_the_log_file_and_is_written_after_it() {
        // Arrange: a row, then a transaction of the log's sqlx connection (as pruning runs)
        // holding the log file's write lock, with that row deleted.
        let db = TempDb::new("log-wait");
        let store = Arc::new(
            SqliteStore::open(&db.url(), Arc::new(SystemClock))
                .await
                .expect("store"),
        );
        store
            .record_accesses(vec![row("before")])
            .await
            .expect("first row");
        let mut prune = store.begin_access_log().await.expect("log transaction");
        prune
            .execute(
                "DELETE FROM log.access_log WHERE request_id = 'before'",
                crate::sql::args![],
            )
            .await
            .expect("delete");

        // Act: the writer thread's row, while the lock is held, then the prune commits.
        let writing = tokio::spawn({
            let store = store.clone();
            async move { store.record_accesses(vec![row("after")]).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let waited = !writing.is_finished();
        prune.commit().await.expect("prune commits");
        let written = tokio::time::timeout(Duration::from_secs(5), writing).await;

        // Assert
        assert!(
            waited,
            "the row was written through the other writer's lock"
        );
        assert!(
            matches!(written, Ok(Ok(Ok(())))),
            "the row was not written once the lock was free: {written:?}"
        );
        let listed: Vec<String> = request_ids(&*store)
            .await
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        assert_eq!(listed, vec!["after".to_owned()]);
    }

    #[tokio::test]
    async fn an_in_memory_store_keeps_its_access_log_on_its_one_connection() {
        let store = SqliteStore::open("sqlite::memory:", Arc::new(SystemClock))
            .await
            .expect("store");

        store.record_accesses(vec![row("m1")]).await.expect("row");

        assert!(store.access_log.is_none() && store.log_writer.is_none());
        assert_eq!(request_ids(&store).await, vec![(1, "m1".to_owned())]);
    }
}
