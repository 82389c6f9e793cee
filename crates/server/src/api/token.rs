//! The Access Token API: `POST /accesstoken/get` and `POST /miami/v1/token`.
//!
//! Whatever is wrong with presented credentials (unknown client id, wrong secret, revoked keys,
//! keys for the other endpoint, a partner not approved) gets one answer, and the work done is
//! the same either way: one key lookup (by subscription key on `/accesstoken/get`, by client
//! id on `/miami/v1/token`) and one SHA-256 of the presented secret.
//!
//! Both endpoints are rate-limited per presented client id and client address before anything is
//! looked up; failures are limited per client address, and repeated failures for one client id
//! are answered ever later, while the right secret is answered at once ([`crate::limits`]).

use super::{check_system_headers, header};
use crate::credentials::{self, BasicAuthError, check_secret};
use crate::limits::ClientAddr;
use crate::{AppError, AppState};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header as h};
use axum::response::{IntoResponse, Response};
use ledgerport_core::access::{self, NotAuthenticated, Presented};
use ledgerport_core::ids::Msn;
use ledgerport_core::world::{ApiKey, KeyOwner, PartnerState};
use serde_json::json;

const RESOURCE: &str = "00000002-0000-0000-c000-000000000000";

/// A failed credential check: counted for the client id and the address, then answered after
/// the client id's slow-down (counted first, so a client that hangs up early is counted too).
async fn failed(state: &AppState, client_id: &str, addr: ClientAddr) {
    let delay = state.limits.failure_delay(client_id);
    state.limits.token_outcome(client_id, false);
    state.limits.token_failure_from(addr);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

pub async fn standard_token(
    State(state): State<AppState>,
    addr: ClientAddr,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    check_system_headers(&headers)?;
    // Rate-limited by the presented client id and address before anything is looked up.
    state.limits.token_failure_allowed(addr)?;
    if let Ok(Some(id)) = header(&headers, "client_id") {
        state.limits.token_request(id, addr)?;
    }
    let sub_key = header(&headers, "Ocp-Apim-Subscription-Key")?
        .filter(|k| !k.is_empty())
        .ok_or(AppError::SubscriptionKey(
            crate::error::MISSING_SUBSCRIPTION_KEY,
        ))?;
    // A revoked key's subscription key still names it: revoked keys get the same answer as any
    // other bad credentials (`check_secret` refuses them), not the gateway's 401.
    let subscription =
        state
            .store
            .key_by_subscription_key(sub_key)
            .await?
            .ok_or(AppError::SubscriptionKey(
                crate::error::INVALID_SUBSCRIPTION_KEY,
            ))?;
    let client_id = header(&headers, "client_id")?.ok_or_else(|| {
        AppError::oauth(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The client_id header is required.",
        )
    })?;
    let secret = header(&headers, "client_secret")?.ok_or_else(|| {
        AppError::oauth(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The client_secret header is required.",
        )
    })?;
    let msn = header(&headers, "Merchant-Serial-Number")?
        .map(|m| Msn::parse("Merchant-Serial-Number", m))
        .transpose()?;

    // The subscription key already named the one key these credentials may be (just read, so
    // revocation and generation are current): a client id of any other key fails, so it need
    // not be looked up again. The secret is still checked (or a dummy hash) either way.
    let found = (subscription.client_id == client_id).then_some(subscription);
    let key = match check_secret(found, secret) {
        Some(k) => {
            let partner = credentials::partner_state(state.store.as_ref(), &k).await?;
            accepted(&k, partner, Presented::StandardTokenRequest)?.then_some(k)
        }
        None => None,
    };
    let key = match key {
        Some(k) => {
            state.limits.token_outcome(client_id, true);
            k
        }
        _ => {
            failed(&state, client_id, addr).await;
            return Err(AppError::oauth(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                "The client could not be authenticated: check client_id and client_secret.",
            ));
        }
    };
    if let (Some(msn), KeyOwner::SalesUnit(own)) = (msn, key.owner)
        && msn != own
    {
        return Err(AppError::bad(
            "Merchant-Serial-Number",
            "does not match the sales unit of these keys",
        ));
    }
    let lifetime = state.config.standard_token_lifetime.as_secs() as i64;
    let (token, claims) = issue(&state, &key, lifetime, "/accesstoken/get")?;
    let body = json!({
        "token_type": "Bearer",
        "expires_in": lifetime.to_string(),
        "ext_expires_in": "0",
        "expires_on": claims.exp.to_string(),
        "not_before": claims.nbf.to_string(),
        "resource": RESOURCE,
        "access_token": token,
    });
    Ok(([(h::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// The Basic credentials of `/miami/v1/token`, or its RFC 6749 §5.2 answer.
fn basic_credentials(headers: &HeaderMap) -> Result<(String, String), AppError> {
    credentials::basic_credentials(headers).map_err(|e| match e {
        BasicAuthError::Missing => AppError::invalid_client("Authorization: header is required"),
        BasicAuthError::Malformed => {
            AppError::invalid_client("Authorization: must be Basic base64(client_id:client_secret)")
        }
    })
}

pub async fn miami_token(
    State(state): State<AppState>,
    addr: ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let invalid_request = |d: &str| AppError::oauth(StatusCode::BAD_REQUEST, "invalid_request", d);
    check_system_headers(&headers)?;
    if headers.contains_key("Ocp-Apim-Subscription-Key") {
        return Err(invalid_request(
            "Ocp-Apim-Subscription-Key: must not be sent to this endpoint",
        ));
    }
    let (client_id, secret) = basic_credentials(&headers)?;
    // Rate-limited by the presented client id and address before anything is looked up.
    state.limits.token_failure_allowed(addr)?;
    state.limits.token_request(&client_id, addr)?;
    let content_type = header(&headers, "Content-Type")?.unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(invalid_request(
            "Content-Type: must be application/x-www-form-urlencoded",
        ));
    }
    check_token_form(&body)?;

    // The key row and its partner's state in one read, checked on every request.
    let found = state.store.key_with_partner_state(&client_id).await?;
    let (found, partner_state) = match found {
        Some((k, p)) => (Some(k), p),
        None => (None, None),
    };
    let key = match check_secret(found, &secret) {
        Some(k) => accepted(&k, partner_state, Presented::MiamiTokenRequest)?.then_some(k),
        None => None,
    };
    let key = match key {
        Some(k) => {
            state.limits.token_outcome(&client_id, true);
            k
        }
        _ => {
            failed(&state, &client_id, addr).await;
            return Err(AppError::invalid_client(
                "The client could not be authenticated.",
            ));
        }
    };
    let lifetime = state.config.miami_token_lifetime.as_secs() as i64;
    let (token, _) = issue(&state, &key, lifetime, "/miami/v1/token")?;
    Ok((
        [(h::CACHE_CONTROL, "no-store")],
        Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": lifetime})),
    )
        .into_response())
}

/// Whether the access policy accepts these keys at this endpoint
/// ([`access::authenticate`]: not revoked, the endpoint's kind of key, a partner approved). A
/// key whose owner does not fit its kind is an inconsistent database, not bad credentials.
fn accepted(
    key: &ApiKey,
    partner: Option<PartnerState>,
    at: Presented<'_>,
) -> Result<bool, AppError> {
    match access::authenticate(key, partner, at) {
        Ok(_) => Ok(true),
        Err(NotAuthenticated::Refused) => Ok(false),
        Err(NotAuthenticated::Inconsistent(why)) => Err(AppError::Internal(why)),
    }
}

/// Checks the form body of `/miami/v1/token`: `grant_type=client_credentials`, no field given
/// twice; other fields are ignored. Errors are RFC 6749 §5.2 answers.
pub fn check_token_form(body: &[u8]) -> Result<(), AppError> {
    let invalid_request = |d: &str| AppError::oauth(StatusCode::BAD_REQUEST, "invalid_request", d);
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| invalid_request("body: is not a valid form"))?;
    // A set, not pairwise comparison: a 1 MiB body holds 100 000 fields.
    let mut seen = std::collections::HashSet::with_capacity(form.len());
    for (k, _) in &form {
        if !seen.insert(k.as_str()) {
            return Err(invalid_request(&format!("{k}: given more than once")));
        }
    }
    match form
        .iter()
        .find(|(k, _)| k == "grant_type")
        .map(|(_, v)| v.as_str())
    {
        None => return Err(invalid_request("grant_type: is required")),
        Some("client_credentials") => {}
        Some(_) => {
            return Err(AppError::oauth(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type: must be client_credentials",
            ));
        }
    }
    Ok(())
}

/// Signs a token for `key` and logs who got one where (never the token itself).
fn issue(
    state: &AppState,
    key: &ApiKey,
    lifetime: i64,
    endpoint: &'static str,
) -> Result<(String, crate::tokens::Claims), AppError> {
    let issued = state
        .tokens
        .issue(key, lifetime)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    state.metrics.token_issued(key.kind.as_str());
    tracing::info!(
        key_id = key.id,
        key_type = key.kind.as_str(),
        endpoint,
        "issued token"
    );
    Ok(issued)
}

pub async fn jwks(State(state): State<AppState>) -> Response {
    Json(state.tokens.jwks()).into_response()
}
