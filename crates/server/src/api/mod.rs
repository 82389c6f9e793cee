//! The public API: the Access Token API, the Report API and the JWKS; and the operator's
//! ingestion endpoint.

pub mod docs;
pub mod ingest;
pub mod report;
pub mod token;
pub mod webhooks;
pub mod wire;

use crate::{AppError, AppState};
use axum::Router;
use axum::http::HeaderMap;
use axum::routing::{delete, get, post};

pub fn routes(state: AppState) -> Router {
    let report = Router::new()
        .route("/settlement/v1/ledgers", get(report::list_ledgers))
        .route("/ledgerport/v1/grants", get(report::list_grants))
        .route("/ledgerport/v1/webhooks", get(webhooks::list))
        .route("/ledgerport/v1/webhooks", post(webhooks::create))
        .route("/ledgerport/v1/webhooks/{id}", delete(webhooks::delete))
        .route(
            "/ledgerport/v1/webhooks/{id}/rotate-secret",
            post(webhooks::rotate),
        )
        .route(
            "/ledgerport/v1/webhooks/{id}/deliveries",
            get(webhooks::deliveries),
        )
        .route(
            "/ledgerport/v1/webhooks/{id}/deliveries/{delivery}/redeliver",
            post(webhooks::redeliver),
        )
        .route(
            "/report/v2/ledgers/{ledger_id}/{topic}/dates/{ledger_date}",
            get(report::date_page),
        )
        .route(
            "/ledgerport/v1/ledgers/{ledger_id}/{topic}/dates/{ledger_date}/proof",
            get(report::date_proof),
        )
        .route(
            "/ledgerport/v1/ledgers/{ledger_id}/statements/camt053",
            get(report::camt053_statement),
        )
        .route(
            "/report/v2/ledgers/{ledger_id}/{topic}/feed",
            get(report::feed_page),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            report::authenticate,
        ))
        .route("/report/v1/ledgertransactions", get(report::gone))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            report::access_log,
        ));
    let ingest = Router::new()
        .route(
            ingest::PATH,
            post(ingest::post_events).layer(ingest::body_limit()),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ingest::authenticate,
        ));
    Router::new()
        .route("/accesstoken/get", post(token::standard_token))
        .route("/accessToken/get", post(token::standard_token))
        .route("/miami/v1/token", post(token::miami_token))
        .route("/.well-known/jwks.json", get(token::jwks))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(docs::openapi))
        .route("/docs", get(docs::docs))
        .merge(report)
        .merge(ingest)
        .fallback(|| async { AppError::NotFound })
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .with_state(state)
}

async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<&'static str, AppError> {
    state.store.ping().await?;
    Ok("ready")
}

/// The optional `Vipps-System-*` headers, informational only. Documented as at most 30
/// characters each, but a longer value is accepted: clients in the wild send longer ones (the
/// official Postman collection run without its environment sends 31), and refusing them would
/// refuse working clients for a statistic. Nothing stores or logs them; whatever starts to
/// should keep only the first 30 characters.
const SYSTEM_HEADERS: [&str; 4] = [
    "Vipps-System-Name",
    "Vipps-System-Version",
    "Vipps-System-Plugin-Name",
    "Vipps-System-Plugin-Version",
];

/// A header as text; a header that is not visible ASCII is bad input naming the header.
pub fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<Option<&'a str>, AppError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| AppError::bad(name, "must be visible ASCII text")),
    }
}

/// The `Vipps-System-*` headers must be text (visible ASCII); any length is accepted.
pub fn check_system_headers(headers: &HeaderMap) -> Result<(), AppError> {
    for name in SYSTEM_HEADERS {
        header(headers, name)?;
    }
    Ok(())
}

/// Query parameters in order. A parameter given twice is refused rather than guessed at.
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub fn parse(raw: Option<&str>) -> Result<Self, AppError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|_| AppError::bad("query", "is not a valid query string"))?;
        // A set, not pairwise comparison: a long query string holds many thousand parameters.
        let mut seen = std::collections::HashSet::with_capacity(pairs.len());
        for (k, _) in &pairs {
            if !seen.insert(k.as_str()) {
                return Err(AppError::BadRequest(format!("{k}: given more than once")));
            }
        }
        Ok(QueryParams(pairs))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter: absent is `false`; `true`/`false` in any case.
    pub fn flag(&self, name: &'static str) -> Result<bool, AppError> {
        match self.get(name) {
            None | Some("") => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => Err(AppError::bad(name, "must be true or false")),
        }
    }

    /// The cursor, where an empty `cursor=` means "no cursor".
    pub fn cursor(&self) -> Option<&str> {
        self.get("cursor").filter(|c| !c.is_empty())
    }
}
