//! Schema migrations by sqlx's migrator, from the SQL files each backend embeds
//! ([`Dialect::MIGRATIONS`]), recorded in `_sqlx_migrations` with their checksums. (Built here
//! rather than by `sqlx::migrate!`, which would bring sqlx's macro crates and their compile time.)
//!
//! Databases made before the migrator recorded their migrations in `schema_migrations`: the
//! first start of this build records those versions as applied (without running them again)
//! and drops the old table, then migrates on as usual.

use super::{Dialect, SqlStore, args};
use crate::{Result, StoreError};
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migrate, MigrateError, Migration, MigrationType, Migrator};
use std::borrow::Cow;
use std::collections::HashSet;

/// The migrator's table.
const TABLE: &str = "_sqlx_migrations";
/// The highest migration applied, for `ping`.
pub(crate) const APPLIED: &str = "SELECT MAX(version) FROM _sqlx_migrations WHERE success";
/// The table of the runner this build replaced.
const OLD_TABLE: &str = "schema_migrations";

impl From<MigrateError> for StoreError {
    fn from(e: MigrateError) -> Self {
        StoreError::Database(crate::error::DbError(Box::new(e)))
    }
}

/// SQLite's migrations: version, description, SQL.
pub(crate) const SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "world",
        include_str!("../../migrations/sqlite/0001_world.sql"),
    ),
    (
        2,
        "rejected events",
        include_str!("../../migrations/sqlite/0002_rejected_events.sql"),
    ),
    (
        3,
        "entry dates",
        include_str!("../../migrations/sqlite/0003_entry_dates.sql"),
    ),
    (
        4,
        "portal",
        include_str!("../../migrations/sqlite/0004_portal.sql"),
    ),
    (
        5,
        "leases",
        include_str!("../../migrations/sqlite/0005_leases.sql"),
    ),
    (
        6,
        "reversals",
        include_str!("../../migrations/sqlite/0006_reversals.sql"),
    ),
    (
        7,
        "mail outbox",
        include_str!("../../migrations/sqlite/0007_mail_outbox.sql"),
    ),
    (
        8,
        "grant scopes",
        include_str!("../../migrations/sqlite/0008_grant_scopes.sql"),
    ),
    (
        9,
        "notifications",
        include_str!("../../migrations/sqlite/0009_notifications.sql"),
    ),
    (
        10,
        "access requests",
        include_str!("../../migrations/sqlite/0010_access_requests.sql"),
    ),
    (
        11,
        "access log detail",
        include_str!("../../migrations/sqlite/0011_access_log_detail.sql"),
    ),
    (
        12,
        "mail give-up and invitations",
        include_str!("../../migrations/sqlite/0012_mail_give_up_and_invitations.sql"),
    ),
    (
        13,
        "date proofs",
        include_str!("../../migrations/sqlite/0013_date_proofs.sql"),
    ),
    (
        14,
        "webhooks",
        include_str!("../../migrations/sqlite/0014_webhooks.sql"),
    ),
    (
        15,
        "date digests",
        include_str!("../../migrations/sqlite/0015_date_digests.sql"),
    ),
    (
        17,
        "access log file",
        include_str!("../../migrations/sqlite/0017_access_log_file.sql"),
    ),
];

/// PostgreSQL's migrations. Versions follow SQLite's; its 3 (date runs instead of an index) has
/// no PostgreSQL counterpart, as 0001's `entries_by_date` index serves dates here, nor its 17
/// (the access log in a file of its own: PostgreSQL has no single writer to wait for). `ping`
/// compares the highest version, so the gaps are harmless.
pub(crate) const POSTGRES: &[(i64, &str, &str)] = &[
    (
        1,
        "world",
        include_str!("../../migrations/postgres/0001_world.sql"),
    ),
    (
        2,
        "rejected events",
        include_str!("../../migrations/postgres/0002_rejected_events.sql"),
    ),
    (
        4,
        "portal",
        include_str!("../../migrations/postgres/0004_portal.sql"),
    ),
    (
        5,
        "leases",
        include_str!("../../migrations/postgres/0005_leases.sql"),
    ),
    (
        6,
        "reversals",
        include_str!("../../migrations/postgres/0006_reversals.sql"),
    ),
    (
        7,
        "mail outbox",
        include_str!("../../migrations/postgres/0007_mail_outbox.sql"),
    ),
    (
        8,
        "grant scopes",
        include_str!("../../migrations/postgres/0008_grant_scopes.sql"),
    ),
    (
        9,
        "notifications",
        include_str!("../../migrations/postgres/0009_notifications.sql"),
    ),
    (
        10,
        "access requests",
        include_str!("../../migrations/postgres/0010_access_requests.sql"),
    ),
    (
        11,
        "access log detail",
        include_str!("../../migrations/postgres/0011_access_log_detail.sql"),
    ),
    (
        12,
        "mail give-up and invitations",
        include_str!("../../migrations/postgres/0012_mail_give_up_and_invitations.sql"),
    ),
    (
        13,
        "date proofs",
        include_str!("../../migrations/postgres/0013_date_proofs.sql"),
    ),
    (
        14,
        "webhooks",
        include_str!("../../migrations/postgres/0014_webhooks.sql"),
    ),
    (
        15,
        "date digests",
        include_str!("../../migrations/postgres/0015_date_digests.sql"),
    ),
];

/// The migrator of a backend's embedded migrations.
pub(crate) fn migrator<DB: Dialect>() -> Migrator {
    Migrator::with_migrations(
        DB::MIGRATIONS
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

impl<DB: Dialect> SqlStore<DB> {
    /// Brings the schema up to date. On PostgreSQL the migrator's advisory lock is held
    /// throughout, so processes starting together migrate one after the other; SQLite migrates
    /// in this process's write turn.
    pub(crate) async fn migrate(&self) -> Result<()> {
        let _turn = self.take_turn().await;
        let mut conn = self.write.acquire().await?;
        // Without a write turn, processes share the database: they take turns migrating.
        let shared = self.turn.is_none();
        if shared {
            // A session lock must not outlive a failure on a pooled connection.
            conn.close_on_drop();
            conn.lock().await?;
        }
        let migrator = migrator::<DB>();
        adopt_old_runner::<DB>(&migrator, &mut conn).await?;
        let mut migrator = migrator;
        migrator.set_locking(false);
        migrator.run_direct(None, &mut *conn, false).await?;
        if shared {
            conn.unlock().await?;
        }
        Ok(())
    }
}

/// Records the versions the old runner applied (`schema_migrations`) as the migrator's, and
/// drops the old table. A crash half-way leaves it to the next start, which skips what is
/// already recorded.
async fn adopt_old_runner<DB: Dialect>(
    migrator: &Migrator,
    conn: &mut DB::Connection,
) -> Result<()> {
    let (old,): (i64,) =
        DB::fetch_optional(conn, DB::TABLE_EXISTS.into_sql_str(), args![OLD_TABLE])
            .await?
            .ok_or_else(|| StoreError::Corrupt("table lookup returned no row".into()))?;
    if old == 0 {
        return Ok(());
    }
    let done: Vec<(i64,)> = DB::fetch_all(
        conn,
        "SELECT version FROM schema_migrations ORDER BY version".into_sql_str(),
        args![],
    )
    .await?;
    if let Some((unknown,)) = done.iter().find(|(v,)| !migrator.version_exists(*v)) {
        return Err(StoreError::Invalid(format!(
            "database schema has migration {unknown}, which this build does not know"
        )));
    }
    conn.ensure_migrations_table(TABLE).await?;
    let recorded: HashSet<i64> = conn
        .list_applied_migrations(TABLE)
        .await?
        .into_iter()
        .map(|m| m.version)
        .collect();
    for m in migrator.iter() {
        if done.contains(&(m.version,)) && !recorded.contains(&m.version) {
            conn.skip(TABLE, m).await?;
        }
    }
    DB::execute(conn, "DROP TABLE schema_migrations".into_sql_str(), args![]).await?;
    tracing::info!(
        versions = ?done.iter().map(|(v,)| *v).collect::<Vec<_>>(),
        "recorded the migrations of the earlier runner in {TABLE}"
    );
    Ok(())
}
