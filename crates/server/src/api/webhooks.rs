//! The Ledgerport extension `/ledgerport/v1/webhooks`: an accounting partner's keys (and a
//! merchant's merchant-level keys) manage their organisation's webhook endpoints: list,
//! register (the secret is in this answer only), delete, rotate the secret, read the delivery
//! log and redeliver. Other keys get 403; another organisation's endpoint answers as one that
//! does not exist.

use super::report::Caller;
use crate::webhooks::{self, ManageError};
use crate::{AppError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::SignedDuration;
use ledgerport_core::access::Principal;
use ledgerport_core::entry::wire_time;
use ledgerport_store::{Actor, WebhookDelivery, WebhookEndpoint, WebhookOwner};
use serde::Deserialize;
use serde_json::{Value, json};

/// The organisation whose endpoints the caller manages.
fn owner(caller: &Caller) -> Result<WebhookOwner, AppError> {
    match caller.principal {
        Principal::Accounting { partner_id, .. } => Ok(WebhookOwner::Partner(partner_id)),
        Principal::MerchantLevel { merchant_id, .. } => Ok(WebhookOwner::Merchant(merchant_id)),
        _ => Err(AppError::Forbidden(
            "Only an accounting partner's keys and merchant-level keys manage webhooks.".into(),
        )),
    }
}

fn actor(caller: &Caller) -> Actor {
    Actor::new(format!("key:{}", caller.key.client_id))
}

/// The caller's endpoint `uid`; another organisation's answers as none.
async fn own_endpoint(
    state: &AppState,
    caller: &Caller,
    uid: &str,
) -> Result<WebhookEndpoint, AppError> {
    let owner = owner(caller)?;
    match state.store.webhook_endpoint(uid).await? {
        Some(e) if e.owner == owner => Ok(e),
        _ => Err(AppError::NotFound),
    }
}

fn manage_error(e: ManageError) -> AppError {
    match e {
        ManageError::Invalid(why) => AppError::BadRequest(why),
        ManageError::Store(s) => s.into(),
    }
}

/// An endpoint on the wire (never its secret).
pub fn wire_endpoint(e: &WebhookEndpoint) -> Value {
    json!({
        "id": e.uid,
        "url": e.url,
        "eventTypes": e.event_types,
        "createdAt": wire_time(e.created_at),
        "disabledAt": e.disabled_at.map(wire_time),
        "disabledReason": e.disabled_reason,
        "previousSecretExpiresAt": e.previous_secret_until.map(wire_time),
    })
}

fn wire_delivery(d: &WebhookDelivery) -> Value {
    json!({
        "id": d.id,
        "webhookId": d.message_id(),
        "eventType": d.event.event_type,
        "ledgerId": d.event.ledger_id.as_ref().map(|l| l.as_str()),
        "ledgerSequence": d.event.ledger_seq,
        "state": d.state.as_str(),
        "attempts": d.attempts,
        "createdAt": wire_time(d.created_at),
        "nextAttemptAt": wire_time(d.next_attempt_at),
        "lastAttemptAt": d.last_attempt_at.map(wire_time),
        "lastStatus": d.last_status,
        "lastError": d.last_error,
        "lastLatencyMs": d.last_latency_ms,
        "finishedAt": d.finished_at.map(wire_time),
    })
}

pub async fn list(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> Result<Json<Value>, AppError> {
    let owner = owner(&caller)?;
    let items: Vec<Value> = state
        .store
        .webhook_endpoints(Some(owner))
        .await?
        .iter()
        .map(wire_endpoint)
        .collect();
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewEndpoint {
    url: String,
    #[serde(default)]
    event_types: Vec<String>,
}

pub async fn create(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let owner = owner(&caller)?;
    let new: NewEndpoint =
        serde_json::from_slice(&body).map_err(|e| AppError::BadRequest(format!("body: {e}")))?;
    let types = webhooks::parse_event_types("eventTypes", &new.event_types.join(" "))
        .map_err(AppError::BadRequest)?;
    let (endpoint, secret) = webhooks::register_endpoint(
        state.store.as_ref(),
        &state.config.signing_keys,
        state.webhooks.policy(),
        &actor(&caller),
        owner,
        &new.url,
        types,
    )
    .await
    .map_err(manage_error)?;
    let mut body = wire_endpoint(&endpoint);
    body["secret"] = Value::from(secret);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(uid): Path<String>,
) -> Result<StatusCode, AppError> {
    let e = own_endpoint(&state, &caller, &uid).await?;
    state
        .store
        .delete_webhook_endpoint(&actor(&caller), &e.uid)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rotation {
    overlap_hours: Option<i64>,
}

pub async fn rotate(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(uid): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, AppError> {
    let e = own_endpoint(&state, &caller, &uid).await?;
    let rotation: Rotation = if body.is_empty() {
        Rotation::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| AppError::BadRequest(format!("body: {e}")))?
    };
    let overlap = rotation.overlap_hours.map_or(
        webhooks::DEFAULT_ROTATION_OVERLAP,
        SignedDuration::from_hours,
    );
    let (endpoint, secret) = webhooks::rotate_secret(
        state.store.as_ref(),
        &state.config.signing_keys,
        &actor(&caller),
        &e.uid,
        state.clock.now(),
        overlap,
    )
    .await
    .map_err(|e| match e {
        ManageError::Invalid(why) => AppError::BadRequest(why.replace("overlap", "overlapHours")),
        other => manage_error(other),
    })?;
    let mut body = wire_endpoint(&endpoint);
    body["secret"] = Value::from(secret);
    Ok(Json(body))
}

pub async fn deliveries(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(uid): Path<String>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Json<Value>, AppError> {
    let e = own_endpoint(&state, &caller, &uid).await?;
    let q = super::QueryParams::parse(raw.as_deref())?;
    let before = q
        .get("before")
        .map(|b| {
            b.parse::<i64>()
                .map_err(|_| AppError::bad("before", "must be a delivery id"))
        })
        .transpose()?;
    let list = state.store.webhook_deliveries(e.id, before, 100).await?;
    let mut items = Vec::with_capacity(list.len());
    for d in &list {
        let mut item = wire_delivery(d);
        let attempts: Vec<Value> = state
            .store
            .webhook_attempts(d.id)
            .await?
            .iter()
            .map(|a| {
                json!({
                    "at": wire_time(a.at),
                    "status": a.status,
                    "error": a.error,
                    "latencyMs": a.latency_ms,
                })
            })
            .collect();
        item["attemptLog"] = Value::from(attempts);
        items.push(item);
    }
    Ok(Json(json!({ "items": items })))
}

pub async fn redeliver(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path((uid, delivery)): Path<(String, i64)>,
) -> Result<StatusCode, AppError> {
    let e = own_endpoint(&state, &caller, &uid).await?;
    match state.store.webhook_delivery(delivery).await? {
        Some(d) if d.endpoint_id == e.id => {
            state.store.redeliver_webhook(&actor(&caller), d.id).await?;
            Ok(StatusCode::ACCEPTED)
        }
        _ => Err(AppError::NotFound),
    }
}
