//! Access requests: an approved accounting partner asks a merchant, by organisation number, for
//! access to all or some of its sales units with a proposed scope and a message; the merchant
//! approves (possibly narrowing the scope) or declines. The scope fields are the access form's
//! ([`super::merchant::posted_scope`]); the rules are the core's, applied by the store.

use super::PostedForm;
use super::auth::SignedIn;
use super::merchant::{Org, posted_scope};
use super::templates::{
    Layout, MerchantRequestsPage, PartnerRequestsPage, RequestRow, ScopeChoice,
};
use super::{PortalError, field, id_field, page, redirect_flash, scope_words, show_time};
use crate::AppState;
use axum::extract::State;
use axum::response::Response;
use ledgerport_core::ids::Msn;
use ledgerport_core::world::{AccessRequest, PartnerKind, PartnerState, RequestState, RowId};
use ledgerport_store::{NewAccessRequest, RequestFilter, StoreError};
use std::collections::HashMap;

fn units_words(r: &AccessRequest) -> String {
    if r.units.is_empty() {
        "all sales units".to_owned()
    } else {
        let msns: Vec<String> = r.units.iter().map(|m| m.to_string()).collect();
        format!("MSN {}", msns.join(", "))
    }
}

fn row(r: &AccessRequest, who: String, ledgers: String) -> RequestRow {
    RequestRow {
        id: r.id,
        who,
        units: units_words(r),
        ledgers,
        scope: scope_words(&r.scope),
        choice: ScopeChoice::of(&r.scope),
        invitation: r.invitation,
        message: r.message.clone(),
        state: r.state.as_str(),
        created: show_time(r.created_at),
        decided: r
            .decided_at
            .map(|t| {
                format!(
                    "{} by {}",
                    show_time(t),
                    r.decided_by.as_deref().unwrap_or("")
                )
            })
            .unwrap_or_default(),
    }
}

/// The MSNs typed in the form, separated by commas or spaces; none: all units.
fn posted_units(pairs: &[(String, String)]) -> Result<Vec<Msn>, PortalError> {
    field(pairs, "units")
        .unwrap_or("")
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| Msn::parse("units", s).map_err(|e| PortalError::BadRequest(e.to_string())))
        .collect()
}

/// The partner's requests and, for an approved accounting partner, the form to ask.
pub async fn partner_page(
    State(state): State<AppState>,
    who: SignedIn,
) -> Result<Response, PortalError> {
    let pid = who.partner()?;
    let partner = state
        .store
        .partner(pid)
        .await?
        .ok_or(PortalError::Forbidden)?;
    let requests = state
        .store
        .access_requests(&RequestFilter {
            partner: Some(pid),
            merchant: None,
        })
        .await?
        .iter()
        // The organisation number as typed, never the merchant's name: the page must look the
        // same whether or not the number named a merchant.
        .map(|r| row(r, r.org_id.clone(), String::new()))
        .collect();
    Ok(page(
        who.flash.is_some(),
        &PartnerRequestsPage {
            l: Layout::of(&who, "/portal/partner/requests"),
            may_ask: partner.kind == PartnerKind::Accounting
                && partner.state == PartnerState::Approved,
            requests,
            scope: ScopeChoice::default(),
        },
    ))
}

/// Sends a request. The answer is the same whether or not the organisation number names a
/// merchant (the store keeps a request naming none where no merchant sees it).
pub async fn ask(
    State(state): State<AppState>,
    PostedForm { who, pairs }: PostedForm,
) -> Result<Response, PortalError> {
    let pid = who.partner()?;
    let org_id = field(&pairs, "org").unwrap_or("").trim().to_owned();
    if org_id.is_empty()
        || !org_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(PortalError::BadRequest(
            "org: must be the merchant's organisation number".into(),
        ));
    }
    let units = posted_units(&pairs)?;
    let scope = posted_scope(&pairs, state.clock.now())?;
    let message = field(&pairs, "message").unwrap_or("").trim().to_owned();
    state
        .store
        .create_access_request(
            &who.actor(),
            NewAccessRequest {
                partner: pid,
                org_id: org_id.clone(),
                units,
                scope,
                message,
            },
        )
        .await?;
    Ok(redirect_flash(
        "/portal/partner/requests",
        "ok",
        "Request sent. If the organisation number is a merchant's, it sees your request in its \
         portal.",
    ))
}

/// The partner takes back one of its own pending requests; anyone else's is refused.
pub async fn withdraw(
    State(state): State<AppState>,
    PostedForm { who, pairs }: PostedForm,
) -> Result<Response, PortalError> {
    let pid = who.partner()?;
    let id = id_field(&pairs, "request")?;
    let r = state
        .store
        .access_request(id)
        .await?
        .filter(|r| r.partner_id == pid)
        .ok_or(PortalError::Forbidden)?;
    state
        .store
        .withdraw_access_request(&who.actor(), r.id)
        .await?;
    Ok(redirect_flash(
        "/portal/partner/requests",
        "ok",
        &format!("Withdrew the request to {}.", r.org_id),
    ))
}

/// The organisation's requests: pending ones with the approval form, then decided ones.
pub async fn merchant_page(
    State(state): State<AppState>,
    who: SignedIn,
) -> Result<Response, PortalError> {
    let org = Org::load(&state, &who).await?;
    let names: HashMap<RowId, String> = state
        .store
        .partners()
        .await?
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect();
    let (mut pending, mut decided) = (vec![], vec![]);
    for r in state
        .store
        .access_requests(&RequestFilter {
            partner: None,
            merchant: Some(org.id),
        })
        .await?
    {
        let name = names.get(&r.partner_id).cloned().unwrap_or_default();
        if r.state == RequestState::Pending {
            let ledgers: Vec<String> = state
                .store
                .request_ledgers(r.id)
                .await?
                .iter()
                .map(|l| l.to_string())
                .collect();
            pending.push(row(&r, name, ledgers.join(", ")));
        } else {
            decided.push(row(&r, name, String::new()));
        }
    }
    Ok(page(
        who.flash.is_some(),
        &MerchantRequestsPage {
            l: Layout::of(&who, "/portal/merchant/requests"),
            org: org.name,
            pending,
            decided,
        },
    ))
}

/// A request to the signed-in user's organisation named by the form; another's is 403.
async fn own_request(
    state: &AppState,
    org: &Org,
    pairs: &[(String, String)],
) -> Result<AccessRequest, PortalError> {
    let id = id_field(pairs, "request")?;
    state
        .store
        .access_request(id)
        .await?
        .filter(|r| r.merchant_id == Some(org.id))
        .ok_or(PortalError::Forbidden)
}

/// Approves within the posted scope; a scope wider than the proposed one is a 400 naming the
/// field (as the form names it).
pub async fn approve(
    State(state): State<AppState>,
    PostedForm { who, pairs }: PostedForm,
) -> Result<Response, PortalError> {
    let org = Org::load(&state, &who).await?;
    let r = own_request(&state, &org, &pairs).await?;
    let scope = posted_scope(&pairs, state.clock.now())?;
    let (_, granted) = state
        .store
        .approve_access_request(&who.actor(), r.id, &scope)
        .await
        .map_err(|e| match e {
            StoreError::Invalid(m) => {
                PortalError::BadRequest(match m.strip_prefix("expires_at:") {
                    Some(rest) => format!("expires_on:{rest}"),
                    None => m,
                })
            }
            other => other.into(),
        })?;
    let ledgers: Vec<String> = granted.iter().map(|l| l.to_string()).collect();
    Ok(redirect_flash(
        "/portal/merchant/requests",
        "ok",
        &format!(
            "Approved: {} ledger(s) granted{}.",
            ledgers.len(),
            if ledgers.is_empty() {
                String::new()
            } else {
                format!(" ({})", ledgers.join(", "))
            }
        ),
    ))
}

pub async fn decline(
    State(state): State<AppState>,
    PostedForm { who, pairs }: PostedForm,
) -> Result<Response, PortalError> {
    let org = Org::load(&state, &who).await?;
    let r = own_request(&state, &org, &pairs).await?;
    state
        .store
        .decline_access_request(&who.actor(), r.id)
        .await?;
    Ok(redirect_flash(
        "/portal/merchant/requests",
        "ok",
        "Declined: nothing was granted.",
    ))
}
