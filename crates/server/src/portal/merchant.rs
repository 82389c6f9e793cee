//! A merchant user's pages. Everything here is read through the user's own organisation: units
//! from `sales_units(Some(org))`, ledgers from the owner's listing scope, each opened by the
//! access policy for this user. An id from a URL or form that is not among them is refused with
//! 403 before anything is done.

use super::PostedForm;
use super::auth::SignedIn;
use super::templates::{
    ConfirmPage, EditAccessPage, GrantedPartner, KeyRow, Layout, MerchantKeysPage,
    MerchantPartnersPage, ScopeChoice, UnitChoice, UnitRow,
};
use super::{PortalError, id_field, page, redirect_flash, scope_words, show_time};
use crate::AppState;
use crate::credentials::regenerate_secret;
use axum::extract::{Query, State};
use axum::response::Response;
use ledgerport_core::access::LedgerAccess;
use ledgerport_core::ids::{LedgerDate, LedgerId};
use ledgerport_core::world::{
    Grant, GrantScope, KeyOwner, Partner, PartnerKind, PartnerState, RowId, SalesUnit,
    SalesUnitKind, Topics,
};
use ledgerport_store::LedgerView;
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};

/// The organisation's sales units and ledgers, as one consistent read for one request.
pub(super) struct Org {
    pub id: RowId,
    pub name: String,
    /// The merchant's name alone (`name` adds the organisation number).
    pub merchant_name: String,
    pub units: Vec<SalesUnit>,
    /// The ledgers the organisation owns, in ledger id order, each as the policy let the user
    /// read it: `access[i]` is the capability for `ledgers[i]`.
    pub ledgers: Vec<LedgerView>,
    access: Vec<LedgerAccess>,
}

impl Org {
    /// The signed-in merchant user's organisation. Its ledgers come from the owner's listing
    /// scope, one keyset query per page, and each goes through the access policy as this user.
    pub async fn load(state: &AppState, who: &SignedIn) -> Result<Org, PortalError> {
        let id = who.merchant()?;
        let m = state
            .store
            .merchant(id)
            .await?
            .ok_or(PortalError::Forbidden)?;
        let units = state.store.sales_units(Some(id)).await?;
        let (grants, ledgers) = who.readable_ledgers(state).await?.into_iter().unzip();
        Ok(Org {
            id,
            name: format!("{} ({})", m.name, m.business.id),
            merchant_name: m.name,
            units,
            ledgers,
            access: grants,
        })
    }

    /// The capability the policy gave this user for one of the organisation's ledgers.
    pub fn access_to(&self, view: &LedgerView) -> Result<&LedgerAccess, PortalError> {
        self.access
            .iter()
            .find(|a| *a.ledger_id() == view.ledger.ledger_id)
            .ok_or(PortalError::Forbidden)
    }

    /// The organisation's ledger with this id; another organisation's or an unknown id is 403.
    pub fn ledger(&self, id: &str) -> Result<&LedgerView, PortalError> {
        self.ledgers
            .iter()
            .find(|v| v.ledger.ledger_id.as_str() == id)
            .ok_or(PortalError::Forbidden)
    }

    pub(super) fn ledger_of(&self, unit: &SalesUnit) -> Option<&LedgerView> {
        self.ledgers
            .iter()
            .find(|v| v.units.iter().any(|u| u.msn == unit.msn))
    }
}

pub(super) fn kind(u: &SalesUnit) -> &'static str {
    match u.kind {
        SalesUnitKind::Api => "api",
        SalesUnitKind::VmNumber => "vm-number",
    }
}

pub async fn partners(
    State(state): State<AppState>,
    who: SignedIn,
) -> Result<Response, PortalError> {
    let org = Org::load(&state, &who).await?;
    let names: HashMap<RowId, Partner> = state
        .store
        .partners()
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let mut units = vec![];
    for u in &org.units {
        let view = org.ledger_of(u);
        let mut partners = vec![];
        if let Some(v) = view {
            for g in state.store.grants(None, Some(&v.ledger.ledger_id)).await? {
                let name = names
                    .get(&g.partner_id)
                    .map(|p| {
                        if p.state == PartnerState::Approved {
                            p.name.clone()
                        } else {
                            format!("{} ({})", p.name, p.state.as_str())
                        }
                    })
                    .unwrap_or_else(|| format!("partner {}", g.partner_id));
                partners.push(GrantedPartner {
                    id: g.partner_id,
                    name,
                    since: g.created_at.strftime("%Y-%m-%d").to_string(),
                    scope: scope_words(&g.scope),
                    expired: g.scope.expired_at(state.clock.now()),
                });
            }
        }
        units.push(UnitRow {
            name: u.name.clone(),
            msn: u.msn.to_string(),
            kind: kind(u),
            handle: u.handle.to_string(),
            currency: view
                .map(|v| v.ledger.currency.as_str().to_owned())
                .unwrap_or_default(),
            account: view
                .map(|v| {
                    format!(
                        "{} {}",
                        v.ledger.payout_account.scheme, v.ledger.payout_account.id
                    )
                })
                .unwrap_or_else(|| "—".into()),
            ledger: view
                .map(|v| v.ledger.ledger_id.to_string())
                .unwrap_or_default(),
            partners,
        });
    }
    let had = who.flash.is_some();
    Ok(page(
        had,
        &MerchantPartnersPage {
            l: Layout::of(&who, "/portal/merchant/partners"),
            org: org.name,
            units,
        },
    ))
}

#[derive(Deserialize)]
pub struct EditQuery {
    #[serde(default)]
    q: String,
    partner: Option<String>,
    all: Option<String>,
    none: Option<String>,
}

/// Approved accounting partners: the only ones a merchant may find and grant.
async fn grantable(state: &AppState) -> Result<Vec<Partner>, PortalError> {
    Ok(state
        .store
        .partners()
        .await?
        .into_iter()
        .filter(|p| p.kind == PartnerKind::Accounting && p.state == PartnerState::Approved)
        .collect())
}

pub async fn edit_access(
    State(state): State<AppState>,
    who: SignedIn,
    Query(q): Query<EditQuery>,
) -> Result<Response, PortalError> {
    let org = Org::load(&state, &who).await?;
    let all = grantable(&state).await?;
    let needle = q.q.trim().to_lowercase();
    let results = all
        .iter()
        .filter(|p| {
            needle.is_empty()
                || p.name.to_lowercase().contains(&needle)
                || p.business.as_ref().is_some_and(|b| b.id.contains(&needle))
        })
        .map(|p| {
            (
                p.id,
                p.name.clone(),
                p.business
                    .as_ref()
                    .map(|b| b.id.clone())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let selected = match q.partner.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => {
            let id: RowId = s
                .parse()
                .map_err(|_| PortalError::BadRequest("partner: must be a number".into()))?;
            // A suspended or unknown partner cannot be chosen, even by editing the URL.
            Some(
                all.iter()
                    .find(|p| p.id == id)
                    .ok_or(PortalError::NotFound)?,
            )
        }
    };
    let mut units = vec![];
    let mut scope = ScopeChoice::default();
    if let Some(p) = selected {
        let grants = org_grants(&state, &org, p.id).await?;
        scope = current_scope(&grants);
        let granted: BTreeSet<String> = grants.iter().map(|g| g.ledger_id.to_string()).collect();
        for u in &org.units {
            let ledger = org
                .ledger_of(u)
                .map(|v| v.ledger.ledger_id.to_string())
                .unwrap_or_default();
            let ticked = !ledger.is_empty()
                && q.none.is_none()
                && (q.all.is_some() || granted.contains(&ledger));
            units.push(UnitChoice {
                name: u.name.clone(),
                msn: u.msn.to_string(),
                kind: kind(u),
                handle: u.handle.to_string(),
                ledger,
                ticked,
            });
        }
    }
    let had = who.flash.is_some();
    Ok(page(
        had,
        &EditAccessPage {
            l: Layout::of(&who, "/portal/merchant/partners"),
            q: q.q.clone(),
            results,
            selected_id: selected.map(|p| p.id).unwrap_or(0),
            selected_name: selected.map(|p| p.name.clone()),
            units,
            scope,
        },
    ))
}

/// The partner's grants on the organisation's ledgers (expired ones too).
async fn org_grants(
    state: &AppState,
    org: &Org,
    partner: RowId,
) -> Result<Vec<Grant>, PortalError> {
    Ok(state
        .store
        .grants(Some(partner), None)
        .await?
        .into_iter()
        .filter(|g| {
            org.ledgers
                .iter()
                .any(|v| v.ledger.ledger_id == g.ledger_id)
        })
        .collect())
}

/// The form's scope fields for a partner with these grants: their common scope; nothing chosen
/// when there are none (a new grant asks for every choice, personal data never ticked in
/// advance) or when they differ.
fn current_scope(grants: &[Grant]) -> ScopeChoice {
    let Some(first) = grants.first() else {
        return ScopeChoice::default();
    };
    if grants.iter().any(|g| g.scope != first.scope) {
        return ScopeChoice {
            differs: true,
            ..ScopeChoice::default()
        };
    }
    ScopeChoice::of(&first.scope)
}

/// The scope a posted access form asks for; a bad field is a 400 naming it. `expires_on` is a
/// date: the grant ends at 00:00 UTC of that day, which must be after `now`. The partner's
/// access request form and the merchant's approval form post the same fields.
pub(super) fn posted_scope(
    pairs: &[(String, String)],
    now: jiff::Timestamp,
) -> Result<GrantScope, PortalError> {
    let bad = |e: ledgerport_core::ParseError| PortalError::BadRequest(e.to_string());
    let date = |name: &'static str| -> Result<Option<LedgerDate>, PortalError> {
        match super::field(pairs, name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            None => Ok(None),
            Some(v) => LedgerDate::parse(name, v).map(Some).map_err(bad),
        }
    };
    let expires_at = match date("expires_on")? {
        None => None,
        Some(d) => {
            let at = jiff::tz::TimeZone::UTC
                .to_timestamp(d.date().to_datetime(jiff::civil::Time::midnight()))
                .map_err(|_| PortalError::BadRequest("expires_on: is not a usable date".into()))?;
            if at <= now {
                return Err(PortalError::BadRequest(format!(
                    "expires_on: access would end at once; choose a day after {}",
                    now.strftime("%Y-%m-%d")
                )));
            }
            Some(at)
        }
    };
    let mut topics = Topics {
        funds: false,
        fees: false,
    };
    for (_, v) in pairs.iter().filter(|(k, _)| k == "topics") {
        match v.as_str() {
            "funds" => topics.funds = true,
            "fees" => topics.fees = true,
            _ => {
                return Err(PortalError::BadRequest(
                    "topics: must be funds or fees".into(),
                ));
            }
        }
    }
    let scope = GrantScope {
        expires_at,
        from: date("from")?,
        to: date("to")?,
        topics,
        personal_data: super::field(pairs, "personal_data") == Some("yes"),
    };
    scope.check().map_err(|mut e| {
        if e.field == "expires_at" {
            e.field = "expires_on";
        }
        bad(e)
    })?;
    Ok(scope)
}

/// Saves the ticked units: grants on their ledgers, and removes the partner's grants on the
/// organisation's other ledgers. Units of another organisation in the form are refused whole.
pub async fn save_access(
    State(state): State<AppState>,
    PostedForm { who, pairs }: PostedForm,
) -> Result<Response, PortalError> {
    let org = Org::load(&state, &who).await?;
    let partner_id = id_field(&pairs, "partner")?;
    let partner = grantable(&state)
        .await?
        .into_iter()
        .find(|p| p.id == partner_id)
        .ok_or(PortalError::NotFound)?;
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for (_, v) in pairs.iter().filter(|(k, _)| k == "unit") {
        let unit = org
            .units
            .iter()
            .find(|u| u.msn.to_string() == v.trim())
            .ok_or(PortalError::Forbidden)?;
        let view = org.ledger_of(unit).ok_or_else(|| {
            PortalError::BadRequest(format!("unit: sales unit {} has no ledger yet", unit.msn))
        })?;
        wanted.insert(view.ledger.ledger_id.to_string());
    }
    // The units are checked first: a form naming another organisation's unit is refused whole,
    // whatever else it holds.
    let scope = posted_scope(&pairs, state.clock.now())?;
    let granted: HashMap<String, GrantScope> = org_grants(&state, &org, partner.id)
        .await?
        .into_iter()
        .map(|g| (g.ledger_id.to_string(), g.scope))
        .collect();
    let by = who.actor();
    let (mut added, mut changed, mut removed) = (0, 0, 0);
    for v in &org.ledgers {
        let id = v.ledger.ledger_id.to_string();
        match (wanted.contains(&id), granted.get(&id)) {
            (true, None) => {
                state
                    .store
                    .create_grant(&by, partner.id, &v.ledger.ledger_id, &scope)
                    .await?;
                added += 1;
            }
            (true, Some(old)) if *old != scope => {
                state
                    .store
                    .set_grant_scope(&by, partner.id, &v.ledger.ledger_id, &scope)
                    .await?;
                changed += 1;
            }
            (false, Some(_))
                if state
                    .store
                    .remove_grant(&by, partner.id, &v.ledger.ledger_id)
                    .await? =>
            {
                removed += 1;
            }
            _ => {}
        }
    }
    let changed = if changed > 0 {
        format!(" {changed} changed in scope.")
    } else {
        String::new()
    };
    Ok(redirect_flash(
        "/portal/merchant/partners",
        "ok",
        &format!(
            "Saved access for {}: {added} ledger(s) granted, {removed} removed.{changed}",
            partner.name
        ),
    ))
}

#[derive(Deserialize)]
pub struct RemoveQuery {
    partner: String,
    ledger: String,
}

pub async fn confirm_remove(
    State(state): State<AppState>,
    who: SignedIn,
    Query(q): Query<RemoveQuery>,
) -> Result<Response, PortalError> {
    let org = Org::load(&state, &who).await?;
    let view = org.ledger(q.ledger.trim())?;
    let partner_id: RowId = q
        .partner
        .trim()
        .parse()
        .map_err(|_| PortalError::BadRequest("partner: must be a number".into()))?;
    // Only a partner holding a grant on this ledger is named: any other id (a partner applied,
    // an integration partner, one never granted) is not found, so ids cannot be walked for names.
    if state
        .store
        .grants(Some(partner_id), Some(&view.ledger.ledger_id))
        .await?
        .is_empty()
    {
        return Err(PortalError::NotFound);
    }
    let partner = state
        .store
        .partner(partner_id)
        .await?
        .ok_or(PortalError::NotFound)?;
    let units: Vec<String> = view
        .units
        .iter()
        .map(|u| format!("{} ({})", u.name, u.msn))
        .collect();
    Ok(page(
        false,
        &ConfirmPage {
            l: Layout::of(&who, "/portal/merchant/partners"),
            heading: format!("Remove {}?", partner.name),
            text: format!(
                "{} will no longer be able to read ledger {} ({}). This takes effect at once.",
                partner.name,
                view.ledger.ledger_id,
                units.join(", ")
            ),
            action: "/portal/merchant/partners/remove",
            fields: vec![
                ("partner", partner.id.to_string()),
                ("ledger", view.ledger.ledger_id.to_string()),
            ],
            button: "Remove access",
            back: "/portal/merchant/partners",
        },
    ))
}

pub async fn remove(
    State(state): State<AppState>,
    PostedForm { who, pairs }: PostedForm,
) -> Result<Response, PortalError> {
    let org = Org::load(&state, &who).await?;
    let ledger = super::field(&pairs, "ledger")
        .unwrap_or("")
        .trim()
        .to_owned();
    let view = org.ledger(&ledger)?;
    let partner_id = id_field(&pairs, "partner")?;
    let id: LedgerId = view.ledger.ledger_id.clone();
    let removed = state
        .store
        .remove_grant(&who.actor(), partner_id, &id)
        .await?;
    // Without a grant there is nothing to remove and no partner to name (see `confirm_remove`).
    if !removed {
        return Err(PortalError::NotFound);
    }
    let name = state
        .store
        .partner(partner_id)
        .await?
        .map(|p| p.name)
        .unwrap_or_else(|| format!("partner {partner_id}"));
    Ok(redirect_flash(
        "/portal/merchant/partners",
        "ok",
        &format!("Removed {name}'s access to ledger {id}."),
    ))
}

/// The organisation's keys: its api units' keys and its merchant-level keys.
fn own_key(org: &Org, owner: KeyOwner) -> Option<String> {
    match owner {
        KeyOwner::SalesUnit(msn) => org
            .units
            .iter()
            .find(|u| u.msn == msn)
            .map(|u| format!("{} (MSN {})", u.name, u.msn)),
        KeyOwner::Merchant(m) if m == org.id => Some("Merchant-level keys".into()),
        _ => None,
    }
}

async fn keys_page(
    state: &AppState,
    who: &SignedIn,
    shown: Option<(String, String)>,
) -> Result<Response, PortalError> {
    let org = Org::load(state, who).await?;
    let keys = state
        .store
        .keys()
        .await?
        .into_iter()
        .filter_map(|k| {
            own_key(&org, k.owner).map(|owner| KeyRow {
                id: k.id,
                owner,
                client_id: k.client_id,
                subscription: k.subscription_keys.map(|s| s.to_vec()).unwrap_or_default(),
                revoked: k.revoked,
                issued: show_time(k.created_at),
            })
        })
        .collect();
    Ok(page(
        who.flash.is_some(),
        &MerchantKeysPage {
            l: Layout::of(who, "/portal/merchant/keys"),
            keys,
            shown,
        },
    ))
}

pub async fn keys(State(state): State<AppState>, who: SignedIn) -> Result<Response, PortalError> {
    keys_page(&state, &who, None).await
}

/// Regenerates a key's secret and shows it on this one response (never stored, never again).
pub async fn regenerate(
    State(state): State<AppState>,
    PostedForm { who, pairs }: PostedForm,
) -> Result<Response, PortalError> {
    let org = Org::load(&state, &who).await?;
    let key_id = id_field(&pairs, "key")?;
    let key = state
        .store
        .key(key_id)
        .await?
        .ok_or(PortalError::Forbidden)?;
    if own_key(&org, key.owner).is_none() {
        return Err(PortalError::Forbidden);
    }
    let (key, secret) = regenerate_secret(state.store.as_ref(), &who.actor(), key.id).await?;
    let mut r = keys_page(
        &state,
        &who,
        Some((key.client_id, secret.reveal().to_owned())),
    )
    .await?;
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}
