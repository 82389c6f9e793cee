//! The backend for scale: PostgreSQL, shared by any number of `serve` processes. What is
//! PostgreSQL's own: the pool, lists bound as arrays (`= ANY`, `unnest`) and its JSON functions
//! (here), and the settlement engine's statements with their row locks (`settlement.rs`).
//! Everything else is `crate::sql`'s.
//!
//! Several processes write at once, so whatever must not interleave takes a database lock inside
//! its transaction instead of an in-process turn: appending, ingesting and closing lock the rows
//! of the ledgers they write (`SELECT ... FOR UPDATE`, in ledger id order so two batches touching
//! the same ledgers cannot deadlock), which keeps each balance chain and each closing
//! single-writer.

mod settlement;

use crate::sql::{Dialect, List, SqlStore, dialect_execution, migrate};
use ledgerport_core::clock::Clock;
use sqlx::Postgres;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArguments, PgPoolOptions};
use std::sync::Arc;

/// The PostgreSQL store.
pub type PostgresStore = SqlStore<Postgres>;

impl SqlStore<Postgres> {
    /// Connects to the database at `url` (`postgres://user@host:port/db`) and brings its schema
    /// up to date. Every write takes its transaction from the one pool.
    pub async fn open(url: &str, clock: Arc<dyn Clock>) -> crate::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect(url)
            .await?;
        let store = SqlStore::start(pool.clone(), pool, None, clock).await?;
        // The dates closed before proofs existed (migration 13), proved once.
        crate::settlement::proofs::backfill(&store).await?;
        Ok(store)
    }
}

impl Dialect for Postgres {
    const MIGRATIONS: &'static [(i64, &'static str, &'static str)] = migrate::POSTGRES;
    const ACCESS_LOG: &'static str = "access_log";
    const TABLE_EXISTS: &'static str = "SELECT COUNT(*) FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_name = $1";
    const JSON_ROW: &'static str = "json_build_array";
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";

    /// `json_agg` gives NULL rather than an empty array over no rows.
    fn json_list(item: &str, order: &str) -> String {
        format!("COALESCE(json_agg({item} ORDER BY {order}), '[]')::text")
    }

    /// The `entries_by_date` index serves date pages.
    const DATE_PAGE_ROWS: &'static str = "SELECT * FROM entries WHERE ledger_id = $1 AND topic = $2 \
         AND ledger_date = $3 AND seq > $4 ORDER BY seq LIMIT $5";

    /// The `entries_by_date` index read backwards from the date.
    const BALANCE_BEFORE_DATE: &'static str = "SELECT balance_after FROM entries \
         WHERE ledger_id = $1 AND topic = $2 AND ledger_date < $3 \
         ORDER BY ledger_date DESC, seq DESC LIMIT 1";

    /// Binding thousands of parameters per statement (and planning a VALUES list of hundreds of
    /// rows) cost more than the rows' own inserts; an array per column is one bind each.
    const INSERT_BY_COLUMNS: bool = true;

    fn push_parameter(sql: &mut String, n: usize) {
        sql.push('$');
        sql.push_str(&n.to_string());
    }

    fn in_list(column: &str, param: &str) -> String {
        format!("{column} = ANY({param})")
    }

    /// A list is bound as an array.
    fn add_list(out: &mut PgArguments, list: List) -> std::result::Result<(), BoxDynError> {
        use sqlx::Arguments;
        match list {
            List::Texts(v) => out.add(v),
            List::Ints(v) => out.add(v),
            List::NullableTexts(v) => out.add(v),
            List::NullableInts(v) => out.add(v),
        }
    }

    dialect_execution!();
}
