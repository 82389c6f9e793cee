//! [`WorldStore`] on SQL: merchants, sales units, ledgers, partners and grants. The rules a
//! change must pass are the core's ([`ledgerport_core::changes`]); this reads what they need and
//! writes what they allow, with an audit record in the same transaction.

use super::{Dialect, SqlStore, Tx, WriteTx, args, constraint, texts};
use crate::rows::{
    GrantRow, GrantTuple, LedgerRow, LedgerUnitRow, LedgerWithUnitsRow, MerchantRow, PartnerRow,
    SalesUnitRow, ScopeColumns, ledger_columns, scope_columns, ts,
};
use crate::{Actor, LedgerView, NewLedger, NewMerchant, NewPartner, NewSalesUnit, Result};
use crate::{StoreError, WorldStore};
use async_trait::async_trait;
use ledgerport_core::access::{Guarded, ListScope, StandingGrant};
use ledgerport_core::changes;
use ledgerport_core::entry::wire_time;
use ledgerport_core::ids::{LedgerId, Msn, RecipientHandle};
use ledgerport_core::notices::GrantChange;
use ledgerport_core::world::{
    Grant, GrantScope, Merchant, Partner, PartnerState, RowId, SalesUnit,
};
use sqlx::AssertSqlSafe;
use std::collections::HashMap;

const LEDGERS: &str = concat!(
    "SELECT ",
    ledger_columns!(),
    " FROM ledgers l JOIN merchants m ON m.id = l.owner_merchant_id \
     ORDER BY length(l.ledger_id), l.ledger_id"
);

/// The ledger `$1` in one query (every Report API request asks): its description with its units
/// as a JSON array in the ledger's order, and the grants of approved partners with their scopes
/// (expired ones too: the policy judges expiry), as a JSON array: what the access policy needs
/// and what only its decision opens.
pub(super) fn ledger_with_units<DB: Dialect>() -> String {
    let unit = format!(
        "{}(su.msn, su.merchant_id, su.name, su.kind, su.country, su.handle, su.created_at)",
        DB::JSON_ROW
    );
    format!(
        "SELECT {}, (SELECT {} FROM ledger_units lu JOIN sales_units su ON su.msn = lu.msn \
         WHERE lu.ledger_id = l.ledger_id) AS units, \
         (SELECT {} FROM grants g JOIN partners p ON p.id = g.partner_id \
          WHERE g.ledger_id = l.ledger_id AND p.state = 'approved') AS granted \
         FROM ledgers l JOIN merchants m ON m.id = l.owner_merchant_id WHERE l.ledger_id = $1",
        ledger_columns!(),
        DB::json_list(&unit, "lu.position"),
        DB::json_list(
            &format!("{}(g.partner_id, {})", DB::JSON_ROW, scope_columns!()),
            "g.partner_id"
        )
    )
}

impl<DB: Dialect> SqlStore<DB> {
    /// Writes a new partner (state `applied`) and its audit record in `tx`; `note` is appended to
    /// the audit detail. `create_partner` and `apply_as_partner` both add partners through it.
    pub(crate) async fn insert_partner(
        &self,
        tx: &mut WriteTx<DB>,
        by: &Actor,
        p: &NewPartner,
        note: &str,
    ) -> Result<i64> {
        let now = self.now();
        let (id,): (i64,) = tx
            .one(
                "INSERT INTO partners (name, kind, state, org_scheme, org_id, contact_email, created_at) \
                 VALUES ($1, $2, 'applied', $3, $4, $5, $6) RETURNING id",
                args![
                    &p.name,
                    p.kind.as_str(),
                    p.business.as_ref().map(|b| b.scheme.as_str()),
                    p.business.as_ref().map(|b| b.id.clone()),
                    &p.contact_email,
                    now.as_str(),
                ],
            )
            .await?;
        let detail = format!("{} ({}){note}", p.name, p.kind.as_str());
        tx.audit(
            &now,
            by,
            "partner.create",
            &format!("partner {id}"),
            &detail,
        )
        .await?;
        Ok(id)
    }

    /// The ledger `id`'s description and the grants of approved partners, in one query.
    async fn ledger_with_grants(
        &self,
        id: &LedgerId,
    ) -> Result<Option<(LedgerView, Vec<StandingGrant>)>> {
        let row: Option<LedgerWithUnitsRow> = match &self.direct {
            Some(d) => d.ledger_with_units(id.as_str())?,
            None => {
                let sql = AssertSqlSafe(self.statements.ledger_with_units.clone());
                self.opt(sql, args![id.as_str()]).await?
            }
        };
        row.map(LedgerWithUnitsRow::into_view).transpose()
    }

    /// The store's clock now, in the stored form of times and as the instant that form names:
    /// grants' expiries are compared with the text in queries and with the instant by the
    /// policy, so both must be the same microsecond.
    fn as_of(&self) -> Result<(String, jiff::Timestamp)> {
        let text = self.now();
        let at = ts(&text)?;
        Ok((text, at))
    }

    async fn units_of(&self, ledger_ids: &[String]) -> Result<HashMap<String, Vec<SalesUnit>>> {
        let sql = format!(
            "SELECT lu.ledger_id, su.msn, su.merchant_id, su.name, su.kind, su.country, su.handle, su.created_at \
             FROM ledger_units lu JOIN sales_units su ON su.msn = lu.msn \
             WHERE {} ORDER BY lu.ledger_id, lu.position",
            DB::in_list("lu.ledger_id", "$1")
        );
        let rows: Vec<LedgerUnitRow> = self
            .all(AssertSqlSafe(sql), vec![texts(ledger_ids)])
            .await?;
        let mut out: HashMap<String, Vec<SalesUnit>> = HashMap::new();
        for r in rows {
            out.entry(r.ledger_id)
                .or_default()
                .push(r.unit.into_domain()?);
        }
        Ok(out)
    }

    async fn grants_of(
        &self,
        ledger_ids: &[String],
    ) -> Result<HashMap<String, Vec<StandingGrant>>> {
        let sql = format!(
            "SELECT g.ledger_id, {} FROM grants g JOIN partners p ON p.id = g.partner_id \
             WHERE p.state = 'approved' AND {} GROUP BY g.ledger_id",
            DB::json_list(
                &format!("{}(g.partner_id, {})", DB::JSON_ROW, scope_columns!()),
                "g.partner_id"
            ),
            DB::in_list("g.ledger_id", "$1")
        );
        let rows: Vec<(String, String)> = self
            .all(AssertSqlSafe(sql), vec![texts(ledger_ids)])
            .await?;
        let mut out: HashMap<String, Vec<StandingGrant>> = HashMap::new();
        for (l, grants) in rows {
            let grants: Vec<GrantTuple> = serde_json::from_str(&grants)
                .map_err(|e| StoreError::Corrupt(format!("grants of ledger {l}: {e}")))?;
            let grants = grants
                .into_iter()
                .map(GrantTuple::into_domain)
                .collect::<Result<Vec<_>>>()?;
            out.insert(l, grants);
        }
        Ok(out)
    }

    /// Completes ledger rows with their units.
    async fn views(&self, rows: Vec<LedgerRow>) -> Result<Vec<LedgerView>> {
        let ids: Vec<String> = rows.iter().map(|r| r.ledger_id.clone()).collect();
        let mut units = self.units_of(&ids).await?;
        rows.into_iter()
            .map(|r| {
                let u = units.remove(&r.ledger_id).unwrap_or_default();
                r.into_view(u)
            })
            .collect()
    }

    async fn require<T>(found: Result<Option<T>>, what: impl FnOnce() -> String) -> Result<T> {
        found?.ok_or_else(|| StoreError::NotFound(what()))
    }
}

#[async_trait]
impl<DB: Dialect> WorldStore for SqlStore<DB> {
    async fn create_merchant(&self, by: &Actor, m: NewMerchant) -> Result<Merchant> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let (id,): (i64,) = tx
            .one(
                "INSERT INTO merchants (org_scheme, org_id, name, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
                args![m.business.scheme.as_str(), &m.business.id, &m.name, now.as_str()],
            )
            .await
            .map_err(|e| constraint(e, || format!("merchant {}", m.business)))?;
        tx.audit(
            &now,
            by,
            "merchant.create",
            &m.business.to_string(),
            &m.name,
        )
        .await?;
        tx.commit().await?;
        Self::require(self.merchant(id).await, || format!("merchant {id}")).await
    }

    async fn merchants(&self) -> Result<Vec<Merchant>> {
        let rows: Vec<MerchantRow> = self
            .all("SELECT * FROM merchants ORDER BY id", args![])
            .await?;
        rows.into_iter().map(MerchantRow::into_domain).collect()
    }

    async fn merchant(&self, id: RowId) -> Result<Option<Merchant>> {
        let row: Option<MerchantRow> = self
            .opt("SELECT * FROM merchants WHERE id = $1", args![id])
            .await?;
        row.map(MerchantRow::into_domain).transpose()
    }

    async fn merchant_by_org(&self, org_id: &str) -> Result<Option<Merchant>> {
        let row: Option<MerchantRow> = self
            .opt(
                "SELECT * FROM merchants WHERE org_id = $1 ORDER BY id LIMIT 1",
                args![org_id],
            )
            .await?;
        row.map(MerchantRow::into_domain).transpose()
    }

    async fn create_sales_unit(&self, by: &Actor, u: NewSalesUnit) -> Result<SalesUnit> {
        let handle = changes::sales_unit_handle(u.kind, u.msn, u.country, u.vm_number.as_deref())?;
        let now = self.now();
        let mut tx = self.begin().await?;
        tx.execute(
            "INSERT INTO sales_units (msn, merchant_id, name, kind, country, handle, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            args![
                i64::from(u.msn.get()),
                u.merchant_id,
                &u.name,
                u.kind.as_str(),
                u.country.as_str(),
                handle.to_string(),
                now.as_str(),
            ],
        )
        .await
        .map_err(|e| constraint(e, || format!("sales unit {} or handle {handle}", u.msn)))?;
        let detail = format!("{} {}", handle, u.name);
        tx.audit(&now, by, "sales-unit.create", &u.msn.to_string(), &detail)
            .await?;
        tx.commit().await?;
        Self::require(self.sales_unit(u.msn).await, || {
            format!("sales unit {}", u.msn)
        })
        .await
    }

    async fn sales_units(&self, merchant: Option<RowId>) -> Result<Vec<SalesUnit>> {
        let rows: Vec<SalesUnitRow> = self
            .all(
                "SELECT * FROM sales_units WHERE $1 IS NULL OR merchant_id = $1 ORDER BY msn",
                args![merchant],
            )
            .await?;
        rows.into_iter().map(SalesUnitRow::into_domain).collect()
    }

    async fn sales_unit(&self, msn: Msn) -> Result<Option<SalesUnit>> {
        let row: Option<SalesUnitRow> = self
            .opt(
                "SELECT * FROM sales_units WHERE msn = $1",
                args![i64::from(msn.get())],
            )
            .await?;
        row.map(SalesUnitRow::into_domain).transpose()
    }

    async fn create_ledger(&self, by: &Actor, l: NewLedger) -> Result<LedgerView> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let mut owners = Vec::with_capacity(l.settles_for.len());
        for msn in &l.settles_for {
            let owner: Option<(i64,)> = tx
                .opt(
                    "SELECT merchant_id FROM sales_units WHERE msn = $1",
                    args![i64::from(msn.get())],
                )
                .await?;
            owners.push((*msn, owner.map(|(m,)| m)));
        }
        changes::check_ledger_units(l.owner_merchant_id, &owners)?;
        let cutoff = format!("{:02}:{:02}", l.cutoff.hour(), l.cutoff.minute());
        let created = match l.created_at {
            None => self.clock.now(),
            Some(t) if t > self.clock.now() => {
                return Err(StoreError::Invalid(format!(
                    "created_at: ledger {} cannot be created in the future ({t})",
                    l.ledger_id
                )));
            }
            Some(t) => t,
        };
        let closed_through = changes::first_closed_date(&l.time_zone, l.cutoff, created);
        tx.execute(
            "INSERT INTO ledgers (ledger_id, currency, payout_scheme, payout_account, owner_merchant_id, time_zone, \
             cutoff, payout_frequency, settlement_mode, fee_basis_points, fee_fixed_minor, page_size, created_at, \
             closed_through) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            args![
                l.ledger_id.as_str(),
                l.currency.as_str(),
                &l.payout_account.scheme,
                &l.payout_account.id,
                l.owner_merchant_id,
                &l.time_zone,
                cutoff,
                l.payout_frequency.as_str(),
                l.settlement_mode.as_str(),
                l.fee_plan.basis_points,
                l.fee_plan.fixed_minor,
                i64::from(l.page_size),
                wire_time(created),
                closed_through.to_string(),
            ],
        )
        .await
        .map_err(|e| constraint(e, || format!("ledger {}", l.ledger_id)))?;
        for (position, msn) in l.settles_for.iter().enumerate() {
            tx.execute(
                "INSERT INTO ledger_units (ledger_id, msn, position) VALUES ($1, $2, $3)",
                args![l.ledger_id.as_str(), i64::from(msn.get()), position as i64],
            )
            .await
            .map_err(|e| constraint(e, || format!("a ledger for sales unit {msn}")))?;
        }
        let units: Vec<String> = l.settles_for.iter().map(|m| m.to_string()).collect();
        let detail = format!("settles for {}", units.join(","));
        tx.audit(&now, by, "ledger.create", l.ledger_id.as_str(), &detail)
            .await?;
        tx.commit().await?;
        let read = self.ledger_with_grants(&l.ledger_id).await;
        Self::require(read, || format!("ledger {}", l.ledger_id))
            .await
            .map(|(view, _)| view)
    }

    async fn ledgers(&self) -> Result<Vec<LedgerView>> {
        let rows: Vec<LedgerRow> = self.all(LEDGERS, args![]).await?;
        self.views(rows).await
    }

    async fn ledger(&self, id: &LedgerId) -> Result<Option<Guarded<LedgerView>>> {
        let (_, as_of) = self.as_of()?;
        Ok(self
            .ledger_with_grants(id)
            .await?
            .map(|(view, granted)| view.guarded(granted, as_of)))
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
        const HANDLE_FILTER: &str = "AND ($3 IS NULL OR EXISTS (SELECT 1 FROM ledger_units f \
             JOIN sales_units fs ON fs.msn = f.msn WHERE f.ledger_id = l.ledger_id AND fs.handle = $3))";
        // A grant that has expired by `$5` is left out, as the policy leaves it out of facts
        // read at the same instant (`as_of`), so the listing and a read agree.
        const UNEXPIRED: &str = "AND (g.expires_at IS NULL OR g.expires_at > $5)";
        let (now, as_of) = self.as_of()?;
        let after = after.map(|a| a.as_str()).unwrap_or("");
        let handle = handle.map(|h| h.to_string());
        let columns = ledger_columns!();
        let (sql, key): (String, String) = match scope {
            ListScope::SoleHandle(h) => (
                format!(
                    "SELECT {columns} FROM sales_units su JOIN ledger_units lu ON lu.msn = su.msn \
                     JOIN ledgers l ON l.ledger_id = lu.ledger_id JOIN merchants m ON m.id = l.owner_merchant_id \
                     WHERE su.handle = $1 AND (length(l.ledger_id), l.ledger_id) > (length($2), $2) \
                     AND (SELECT COUNT(*) FROM ledger_units c WHERE c.ledger_id = l.ledger_id) = 1 {HANDLE_FILTER} \
                     ORDER BY length(l.ledger_id), l.ledger_id LIMIT $4"
                ),
                h.to_string(),
            ),
            // A handle names at most one ledger (handles and a unit's ledger are unique), so
            // start from it rather than walk every grant of a partner with thousands.
            ListScope::GrantedTo(p) if handle.is_some() => (
                format!(
                    "SELECT {columns} FROM sales_units fs JOIN ledger_units f ON f.msn = fs.msn \
                     JOIN grants g ON g.ledger_id = f.ledger_id JOIN ledgers l ON l.ledger_id = g.ledger_id \
                     JOIN merchants m ON m.id = l.owner_merchant_id \
                     WHERE fs.handle = $3 AND g.partner_id = CAST($1 AS BIGINT) {UNEXPIRED} \
                     AND (length(l.ledger_id), l.ledger_id) > (length($2), $2) \
                     ORDER BY length(l.ledger_id), l.ledger_id LIMIT $4"
                ),
                p.to_string(),
            ),
            ListScope::GrantedTo(p) => (
                format!(
                    "SELECT {columns} FROM grants g JOIN ledgers l ON l.ledger_id = g.ledger_id \
                     JOIN merchants m ON m.id = l.owner_merchant_id \
                     WHERE g.partner_id = CAST($1 AS BIGINT) {UNEXPIRED} \
                     AND (length(g.ledger_id), g.ledger_id) > (length($2), $2) {HANDLE_FILTER} \
                     ORDER BY length(g.ledger_id), g.ledger_id LIMIT $4"
                ),
                p.to_string(),
            ),
            ListScope::OwnedBy(o) => (
                format!(
                    "SELECT {columns} FROM ledgers l JOIN merchants m ON m.id = l.owner_merchant_id \
                     WHERE l.owner_merchant_id = CAST($1 AS BIGINT) \
                     AND (length(l.ledger_id), l.ledger_id) > (length($2), $2) {HANDLE_FILTER} \
                     ORDER BY length(l.ledger_id), l.ledger_id LIMIT $4"
                ),
                o.to_string(),
            ),
        };
        let mut params = args![key, after, handle, i64::from(limit)];
        if matches!(scope, ListScope::GrantedTo(_)) {
            params.push(now.into());
        }
        let rows: Vec<LedgerRow> = self.all(AssertSqlSafe(sql), params).await?;
        let ids: Vec<String> = rows.iter().map(|r| r.ledger_id.clone()).collect();
        let mut grants = self.grants_of(&ids).await?;
        let views = self.views(rows).await?;
        Ok(views
            .into_iter()
            .map(|v| {
                let granted = grants
                    .remove(v.ledger.ledger_id.as_str())
                    .unwrap_or_default();
                v.guarded(granted, as_of)
            })
            .collect())
    }

    async fn create_partner(&self, by: &Actor, p: NewPartner) -> Result<Partner> {
        let mut tx = self.begin().await?;
        let id = self.insert_partner(&mut tx, by, &p, "").await?;
        tx.commit().await?;
        Self::require(self.partner(id).await, || format!("partner {id}")).await
    }

    async fn partners(&self) -> Result<Vec<Partner>> {
        let rows: Vec<PartnerRow> = self
            .all("SELECT * FROM partners ORDER BY id", args![])
            .await?;
        rows.into_iter().map(PartnerRow::into_domain).collect()
    }

    async fn partner(&self, id: RowId) -> Result<Option<Partner>> {
        let row: Option<PartnerRow> = self
            .opt("SELECT * FROM partners WHERE id = $1", args![id])
            .await?;
        row.map(PartnerRow::into_domain).transpose()
    }

    async fn set_partner_state(&self, by: &Actor, id: RowId, to: PartnerState) -> Result<Partner> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let current: Option<(String,)> = tx
            .opt("SELECT state FROM partners WHERE id = $1", args![id])
            .await?;
        let (current,) = current.ok_or_else(|| StoreError::NotFound(format!("partner {id}")))?;
        let current = PartnerState::parse("state", &current)?;
        let to = changes::partner_transition(id, current, to)?;
        tx.execute(
            "UPDATE partners SET state = $1 WHERE id = $2",
            args![to.as_str(), id],
        )
        .await?;
        let detail = format!("{} -> {}", current.as_str(), to.as_str());
        tx.audit(&now, by, "partner.state", &format!("partner {id}"), &detail)
            .await?;
        let (name,): (String,) = tx
            .one("SELECT name FROM partners WHERE id = $1", args![id])
            .await?;
        if let Some(event) = super::events::partner_event(id, &name, to) {
            tx.record_event(&now, event).await?;
        }
        tx.commit().await?;
        Self::require(self.partner(id).await, || format!("partner {id}")).await
    }

    async fn create_grant(
        &self,
        by: &Actor,
        partner: RowId,
        ledger: &LedgerId,
        scope: &GrantScope,
    ) -> Result<Grant> {
        scope
            .check()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let p = Self::require(self.partner(partner).await, || format!("partner {partner}")).await?;
        changes::check_grantee(&p)?;
        let now = self.now();
        let s = StoredScope::of(scope);
        let mut tx = self.begin().await?;
        tx.execute(
            "INSERT INTO grants (partner_id, ledger_id, created_at, created_by, \
             expires_at, from_date, to_date, topics, personal_data) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9 = 1)",
            args![
                partner,
                ledger.as_str(),
                now.as_str(),
                &by.0,
                s.expires_at,
                s.from_date,
                s.to_date,
                s.topics,
                s.personal_data,
            ],
        )
        .await
        .map_err(|e| {
            constraint(e, || {
                format!("grant of ledger {ledger} to partner {partner}")
            })
        })?;
        tx.audit(
            &now,
            by,
            "grant.create",
            &format!("ledger {ledger}"),
            &format!("partner {partner}; {}", describe_scope(scope)),
        )
        .await?;
        tx.notify_grant(&now, partner, ledger, &GrantChange::Created(*scope))
            .await?;
        tx.commit().await?;
        self.grant(partner, ledger).await
    }

    async fn set_grant_scope(
        &self,
        by: &Actor,
        partner: RowId,
        ledger: &LedgerId,
        scope: &GrantScope,
    ) -> Result<Grant> {
        scope
            .check()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let now = self.now();
        let s = StoredScope::of(scope);
        let mut tx = self.begin().await?;
        // The scope before, for the notices of what changed. The row is locked first (an
        // UPDATE that changes nothing), so on PostgreSQL two changes at once read each other's
        // result rather than the same old scope; SQLite has one writer at a time anyway.
        tx.execute(
            "UPDATE grants SET topics = topics WHERE partner_id = $1 AND ledger_id = $2",
            args![partner, ledger.as_str()],
        )
        .await?;
        let before: Option<ScopeColumns> = tx
            .opt(
                concat!(
                    "SELECT ",
                    scope_columns!(),
                    " AS personal_data FROM grants g WHERE g.partner_id = $1 AND g.ledger_id = $2"
                ),
                args![partner, ledger.as_str()],
            )
            .await?;
        let before = before.map(ScopeColumns::into_domain).transpose()?;
        let n = tx
            .execute(
                "UPDATE grants SET expires_at = $3, from_date = $4, to_date = $5, topics = $6, \
                 personal_data = ($7 = 1) WHERE partner_id = $1 AND ledger_id = $2",
                args![
                    partner,
                    ledger.as_str(),
                    s.expires_at,
                    s.from_date,
                    s.to_date,
                    s.topics,
                    s.personal_data,
                ],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "grant of ledger {ledger} to partner {partner}"
            )));
        }
        tx.audit(
            &now,
            by,
            "grant.scope",
            &format!("ledger {ledger}"),
            &format!("partner {partner}; {}", describe_scope(scope)),
        )
        .await?;
        if let Some(before) = before
            && before != *scope
        {
            tx.notify_grant(
                &now,
                partner,
                ledger,
                &GrantChange::ScopeChanged(before, *scope),
            )
            .await?;
        }
        tx.commit().await?;
        self.grant(partner, ledger).await
    }

    async fn remove_grant(&self, by: &Actor, partner: RowId, ledger: &LedgerId) -> Result<bool> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let n = tx
            .execute(
                "DELETE FROM grants WHERE partner_id = $1 AND ledger_id = $2",
                args![partner, ledger.as_str()],
            )
            .await?;
        if n > 0 {
            tx.audit(
                &now,
                by,
                "grant.remove",
                &format!("ledger {ledger}"),
                &format!("partner {partner}"),
            )
            .await?;
            tx.notify_grant(&now, partner, ledger, &GrantChange::Removed)
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
        let rows: Vec<GrantRow> = self
            .all(
                concat!(
                    "SELECT g.partner_id, g.ledger_id, g.created_at, g.created_by, ",
                    scope_columns!(),
                    " AS personal_data FROM grants g \
                     WHERE ($1 IS NULL OR g.partner_id = $1) AND ($2 IS NULL OR g.ledger_id = $2) \
                     ORDER BY g.partner_id, g.ledger_id"
                ),
                args![partner, ledger.map(|l| l.as_str())],
            )
            .await?;
        rows.into_iter().map(GrantRow::into_domain).collect()
    }
}

impl<DB: Dialect> SqlStore<DB> {
    async fn grant(&self, partner: RowId, ledger: &LedgerId) -> Result<Grant> {
        self.grants(Some(partner), Some(ledger))
            .await?
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("grant of ledger {ledger}")))
    }
}

/// A scope in its stored columns (see migration 0008); `personal_data` 1 or 0, compared with 1
/// in the statement so each backend stores its own boolean.
pub(super) struct StoredScope {
    pub(super) expires_at: Option<String>,
    pub(super) from_date: Option<String>,
    pub(super) to_date: Option<String>,
    pub(super) topics: &'static str,
    pub(super) personal_data: i64,
}

impl StoredScope {
    pub(super) fn of(scope: &GrantScope) -> Self {
        StoredScope {
            expires_at: scope.expires_at.map(wire_time),
            from_date: scope.from.map(|d| d.to_string()),
            to_date: scope.to.map(|d| d.to_string()),
            topics: scope.topics.as_str(),
            personal_data: i64::from(scope.personal_data),
        }
    }
}

/// A scope in the audit log's words.
pub(super) fn describe_scope(scope: &GrantScope) -> String {
    format!(
        "expires {}; dates {}; topics {}; personal data {}",
        scope.expires_at.map_or("never".to_owned(), wire_time),
        scope.period(),
        scope.topics.as_str(),
        if scope.personal_data { "yes" } else { "no" }
    )
}
