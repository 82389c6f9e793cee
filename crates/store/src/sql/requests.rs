//! [`RequestStore`] on SQL (migration `0010_access_requests.sql`): partners' access requests
//! and the merchant's answer. The rules are the core's ([`ledgerport_core::changes`]): the
//! message, the states, and that an approval only narrows the proposed scope. An approval
//! writes its grants and the request's new state in one transaction, so a request is approved
//! exactly when its grants exist.

use super::world::{StoredScope, describe_scope};
use super::{Dialect, SqlStore, Tx, WriteTx, args};
use crate::rows::{ScopeColumns, scope_columns, ts};
use crate::{
    Actor, InvitationAnswer, NewAccessRequest, RequestFilter, RequestStore, Result, StoreError,
    WorldStore,
};
use async_trait::async_trait;
use ledgerport_core::changes;
use ledgerport_core::ids::{LedgerId, Msn};
use ledgerport_core::notices::{GrantChange, RequestEvent};
use ledgerport_core::world::{AccessRequest, GrantScope, RequestState, RowId};
use sqlx::AssertSqlSafe;

/// The request's columns; the table is aliased `g` so the grants' [`scope_columns`] read its
/// scope the same way.
macro_rules! request_columns {
    () => {
        concat!(
            "g.id, g.partner_id, g.org_id, g.merchant_id, g.message, g.state, g.created_at, \
             g.decided_at, g.decided_by, g.invitation, ",
            scope_columns!(),
            " AS personal_data"
        )
    };
}

#[derive(sqlx::FromRow)]
struct RequestRow {
    id: i64,
    partner_id: i64,
    org_id: String,
    merchant_id: Option<i64>,
    message: String,
    state: String,
    created_at: String,
    decided_at: Option<String>,
    decided_by: Option<String>,
    invitation: Option<String>,
    #[sqlx(flatten)]
    scope: ScopeColumns,
}

impl RequestRow {
    fn into_domain(self, units: Vec<Msn>) -> Result<AccessRequest> {
        Ok(AccessRequest {
            id: self.id,
            partner_id: self.partner_id,
            org_id: self.org_id,
            merchant_id: self.merchant_id,
            units,
            scope: self.scope.into_domain()?,
            message: self.message,
            state: RequestState::parse("state", &self.state)?,
            created_at: ts(&self.created_at)?,
            decided_at: self.decided_at.as_deref().map(ts).transpose()?,
            decided_by: self.decided_by,
            invitation: self.invitation.is_some(),
        })
    }
}

/// The ledgers an approval of request `$2` grants: the merchant's (`$1`) ledgers that settle for
/// a unit asked for, or all of them when the request names no unit.
const REQUEST_LEDGERS: &str = "SELECT l.ledger_id FROM ledgers l WHERE l.owner_merchant_id = $1 \
     AND (NOT EXISTS (SELECT 1 FROM access_request_units r WHERE r.request_id = $2) \
          OR EXISTS (SELECT 1 FROM ledger_units lu JOIN access_request_units r ON r.msn = lu.msn \
                     WHERE lu.ledger_id = l.ledger_id AND r.request_id = $2)) \
     ORDER BY length(l.ledger_id), l.ledger_id";

impl<DB: Dialect> SqlStore<DB> {
    async fn requests_where(
        &self,
        cond: &str,
        args: Vec<super::Arg>,
    ) -> Result<Vec<AccessRequest>> {
        let rows: Vec<RequestRow> = self
            .all(
                AssertSqlSafe(format!(
                    "SELECT {} FROM access_requests g WHERE {cond} ORDER BY g.id DESC",
                    request_columns!()
                )),
                args,
            )
            .await?;
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let units: Vec<(i64, i64)> = if ids.is_empty() {
            vec![]
        } else {
            self.all(
                AssertSqlSafe(format!(
                    "SELECT request_id, msn FROM access_request_units WHERE {} \
                     ORDER BY request_id, msn",
                    DB::in_list("request_id", "$1")
                )),
                vec![super::Arg::List(super::List::Ints(ids))],
            )
            .await?
        };
        rows.into_iter()
            .map(|r| {
                let mine = units
                    .iter()
                    .filter(|(id, _)| *id == r.id)
                    .map(|(_, m)| Msn::parse("msn", &m.to_string()))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                r.into_domain(mine)
            })
            .collect()
    }

    /// Moves request `id` from pending to `to` in `tx` (the core's transition), recording who
    /// and when; a request another decision moved first is refused, not moved twice.
    async fn decide_request(
        &self,
        tx: &mut WriteTx<DB>,
        by: &Actor,
        now: &str,
        r: &AccessRequest,
        to: RequestState,
    ) -> Result<()> {
        changes::request_transition(r.id, r.state, to)?;
        let n = tx
            .execute(
                "UPDATE access_requests SET state = $2, decided_at = $3, decided_by = $4 \
                 WHERE id = $1 AND state = 'pending'",
                args![r.id, to.as_str(), now, &by.0],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::Invalid(format!(
                "access request {} was decided meanwhile",
                r.id
            )));
        }
        tx.audit(
            now,
            by,
            &format!("request.{}", to.as_str()),
            &format!("access request {}", r.id),
            &format!("partner {}", r.partner_id),
        )
        .await
    }

    /// Approves `r` (pending, of `merchant`) within `scope` in `tx`: grants its ledgers the
    /// partner holds no grant on, each telling both sides, moves it to approved and tells the
    /// partner. Returns the ledgers granted. The caller has checked the narrowing and the
    /// grantee.
    async fn approve_in(
        &self,
        tx: &mut WriteTx<DB>,
        by: &Actor,
        now: &str,
        r: &AccessRequest,
        merchant: RowId,
        scope: &GrantScope,
    ) -> Result<Vec<LedgerId>> {
        let id = r.id;
        let s = StoredScope::of(scope);
        let ledgers: Vec<(String,)> = tx.all(REQUEST_LEDGERS, args![merchant, id]).await?;
        if ledgers.is_empty() {
            return Err(StoreError::Invalid(
                "units: no ledger of the merchant settles for the units asked for".into(),
            ));
        }
        self.decide_request(tx, by, now, r, RequestState::Approved)
            .await?;
        let mut granted = vec![];
        for (l,) in &ledgers {
            // A ledger the partner holds a grant on already keeps it as it is: grants the
            // merchant made stay the merchant's.
            let n = tx
                .execute(
                    "INSERT INTO grants (partner_id, ledger_id, created_at, created_by, \
                     expires_at, from_date, to_date, topics, personal_data) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9 = 1) \
                     ON CONFLICT (partner_id, ledger_id) DO NOTHING",
                    args![
                        r.partner_id,
                        l.as_str(),
                        now,
                        &by.0,
                        s.expires_at.clone(),
                        s.from_date.clone(),
                        s.to_date.clone(),
                        s.topics,
                        s.personal_data,
                    ],
                )
                .await?;
            if n > 0 {
                tx.audit(
                    now,
                    by,
                    "grant.create",
                    &format!("ledger {l}"),
                    &format!(
                        "partner {}; access request {id}; {}",
                        r.partner_id,
                        describe_scope(scope)
                    ),
                )
                .await?;
                let ledger = LedgerId::parse("ledger_id", l)?;
                // Both sides are told of each grant made, as of one made in the access form.
                tx.notify_grant(now, r.partner_id, &ledger, &GrantChange::Created(*scope))
                    .await?;
                granted.push(ledger);
            }
        }
        tx.notify_request(now, r, &RequestEvent::Approved(*scope, granted.len()))
            .await?;
        Ok(granted)
    }

    /// Writes a pending request in `tx` (audited) and returns it as stored. `invitation`: the
    /// link's id, for a request made by answering an invitation.
    #[allow(clippy::too_many_arguments)]
    async fn insert_request(
        &self,
        tx: &mut WriteTx<DB>,
        by: &Actor,
        now: &str,
        r: &NewAccessRequest,
        org_id: &str,
        merchant: Option<RowId>,
        invitation: Option<&str>,
    ) -> Result<AccessRequest> {
        let s = StoredScope::of(&r.scope);
        let (id,): (i64,) = tx
            .one(
                "INSERT INTO access_requests (partner_id, org_id, merchant_id, expires_at, \
                 from_date, to_date, topics, personal_data, message, state, created_at, \
                 invitation) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8 = 1, $9, 'pending', $10, $11) \
                 RETURNING id",
                args![
                    r.partner,
                    org_id,
                    merchant,
                    s.expires_at,
                    s.from_date,
                    s.to_date,
                    s.topics,
                    s.personal_data,
                    r.message.as_str(),
                    now,
                    invitation,
                ],
            )
            .await
            .map_err(|e| {
                super::constraint(e, || {
                    "invitation: this organisation has answered the invitation already".into()
                })
            })?;
        let mut units: Vec<Msn> = r.units.clone();
        units.sort_unstable_by_key(|m| m.get());
        units.dedup();
        tx.insert_rows(
            "INSERT INTO access_request_units (request_id, msn)",
            2,
            "",
            units
                .iter()
                .map(|m| args![id, i64::from(m.get())])
                .collect(),
        )
        .await?;
        tx.audit(
            now,
            by,
            "request.create",
            &format!("access request {id}"),
            &format!(
                "partner {}; org {org_id}; {}{}",
                r.partner,
                describe_scope(&r.scope),
                if invitation.is_some() {
                    "; by invitation"
                } else {
                    ""
                }
            ),
        )
        .await?;
        Ok(AccessRequest {
            id,
            partner_id: r.partner,
            org_id: org_id.to_owned(),
            merchant_id: merchant,
            units,
            scope: r.scope,
            message: r.message.clone(),
            state: RequestState::Pending,
            created_at: ts(now)?,
            decided_at: None,
            decided_by: None,
            invitation: invitation.is_some(),
        })
    }

    async fn require_request(&self, id: RowId) -> Result<AccessRequest> {
        self.access_request(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("access request {id}")))
    }
}

#[async_trait]
impl<DB: Dialect> RequestStore for SqlStore<DB> {
    async fn create_access_request(
        &self,
        by: &Actor,
        r: NewAccessRequest,
    ) -> Result<AccessRequest> {
        r.scope
            .check()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        changes::check_request_message(&r.message)?;
        let p = self
            .partner(r.partner)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("partner {}", r.partner)))?;
        changes::check_grantee(&p)?;
        let org_id = r.org_id.trim().to_owned();
        if org_id.is_empty() || org_id.len() > 64 {
            return Err(StoreError::Invalid(
                "org_id: must be an organisation number".into(),
            ));
        }
        let merchant = self.merchant_by_org(&org_id).await?.map(|m| m.id);
        let now = self.now();
        let mut tx = self.begin().await?;
        let made = self
            .insert_request(&mut tx, by, &now, &r, &org_id, merchant, None)
            .await?;
        // The merchant's users are told in the request's transaction (nobody, when the number
        // names no merchant).
        tx.notify_request(&now, &made, &RequestEvent::Made).await?;
        tx.commit().await?;
        self.require_request(made.id).await
    }

    async fn access_requests(&self, filter: &RequestFilter) -> Result<Vec<AccessRequest>> {
        self.requests_where(
            "($1 IS NULL OR g.partner_id = $1) AND ($2 IS NULL OR g.merchant_id = $2)",
            args![filter.partner, filter.merchant],
        )
        .await
    }

    async fn access_request(&self, id: RowId) -> Result<Option<AccessRequest>> {
        Ok(self.requests_where("g.id = $1", args![id]).await?.pop())
    }

    async fn request_ledgers(&self, id: RowId) -> Result<Vec<LedgerId>> {
        let r = self.require_request(id).await?;
        let Some(merchant) = r.merchant_id else {
            return Ok(vec![]);
        };
        let rows: Vec<(String,)> = self.all(REQUEST_LEDGERS, args![merchant, id]).await?;
        rows.into_iter()
            .map(|(l,)| Ok(LedgerId::parse("ledger_id", &l)?))
            .collect()
    }

    async fn approve_access_request(
        &self,
        by: &Actor,
        id: RowId,
        scope: &GrantScope,
    ) -> Result<(AccessRequest, Vec<LedgerId>)> {
        let r = self.require_request(id).await?;
        let Some(merchant) = r.merchant_id else {
            return Err(StoreError::NotFound(format!("access request {id}")));
        };
        changes::request_transition(id, r.state, RequestState::Approved)?;
        changes::check_narrowing(&r.scope, scope)?;
        scope
            .check()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let p = self
            .partner(r.partner_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("partner {}", r.partner_id)))?;
        changes::check_grantee(&p)?;
        let now = self.now();
        let mut tx = self.begin().await?;
        let granted = self
            .approve_in(&mut tx, by, &now, &r, merchant, scope)
            .await?;
        tx.commit().await?;
        Ok((self.require_request(id).await?, granted))
    }

    async fn decline_access_request(&self, by: &Actor, id: RowId) -> Result<AccessRequest> {
        let r = self.require_request(id).await?;
        if r.merchant_id.is_none() {
            return Err(StoreError::NotFound(format!("access request {id}")));
        }
        let now = self.now();
        let mut tx = self.begin().await?;
        self.decide_request(&mut tx, by, &now, &r, RequestState::Declined)
            .await?;
        tx.notify_request(&now, &r, &RequestEvent::Declined).await?;
        tx.commit().await?;
        self.require_request(id).await
    }

    async fn withdraw_access_request(&self, by: &Actor, id: RowId) -> Result<AccessRequest> {
        let r = self.require_request(id).await?;
        let now = self.now();
        let mut tx = self.begin().await?;
        self.decide_request(&mut tx, by, &now, &r, RequestState::Withdrawn)
            .await?;
        tx.notify_request(&now, &r, &RequestEvent::Withdrawn)
            .await?;
        tx.commit().await?;
        self.require_request(id).await
    }

    async fn answer_invitation(
        &self,
        by: &Actor,
        a: InvitationAnswer,
    ) -> Result<(AccessRequest, Vec<LedgerId>)> {
        let invitation = a.invitation.trim();
        if invitation.is_empty() || invitation.len() > 64 {
            return Err(StoreError::Invalid(
                "invitation: must be the invitation's id".into(),
            ));
        }
        a.proposed
            .check()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        if let Some(scope) = &a.grant {
            changes::check_narrowing(&a.proposed, scope)?;
            scope
                .check()
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
        }
        let p = self
            .partner(a.partner)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("partner {}", a.partner)))?;
        changes::check_grantee(&p)?;
        let m = self
            .merchant(a.merchant)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("merchant {}", a.merchant)))?;
        let new = NewAccessRequest {
            partner: a.partner,
            org_id: m.business.id.clone(),
            units: a.units,
            scope: a.proposed,
            message: String::new(),
        };
        let now = self.now();
        let mut tx = self.begin().await?;
        let r = self
            .insert_request(
                &mut tx,
                by,
                &now,
                &new,
                &m.business.id,
                Some(m.id),
                Some(invitation),
            )
            .await?;
        let granted = match &a.grant {
            Some(scope) => self.approve_in(&mut tx, by, &now, &r, m.id, scope).await?,
            None => {
                self.decide_request(&mut tx, by, &now, &r, RequestState::Declined)
                    .await?;
                tx.notify_request(&now, &r, &RequestEvent::Declined).await?;
                vec![]
            }
        };
        tx.commit().await?;
        Ok((self.require_request(r.id).await?, granted))
    }
}
