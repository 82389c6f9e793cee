//! The backend for scale: PostgreSQL, shared by any number of `serve` processes.
//!
//! Rows, queries and rules mirror the SQLite backend; what differs is concurrency. Several
//! processes write at once, so whatever must not interleave takes a database lock inside its
//! transaction instead of an in-process mutex: appending, ingesting and closing lock the rows of
//! the ledgers they write (`SELECT ... FOR UPDATE`, in ledger id order so two batches touching the
//! same ledgers cannot deadlock), which keeps each balance chain and each closing single-writer.

mod portal;
mod settlement;

use crate::sqlite::rows::*;
use crate::{
    AccessLogFilter, AccessRecord, Actor, AuditRecord, ClosedPeriod, EventOutcome, LEASE_UPSERT,
    LedgerView, NewAccessRecord, NewKey, NewLedger, NewMerchant, NewPartner, NewSalesUnit, Result,
    SigningKeyRecord, Store, StoreError, key_owner_columns,
};
use async_trait::async_trait;
use jiff::Timestamp;
use ledgerport_core::access::{Guarded, LedgerAccess, ListScope};
use ledgerport_core::clock::Clock;
use ledgerport_core::engine::PaymentEvent;
use ledgerport_core::entry::{Entry, NewEntry, check_entry_type, wire_time};
use ledgerport_core::ids::{LedgerDate, LedgerId, Msn, RecipientHandle, Topic};
use ledgerport_core::world::{
    ApiKey, Grant, KeyKind, Merchant, Partner, PartnerState, RowId, SalesUnit, SalesUnitKind,
};
use settlement::Chains;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres, Transaction};
use std::collections::HashMap;
use std::sync::Arc;

/// Migrations, in order. Each runs once, in its own transaction, recorded in `schema_migrations`.
const MIGRATIONS: &[(i64, &str, &str)] = &[
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
    // Versions follow the SQLite backend's; its 3 (date runs instead of an index) has no
    // PostgreSQL counterpart, as 0001's entries_by_date index serves dates here. `ping` checks
    // the highest version, so the gap is harmless.
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
];

pub struct PostgresStore {
    pool: PgPool,
    clock: Arc<dyn Clock>,
}

/// Advisory lock key held while migrating, so two processes starting at once migrate one by one.
const MIGRATION_LOCK: i64 = 0x4c50_4d49_4752; // "LPMIGR"

const LEDGER_COLUMNS: &str = "l.ledger_id, l.currency, l.payout_scheme, l.payout_account, \
    l.owner_merchant_id, l.time_zone, l.cutoff, l.payout_frequency, l.settlement_mode, \
    l.fee_basis_points, l.fee_fixed_minor, l.page_size, l.created_at, l.closed_through, \
    l.next_payout_number, m.org_scheme, m.org_id";

/// An entry as a JSON array in the column order `entries_from_page_json` reads (SQLite's
/// `ENTRY_JSON`, in PostgreSQL's words).
const ENTRY_JSON_PG: &str = "json_build_array(seq, psp_reference, time, ledger_date, entry_type, \
    reference, currency, amount, balance_before, balance_after, recipient_handle, payer_name, \
    payer_message, masked_phone_no)";

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`) and brings its schema
    /// up to date.
    pub async fn open(url: &str, clock: Arc<dyn Clock>) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect(url)
            .await?;
        let store = PostgresStore { pool, clock };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        for (version, name, sql) in MIGRATIONS {
            let mut tx = self.pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut *tx)
                .await?;
            sqlx::raw_sql(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
            )
            .execute(&mut *tx)
            .await?;
            let done: Option<i64> =
                sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if done.is_none() {
                sqlx::raw_sql(*sql).execute(&mut *tx).await?;
                sqlx::query(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                )
                .bind(version)
                .bind(name)
                .bind(self.now())
                .execute(&mut *tx)
                .await?;
                tracing::info!(version, name, "applied migration");
            }
            tx.commit().await?;
        }
        Ok(())
    }

    fn now(&self) -> String {
        wire_time(self.clock.now())
    }

    /// Writes a new partner (state `applied`) and its audit record in `tx`; `note` is appended to
    /// the audit detail. `create_partner` and `apply_as_partner` both add partners through it.
    pub(crate) async fn insert_partner(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        by: &Actor,
        p: &NewPartner,
        note: &str,
    ) -> Result<i64> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO partners (name, kind, state, org_scheme, org_id, contact_email, created_at) \
             VALUES ($1, $2, 'applied', $3, $4, $5, $6) RETURNING id",
        )
        .bind(&p.name)
        .bind(p.kind.as_str())
        .bind(p.business.as_ref().map(|b| b.scheme.as_str()))
        .bind(p.business.as_ref().map(|b| b.id.clone()))
        .bind(&p.contact_email)
        .bind(self.now())
        .fetch_one(&mut **tx)
        .await?;
        self.audit(
            tx,
            by,
            "partner.create",
            &format!("partner {id}"),
            &format!("{} ({}){note}", p.name, p.kind.as_str()),
        )
        .await?;
        Ok(id)
    }

    async fn audit(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        by: &Actor,
        action: &str,
        subject: &str,
        detail: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(self.now())
        .bind(&by.0)
        .bind(action)
        .bind(subject)
        .bind(detail)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn units_of(&self, ledger_ids: &[&str]) -> Result<HashMap<String, Vec<SalesUnit>>> {
        let ids = owned(ledger_ids);
        let rows: Vec<LedgerUnitRow> = sqlx::query_as(
            "SELECT lu.ledger_id, su.msn, su.merchant_id, su.name, su.kind, su.country, su.handle, su.created_at \
             FROM ledger_units lu JOIN sales_units su ON su.msn = lu.msn \
             WHERE lu.ledger_id = ANY($1) ORDER BY lu.ledger_id, lu.position",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        let mut out: HashMap<String, Vec<SalesUnit>> = HashMap::new();
        for r in rows {
            out.entry(r.ledger_id)
                .or_default()
                .push(r.unit.into_domain()?);
        }
        Ok(out)
    }

    /// A ledger with its units and the approved partners granted it, in one query (every feed
    /// and date page reads it).
    async fn ledger_with_grants(&self, id: &LedgerId) -> Result<Option<(LedgerView, Vec<RowId>)>> {
        let row: Option<LedgerWithUnitsRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {LEDGER_COLUMNS}, \
             (SELECT COALESCE(json_agg(json_build_array(su.msn, su.merchant_id, su.name, su.kind, su.country, \
              su.handle, su.created_at) ORDER BY lu.position), '[]')::text \
              FROM ledger_units lu JOIN sales_units su ON su.msn = lu.msn WHERE lu.ledger_id = l.ledger_id) AS units, \
             (SELECT COALESCE(json_agg(g.partner_id), '[]')::text FROM grants g JOIN partners p ON p.id = g.partner_id \
              WHERE g.ledger_id = l.ledger_id AND p.state = 'approved') AS granted \
             FROM ledgers l JOIN merchants m ON m.id = l.owner_merchant_id WHERE l.ledger_id = $1"
        )))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(LedgerWithUnitsRow::into_view).transpose()
    }

    async fn grants_of(&self, ledger_ids: &[&str]) -> Result<HashMap<String, Vec<RowId>>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT g.ledger_id, g.partner_id FROM grants g JOIN partners p ON p.id = g.partner_id \
             WHERE p.state = 'approved' AND g.ledger_id = ANY($1)",
        )
        .bind(owned(ledger_ids))
        .fetch_all(&self.pool)
        .await?;
        let mut out: HashMap<String, Vec<RowId>> = HashMap::new();
        for (l, p) in rows {
            out.entry(l).or_default().push(p);
        }
        Ok(out)
    }

    /// Completes ledger rows with their units.
    async fn views(&self, rows: Vec<LedgerRow>) -> Result<Vec<LedgerView>> {
        let ids: Vec<String> = rows.iter().map(|r| r.ledger_id.clone()).collect();
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut units = self.units_of(&id_refs).await?;
        rows.into_iter()
            .map(|r| {
                let u = units.remove(&r.ledger_id).unwrap_or_default();
                r.into_view(u)
            })
            .collect()
    }

    async fn key_where(&self, clause: &'static str, value: &str) -> Result<Option<ApiKey>> {
        let sql = match clause {
            "client_id" => "SELECT * FROM api_keys WHERE client_id = $1",
            _ => "SELECT * FROM api_keys WHERE subscription_key_1 = $1 OR subscription_key_2 = $1",
        };
        let row: Option<KeyRow> = sqlx::query_as(sql)
            .bind(value)
            .fetch_optional(&self.pool)
            .await?;
        row.map(KeyRow::into_domain).transpose()
    }

    async fn require_key(&self, id: RowId) -> Result<ApiKey> {
        self.key(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("key {id}")))
    }
}

/// The strings as one array parameter, for `= ANY($1)`.
pub(super) fn owned(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Maps a constraint failure to the domain's words; anything else stays a database error.
fn constraint(e: sqlx::Error, what: impl Fn() -> String) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            return StoreError::Conflict(what());
        }
        if db.is_foreign_key_violation() {
            return StoreError::NotFound(format!("something {} refers to", what()));
        }
    }
    StoreError::from(e)
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_merchant(&self, by: &Actor, m: NewMerchant) -> Result<Merchant> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO merchants (org_scheme, org_id, name, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(m.business.scheme.as_str())
        .bind(&m.business.id)
        .bind(&m.name)
        .bind(self.now())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| constraint(e, || format!("merchant {}", m.business)))?;
        self.audit(
            &mut tx,
            by,
            "merchant.create",
            &m.business.to_string(),
            &m.name,
        )
        .await?;
        tx.commit().await?;
        self.merchant(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("merchant {id}")))
    }

    async fn merchants(&self) -> Result<Vec<Merchant>> {
        let rows: Vec<MerchantRow> = sqlx::query_as("SELECT * FROM merchants ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(MerchantRow::into_domain).collect()
    }

    async fn merchant(&self, id: RowId) -> Result<Option<Merchant>> {
        let row: Option<MerchantRow> = sqlx::query_as("SELECT * FROM merchants WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(MerchantRow::into_domain).transpose()
    }

    async fn merchant_by_org(&self, org_id: &str) -> Result<Option<Merchant>> {
        let row: Option<MerchantRow> =
            sqlx::query_as("SELECT * FROM merchants WHERE org_id = $1 ORDER BY id LIMIT 1")
                .bind(org_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(MerchantRow::into_domain).transpose()
    }

    async fn create_sales_unit(&self, by: &Actor, u: NewSalesUnit) -> Result<SalesUnit> {
        let handle = match (u.kind, &u.vm_number) {
            (SalesUnitKind::Api, None) => RecipientHandle::Api(u.msn),
            (SalesUnitKind::VmNumber, Some(n)) => {
                RecipientHandle::parse("vm_number", &format!("{}:{}", u.country, n))
                    .map_err(|e| StoreError::Invalid(e.to_string()))?
            }
            (SalesUnitKind::Api, Some(_)) => {
                return Err(StoreError::Invalid(
                    "an api sales unit has no Vippsnummer".into(),
                ));
            }
            (SalesUnitKind::VmNumber, None) => {
                return Err(StoreError::Invalid(
                    "a vm-number sales unit needs its Vippsnummer".into(),
                ));
            }
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO sales_units (msn, merchant_id, name, kind, country, handle, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(i64::from(u.msn.get()))
        .bind(u.merchant_id)
        .bind(&u.name)
        .bind(u.kind.as_str())
        .bind(u.country.as_str())
        .bind(handle.to_string())
        .bind(self.now())
        .execute(&mut *tx)
        .await
        .map_err(|e| constraint(e, || format!("sales unit {} or handle {handle}", u.msn)))?;
        self.audit(
            &mut tx,
            by,
            "sales-unit.create",
            &u.msn.to_string(),
            &format!("{} {}", handle, u.name),
        )
        .await?;
        tx.commit().await?;
        self.sales_unit(u.msn)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("sales unit {}", u.msn)))
    }

    async fn sales_units(&self, merchant: Option<RowId>) -> Result<Vec<SalesUnit>> {
        let rows: Vec<SalesUnitRow> = sqlx::query_as(
            "SELECT * FROM sales_units WHERE $1 IS NULL OR merchant_id = $1 ORDER BY msn",
        )
        .bind(merchant)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(SalesUnitRow::into_domain).collect()
    }

    async fn sales_unit(&self, msn: Msn) -> Result<Option<SalesUnit>> {
        let row: Option<SalesUnitRow> = sqlx::query_as("SELECT * FROM sales_units WHERE msn = $1")
            .bind(i64::from(msn.get()))
            .fetch_optional(&self.pool)
            .await?;
        row.map(SalesUnitRow::into_domain).transpose()
    }

    async fn create_ledger(&self, by: &Actor, l: NewLedger) -> Result<LedgerView> {
        if l.settles_for.is_empty() {
            return Err(StoreError::Invalid(
                "a ledger must settle for at least one sales unit".into(),
            ));
        }
        let mut tx = self.pool.begin().await?;
        for msn in &l.settles_for {
            let owner: Option<i64> =
                sqlx::query_scalar("SELECT merchant_id FROM sales_units WHERE msn = $1")
                    .bind(i64::from(msn.get()))
                    .fetch_optional(&mut *tx)
                    .await?;
            match owner {
                None => return Err(StoreError::NotFound(format!("sales unit {msn}"))),
                Some(m) if m != l.owner_merchant_id => {
                    return Err(StoreError::Invalid(format!(
                        "sales unit {msn} belongs to another merchant"
                    )));
                }
                Some(_) => {}
            }
        }
        let cutoff = format!("{:02}:{:02}", l.cutoff.hour(), l.cutoff.minute());
        // Nothing before the ledger's first date will ever be written: those dates are closed.
        let created =
            ledgerport_core::world::ledger_date_at(&l.time_zone, l.cutoff, self.clock.now());
        let closed_through =
            LedgerDate::from_date(created.date().yesterday().unwrap_or(created.date()));
        sqlx::query(
            "INSERT INTO ledgers (ledger_id, currency, payout_scheme, payout_account, owner_merchant_id, time_zone, \
             cutoff, payout_frequency, settlement_mode, fee_basis_points, fee_fixed_minor, page_size, created_at, \
             closed_through) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(l.ledger_id.as_str())
        .bind(l.currency.as_str())
        .bind(&l.payout_account.scheme)
        .bind(&l.payout_account.id)
        .bind(l.owner_merchant_id)
        .bind(&l.time_zone)
        .bind(&cutoff)
        .bind(l.payout_frequency.as_str())
        .bind(l.settlement_mode.as_str())
        .bind(l.fee_plan.basis_points)
        .bind(l.fee_plan.fixed_minor)
        .bind(i64::from(l.page_size))
        .bind(self.now())
        .bind(closed_through.to_string())
        .execute(&mut *tx)
        .await
        .map_err(|e| constraint(e, || format!("ledger {}", l.ledger_id)))?;
        for (position, msn) in l.settles_for.iter().enumerate() {
            sqlx::query("INSERT INTO ledger_units (ledger_id, msn, position) VALUES ($1, $2, $3)")
                .bind(l.ledger_id.as_str())
                .bind(i64::from(msn.get()))
                .bind(position as i64)
                .execute(&mut *tx)
                .await
                .map_err(|e| constraint(e, || format!("a ledger for sales unit {msn}")))?;
        }
        let units: Vec<String> = l.settles_for.iter().map(|m| m.to_string()).collect();
        self.audit(
            &mut tx,
            by,
            "ledger.create",
            l.ledger_id.as_str(),
            &format!("settles for {}", units.join(",")),
        )
        .await?;
        tx.commit().await?;
        self.ledger_with_grants(&l.ledger_id)
            .await?
            .map(|(view, _)| view)
            .ok_or_else(|| StoreError::NotFound(format!("ledger {}", l.ledger_id)))
    }

    async fn ledgers(&self) -> Result<Vec<LedgerView>> {
        let rows: Vec<LedgerRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {LEDGER_COLUMNS} FROM ledgers l JOIN merchants m ON m.id = l.owner_merchant_id ORDER BY length(l.ledger_id), l.ledger_id"
        )))
        .fetch_all(&self.pool)
        .await?;
        self.views(rows).await
    }

    async fn ledger(&self, id: &LedgerId) -> Result<Option<Guarded<LedgerView>>> {
        Ok(self
            .ledger_with_grants(id)
            .await?
            .map(|(view, granted)| view.guarded(granted)))
    }

    async fn ledgers_in_scope(
        &self,
        scope: &ListScope,
        handle: Option<&RecipientHandle>,
        after: Option<&LedgerId>,
        limit: u32,
    ) -> Result<Vec<Guarded<LedgerView>>> {
        // One query per scope shape, each walking an index in ledger id order from `after`. Ledger
        // ids are digits without leading zeros, so (length, text) is their numeric order.
        let handle_filter = "AND ($3 IS NULL OR EXISTS (SELECT 1 FROM ledger_units f JOIN sales_units fs ON fs.msn = f.msn \
                             WHERE f.ledger_id = l.ledger_id AND fs.handle = $3))";
        let after = after.map(|a| a.as_str()).unwrap_or("");
        let handle = handle.map(|h| h.to_string());
        let (sql, key): (String, String) = match scope {
            ListScope::SoleHandle(h) => (
                format!(
                    "SELECT {LEDGER_COLUMNS} FROM sales_units su JOIN ledger_units lu ON lu.msn = su.msn \
                     JOIN ledgers l ON l.ledger_id = lu.ledger_id JOIN merchants m ON m.id = l.owner_merchant_id \
                     WHERE su.handle = $1 AND (length(l.ledger_id), l.ledger_id) > (length($2), $2) \
                     AND (SELECT COUNT(*) FROM ledger_units c WHERE c.ledger_id = l.ledger_id) = 1 {handle_filter} \
                     ORDER BY length(l.ledger_id), l.ledger_id LIMIT $4"
                ),
                h.to_string(),
            ),
            // A handle names at most one ledger (handles and a unit's ledger are unique), so
            // start from it rather than walk every grant of a partner with thousands.
            ListScope::GrantedTo(p) if handle.is_some() => (
                format!(
                    "SELECT {LEDGER_COLUMNS} FROM sales_units fs JOIN ledger_units f ON f.msn = fs.msn \
                     JOIN grants g ON g.ledger_id = f.ledger_id JOIN ledgers l ON l.ledger_id = g.ledger_id \
                     JOIN merchants m ON m.id = l.owner_merchant_id \
                     WHERE fs.handle = $3 AND g.partner_id = $1::BIGINT AND (length(l.ledger_id), l.ledger_id) > (length($2), $2) \
                     ORDER BY length(l.ledger_id), l.ledger_id LIMIT $4"
                ),
                p.to_string(),
            ),
            ListScope::GrantedTo(p) => (
                format!(
                    "SELECT {LEDGER_COLUMNS} FROM grants g JOIN ledgers l ON l.ledger_id = g.ledger_id \
                     JOIN merchants m ON m.id = l.owner_merchant_id \
                     WHERE g.partner_id = $1::BIGINT AND (length(g.ledger_id), g.ledger_id) > (length($2), $2) {handle_filter} \
                     ORDER BY length(g.ledger_id), g.ledger_id LIMIT $4"
                ),
                p.to_string(),
            ),
            ListScope::OwnedBy(o) => (
                format!(
                    "SELECT {LEDGER_COLUMNS} FROM ledgers l JOIN merchants m ON m.id = l.owner_merchant_id \
                     WHERE l.owner_merchant_id = $1::BIGINT AND (length(l.ledger_id), l.ledger_id) > (length($2), $2) {handle_filter} \
                     ORDER BY length(l.ledger_id), l.ledger_id LIMIT $4"
                ),
                o.to_string(),
            ),
        };
        let rows: Vec<LedgerRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(key)
            .bind(after)
            .bind(handle)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        let ids: Vec<String> = rows.iter().map(|r| r.ledger_id.clone()).collect();
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut grants = self.grants_of(&id_refs).await?;
        let views = self.views(rows).await?;
        Ok(views
            .into_iter()
            .map(|v| {
                let granted = grants
                    .remove(v.ledger.ledger_id.as_str())
                    .unwrap_or_default();
                v.guarded(granted)
            })
            .collect())
    }

    async fn create_partner(&self, by: &Actor, p: NewPartner) -> Result<Partner> {
        let mut tx = self.pool.begin().await?;
        let id = self.insert_partner(&mut tx, by, &p, "").await?;
        tx.commit().await?;
        self.partner(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("partner {id}")))
    }

    async fn partners(&self) -> Result<Vec<Partner>> {
        let rows: Vec<PartnerRow> = sqlx::query_as("SELECT * FROM partners ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(PartnerRow::into_domain).collect()
    }

    async fn partner(&self, id: RowId) -> Result<Option<Partner>> {
        let row: Option<PartnerRow> = sqlx::query_as("SELECT * FROM partners WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(PartnerRow::into_domain).transpose()
    }

    async fn set_partner_state(&self, by: &Actor, id: RowId, to: PartnerState) -> Result<Partner> {
        let mut tx = self.pool.begin().await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT state FROM partners WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let current = current.ok_or_else(|| StoreError::NotFound(format!("partner {id}")))?;
        let current = PartnerState::parse("state", &current)?;
        if !current.may_become(to) {
            return Err(StoreError::Invalid(format!(
                "partner {id} is {} and cannot become {}",
                current.as_str(),
                to.as_str()
            )));
        }
        sqlx::query("UPDATE partners SET state = $1 WHERE id = $2")
            .bind(to.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.audit(
            &mut tx,
            by,
            "partner.state",
            &format!("partner {id}"),
            &format!("{} -> {}", current.as_str(), to.as_str()),
        )
        .await?;
        tx.commit().await?;
        self.partner(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("partner {id}")))
    }

    async fn create_key(&self, by: &Actor, k: NewKey) -> Result<ApiKey> {
        let (msn, partner, merchant) = key_owner_columns(k.owner);
        let (sk1, sk2) = match &k.subscription_keys {
            Some([a, b]) => (Some(a.clone()), Some(b.clone())),
            None => (None, None),
        };
        let mut tx = self.pool.begin().await?;
        // Each column is UNIQUE on its own; a key's first subscription key must not be another
        // key's second either, or a lookup by subscription key could find either key.
        if let (Some(a), Some(b)) = (&sk1, &sk2) {
            let taken: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM api_keys WHERE subscription_key_1 IN ($1, $2) OR subscription_key_2 IN ($1, $2) LIMIT 1",
            )
            .bind(a)
            .bind(b)
            .fetch_optional(&mut *tx)
            .await?;
            if taken.is_some() {
                return Err(StoreError::Conflict(format!(
                    "a subscription key of key {}",
                    k.client_id
                )));
            }
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO api_keys (kind, owner_msn, owner_partner_id, owner_merchant_id, client_id, secret_hash, \
             generation, subscription_key_1, subscription_key_2, revoked, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, FALSE, $9) RETURNING id",
        )
        .bind(k.kind.as_str())
        .bind(msn)
        .bind(partner)
        .bind(merchant)
        .bind(&k.client_id)
        .bind(k.secret_hash.as_slice())
        .bind(sk1)
        .bind(sk2)
        .bind(self.now())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| constraint(e, || format!("key {}", k.client_id)))?;
        self.audit(
            &mut tx,
            by,
            "key.issue",
            &format!("key {id}"),
            &format!("{} client_id {}", k.kind.as_str(), k.client_id),
        )
        .await?;
        tx.commit().await?;
        self.require_key(id).await
    }

    async fn keys(&self) -> Result<Vec<ApiKey>> {
        let rows: Vec<KeyRow> = sqlx::query_as("SELECT * FROM api_keys ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(KeyRow::into_domain).collect()
    }

    async fn key(&self, id: RowId) -> Result<Option<ApiKey>> {
        let row: Option<KeyRow> = sqlx::query_as("SELECT * FROM api_keys WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(KeyRow::into_domain).transpose()
    }

    async fn key_by_client_id(&self, client_id: &str) -> Result<Option<ApiKey>> {
        self.key_where("client_id", client_id).await
    }

    async fn key_by_subscription_key(&self, key: &str) -> Result<Option<ApiKey>> {
        self.key_where("subscription_key", key).await
    }

    async fn replace_secret(&self, by: &Actor, id: RowId, secret_hash: [u8; 32]) -> Result<ApiKey> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("UPDATE api_keys SET secret_hash = $1, generation = generation + 1 WHERE id = $2 AND NOT revoked")
            .bind(secret_hash.as_slice())
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("active key {id}")));
        }
        self.audit(
            &mut tx,
            by,
            "key.regenerate",
            &format!("key {id}"),
            "secret replaced",
        )
        .await?;
        tx.commit().await?;
        self.require_key(id).await
    }

    async fn revoke_key(&self, by: &Actor, id: RowId) -> Result<ApiKey> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("UPDATE api_keys SET revoked = TRUE WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("key {id}")));
        }
        self.audit(&mut tx, by, "key.revoke", &format!("key {id}"), "revoked")
            .await?;
        tx.commit().await?;
        self.require_key(id).await
    }

    async fn create_grant(&self, by: &Actor, partner: RowId, ledger: &LedgerId) -> Result<Grant> {
        let p = self
            .partner(partner)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("partner {partner}")))?;
        if p.kind != ledgerport_core::world::PartnerKind::Accounting
            || p.state != PartnerState::Approved
        {
            return Err(StoreError::Invalid(format!(
                "partner {partner} is not an approved accounting partner ({} {})",
                p.kind.as_str(),
                p.state.as_str()
            )));
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO grants (partner_id, ledger_id, created_at, created_by) VALUES ($1, $2, $3, $4)")
            .bind(partner)
            .bind(ledger.as_str())
            .bind(self.now())
            .bind(&by.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| constraint(e, || format!("grant of ledger {ledger} to partner {partner}")))?;
        self.audit(
            &mut tx,
            by,
            "grant.create",
            &format!("ledger {ledger}"),
            &format!("partner {partner}"),
        )
        .await?;
        tx.commit().await?;
        self.grants(Some(partner), Some(ledger))
            .await?
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("grant of ledger {ledger}")))
    }

    async fn remove_grant(&self, by: &Actor, partner: RowId, ledger: &LedgerId) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("DELETE FROM grants WHERE partner_id = $1 AND ledger_id = $2")
            .bind(partner)
            .bind(ledger.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n > 0 {
            self.audit(
                &mut tx,
                by,
                "grant.remove",
                &format!("ledger {ledger}"),
                &format!("partner {partner}"),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn grants(
        &self,
        partner: Option<RowId>,
        ledger: Option<&LedgerId>,
    ) -> Result<Vec<Grant>> {
        let rows: Vec<GrantRow> = sqlx::query_as(
            "SELECT * FROM grants WHERE ($1 IS NULL OR partner_id = $1) AND ($2 IS NULL OR ledger_id = $2) \
             ORDER BY partner_id, ledger_id",
        )
        .bind(partner)
        .bind(ledger.map(|l| l.as_str()))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(GrantRow::into_domain).collect()
    }

    async fn append_entries(
        &self,
        ledger: &LedgerId,
        topic: Topic,
        entries: Vec<NewEntry>,
    ) -> Result<Vec<Entry>> {
        let mut tx = self.pool.begin().await?;
        let currency: Option<String> =
            // The ledger's row lock makes this process the chain's one writer until commit.
            sqlx::query_scalar("SELECT currency FROM ledgers WHERE ledger_id = $1 FOR UPDATE")
                .bind(ledger.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        let currency = currency.ok_or_else(|| StoreError::NotFound(format!("ledger {ledger}")))?;
        let mut chain = Chains::default();
        let mut written = Vec::with_capacity(entries.len());
        for e in entries {
            check_entry_type(topic, &e.entry_type)
                .map_err(|err| StoreError::Invalid(err.to_string()))?;
            if e.currency.as_str() != currency {
                return Err(StoreError::Invalid(format!(
                    "entry currency {} is not the ledger's {currency}",
                    e.currency
                )));
            }
            written.push(chain.push(&mut tx, ledger, topic, e).await?);
        }
        chain.flush(&mut tx).await?;
        tx.commit().await?;
        Ok(written)
    }

    async fn feed_page(
        &self,
        access: &LedgerAccess,
        topic: Topic,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<Entry>> {
        // One row holding the whole page, as on SQLite: one value to hand over and decode
        // instead of a row per entry.
        let page: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COALESCE(json_agg({ENTRY_JSON_PG} ORDER BY seq)::text, '[]') FROM \
             (SELECT * FROM entries WHERE ledger_id = $1 AND topic = $2 AND seq > $3 ORDER BY seq LIMIT $4) p"
        )))
        .bind(access.ledger_id().as_str())
        .bind(i64::from(topic.code()))
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_one(&self.pool)
        .await?;
        entries_from_page_json(&page)
    }

    async fn date_page(
        &self,
        access: &LedgerAccess,
        topic: Topic,
        date: LedgerDate,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<Entry>> {
        let page: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COALESCE(json_agg({ENTRY_JSON_PG} ORDER BY seq)::text, '[]') FROM \
             (SELECT * FROM entries WHERE ledger_id = $1 AND topic = $2 AND ledger_date = $3 AND seq > $4 \
              ORDER BY seq LIMIT $5) p"
        )))
        .bind(access.ledger_id().as_str())
        .bind(i64::from(topic.code()))
        .bind(date.to_string())
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_one(&self.pool)
        .await?;
        entries_from_page_json(&page)
    }

    async fn ingest_events(
        &self,
        events: Vec<PaymentEvent>,
        now: Timestamp,
    ) -> Result<Vec<EventOutcome>> {
        settlement::ingest(self, events, now).await
    }

    async fn close_due(&self, ledger: &LedgerId, now: Timestamp) -> Result<Vec<ClosedPeriod>> {
        settlement::close_due(self, ledger, now).await
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>> {
        let rows: Vec<SigningKeyRow> =
            sqlx::query_as("SELECT * FROM signing_keys ORDER BY created_at, kid")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(SigningKeyRecord::from).collect())
    }

    async fn add_signing_key(&self, by: &Actor, key: SigningKeyRecord) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO signing_keys (kid, private_der, public_raw, created_at, retired_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&key.kid)
            .bind(&key.private_der)
            .bind(&key.public_raw)
            .bind(&key.created_at)
            .bind(&key.retired_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| constraint(e, || format!("signing key {}", key.kid)))?;
        self.audit(&mut tx, by, "signing-key.add", &key.kid, "")
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn retire_signing_key(&self, by: &Actor, kid: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "UPDATE signing_keys SET retired_at = $1 WHERE kid = $2 AND retired_at IS NULL",
        )
        .bind(self.now())
        .bind(kid)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("active signing key {kid}")));
        }
        self.audit(&mut tx, by, "signing-key.retire", kid, "")
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool> {
        let n = sqlx::query(LEASE_UPSERT)
            .bind(name)
            .bind(holder)
            .bind(until.as_millisecond())
            .bind(now.as_millisecond())
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    async fn server_secret(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>> {
        sqlx::query(
            "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .execute(&self.pool)
        .await?;
        let v: Vec<u8> = sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(v)
    }

    async fn record_access(&self, r: NewAccessRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO access_log (at, request_id, key_id, key_kind, client_id, partner_id, merchant_id, msn, ledger_id, endpoint, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(self.now())
        .bind(&r.request_id)
        .bind(r.key_id)
        .bind(r.key_kind.map(KeyKind::as_str))
        .bind(&r.client_id)
        .bind(r.partner_id)
        .bind(r.merchant_id)
        .bind(r.msn.map(|m| i64::from(m.get())))
        .bind(&r.ledger_id)
        .bind(&r.endpoint)
        .bind(i64::from(r.status))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn access_log(&self, f: &AccessLogFilter) -> Result<Vec<AccessRecord>> {
        let rows: Vec<AccessRow> = sqlx::query_as(
            "SELECT * FROM access_log a WHERE ($1 IS NULL OR a.ledger_id = $1) AND ($2 IS NULL OR a.partner_id = $2) \
             AND ($3 IS NULL OR a.ledger_id IN (SELECT ledger_id FROM ledgers WHERE owner_merchant_id = $3)) \
             ORDER BY a.id DESC LIMIT $4",
        )
        .bind(f.ledger_id.as_ref().map(|l| l.as_str()))
        .bind(f.partner_id)
        .bind(f.owner_merchant_id)
        .bind(i64::from(if f.limit == 0 { 100 } else { f.limit }))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(AccessRow::into_domain).collect()
    }

    async fn audit_log(&self, limit: u32) -> Result<Vec<AuditRecord>> {
        let rows: Vec<AuditRow> =
            sqlx::query_as("SELECT * FROM audit_log ORDER BY id DESC LIMIT $1")
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(AuditRecord::from).collect())
    }

    async fn ping(&self) -> Result<()> {
        let applied: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
            .fetch_one(&self.pool)
            .await?;
        let wanted = MIGRATIONS.last().map(|(v, _, _)| *v);
        if applied != wanted {
            return Err(StoreError::Invalid(format!(
                "database schema is at migration {applied:?}, this build needs {wanted:?}"
            )));
        }
        Ok(())
    }

    fn pool_stats(&self) -> crate::PoolStats {
        crate::PoolStats {
            size: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
        }
    }

    async fn key_with_partner_state(
        &self,
        client_id: &str,
    ) -> Result<Option<(ApiKey, Option<PartnerState>)>> {
        #[derive(sqlx::FromRow)]
        struct KeyAndState {
            #[sqlx(flatten)]
            key: KeyRow,
            partner_state: Option<String>,
        }
        let row: Option<KeyAndState> = sqlx::query_as(
            "SELECT k.*, p.state AS partner_state FROM api_keys k \
             LEFT JOIN partners p ON p.id = k.owner_partner_id WHERE k.client_id = $1",
        )
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let state = r
                .partner_state
                .map(|s| PartnerState::parse("state", &s))
                .transpose()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok((r.key.into_domain()?, state))
        })
        .transpose()
    }

    // --- portal --- (in `portal.rs`)

    async fn create_portal_user(
        &self,
        by: &Actor,
        u: crate::NewPortalUser,
    ) -> Result<crate::PortalUser> {
        self.portal_create_user(by, u).await
    }

    async fn apply_as_partner(
        &self,
        by: &Actor,
        p: NewPartner,
        email: &str,
        password_hash: &str,
    ) -> Result<(Partner, crate::PortalUser)> {
        self.portal_apply_as_partner(by, p, email, password_hash)
            .await
    }

    async fn portal_user(&self, id: RowId) -> Result<Option<crate::PortalUser>> {
        self.portal_get_user(id).await
    }

    async fn portal_user_by_email(&self, email: &str) -> Result<Option<crate::PortalUser>> {
        self.portal_user_with_email(email).await
    }

    async fn portal_users(&self) -> Result<Vec<crate::PortalUser>> {
        self.portal_all_users().await
    }

    async fn create_session(
        &self,
        user: RowId,
        token_hash: [u8; 32],
        csrf_token: &str,
        expires_at: Timestamp,
    ) -> Result<()> {
        self.portal_create_session(user, token_hash, csrf_token, expires_at)
            .await
    }

    async fn session(&self, token_hash: [u8; 32]) -> Result<Option<crate::PortalSession>> {
        self.portal_session(token_hash).await
    }

    async fn delete_session(&self, token_hash: [u8; 32]) -> Result<bool> {
        self.portal_delete_session(token_hash).await
    }

    async fn record_sign_in_failure(&self, email: &str) -> Result<crate::SignInFailures> {
        self.portal_record_failure(email).await
    }

    async fn sign_in_failures(&self, email: &str) -> Result<crate::SignInFailures> {
        self.portal_failures(email).await
    }

    async fn clear_sign_in_failures(&self, email: &str) -> Result<()> {
        self.portal_clear_failures(email).await
    }
}
