//! The backend for scale: PostgreSQL, shared by any number of `serve` processes. What is
//! PostgreSQL's own: the pool (here), lists bound as arrays (`= ANY`, `unnest`), the statements
//! written with its JSON functions (`world.rs`, `report.rs`), and the row locks of the
//! settlement engine (`settlement.rs`). Everything else is `crate::sql`'s.
//!
//! Several processes write at once, so whatever must not interleave takes a database lock inside
//! its transaction instead of an in-process turn: appending, ingesting and closing lock the rows
//! of the ledgers they write (`SELECT ... FOR UPDATE`, in ledger id order so two batches touching
//! the same ledgers cannot deadlock), which keeps each balance chain and each closing
//! single-writer.

mod report;
mod settlement;
mod world;

use crate::Result;
use crate::sql::{Arg, Dialect, SqlStore, dialect_execution};
use ledgerport_core::clock::Clock;
use sqlx::postgres::{PgArguments, PgPoolOptions};
use sqlx::{Arguments, Postgres};
use std::sync::Arc;

/// The PostgreSQL store.
pub type PostgresStore = SqlStore<Postgres>;

impl SqlStore<Postgres> {
    /// Connects to the database at `url` (`postgres://user@host:port/db`) and brings its schema
    /// up to date.
    pub async fn open(url: &str, clock: Arc<dyn Clock>) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect(url)
            .await?;
        let store = SqlStore {
            read: pool.clone(),
            write: pool.clone(),
            settle: pool,
            turn: None,
            clock,
        };
        store.migrate().await?;
        Ok(store)
    }
}

/// Binds arguments the PostgreSQL way: lists as arrays.
fn arguments(args: Vec<Arg>) -> Result<PgArguments> {
    let mut out = PgArguments::default();
    for a in args {
        let added = match a {
            Arg::Int(v) => out.add(v),
            Arg::Text(v) => out.add(v),
            Arg::Blob(v) => out.add(v),
            Arg::NullInt => out.add(None::<i64>),
            Arg::NullText => out.add(None::<String>),
            Arg::Texts(v) => out.add(v),
            Arg::Ints(v) => out.add(v),
        };
        added.map_err(sqlx::Error::Encode)?;
    }
    Ok(out)
}

impl Dialect for Postgres {
    // Versions follow the SQLite backend's; its 3 (date runs instead of an index) has no
    // PostgreSQL counterpart, as 0001's entries_by_date index serves dates here. `ping` checks
    // the highest version, so the gap is harmless.
    const MIGRATIONS: &'static [(i64, &'static str, &'static str)] = &[
        (1, "world", include_str!("../../migrations/postgres/0001_world.sql")),
        (2, "rejected events", include_str!("../../migrations/postgres/0002_rejected_events.sql")),
        (4, "portal", include_str!("../../migrations/postgres/0004_portal.sql")),
        (5, "leases", include_str!("../../migrations/postgres/0005_leases.sql")),
    ];
    const MIGRATION_LOCK: bool = true;
    const TABLE_EXISTS: &'static str = "SELECT COUNT(*) FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_name = $1";
    const LEDGER_WITH_UNITS: &'static str = world::LEDGER_WITH_UNITS;
    const LEDGER_FACTS: &'static str = world::LEDGER_FACTS;
    const FEED_PAGE: &'static str = report::FEED_PAGE;
    const DATE_PAGE: &'static str = report::DATE_PAGE;

    fn in_list(column: &str, param: &str) -> String {
        format!("{column} = ANY({param})")
    }

    dialect_execution!(arguments);
}
