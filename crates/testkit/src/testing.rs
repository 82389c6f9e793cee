//! Stores for tests: a fresh PostgreSQL database when `DATABASE_URL` names a PostgreSQL server,
//! a fresh SQLite file otherwise (a file, as the server runs on, not `sqlite::memory:`: on a file
//! the store's hot reads take their own path, `ledgerport_store::sqlite`'s `direct`). Every test gets its own database, so tests run in
//! parallel; a PostgreSQL one is dropped when the test lets go of it.
//!
//! A test that only means something on PostgreSQL is marked
//! `#[ignore = "needs DATABASE_URL naming PostgreSQL"]`, so a run without a database shows it as
//! ignored, and gets its database from [`TestDatabase::create`] or [`fresh_postgres_store`], which
//! fail the test saying what to set when it is run (`--include-ignored`) without `DATABASE_URL`.

use ledgerport_core::clock::Clock;
use ledgerport_store::{Result, Store, StoreError};
use sqlx::Connection;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The PostgreSQL server the tests should use: `DATABASE_URL` when it is a `postgres://` or
/// `postgresql://` URL, `None` when it is unset or names something else.
pub fn postgres_from_env() -> Option<String> {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
}

/// The PostgreSQL server of a PostgreSQL-only test; panics, saying what to set, when
/// `DATABASE_URL` names none (the test was run with `--include-ignored` on a machine without one).
#[track_caller]
pub fn require_postgres() -> String {
    match postgres_from_env() {
        Some(url) => url,
        None => panic!(
            "this test needs PostgreSQL: set DATABASE_URL to a PostgreSQL server, e.g. \
             DATABASE_URL=postgres://postgres@127.0.0.1:5432/test (scripts/test does); without \
             it the test is ignored, and it fails when run anyway"
        ),
    }
}

/// The backend tests run on.
pub fn backend_name() -> &'static str {
    if postgres_from_env().is_some() {
        "postgres"
    } else {
        "sqlite"
    }
}

/// A database created for one test on the server `DATABASE_URL` names; dropped on drop (with
/// `WITH (FORCE)`, so connections still open do not keep it alive).
pub struct TestDatabase {
    /// The URL of the new database.
    pub url: String,
    server_url: String,
    name: String,
}

impl TestDatabase {
    /// Creates an empty database for a PostgreSQL-only test; panics saying why when
    /// `DATABASE_URL` names no PostgreSQL server ([`require_postgres`]) or the database cannot
    /// be made.
    #[track_caller]
    pub fn create() -> impl std::future::Future<Output = TestDatabase> {
        let server_url = require_postgres();
        async move {
            Self::create_on(server_url)
                .await
                .unwrap_or_else(|e| panic!("create a PostgreSQL test database: {e:?}"))
        }
    }

    /// Creates an empty database on the PostgreSQL server `server_url` names (a benchmark's,
    /// which names its server on its command line rather than in `DATABASE_URL`).
    pub async fn create_on(server_url: String) -> Result<TestDatabase> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "lp_test_{}_{}_{}",
            std::process::id(),
            nanos,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let url = with_database(&server_url, &name)?;
        let mut conn = sqlx::PgConnection::connect(&server_url).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(TestDatabase {
            url,
            server_url,
            name,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs outside async; a short-lived thread with its own runtime does the async work.
        let (server_url, name) = (self.server_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&server_url)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
                conn.close().await.map_err(|e| e.to_string())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {dropped:?}", self.name);
        }
    }
}

/// `server_url` with its database replaced by `name` (query parameters kept).
fn with_database(server_url: &str, name: &str) -> Result<String> {
    let (base, query) = match server_url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (server_url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_and_path = &base[scheme_end..];
    let authority = match authority_and_path.find('/') {
        Some(i) => &authority_and_path[..i],
        None => authority_and_path,
    };
    if authority.is_empty() {
        return Err(StoreError::Invalid(format!(
            "DATABASE_URL {server_url:?} names no host"
        )));
    }
    let mut url = format!("{}{authority}/{name}", &base[..scheme_end]);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    Ok(url)
}

/// A SQLite database file made for one test in the system's temporary directory; removed (with
/// its WAL and shared-memory files) on drop.
pub struct TestFile {
    /// The file.
    pub path: std::path::PathBuf,
}

impl TestFile {
    /// A new, unused name for a test database file.
    pub fn new() -> TestFile {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "ledgerport-test-{}-{nanos}-{}.db",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        TestFile { path }
    }

    /// The database URL of the file.
    pub fn url(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }
}

impl Default for TestFile {
    fn default() -> Self {
        TestFile::new()
    }
}

impl Drop for TestFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A store for one test: derefs to `dyn Store`, and keeps its PostgreSQL database or SQLite file
/// (if any) until dropped.
pub struct TestStore {
    store: Arc<dyn Store>,
    // Declared after `store`, so the pool is dropped before the database.
    _db: Option<TestDatabase>,
    _file: Option<TestFile>,
}

impl TestStore {
    /// A store the test opened itself (e.g. a SQLite file), with no database to drop.
    pub fn wrap(store: Arc<dyn Store>) -> TestStore {
        TestStore {
            store,
            _db: None,
            _file: None,
        }
    }

    /// The store as the server and the binary hold it.
    pub fn shared(&self) -> Arc<dyn Store> {
        self.store.clone()
    }
}

impl Deref for TestStore {
    type Target = dyn Store;
    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

/// A fresh, empty, migrated store on `clock`: PostgreSQL when `DATABASE_URL` names it, a new
/// SQLite file otherwise ([`TestFile`]). Panics (it is for tests) with the reason when the database cannot be made.
pub async fn fresh_store(clock: Arc<dyn Clock>) -> TestStore {
    match postgres_from_env() {
        Some(server_url) => {
            let db = TestDatabase::create_on(server_url)
                .await
                .unwrap_or_else(|e| panic!("create a PostgreSQL test database: {e:?}"));
            let store = ledgerport_store::open(&db.url, clock)
                .await
                .unwrap_or_else(|e| panic!("open the PostgreSQL test store {}: {e:?}", db.url));
            TestStore {
                store,
                _db: Some(db),
                _file: None,
            }
        }
        None => fresh_sqlite_file_store(clock).await,
    }
}

/// A fresh, empty, migrated SQLite store in a new file ([`TestFile`]), whatever `DATABASE_URL`
/// says.
pub async fn fresh_sqlite_file_store(clock: Arc<dyn Clock>) -> TestStore {
    let file = TestFile::new();
    let store = ledgerport_store::open(&file.url(), clock)
        .await
        .unwrap_or_else(|e| panic!("open a SQLite store in {}: {e:?}", file.path.display()));
    TestStore {
        store,
        _db: None,
        _file: Some(file),
    }
}

/// A fresh, empty, migrated SQLite store in memory (`sqlite::memory:`), whatever `DATABASE_URL`
/// says: the store's other read path, which the file's leaves out.
pub async fn fresh_memory_store(clock: Arc<dyn Clock>) -> TestStore {
    TestStore::wrap(
        ledgerport_store::open("sqlite::memory:", clock)
            .await
            .unwrap_or_else(|e| panic!("open an in-memory SQLite store: {e:?}")),
    )
}

/// A fresh PostgreSQL store for a PostgreSQL-only test; panics saying what to set when
/// `DATABASE_URL` names no PostgreSQL server ([`require_postgres`]).
#[track_caller]
pub fn fresh_postgres_store(clock: Arc<dyn Clock>) -> impl std::future::Future<Output = TestStore> {
    require_postgres();
    fresh_store(clock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_database_replaces_only_the_database_of_the_server_url() {
        let u = with_database("postgres://postgres@127.0.0.1:5432/test", "lp_x").expect("url");
        assert_eq!(u, "postgres://postgres@127.0.0.1:5432/lp_x");
        let u = with_database("postgresql://u:p@h/db?sslmode=disable", "lp_y").expect("url");
        assert_eq!(u, "postgresql://u:p@h/lp_y?sslmode=disable");
        let u = with_database("postgres://h:1", "lp_z").expect("url");
        assert_eq!(u, "postgres://h:1/lp_z");
    }
}
