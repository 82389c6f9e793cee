//! The settlement engine's transactions on a SQLite file stepped on the caller's own thread with
//! a rusqlite connection of their own, instead of through sqlx's driver, which runs a connection
//! on a worker thread and hands every statement, and every row it returns, between threads. In
//! an ingestion batch those hand-offs were two fifths of the samples (BENCHMARKS.md, "What limits
//! each missed target now"): a batch runs a few dozen statements, and a batch that crosses a
//! day closes the period of each of its ledgers, a dozen statements each.
//!
//! The engine's code is the same on every backend (`crate::settlement`, over [`Tx`]); only where
//! its statements are stepped differs. The transaction holds the store's write turn, as sqlx's
//! does, and passes every statement and its commit through the simulator's fault points.
//!
//! The connection leaves foreign keys unenforced (every other connection of the file enforces
//! them): every row the engine writes refers to a ledger it has just read in the same
//! transaction under the write turn, so the references hold by construction, and without
//! enforcement SQLite needs no statement journal for the multi-row `INSERT OR FAIL`s (any
//! failure rolls the whole transaction back anyway), which saved about a quarter of the inserts'
//! CPU time. A connection of its own, because switching enforcement per transaction would
//! prepare every cached statement again each time.
//!
//! A batch steps its statements one after the other without waiting for anything but the write
//! turn, tens of milliseconds on one thread: `on_own_thread` tells the runtime so, and it moves
//! the thread's other tasks to another.

use super::direct::{db, numbered, open_file};
use super::value;
use crate::rows::{
    LedgerCtxRow, LedgerRow, PriorEventRow, PriorWithIdRow, SalesUnitRow, UnitLedgerRow,
};
use crate::sql::{Arg, Dialect, SqlStore, Tx, TxRow};
use crate::{Result, StoreError};
use rusqlite::types::FromSql;
use rusqlite::{Connection, Row};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, OwnedMutexGuard};

/// Prepared statements kept by the connection: the engine's statements, and its multi-row
/// inserts in their few sizes per table (`Tx::insert_rows`).
const STATEMENT_CACHE: usize = 128;

/// A row decoded from a rusqlite row, by the same column names or positions as sqlx decodes it.
pub trait FromDirect: Sized {
    fn from_direct(row: &Row<'_>) -> rusqlite::Result<Self>;
}

macro_rules! tuple_from_direct {
    ($($t:ident $i:tt),+) => {
        impl<$($t: FromSql),+> FromDirect for ($($t,)+) {
            fn from_direct(row: &Row<'_>) -> rusqlite::Result<Self> {
                Ok(($(row.get::<_, $t>($i)?,)+))
            }
        }
    };
}
tuple_from_direct!(A 0);
tuple_from_direct!(A 0, B 1);
tuple_from_direct!(A 0, B 1, C 2);
tuple_from_direct!(A 0, B 1, C 2, D 3);
tuple_from_direct!(A 0, B 1, C 2, D 3, E 4);
tuple_from_direct!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_from_direct!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_from_direct!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
tuple_from_direct!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
tuple_from_direct!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);

impl FromDirect for SalesUnitRow {
    fn from_direct(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(SalesUnitRow {
            msn: r.get("msn")?,
            merchant_id: r.get("merchant_id")?,
            name: r.get("name")?,
            kind: r.get("kind")?,
            country: r.get("country")?,
            handle: r.get("handle")?,
            created_at: r.get("created_at")?,
        })
    }
}

impl FromDirect for UnitLedgerRow {
    fn from_direct(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(UnitLedgerRow {
            ledger_id: r.get("ledger_id")?,
            unit: SalesUnitRow::from_direct(r)?,
        })
    }
}

impl FromDirect for PriorWithIdRow {
    fn from_direct(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(PriorWithIdRow {
            event_id: r.get("event_id")?,
            prior: PriorEventRow {
                ledger_id: r.get("ledger_id")?,
                entries: r.get("entries")?,
                field: r.get("field")?,
                reason: r.get("reason")?,
            },
        })
    }
}

impl FromDirect for LedgerRow {
    fn from_direct(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(LedgerRow {
            ledger_id: r.get("ledger_id")?,
            currency: r.get("currency")?,
            payout_scheme: r.get("payout_scheme")?,
            payout_account: r.get("payout_account")?,
            owner_merchant_id: r.get("owner_merchant_id")?,
            time_zone: r.get("time_zone")?,
            cutoff: r.get("cutoff")?,
            payout_frequency: r.get("payout_frequency")?,
            settlement_mode: r.get("settlement_mode")?,
            fee_basis_points: r.get("fee_basis_points")?,
            fee_fixed_minor: r.get("fee_fixed_minor")?,
            page_size: r.get("page_size")?,
            created_at: r.get("created_at")?,
            closed_through: r.get("closed_through")?,
            next_payout_number: r.get("next_payout_number")?,
            org_scheme: r.get("org_scheme")?,
            org_id: r.get("org_id")?,
        })
    }
}

impl FromDirect for LedgerCtxRow {
    fn from_direct(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(LedgerCtxRow {
            ledger: LedgerRow::from_direct(r)?,
            closed_funds_balance: r.get("closed_funds_balance")?,
            closed_fees_balance: r.get("closed_fees_balance")?,
            first_handle: r.get("first_handle")?,
            last_funds_digest: r.get("last_funds_digest")?,
            last_fees_digest: r.get("last_fees_digest")?,
        })
    }
}

/// The settlement connection of one database file, between transactions.
pub struct DirectSettle {
    path: PathBuf,
    /// Taken by the transaction that holds the write turn, given back when it ends.
    idle: Mutex<Option<Connection>>,
}

impl DirectSettle {
    /// The settlement connection of the database file `path`, which exists and is migrated;
    /// opened now, so a file that cannot be written fails here rather than at the first batch.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let settle = DirectSettle {
            path: path.to_owned(),
            idle: Mutex::new(None),
        };
        let c = settle.connect()?;
        settle.give_back(c);
        Ok(settle)
    }

    /// A new connection with the PRAGMAs of the store's sqlx writers, foreign keys unenforced.
    fn connect(&self) -> Result<Connection> {
        let c = open_file(&self.path)?;
        // The file is in WAL mode already (persistent); the rest is per connection.
        c.pragma_update(None, "synchronous", "NORMAL").map_err(db)?;
        c.pragma_update(None, "foreign_keys", false).map_err(db)?;
        c.pragma_update(None, "wal_autocheckpoint", 10_000)
            .map_err(db)?;
        c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(c)
    }

    fn give_back(&self, c: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            *idle = Some(c);
        }
    }

    /// Begins a settlement transaction of `store` (whose file this is): the write turn first,
    /// as `SqlStore::begin_settling` takes it, then the connection.
    pub(crate) async fn begin<'s, DB: Dialect>(
        &'s self,
        store: &SqlStore<DB>,
    ) -> Result<DirectTx<'s>> {
        let turn = store.settling_turn().await;
        // Under the turn nobody else holds the connection; a lost one (a panic mid-batch) is
        // opened again.
        let taken = self.idle.lock().ok().and_then(|mut idle| idle.take());
        let conn = match taken {
            Some(c) => c,
            None => self.connect()?,
        };
        let tx = DirectTx {
            conn: Some(conn),
            settle: self,
            events_written: store.events_written.clone(),
            wrote_event: false,
            #[cfg(feature = "fault-injection")]
            faults: store.faults.clone(),
            _turn: turn,
        };
        // IMMEDIATE: the write lock is taken (or waited for) at the start, never upgraded midway.
        tx.conn()?.execute_batch("BEGIN IMMEDIATE").map_err(db)?;
        Ok(tx)
    }
}

/// A settlement transaction on the connection of [`DirectSettle`], rolled back if dropped before
/// its commit.
pub(crate) struct DirectTx<'s> {
    conn: Option<Connection>,
    settle: &'s DirectSettle,
    events_written: Arc<Notify>,
    wrote_event: bool,
    #[cfg(feature = "fault-injection")]
    faults: Arc<crate::faults::FaultPlan>,
    // Declared last, so it is released after the transaction has ended (`Drop` runs first).
    _turn: Option<OwnedMutexGuard<()>>,
}

impl DirectTx<'_> {
    fn conn(&self) -> Result<&Connection> {
        self.conn
            .as_ref()
            .ok_or_else(|| StoreError::Corrupt("the settlement transaction has ended".into()))
    }

    /// Steps `sql` with `args`, each returned row through `row`: through the fault points as
    /// sqlx's transactions are (`crate::faults`).
    fn step<R>(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
        mut each: impl FnMut(&Row<'_>) -> rusqlite::Result<()>,
        done: impl FnOnce(&Connection) -> R,
    ) -> Result<R> {
        #[cfg(feature = "fault-injection")]
        let fail_after = self.faults.before(sql)?;
        let conn = self.conn()?;
        let run = || -> rusqlite::Result<R> {
            let mut stmt = conn.prepare_cached(&numbered(sql))?;
            for (i, a) in args.into_iter().enumerate() {
                stmt.raw_bind_parameter(i + 1, value(a))?;
            }
            let mut rows = stmt.raw_query();
            while let Some(r) = rows.next()? {
                each(r)?;
            }
            Ok(done(conn))
        };
        let out = run().map_err(db);
        #[cfg(feature = "fault-injection")]
        if fail_after {
            return Err(self.faults.after(sql));
        }
        out
    }
}

impl<DB: Dialect> Tx<DB> for DirectTx<'_> {
    async fn all<T: TxRow>(&mut self, sql: &str, args: Vec<Arg>) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.step(
            sql,
            args,
            |r| {
                out.push(T::from_direct(r)?);
                Ok(())
            },
            |_| (),
        )?;
        Ok(out)
    }

    async fn opt<T: TxRow>(&mut self, sql: &str, args: Vec<Arg>) -> Result<Option<T>> {
        let mut out = None;
        self.step(
            sql,
            args,
            |r| {
                if out.is_none() {
                    out = Some(T::from_direct(r)?);
                }
                Ok(())
            },
            |_| (),
        )?;
        Ok(out)
    }

    async fn execute(&mut self, sql: &str, args: Vec<Arg>) -> Result<u64> {
        self.step(sql, args, |_| Ok(()), |c| c.changes())
    }

    async fn commit(self) -> Result<()> {
        #[cfg(feature = "fault-injection")]
        let fail_after = self.faults.before("COMMIT")?;
        if let Err(e) = self.conn()?.execute_batch("COMMIT") {
            // A failed COMMIT leaves the transaction open: `Drop` rolls it back.
            return Err(db(e));
        }
        if self.wrote_event {
            // A permit is kept if the sender is busy, so it looks again when it is done.
            self.events_written.notify_one();
        }
        #[cfg(feature = "fault-injection")]
        if fail_after {
            return Err(self.faults.after("COMMIT"));
        }
        Ok(())
    }

    fn wrote_event(&mut self) {
        self.wrote_event = true;
    }
}

impl Drop for DirectTx<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            if !c.is_autocommit() && c.execute_batch("ROLLBACK").is_err() {
                // A connection that cannot end its transaction is not given back: the next
                // transaction opens a new one.
                return;
            }
            self.settle.give_back(c);
        }
    }
}

/// Runs `work`, which steps statements on this thread without waiting, so that the runtime's
/// other tasks are not held up meanwhile: on a multi-threaded runtime the thread is handed over
/// for the while (`block_in_place`); on a single-threaded one (tests) there is no other thread,
/// and it runs as any future. Then it yields once: a caller that runs transaction after
/// transaction (the closing task, over every ledger) lets other tasks in between them, and can
/// be stopped there.
pub(crate) async fn on_own_thread<F: Future>(work: F) -> F::Output {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let out = match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| h.block_on(work))
        }
        _ => work.await,
    };
    tokio::task::yield_now().await;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::{SqliteStore, remove_test_file as remove, test_file_store};
    use ledgerport_core::clock::SystemClock;
    use sqlx::Sqlite;

    const MERCHANT: &str = "INSERT INTO merchants (id, org_scheme, org_id, name, created_at) \
         VALUES ($1, 'org', $2, 'M', 't')";

    async fn merchants(store: &SqliteStore) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM merchants")
            .fetch_one(&store.read)
            .await
            .expect("count")
    }

    #[tokio::test]
    async fn a_committed_transaction_is_seen_by_the_store_and_a_dropped_one_leaves_nothing() {
        // Arrange
        let (store, path) = test_file_store("direct-settle-commit").await;
        let direct = store
            .direct_settle
            .as_ref()
            .expect("a file settles directly");

        // Act: one transaction committed, one dropped midway, one after both.
        let mut tx = direct.begin(&store).await.expect("begin");
        Tx::<Sqlite>::execute(&mut tx, MERCHANT, vec![Arg::Int(1), Arg::Text("1".into())])
            .await
            .expect("insert");
        Tx::<Sqlite>::commit(tx).await.expect("commit");
        let mut dropped = direct.begin(&store).await.expect("begin");
        Tx::<Sqlite>::execute(
            &mut dropped,
            MERCHANT,
            vec![Arg::Int(2), Arg::Text("2".into())],
        )
        .await
        .expect("insert");
        drop(dropped);
        let mut third = direct
            .begin(&store)
            .await
            .expect("begin after a dropped one");
        let (n,): (i64,) = Tx::<Sqlite>::one(&mut third, "SELECT COUNT(*) FROM merchants", vec![])
            .await
            .expect("count");

        // Assert
        assert_eq!(n, 1, "the dropped transaction's row was rolled back");
        drop(third);
        assert_eq!(
            merchants(&store).await,
            1,
            "the committed row is seen by sqlx's readers"
        );
        drop(store);
        remove(path);
    }

    #[tokio::test]
    async fn only_the_settlement_connection_leaves_foreign_keys_unenforced_and_it_binds_lists() {
        // Arrange
        let (store, path) = test_file_store("direct-settle-fk").await;
        let direct = store
            .direct_settle
            .as_ref()
            .expect("a file settles directly");
        let orphan = "INSERT INTO events VALUES ('e2', 'no-such-ledger', 0, 't')";

        // Act
        let by_writer = sqlx::query(orphan).execute(&store.write).await;
        let by_reader: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&store.read)
            .await
            .expect("pragma");
        let mut tx = direct.begin(&store).await.expect("begin");
        let (fk,): (i64,) = Tx::<Sqlite>::one(&mut tx, "PRAGMA foreign_keys", vec![])
            .await
            .expect("pragma");
        let listed: Vec<(String,)> = Tx::<Sqlite>::all(
            &mut tx,
            "SELECT value FROM json_each($1) ORDER BY value",
            vec![crate::sql::texts(&["b\"", "a"])],
        )
        .await
        .expect("list");

        // Assert
        assert!(
            by_writer.is_err(),
            "the writer accepted an event row of a missing ledger"
        );
        assert_eq!((by_reader, fk), (1, 0));
        assert_eq!(listed, vec![("a".to_owned(),), ("b\"".to_owned(),)]);
        drop(tx);
        drop(store);
        remove(path);
    }

    #[tokio::test]
    async fn in_memory_the_settlement_goes_through_sqlx() {
        let store = SqliteStore::open("sqlite::memory:", Arc::new(SystemClock))
            .await
            .expect("store");
        assert!(store.direct_settle.is_none());
    }
}
