//! The hot reads of a SQLite file stepped on the caller's own thread (rusqlite), not through
//! sqlx's driver, which runs each connection on a worker thread of its own and hands every query
//! and every result row between threads: a third of the server's CPU under token load went to
//! those hand-offs (BENCHMARKS.md, "Profile of the token miss"). What goes this way: the key
//! reads of the token endpoints and of every Report API request, the ledger a Report API request
//! names (with its units and grants), and the feed and date pages, whose rows are handed as
//! SQLite holds them to the page writer (`crate::wire_json`), which writes their JSON into one
//! buffer.
//!
//! Each call takes a read-only connection from a small pool and gives it back: in WAL mode a
//! reader sees the last commit when its statement starts and never waits for the writer, so a
//! key revoked or regenerated a moment ago (by this process or another) is refused on the next
//! read; nothing is cached but prepared statements. Each call is a few statements on a local
//! file (well under a millisecond), so it runs inline on the async task's thread.
//!
//! Reads only: the simulator's fault points (`crate::faults`) are all on write statements and
//! commits, so none is routed around.

use crate::rows::{KeyRow, LedgerRow, LedgerWithUnitsRow, entry_columns};
use crate::sql::Dialect;
use crate::wire_json::{Cell, EntryCells, PageWriter};
use crate::{Result, StoreError, WirePage};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Row};
use sqlx::Sqlite;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Connections kept open between calls. Calls run inline on the threads that poll requests, so
/// at most about one per such thread is in use at a time; more are opened when needed, and
/// closed on return beyond this many.
const IDLE_CONNECTIONS: usize = 8;

/// The columns of an entry in the order the page writer reads them.
const ENTRY_COLUMNS: &str = entry_columns!("e.");

/// The key columns in the order [`key_row`] reads them.
const KEY_COLUMNS: &str = "k.id, k.kind, k.owner_msn, k.owner_partner_id, k.owner_merchant_id, \
     k.client_id, k.secret_hash, k.generation, k.subscription_key_1, k.subscription_key_2, \
     k.revoked, k.created_at";

/// The pool of read-only connections to one database file, and the statements they run.
pub(crate) struct DirectReads {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    statements: Statements,
}

/// The statements, with numbered parameters (`?1`), made once.
struct Statements {
    key_with_partner_state: String,
    key_by_client_id: String,
    key_by_subscription_key: String,
    ledger_with_units: String,
    /// Indexed by `[in a period]`: `?1` ledger, `?2` topic, `?3` after seq, `?4` limit, and
    /// `?5`, `?6` the period's first and last date.
    feed_page: [String; 2],
    /// `?1` ledger, `?2` topic, `?3` date, `?4` after seq, `?5` limit.
    date_page: String,
}

impl DirectReads {
    /// Reads of the database file `path`, which exists and is migrated; `ledger_with_units` is
    /// the store's statement of a ledger with its units and grants. One connection is opened
    /// now, so a file that cannot be read fails here rather than at the first request.
    pub(crate) fn open(path: &Path, ledger_with_units: &str) -> Result<Self> {
        let reads = DirectReads {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
            statements: Statements {
                key_with_partner_state: format!(
                    "SELECT {KEY_COLUMNS}, p.state FROM api_keys k \
                     LEFT JOIN partners p ON p.id = k.owner_partner_id WHERE k.client_id = ?1"
                ),
                key_by_client_id: format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys k WHERE k.client_id = ?1"
                ),
                key_by_subscription_key: format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys k \
                     WHERE k.subscription_key_1 = ?1 OR k.subscription_key_2 = ?1"
                ),
                ledger_with_units: numbered(ledger_with_units),
                feed_page: [false, true].map(|period| {
                    format!(
                        "SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.ledger_id = ?1 \
                         AND e.topic = ?2 AND e.seq > ?3{} ORDER BY e.seq LIMIT ?4",
                        if period {
                            " AND e.ledger_date >= ?5 AND e.ledger_date <= ?6"
                        } else {
                            ""
                        }
                    )
                }),
                date_page: numbered(&<Sqlite as Dialect>::DATE_PAGE_ROWS.replacen(
                    "SELECT e.*",
                    &format!("SELECT {ENTRY_COLUMNS}"),
                    1,
                )),
            },
        };
        let first = reads.connect()?;
        reads.give_back(first);
        Ok(reads)
    }

    /// A new read-only connection with the PRAGMAs of the store's sqlx readers.
    fn connect(&self) -> Result<Connection> {
        let c = open_file(&self.path)?;
        // This connection may not write.
        c.pragma_update(None, "query_only", true).map_err(db)?;
        // Without the query planner stability guarantee SQLite looks at the value bound to a
        // page's `LIMIT` while planning, and then marks the statement expired whenever that
        // parameter is bound again: every page re-parsed and re-planned its statement (2.6 % of
        // the server's CPU under the readers' load). These statements' plans do not depend on
        // their values (keyset seeks, no statistics), so one plan is kept for all of them.
        c.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )
        .map_err(db)?;
        // Enough for every statement here, each kind of page and key read prepared once.
        c.set_prepared_statement_cache_capacity(16);
        Ok(c)
    }

    fn give_back(&self, c: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_CONNECTIONS {
            idle.push(c);
        }
    }

    /// Runs `f` on a connection of the pool (a new one when none is idle).
    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let taken = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let c = match taken {
            Some(c) => c,
            None => self.connect()?,
        };
        let out = f(&c);
        self.give_back(c);
        out
    }

    /// `CredentialStore::key_with_partner_state`'s read: the key and its partner's state.
    pub(crate) fn key_with_partner_state(
        &self,
        client_id: &str,
    ) -> Result<Option<(KeyRow, Option<String>)>> {
        self.with(|c| {
            let mut st = c
                .prepare_cached(&self.statements.key_with_partner_state)
                .map_err(db)?;
            let mut rows = st.query([client_id]).map_err(db)?;
            match rows.next().map_err(db)? {
                Some(r) => Ok(Some((key_row(r).map_err(db)?, r.get(12).map_err(db)?))),
                None => Ok(None),
            }
        })
    }

    /// The key of this client id.
    pub(crate) fn key_by_client_id(&self, client_id: &str) -> Result<Option<KeyRow>> {
        self.key_where(&self.statements.key_by_client_id, client_id)
    }

    /// The key one of whose subscription keys this is.
    pub(crate) fn key_by_subscription_key(&self, key: &str) -> Result<Option<KeyRow>> {
        self.key_where(&self.statements.key_by_subscription_key, key)
    }

    fn key_where(&self, sql: &str, value: &str) -> Result<Option<KeyRow>> {
        self.with(|c| {
            let mut st = c.prepare_cached(sql).map_err(db)?;
            let mut rows = st.query([value]).map_err(db)?;
            match rows.next().map_err(db)? {
                Some(r) => Ok(Some(key_row(r).map_err(db)?)),
                None => Ok(None),
            }
        })
    }

    /// The store's ledger statement (`Statements::ledger_with_units` of `crate::sql`).
    pub(crate) fn ledger_with_units(&self, ledger_id: &str) -> Result<Option<LedgerWithUnitsRow>> {
        self.with(|c| {
            let mut st = c
                .prepare_cached(&self.statements.ledger_with_units)
                .map_err(db)?;
            let mut rows = st.query([ledger_id]).map_err(db)?;
            match rows.next().map_err(db)? {
                Some(r) => Ok(Some(ledger_row(r).map_err(db)?)),
                None => Ok(None),
            }
        })
    }

    /// A feed page as a [`WirePage`]: `period` the grant's first and last date when it has one.
    pub(crate) fn feed_page_wire(
        &self,
        ledger_id: &str,
        topic: i64,
        after_seq: i64,
        limit: u32,
        period: Option<(&str, &str)>,
        personal: bool,
    ) -> Result<WirePage> {
        self.with(|c| {
            // One entry more than the page: whether it exists is whether more follow, read in
            // the same statement, so in the same snapshot as the page.
            let fetch = i64::from(limit) + 1;
            match period {
                None => {
                    let mut st = c
                        .prepare_cached(&self.statements.feed_page[0])
                        .map_err(db)?;
                    let rows = st
                        .query(rusqlite::params![ledger_id, topic, after_seq, fetch])
                        .map_err(db)?;
                    wire_page(rows, limit, personal)
                }
                Some((from, to)) => {
                    let mut st = c
                        .prepare_cached(&self.statements.feed_page[1])
                        .map_err(db)?;
                    let rows = st
                        .query(rusqlite::params![
                            ledger_id, topic, after_seq, fetch, from, to
                        ])
                        .map_err(db)?;
                    wire_page(rows, limit, personal)
                }
            }
        })
    }

    /// A page of one ledger date as a [`WirePage`] (`date` as `YYYY-MM-DD`).
    pub(crate) fn date_page_wire(
        &self,
        ledger_id: &str,
        topic: i64,
        date: &str,
        after_seq: i64,
        limit: u32,
        personal: bool,
    ) -> Result<WirePage> {
        self.with(|c| {
            let mut st = c.prepare_cached(&self.statements.date_page).map_err(db)?;
            let fetch = i64::from(limit) + 1;
            let rows = st
                .query(rusqlite::params![ledger_id, topic, date, after_seq, fetch])
                .map_err(db)?;
            wire_page(rows, limit, personal)
        })
    }
}

/// A connection to the database file `path` with the PRAGMAs every connection of the store's
/// has, as `SqliteStore::open` sets them for sqlx's: a 10 s busy timeout, a 32 MiB page cache,
/// the file mapped, temporaries in memory.
pub(super) fn open_file(path: &Path) -> Result<Connection> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db)?;
    c.busy_timeout(Duration::from_secs(10)).map_err(db)?;
    c.pragma_update(None, "cache_size", -32768).map_err(db)?;
    c.pragma_update(None, "mmap_size", 268_435_456)
        .map_err(db)?;
    // 2: MEMORY.
    c.pragma_update(None, "temp_store", 2).map_err(db)?;
    Ok(c)
}

/// `sql` with its `$1`-style parameters written `?1`, which SQLite binds by number.
pub(super) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

pub(super) fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(crate::error::DbError(Box::new(e)))
}

/// A key row of [`KEY_COLUMNS`].
fn key_row(r: &Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok(KeyRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        owner_msn: r.get(2)?,
        owner_partner_id: r.get(3)?,
        owner_merchant_id: r.get(4)?,
        client_id: r.get(5)?,
        secret_hash: r.get(6)?,
        generation: r.get(7)?,
        subscription_key_1: r.get(8)?,
        subscription_key_2: r.get(9)?,
        revoked: r.get(10)?,
        created_at: r.get(11)?,
    })
}

/// A row of the ledger statement: the ledger's columns, its units, its grants.
fn ledger_row(r: &Row<'_>) -> rusqlite::Result<LedgerWithUnitsRow> {
    Ok(LedgerWithUnitsRow {
        ledger: LedgerRow {
            ledger_id: r.get(0)?,
            currency: r.get(1)?,
            payout_scheme: r.get(2)?,
            payout_account: r.get(3)?,
            owner_merchant_id: r.get(4)?,
            time_zone: r.get(5)?,
            cutoff: r.get(6)?,
            payout_frequency: r.get(7)?,
            settlement_mode: r.get(8)?,
            fee_basis_points: r.get(9)?,
            fee_fixed_minor: r.get(10)?,
            page_size: r.get(11)?,
            created_at: r.get(12)?,
            closed_through: r.get(13)?,
            next_payout_number: r.get(14)?,
            org_scheme: r.get(15)?,
            org_id: r.get(16)?,
        },
        units: r.get(17)?,
        granted: r.get(18)?,
    })
}

/// The [`WirePage`] of up to `limit` entry rows of [`ENTRY_COLUMNS`] in seq order, and whether
/// one more follows them.
fn wire_page(mut rows: rusqlite::Rows<'_>, limit: u32, personal: bool) -> Result<WirePage> {
    let mut page = PageWriter::new(limit, personal);
    while let Some(r) = rows.next().map_err(db)? {
        if !page.push(r)? {
            break;
        }
    }
    page.finish()
}

impl EntryCells for Row<'_> {
    fn cell(&self, i: usize) -> Result<Cell<'_>> {
        Ok(match self.get_ref(i).map_err(db)? {
            ValueRef::Integer(v) => Cell::Int(v),
            ValueRef::Text(t) => Cell::Text(t),
            ValueRef::Null => Cell::Null,
            ValueRef::Real(_) | ValueRef::Blob(_) => Cell::Other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_database_file_reads_on_the_callers_thread_and_memory_through_sqlx() {
        use crate::sqlite::{SqliteStore, remove_test_file, test_file_store};
        use ledgerport_core::clock::SystemClock;
        use std::sync::Arc;
        let (file, path) = test_file_store("direct").await;
        let memory = SqliteStore::open("sqlite::memory:", Arc::new(SystemClock))
            .await
            .expect("memory store");
        assert!(file.direct.is_some(), "a file's hot reads go through sqlx");
        assert!(memory.direct.is_none(), "memory's hot reads open a file");
        drop(file);
        remove_test_file(path);
    }

    #[test]
    fn numbered_parameters_replace_dollar_parameters_only() {
        assert_eq!(
            numbered("a = $1 AND b = $12 AND c = '$x'"),
            "a = ?1 AND b = ?12 AND c = '$x'"
        );
    }
}
