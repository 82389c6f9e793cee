//! Invitation links: an approved accounting partner makes a signed link proposing a scope
//! ([`crate::invitation`]) and sends it to a merchant; a merchant user who opens it, signed in,
//! sees the partner and its proposal and grants access to the units it chooses within the
//! proposal (narrowing it if it likes) or declines. The answer is recorded as an access request
//! of the partner, decided at once ([`ledgerport_store::RequestStore::answer_invitation`]), and
//! the partner is told.
//!
//! The link is checked on every use, opening and answering alike: a link changed in any way is
//! refused as damaged (400), one past its expiry as expired (410), each with a page saying what
//! to do.

use super::auth::SignedIn;
use super::merchant::{Org, kind, posted_scope};
use super::templates::{
    InvitationMadePage, InvitationPage, Layout, MessagePage, ScopeChoice, UnitChoice,
};
use super::{PortalError, PostedForm, field, html, page, redirect_flash, scope_words, show_time};
use crate::AppState;
use crate::invitation::{Invitation, InvitationError};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use ledgerport_core::ids::Msn;
use ledgerport_core::world::{Partner, PartnerKind, PartnerState};
use ledgerport_store::{InvitationAnswer, StoreError};

/// Where a merchant opens and answers an invitation.
pub const INVITATION_PATH: &str = "/portal/invitation";

/// The refusal of a link that does not open, as a page saying what to do.
fn refused(e: InvitationError, partner: Option<&Partner>) -> Response {
    let (status, heading, text) = match e {
        InvitationError::Damaged => (
            StatusCode::BAD_REQUEST,
            "Invitation link damaged",
            "This invitation link is damaged or was changed after the partner made it, so it \
             cannot be used. Ask the partner to send it again, and open it exactly as received."
                .to_owned(),
        ),
        InvitationError::Expired { at, .. } => (
            StatusCode::GONE,
            "Invitation expired",
            format!(
                "This invitation{} expired on {}. Ask the partner for a new link.",
                partner
                    .map(|p| format!(" from {}", p.name))
                    .unwrap_or_default(),
                show_time(at)
            ),
        ),
    };
    let mut r = html(&MessagePage {
        l: Layout::error(),
        heading,
        text,
        back: "/portal",
    });
    *r.status_mut() = status;
    r
}

/// Opens link text `t` at the clock's now: the invitation and its partner, or the page refusing
/// it. An intact link naming no partner is damaged too (partners are never deleted).
async fn open(
    state: &AppState,
    t: &str,
) -> Result<Result<(Invitation, Partner), Response>, PortalError> {
    match state.invitations.open(t, state.clock.now()) {
        Ok(inv) => match state.store.partner(inv.partner).await? {
            Some(p) => Ok(Ok((inv, p))),
            None => Ok(Err(refused(InvitationError::Damaged, None))),
        },
        Err(e) => {
            let partner = match &e {
                InvitationError::Expired { partner, .. } => state.store.partner(*partner).await?,
                InvitationError::Damaged => None,
            };
            Ok(Err(refused(e, partner.as_ref())))
        }
    }
}

/// Why `p` may not be granted access now, if it may not (the store checks the same again).
fn not_grantable(p: &Partner) -> Option<String> {
    (p.kind != PartnerKind::Accounting || p.state != PartnerState::Approved).then(|| {
        format!(
            "{} can no longer be granted access (its Ledgerport account is not an approved \
             accounting partner's). Nothing can be answered.",
            p.name
        )
    })
}

/// The link's full address as the partner's browser reached this server: `https://` but on
/// loopback, where the portal runs over plain HTTP.
fn link_of(headers: &HeaderMap, text: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        });
    match host {
        None => format!("{INVITATION_PATH}?t={text}"),
        Some(h) => {
            let loopback =
                h.starts_with("127.") || h.starts_with("localhost") || h.starts_with("[::1]");
            let scheme = if loopback { "http" } else { "https" };
            format!("{scheme}://{h}{INVITATION_PATH}?t={text}")
        }
    }
}

/// A partner user makes a link proposing the posted scope (the access request form's fields).
pub async fn make(
    State(state): State<AppState>,
    headers: HeaderMap,
    PostedForm { who, pairs }: PostedForm,
) -> Result<Response, PortalError> {
    let pid = who.partner()?;
    let partner = state
        .store
        .partner(pid)
        .await?
        .ok_or(PortalError::Forbidden)?;
    if let Some(why) = not_grantable(&partner) {
        return Err(PortalError::BadRequest(why));
    }
    let scope = posted_scope(&pairs, state.clock.now())?;
    let (text, inv) = state.invitations.make(pid, scope, state.clock.now());
    Ok(page(
        who.flash.is_some(),
        &InvitationMadePage {
            l: Layout::of(&who, "/portal/partner/requests"),
            link: link_of(&headers, &text),
            scope: scope_words(&inv.scope),
            expires: show_time(inv.expires_at),
        },
    ))
}

#[derive(serde::Deserialize)]
pub struct LinkQuery {
    #[serde(default)]
    t: String,
}

/// The invitation as its link shows it: to a merchant user the form to answer, to someone not
/// signed in how to answer, to other users a refusal.
pub async fn show(
    State(state): State<AppState>,
    who: Result<SignedIn, PortalError>,
    Query(q): Query<LinkQuery>,
) -> Result<Response, PortalError> {
    let (inv, partner) = match open(&state, &q.t).await? {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    let mut shown = InvitationPage {
        l: Layout::anonymous(""),
        partner: partner.name.clone(),
        proposed: scope_words(&inv.scope),
        expires: show_time(inv.expires_at),
        token: q.t.trim().to_owned(),
        org: None,
        refused: not_grantable(&partner),
        units: vec![],
        scope: ScopeChoice::of(&inv.scope),
    };
    let who = match who {
        Ok(who) => who,
        Err(PortalError::NotSignedIn) => return Ok(html(&shown)),
        Err(e) => return Err(e),
    };
    // Only a merchant's user answers; a partner or the operator is refused as on any merchant
    // page.
    let org = Org::load(&state, &who).await?;
    shown.units = org
        .units
        .iter()
        .map(|u| {
            let ledger = org
                .ledger_of(u)
                .map(|v| v.ledger.ledger_id.to_string())
                .unwrap_or_default();
            UnitChoice {
                name: u.name.clone(),
                msn: u.msn.to_string(),
                kind: kind(u),
                handle: u.handle.to_string(),
                ticked: !ledger.is_empty(),
                ledger,
            }
        })
        .collect();
    shown.org = Some(org.name);
    shown.l = Layout::of(&who, INVITATION_PATH);
    Ok(page(who.flash.is_some(), &shown))
}

/// A merchant user's answer: `answer=grant` grants the ticked units' ledgers within the posted
/// scope (which may narrow the proposal, not widen it), `answer=decline` declines.
pub async fn answer(
    State(state): State<AppState>,
    PostedForm { who, pairs }: PostedForm,
) -> Result<Response, PortalError> {
    let org = Org::load(&state, &who).await?;
    let t = field(&pairs, "t").unwrap_or("");
    let (inv, partner) = match open(&state, t).await? {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    let grant = match field(&pairs, "answer") {
        Some("grant") => true,
        Some("decline") => false,
        _ => {
            return Err(PortalError::BadRequest(
                "answer: must be grant or decline".into(),
            ));
        }
    };
    let mut units: Vec<Msn> = vec![];
    let mut scope = None;
    if grant {
        for (_, v) in pairs.iter().filter(|(k, _)| k == "unit") {
            // Another organisation's unit in the form is refused whole, as in the access form.
            let unit = org
                .units
                .iter()
                .find(|u| u.msn.to_string() == v.trim())
                .ok_or(PortalError::Forbidden)?;
            units.push(unit.msn);
        }
        if units.is_empty() {
            return Err(PortalError::BadRequest(
                "unit: choose at least one sales unit to grant, or decline".into(),
            ));
        }
        scope = Some(posted_scope(&pairs, state.clock.now())?);
    }
    let (_, granted) = state
        .store
        .answer_invitation(
            &who.actor(),
            InvitationAnswer {
                invitation: inv.id,
                partner: partner.id,
                merchant: org.id,
                units,
                proposed: inv.scope,
                grant: scope,
            },
        )
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
    if !grant {
        return Ok(redirect_flash(
            "/portal/merchant/requests",
            "ok",
            &format!(
                "Declined the invitation of {}: nothing was granted.",
                partner.name
            ),
        ));
    }
    let ledgers: Vec<String> = granted.iter().map(|l| l.to_string()).collect();
    Ok(redirect_flash(
        "/portal/merchant/partners",
        "ok",
        &format!(
            "Granted {} access: {} ledger(s){}.",
            partner.name,
            ledgers.len(),
            if ledgers.is_empty() {
                String::new()
            } else {
                format!(" ({})", ledgers.join(", "))
            }
        ),
    ))
}
