//! A partner user's page: its status, the ledgers merchants granted it, and its accounting keys.

use super::PostedForm;
use super::auth::SignedIn;
use super::templates::{GrantRow, KeyRow, Layout, PartnerPage};
use super::{PortalError, id_field, page, redirect_flash, scope_words, show_time};
use crate::AppState;
use crate::credentials::{IssueError, issue_keys, regenerate_secret};
use axum::extract::State;
use axum::response::Response;
use ledgerport_core::access::LedgerAccess;
use ledgerport_core::ids::LedgerId;
use ledgerport_core::world::{KeyKind, KeyOwner, PartnerState, RowId};
use ledgerport_store::LedgerView;
use std::collections::HashMap;

async fn render(
    state: &AppState,
    who: &SignedIn,
    shown: Option<(String, String)>,
) -> Result<Response, PortalError> {
    let pid = who.partner()?;
    let partner = state
        .store
        .partner(pid)
        .await?
        .ok_or(PortalError::Forbidden)?;
    // The granted ledgers as this user may read them: the partner's listing scope, each through
    // the access policy. A partner that is not approved reads none, so its grants show without
    // the ledgers' details.
    let readable: HashMap<LedgerId, (LedgerAccess, LedgerView)> = who
        .readable_ledgers(state)
        .await?
        .into_iter()
        .map(|(access, view)| (view.ledger.ledger_id.clone(), (access, view)))
        .collect();
    let approved = partner.state == PartnerState::Approved;
    let mut merchants: HashMap<RowId, String> = HashMap::new();
    let mut grants = vec![];
    for g in state.store.grants(Some(pid), None).await? {
        // An approved partner lists what the policy lets it read, so an expired grant drops
        // out here as from the Report API; one not approved sees its grants without details.
        if approved && !readable.contains_key(&g.ledger_id) {
            continue;
        }
        let (merchant, units, scope) = match readable.get(&g.ledger_id) {
            Some((access, view)) => {
                let owner = view.ledger.owner_merchant_id;
                let merchant = match merchants.get(&owner) {
                    Some(name) => name.clone(),
                    None => {
                        let name = state
                            .store
                            .merchant(owner)
                            .await?
                            .map(|m| format!("{} ({})", m.name, m.business.id))
                            .unwrap_or_default();
                        merchants.insert(owner, name.clone());
                        name
                    }
                };
                let units = view
                    .units
                    .iter()
                    .map(|u| format!("{} ({})", u.name, u.msn))
                    .collect::<Vec<_>>()
                    .join(", ");
                (merchant, units, scope_words(access.scope()))
            }
            None => ("—".to_owned(), String::new(), String::new()),
        };
        grants.push(GrantRow {
            merchant,
            ledger: g.ledger_id.to_string(),
            units,
            since: show_time(g.created_at),
            scope,
        });
    }
    let keys = own_keys(state, pid)
        .await?
        .into_iter()
        .map(|k| KeyRow {
            id: k.id,
            owner: String::new(),
            client_id: k.client_id,
            subscription: vec![],
            revoked: k.revoked,
            issued: show_time(k.created_at),
        })
        .collect();
    Ok(page(
        who.flash.is_some(),
        &PartnerPage {
            l: Layout::of(who, "/portal/partner"),
            name: partner.name,
            state: partner.state.as_str(),
            grants,
            keys,
            shown,
        },
    ))
}

async fn own_keys(
    state: &AppState,
    pid: RowId,
) -> Result<Vec<ledgerport_core::world::ApiKey>, PortalError> {
    Ok(state
        .store
        .keys()
        .await?
        .into_iter()
        .filter(|k| k.owner == KeyOwner::Partner(pid) && k.kind == KeyKind::Accounting)
        .collect())
}

pub async fn home(State(state): State<AppState>, who: SignedIn) -> Result<Response, PortalError> {
    render(&state, &who, None).await
}

pub async fn issue(
    State(state): State<AppState>,
    PostedForm { who, pairs: _ }: PostedForm,
) -> Result<Response, PortalError> {
    let pid = who.partner()?;
    match issue_keys(
        state.store.as_ref(),
        &who.actor(),
        KeyKind::Accounting,
        KeyOwner::Partner(pid),
    )
    .await
    {
        Ok((key, secret)) => {
            render(
                &state,
                &who,
                Some((key.client_id, secret.reveal().to_owned())),
            )
            .await
        }
        Err(IssueError::NotAllowed(m)) => Ok(redirect_flash("/portal/partner", "err", &m)),
        Err(IssueError::Store(e)) => Err(e.into()),
    }
}

/// The partner's own key named by the form; anyone else's is refused.
async fn own_key(
    state: &AppState,
    who: &SignedIn,
    pairs: &[(String, String)],
) -> Result<RowId, PortalError> {
    let pid = who.partner()?;
    let id = id_field(pairs, "key")?;
    own_keys(state, pid)
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .map(|k| k.id)
        .ok_or(PortalError::Forbidden)
}

pub async fn regenerate(
    State(state): State<AppState>,
    PostedForm { who, pairs }: PostedForm,
) -> Result<Response, PortalError> {
    let id = own_key(&state, &who, &pairs).await?;
    let (key, secret) = regenerate_secret(state.store.as_ref(), &who.actor(), id).await?;
    render(
        &state,
        &who,
        Some((key.client_id, secret.reveal().to_owned())),
    )
    .await
}

pub async fn revoke(
    State(state): State<AppState>,
    PostedForm { who, pairs }: PostedForm,
) -> Result<Response, PortalError> {
    let id = own_key(&state, &who, &pairs).await?;
    let key = state.store.revoke_key(&who.actor(), id).await?;
    Ok(redirect_flash(
        "/portal/partner",
        "ok",
        &format!("Revoked the keys with client id {}.", key.client_id),
    ))
}
