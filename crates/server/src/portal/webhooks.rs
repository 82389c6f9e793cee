//! The webhooks page of merchant and partner users: their organisation's endpoints, adding one
//! (the secret is shown once, on the page that answers), rotating its secret, enabling it again,
//! deleting it, and each endpoint's delivery log with manual redelivery. Another organisation's
//! endpoint is not found.

use super::auth::SignedIn;
use super::templates::{Layout, MessagePage};
use super::{PortalError, PostedForm, field, html, page, redirect_flash, show_time};
use crate::AppState;
use crate::webhooks::{self, ManageError};
use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use ledgerport_store::{Actor, PortalRole, WebhookEndpoint, WebhookOwner};

pub const MERCHANT_PAGE: &str = "/portal/merchant/webhooks";
pub const PARTNER_PAGE: &str = "/portal/partner/webhooks";

pub struct EndpointRow {
    pub uid: String,
    pub url: String,
    pub events: String,
    pub state: String,
    pub disabled: bool,
}

pub struct DeliveryRow {
    pub id: i64,
    pub message_id: String,
    pub event: String,
    pub state: String,
    pub attempts: Vec<String>,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
pub struct WebhooksPage {
    pub l: Layout,
    pub here: &'static str,
    pub who_gets: &'static str,
    pub endpoints: Vec<EndpointRow>,
    pub shown: Option<String>,
    pub deliveries: Vec<DeliveryRow>,
    pub event_types: &'static [&'static str],
}

/// The signed-in user's organisation as an endpoint owner, and its page.
fn owner(who: &SignedIn) -> Result<(WebhookOwner, &'static str), PortalError> {
    match who.user.role {
        PortalRole::Merchant(m) => Ok((WebhookOwner::Merchant(m), MERCHANT_PAGE)),
        PortalRole::Partner(p) => Ok((WebhookOwner::Partner(p), PARTNER_PAGE)),
        PortalRole::Operator => Err(PortalError::Forbidden),
    }
}

fn actor(who: &SignedIn) -> Actor {
    Actor::new(format!("portal:{}", who.user.email))
}

/// The organisation's endpoint `uid`; another's is not found.
async fn own(
    state: &AppState,
    owner: WebhookOwner,
    uid: Option<&str>,
) -> Result<WebhookEndpoint, PortalError> {
    let uid = uid.map(str::trim).unwrap_or("");
    match state.store.webhook_endpoint(uid).await? {
        Some(e) if e.owner == owner => Ok(e),
        _ => Err(PortalError::NotFound),
    }
}

fn manage_error(e: ManageError) -> PortalError {
    match e {
        ManageError::Invalid(why) => PortalError::BadRequest(why),
        ManageError::Store(s) => s.into(),
    }
}

#[derive(serde::Deserialize)]
pub struct PageQuery {
    endpoint: Option<String>,
}

pub async fn page_route(
    State(state): State<AppState>,
    who: SignedIn,
    Query(q): Query<PageQuery>,
) -> Result<Response, PortalError> {
    let (owner, here) = owner(&who)?;
    let list = state.store.webhook_endpoints(Some(owner)).await?;
    let endpoints = list
        .iter()
        .map(|e| EndpointRow {
            uid: e.uid.clone(),
            url: e.url.clone(),
            events: if e.event_types.is_empty() {
                "all".into()
            } else {
                e.event_types.join(", ")
            },
            state: match (e.disabled_at, &e.disabled_reason) {
                (Some(t), reason) => format!(
                    "disabled {} ({})",
                    show_time(t),
                    reason.as_deref().unwrap_or("by hand")
                ),
                (None, _) => match e.previous_secret_until {
                    Some(t) if t > state.clock.now() => {
                        format!(
                            "enabled; the previous secret signs too until {}",
                            show_time(t)
                        )
                    }
                    _ => "enabled".into(),
                },
            },
            disabled: e.disabled_at.is_some(),
        })
        .collect();
    let (shown, deliveries) = match q.endpoint {
        Some(uid) => {
            let e = own(&state, owner, Some(&uid)).await?;
            let mut rows = Vec::new();
            for d in state.store.webhook_deliveries(e.id, None, 100).await? {
                let attempts = state
                    .store
                    .webhook_attempts(d.id)
                    .await?
                    .into_iter()
                    .map(|a| {
                        format!(
                            "{}: {}, {} ms",
                            show_time(a.at),
                            match (a.status, a.error) {
                                (Some(s), None) => s.to_string(),
                                (_, Some(err)) => err,
                                (None, None) => "no answer".into(),
                            },
                            a.latency_ms
                        )
                    })
                    .collect();
                rows.push(DeliveryRow {
                    id: d.id,
                    message_id: d.message_id(),
                    event: format!(
                        "{}{}",
                        d.event.event_type,
                        d.event
                            .ledger_id
                            .as_ref()
                            .map(|l| format!(" (ledger {l} #{})", d.event.ledger_seq.unwrap_or(0)))
                            .unwrap_or_default()
                    ),
                    state: d.state.as_str().to_owned(),
                    attempts,
                });
            }
            (Some(e.uid), rows)
        }
        None => (None, Vec::new()),
    };
    Ok(page(
        who.flash.is_some(),
        &WebhooksPage {
            l: Layout::of(&who, here),
            here,
            who_gets: match owner {
                WebhookOwner::Merchant(_) => "Your endpoints get the events of your ledgers.",
                WebhookOwner::Partner(_) => {
                    "Your endpoints get the events of the ledgers you may read when each is \
                     delivered, and your own (approved, suspended)."
                }
            },
            endpoints,
            shown,
            deliveries,
            event_types: ledgerport_store::EVENT_TYPES,
        },
    ))
}

/// The page that shows a new secret, once.
fn secret_page(
    who: &SignedIn,
    here: &'static str,
    uid: &str,
    secret: &str,
    what: &str,
) -> Response {
    html(&MessagePage {
        l: Layout::of(who, here),
        heading: "Your endpoint's signing secret",
        text: format!(
            "{what} Endpoint {uid}: signing secret {secret} — copy it to your receiver now; it is \
             not shown again."
        ),
        back: here,
    })
}

pub async fn create(
    State(state): State<AppState>,
    PostedForm { who, pairs }: PostedForm,
) -> Result<Response, PortalError> {
    let (owner, here) = owner(&who)?;
    let url = field(&pairs, "url").unwrap_or("");
    let picked: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "event")
        .map(|(_, v)| v.as_str())
        .collect();
    let types =
        webhooks::parse_event_types("event", &picked.join(" ")).map_err(PortalError::BadRequest)?;
    let (e, secret) = webhooks::register_endpoint(
        state.store.as_ref(),
        &state.config.signing_keys,
        state.webhooks.policy(),
        &actor(&who),
        owner,
        url,
        types,
    )
    .await
    .map_err(manage_error)?;
    Ok(secret_page(
        &who,
        here,
        &e.uid,
        &secret,
        "The endpoint is registered.",
    ))
}

pub async fn rotate(
    State(state): State<AppState>,
    PostedForm { who, pairs }: PostedForm,
) -> Result<Response, PortalError> {
    let (owner, here) = owner(&who)?;
    let e = own(&state, owner, field(&pairs, "endpoint")).await?;
    let (e, secret) = webhooks::rotate_secret(
        state.store.as_ref(),
        &state.config.signing_keys,
        &actor(&who),
        &e.uid,
        state.clock.now(),
        webhooks::DEFAULT_ROTATION_OVERLAP,
    )
    .await
    .map_err(manage_error)?;
    let until = e.previous_secret_until.map(show_time).unwrap_or_default();
    Ok(secret_page(
        &who,
        here,
        &e.uid,
        &secret,
        &format!("The secret is rotated; the previous one signs too until {until}."),
    ))
}

pub async fn enable(
    State(state): State<AppState>,
    PostedForm { who, pairs }: PostedForm,
) -> Result<Response, PortalError> {
    let (owner, here) = owner(&who)?;
    let e = own(&state, owner, field(&pairs, "endpoint")).await?;
    state
        .store
        .enable_webhook_endpoint(&actor(&who), &e.uid)
        .await?;
    Ok(redirect_flash(here, "ok", &format!("Enabled {}.", e.uid)))
}

pub async fn delete(
    State(state): State<AppState>,
    PostedForm { who, pairs }: PostedForm,
) -> Result<Response, PortalError> {
    let (owner, here) = owner(&who)?;
    let e = own(&state, owner, field(&pairs, "endpoint")).await?;
    state
        .store
        .delete_webhook_endpoint(&actor(&who), &e.uid)
        .await?;
    Ok(redirect_flash(here, "ok", &format!("Deleted {}.", e.uid)))
}

pub async fn redeliver(
    State(state): State<AppState>,
    PostedForm { who, pairs }: PostedForm,
) -> Result<Response, PortalError> {
    let (owner, here) = owner(&who)?;
    let e = own(&state, owner, field(&pairs, "endpoint")).await?;
    let id: i64 = field(&pairs, "delivery")
        .and_then(|d| d.trim().parse().ok())
        .ok_or_else(|| PortalError::BadRequest("delivery: must be a delivery id".into()))?;
    match state.store.webhook_delivery(id).await? {
        Some(d) if d.endpoint_id == e.id => {
            state.store.redeliver_webhook(&actor(&who), d.id).await?;
        }
        _ => return Err(PortalError::NotFound),
    }
    Ok(redirect_flash(
        &format!("{here}?endpoint={}", e.uid),
        "ok",
        &format!("Delivery {id} is due again now."),
    ))
}
