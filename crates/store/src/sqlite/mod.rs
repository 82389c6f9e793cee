//! The embedded default backend: one SQLite file in WAL mode with foreign keys on. What is
//! SQLite's own: the connections and their PRAGMAs, lists bound as JSON arrays and its JSON
//! functions (here), date pages read through date runs (`DATE_PAGE_ROWS`) and the settlement
//! engine's statements (`settlement.rs`). Everything else is `crate::sql`'s.
//!
//! SQLite allows one writer at a time; rather than let concurrent write transactions collide and
//! retry, every write takes the store's write turn first, so writers queue in this process. The
//! access log is a database file of its own with its own writer (`access_log.rs`).

pub mod access_log;
pub(crate) mod direct;
pub(crate) mod direct_settle;
pub(crate) mod log_writer;
mod settlement;

use crate::Result;
use crate::sql::{Arg, Dialect, List, SqlStore, dialect_execution, migrate};
use ledgerport_core::clock::Clock;
use sqlx::Sqlite;
use sqlx::error::BoxDynError;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// The SQLite store.
pub type SqliteStore = SqlStore<Sqlite>;

impl SqlStore<Sqlite> {
    /// Opens (creating if missing) the database at `url` (`sqlite://path` or `sqlite::memory:`)
    /// and brings its schema up to date.
    pub async fn open(url: &str, clock: Arc<dyn Clock>) -> Result<Self> {
        let memory = url.contains(":memory:");
        let options = SqliteConnectOptions::from_str(url)?;
        // The file the hot reads open beside sqlx's pools (`direct`); none in memory.
        let direct_file = (!memory).then(|| options.get_filename().to_owned());
        let options = options
            .create_if_missing(true)
            .journal_mode(if memory {
                SqliteJournalMode::Memory
            } else {
                SqliteJournalMode::Wal
            })
            // WAL with synchronous=NORMAL: a commit is in the WAL file before it returns, so a
            // crash of the process loses no committed batch; the WAL is synced at checkpoints,
            // so an OS crash or power loss may roll back the last commits since then (never
            // corrupting the file). FULL would sync the WAL at every commit.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // Pages in memory instead of a read system call each: a 32 MiB page cache per
            // connection and the file mapped (shared by all connections, counted once).
            .pragma("cache_size", "-32768")
            .pragma("mmap_size", "268435456")
            .pragma("temp_store", "memory")
            // Checkpoint the WAL every ~40 MiB rather than every 4 MiB: ingestion writes many
            // pages per transaction, and each checkpoint rewrites and syncs the pages it moves.
            .pragma("wal_autocheckpoint", "10000");
        let one_connection = || {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        };
        // Every connection that reads or writes the access log has its file attached as `log`.
        let log_file = (!memory).then(|| access_log::path_of(options.get_filename()));
        let attach_log = access_log::attacher(log_file.clone());
        // An in-memory database lives as long as its one connection, so it gets exactly one.
        let pool_options = if memory {
            one_connection()
        } else {
            SqlitePoolOptions::new().max_connections(8)
        };
        // No ping before lending a connection out: a SQLite connection is a local file that
        // cannot hang up, and sqlx's ping is a round trip to the connection's worker thread,
        // which doubled the thread hand-offs of every one-query request (token issuance).
        let read = pool_options
            .test_before_acquire(false)
            .after_connect(attach_log.clone())
            .connect_with(options.clone())
            .await?;
        // Every write transaction uses one connection, always the same, so its page cache stays
        // valid from one write to the next: a connection that did not make the last commit has
        // to re-read the pages it changed.
        let write = if memory {
            read.clone()
        } else {
            one_connection().connect_with(options.clone()).await?
        };
        // The access log's writer: a connection of its own (in memory, the one connection).
        let log = match log_file {
            Some(_) => Some(
                one_connection()
                    .after_connect(attach_log)
                    .connect_with(options.clone())
                    .await?,
            ),
            None => None,
        };
        access_log::create(log.as_ref().unwrap_or(&read)).await?;
        let mut store = SqlStore::start(read, write, Some(Arc::new(Mutex::new(()))), clock).await?;
        access_log::start(&mut store, log).await?;
        if let Some(file) = &log_file {
            let insert = direct::numbered(&crate::sql::operations::access_log_insert("access_log"));
            store.log_writer = Some(log_writer::LogWriter::open(file, &insert)?);
        }
        if let Some(file) = direct_file {
            let reads = direct::DirectReads::open(&file, &store.statements.ledger_with_units)?;
            store.direct = Some(Arc::new(reads));
            // The settlement engine's own connection (`direct_settle`), opened once the schema
            // is up to date.
            store.direct_settle = Some(direct_settle::DirectSettle::open(&file)?);
        }
        // The dates closed before proofs existed (migration 13), proved once.
        crate::settlement::proofs::backfill(&store).await?;
        Ok(store)
    }
}

impl Dialect for Sqlite {
    const MIGRATIONS: &'static [(i64, &'static str, &'static str)] = migrate::SQLITE;
    const TABLE_EXISTS: &'static str =
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1";
    const JSON_ROW: &'static str = "json_array";
    const SKIP_LOCKED: &'static str = "";
    const ACCESS_LOG: &'static str = "log.access_log";

    fn json_list(item: &str, order: &str) -> String {
        format!("json_group_array({item} ORDER BY {order})")
    }

    /// Not a scan of the ledger up to the date (seconds on millions of entries) but the date's
    /// runs in seq order (CROSS JOIN keeps them the outer loop), each a primary-key range of
    /// entries, so a page reads only its own rows, with no sort.
    const DATE_PAGE_ROWS: &'static str = "SELECT e.* FROM entry_dates d CROSS JOIN entries e \
         ON e.ledger_id = d.ledger_id AND e.topic = d.topic AND e.seq BETWEEN d.first_seq AND d.last_seq \
         WHERE d.ledger_id = $1 AND d.topic = $2 AND d.ledger_date = $3 AND d.last_seq > $4 AND e.seq > $4 \
         ORDER BY d.first_seq, e.seq LIMIT $5";

    /// The latest earlier date's last run (the `entry_dates` key read backwards), its last entry.
    const BALANCE_BEFORE_DATE: &'static str = "SELECT e.balance_after FROM entry_dates d \
         CROSS JOIN entries e ON e.ledger_id = d.ledger_id AND e.topic = d.topic AND e.seq = d.last_seq \
         WHERE d.ledger_id = $1 AND d.topic = $2 AND d.ledger_date < $3 \
         ORDER BY d.ledger_date DESC, d.last_seq DESC LIMIT 1";

    /// Anonymous: SQLite finds a named parameter's name (`$1`, which sqlx asks for at every
    /// binding) by a linear scan of the statement's names, which made a multi-row INSERT of
    /// thousands of parameters quadratic (ingestion at 1,700 instead of 45,000 events/s).
    fn push_parameter(sql: &mut String, _n: usize) {
        sql.push('?');
    }

    fn in_list(column: &str, param: &str) -> String {
        format!("{column} IN (SELECT value FROM json_each({param}))")
    }

    /// A list is bound as a JSON array, for `json_each`.
    fn add_list(out: &mut SqliteArguments, list: List) -> std::result::Result<(), BoxDynError> {
        use sqlx::Arguments;
        out.add(list_json(list))
    }

    dialect_execution!();
}

/// A list as the JSON array it is bound as, for `json_each`.
fn list_json(list: List) -> String {
    match list {
        List::Texts(v) => json_array(&v),
        List::Ints(v) => format!("{v:?}"),
        List::NullableTexts(v) => json_values(&v, |s, t| push_json_string(s, t)),
        List::NullableInts(v) => json_values(&v, |s, i| s.push_str(&i.to_string())),
    }
}

/// A parameter as rusqlite binds it (`direct_settle`, `log_writer`): a list as its JSON array.
fn value(a: Arg) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match a {
        Arg::Int(i) => Value::Integer(i),
        Arg::Text(t) => Value::Text(t),
        Arg::Blob(b) => Value::Blob(b),
        Arg::NullInt | Arg::NullText => Value::Null,
        Arg::List(l) => Value::Text(list_json(l)),
    }
}

/// A JSON array of strings, for `json_each` with one bound parameter.
fn json_array<S: AsRef<str>>(items: &[S]) -> String {
    let mut s = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        push_json_string(&mut s, item.as_ref());
    }
    s.push(']');
    s
}

/// A JSON array of values, `null` for `None`.
fn json_values<T>(items: &[Option<T>], push: impl Fn(&mut String, &T)) -> String {
    let mut s = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        match item {
            Some(v) => push(&mut s, v),
            None => s.push_str("null"),
        }
    }
    s.push(']');
    s
}

/// Appends `text` as a JSON string: quotes, backslashes and control characters escaped, so any
/// text (a pspReference is the client's) round-trips through `json_each`.
fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A store on a new database file for a unit test, and the file's path, to give to
/// [`remove_test_file`] when done.
#[cfg(test)]
pub(crate) async fn test_file_store(name: &str) -> (SqliteStore, std::path::PathBuf) {
    use ledgerport_core::clock::{Clock, SystemClock};
    let path = std::env::temp_dir().join(format!(
        "ledgerport-{name}-{}-{}.db",
        std::process::id(),
        SystemClock.now().as_nanosecond()
    ));
    let url = format!("sqlite://{}", path.display());
    let store = SqliteStore::open(&url, Arc::new(SystemClock))
        .await
        .expect("store on a file");
    (store, path)
}

/// Removes a test's database file and every file SQLite and the access log made beside it.
#[cfg(test)]
pub(crate) fn remove_test_file(path: std::path::PathBuf) {
    for suffix in access_log::FILE_SUFFIXES {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;
    use ledgerport_core::clock::SystemClock;

    const MIGRATIONS: &[(i64, &str, &str)] = <Sqlite as Dialect>::MIGRATIONS;

    #[tokio::test]
    async fn ping_fails_when_the_schema_is_not_the_one_this_build_migrates_to() {
        let store = SqliteStore::open("sqlite::memory:", Arc::new(SystemClock))
            .await
            .expect("store");
        assert!(store.ping().await.is_ok());

        let last = MIGRATIONS.last().map(|(v, _, _)| *v).expect("a migration");
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = ?")
            .bind(last)
            .execute(&store.read)
            .await
            .expect("delete");

        let err = store.ping().await.expect_err("schema behind");
        assert!(err.to_string().contains("this build needs"), "{err}");
    }

    #[tokio::test]
    async fn migration_3_finds_the_date_runs_of_the_entries_already_stored() {
        // Arrange: a database at migration 2 whose funds feed goes back a date at seq 6.
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect("sqlite::memory:")
            .await
            .expect("connect");
        for (_, _, sql) in &MIGRATIONS[..2] {
            sqlx::raw_sql(*sql)
                .execute(&mut conn)
                .await
                .expect("old schema");
        }
        sqlx::raw_sql(
            "INSERT INTO merchants VALUES (1, 'org', '987654321', 'M', 't'); \
             INSERT INTO ledgers (ledger_id, currency, payout_scheme, payout_account, owner_merchant_id, \
               time_zone, cutoff, payout_frequency, settlement_mode, fee_basis_points, fee_fixed_minor, \
               page_size, created_at, closed_through) \
             VALUES ('100001', 'NOK', 's', 'a', 1, 'Europe/Oslo', '00:00', 'daily', 'net', 0, 0, 100, 't', '2024-03-31');",
        )
        .execute(&mut conn)
        .await
        .expect("ledger");
        let dates = [
            (0, "2024-04-01"),
            (0, "2024-04-01"),
            (0, "2024-04-02"),
            (0, "2024-04-02"),
            (0, "2024-04-03"),
            (0, "2024-04-02"),
            (1, "2024-04-02"),
        ];
        let mut seqs = [0i64; 2];
        for (topic, date) in dates {
            seqs[topic] += 1;
            sqlx::query(
                "INSERT INTO entries VALUES ('100001', ?, ?, 'p', 't', ?, 'capture', 'r', 'NOK', 1, 0, 1, 'h', NULL, NULL, NULL)",
            )
            .bind(topic as i64)
            .bind(seqs[topic])
            .bind(date)
            .execute(&mut conn)
            .await
            .expect("entry");
        }

        // Act
        sqlx::raw_sql(MIGRATIONS[2].2)
            .execute(&mut conn)
            .await
            .expect("migration 3");

        // Assert
        let runs: Vec<(i64, String, i64, i64)> = sqlx::query_as(
            "SELECT topic, ledger_date, first_seq, last_seq FROM entry_dates ORDER BY topic, first_seq",
        )
        .fetch_all(&mut conn)
        .await
        .expect("runs");
        let expected = [
            (0, "2024-04-01", 1, 2),
            (0, "2024-04-02", 3, 4),
            (0, "2024-04-03", 5, 5),
            (0, "2024-04-02", 6, 6),
            (1, "2024-04-02", 1, 1),
        ];
        assert_eq!(
            runs,
            expected
                .map(|(t, d, f, l)| (t, d.to_string(), f, l))
                .to_vec()
        );
    }
}
