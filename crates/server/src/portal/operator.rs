//! The operator's console: partner applications and partner states; merchants, units, ledgers
//! (their forms and the status view are in [`super::console`]).

use super::PostedForm;
use super::auth::SignedIn;
use super::templates::{
    Layout, MerchantBlock, OperatorPartnersPage, OperatorWorldPage, PartnerRow,
};
use super::{PortalError, field, id_field, page, redirect_flash, show_time};
use crate::AppState;
use axum::extract::State;
use axum::response::Response;
use ledgerport_core::world::{Partner, PartnerState};

fn actions(state: PartnerState) -> Vec<(&'static str, &'static str)> {
    use PartnerState::*;
    [
        (
            Approved,
            "approved",
            if state == Suspended {
                "Reinstate"
            } else {
                "Approve"
            },
        ),
        (Rejected, "rejected", "Reject"),
        (Suspended, "suspended", "Suspend"),
    ]
    .into_iter()
    .filter(|(to, _, _)| state.may_become(*to))
    .map(|(_, v, label)| (v, label))
    .collect()
}

fn row(p: &Partner) -> PartnerRow {
    PartnerRow {
        id: p.id,
        name: p.name.clone(),
        kind: p.kind.as_str(),
        org: p
            .business
            .as_ref()
            .map(|b| format!("{} ({})", b.id, b.scheme.country().as_str()))
            .unwrap_or_default(),
        email: p.contact_email.clone(),
        state: p.state.as_str(),
        since: show_time(p.created_at),
        actions: actions(p.state),
    }
}

pub async fn partners(
    State(state): State<AppState>,
    who: SignedIn,
) -> Result<Response, PortalError> {
    who.operator()?;
    let all = state.store.partners().await?;
    Ok(page(
        who.flash.is_some(),
        &OperatorPartnersPage {
            l: Layout::of(&who, "/portal/operator"),
            applications: all
                .iter()
                .filter(|p| p.state == PartnerState::Applied)
                .map(row)
                .collect(),
            partners: all
                .iter()
                .filter(|p| p.state != PartnerState::Applied)
                .map(row)
                .collect(),
        },
    ))
}

/// Approve, reject, suspend or reinstate; the store refuses any other change of state.
pub async fn set_state(
    State(state): State<AppState>,
    PostedForm { who, pairs }: PostedForm,
) -> Result<Response, PortalError> {
    who.operator()?;
    let id = id_field(&pairs, "partner")?;
    let to = PartnerState::parse("to", field(&pairs, "to").unwrap_or(""))
        .map_err(|e| PortalError::BadRequest(e.to_string()))?;
    let before = state
        .store
        .partner(id)
        .await?
        .ok_or(PortalError::NotFound)?;
    let p = state.store.set_partner_state(&who.actor(), id, to).await?;
    let verb = match (before.state, p.state) {
        (PartnerState::Suspended, PartnerState::Approved) => "reinstated",
        (_, PartnerState::Approved) => "approved",
        (_, PartnerState::Rejected) => "rejected",
        (_, PartnerState::Suspended) => "suspended: its keys stopped working",
        _ => "changed",
    };
    Ok(redirect_flash(
        "/portal/operator",
        "ok",
        &format!("{} {verb}.", p.name),
    ))
}

pub async fn world(State(state): State<AppState>, who: SignedIn) -> Result<Response, PortalError> {
    who.operator()?;
    let ledgers = state.store.ledgers().await?;
    let mut merchants = vec![];
    let mut choices = vec![];
    for m in state.store.merchants().await? {
        let units = state
            .store
            .sales_units(Some(m.id))
            .await?
            .iter()
            .map(|u| {
                format!(
                    "{} — MSN {} ({}, {})",
                    u.name,
                    u.msn,
                    u.kind.as_str(),
                    u.handle
                )
            })
            .collect();
        let own = ledgers
            .iter()
            .filter(|v| v.ledger.owner_merchant_id == m.id)
            .map(|v| {
                format!(
                    "Ledger {} — {} {}, {} payouts, {} settlement, closed through {}, units {}",
                    v.ledger.ledger_id,
                    v.ledger.currency.as_str(),
                    v.ledger.payout_account.id,
                    v.ledger.payout_frequency.as_str(),
                    v.ledger.settlement_mode.as_str(),
                    v.ledger.closed_through,
                    v.units
                        .iter()
                        .map(|u| u.msn.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .collect();
        choices.push((m.id, format!("{} ({})", m.name, m.business.id)));
        merchants.push(MerchantBlock {
            name: m.name,
            org: m.business.id,
            units,
            ledgers: own,
        });
    }
    Ok(page(
        who.flash.is_some(),
        &OperatorWorldPage {
            l: Layout::of(&who, "/portal/operator/world"),
            merchants,
            choices,
        },
    ))
}
