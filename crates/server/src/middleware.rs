//! Layers every request passes through.

use crate::AppState;
use crate::error::{PendingInternalError, PendingProblem, internal_body, problem_body};
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::any::Any;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;

/// The request's id: taken from a sane `X-Request-Id` header or made up. It is the `contextId` of
/// a 500, the `request_id` of the access log and a field of every log line of the request.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Request headers that carry credentials (lower case, as `HeaderName` wants them).
pub const SENSITIVE_HEADERS: [&str; 4] = [
    "authorization",
    "cookie",
    "client_secret",
    "ocp-apim-subscription-key",
];

/// Largest request body an endpoint accepts unless its route raises the limit (token forms).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Largest request body of `POST /ingest/v1/events` (its route raises the limit to this), and
/// the largest any request may announce.
pub const INGEST_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// The body limit of a path, for the 413 answer.
fn body_limit_of(path: &str) -> usize {
    if path == crate::api::ingest::PATH {
        INGEST_BODY_LIMIT
    } else {
        BODY_LIMIT
    }
}

/// Wraps the application in the layers every request passes; the last added is the outermost.
///
/// Body limits: `RequestBodyLimitLayer` refuses any body over the largest limit of any route
/// up front (by `Content-Length`, or while streaming); below that, axum's `DefaultBodyLimit`
/// (the default set here, raised by a route's own `DefaultBodyLimit` layer, which runs later
/// and wins) limits what a handler's body extractor reads. Both apply to every request, so the
/// outer limit must not be smaller than any route's.
///
/// Credential headers are marked sensitive first, so that no layer or log line that prints
/// headers can show their values (none does today; this keeps it so).
pub fn apply(router: Router, state: AppState) -> Router {
    let timeout = state.config.request_timeout;
    router
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(RequestBodyLimitLayer::new(INGEST_BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::INTERNAL_SERVER_ERROR,
            timeout,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn_with_state(state, request_context))
        .layer(SetSensitiveRequestHeadersLayer::new(
            SENSITIVE_HEADERS.map(HeaderName::from_static),
        ))
}

fn panic_response(_payload: Box<dyn Any + Send>) -> Response {
    // The payload may hold anything, including request data: it is not logged.
    let mut r = StatusCode::INTERNAL_SERVER_ERROR.into_response();
    r.extensions_mut()
        .insert(PendingInternalError("handler panicked".into()));
    r
}

fn request_id_from(req: &Request) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

async fn request_context(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: Request,
    next: axum::middleware::Next,
) -> Response {
    {
        let id = request_id_from(&req);
        req.extensions_mut().insert(RequestId(id.clone()));
        let path = req.uri().path().to_owned();
        let method = req.method().clone();
        // The route template, never the raw path: the metric's labels stay few.
        let route = req
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .map(|m| m.as_str().to_owned());
        let span = tracing::info_span!("request", request_id = %id, %method, %path);
        let started = std::time::Instant::now();
        let mut res = {
            use tracing::Instrument;
            next.run(req).instrument(span.clone()).await
        };
        let status = res.status();
        if let Some(PendingInternalError(cause)) =
            res.extensions_mut().remove::<PendingInternalError>()
        {
            tracing::error!(parent: &span, context_id = %id, cause = %cause, "internal error");
            res = json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "application/json",
                &internal_body(&id),
            );
        } else if status == StatusCode::INTERNAL_SERVER_ERROR
            && res.headers().get(header::CONTENT_TYPE).is_none()
        {
            // A 500 made by a layer (e.g. the timeout) rather than by AppError.
            tracing::error!(parent: &span, context_id = %id, "internal error without cause (timeout?)");
            res = json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "application/json",
                &internal_body(&id),
            );
        } else if let Some(p) = res.extensions_mut().remove::<PendingProblem>() {
            let mut r = json_response(
                p.status,
                "application/problem+json",
                &problem_body(&p, &path),
            );
            for (k, v) in res.headers() {
                if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
                    r.headers_mut().insert(k.clone(), v.clone());
                }
            }
            res = r;
        } else if status == StatusCode::PAYLOAD_TOO_LARGE {
            let p = PendingProblem {
                status,
                title: "Payload Too Large",
                detail: format!("body: larger than {} bytes", body_limit_of(&path)),
            };
            res = json_response(status, "application/problem+json", &problem_body(&p, &path));
        }
        if let Ok(v) = HeaderValue::from_str(&id) {
            res.headers_mut().insert("x-request-id", v);
        }
        let elapsed = started.elapsed();
        let status = res.status().as_u16();
        tracing::info!(parent: &span, status, elapsed_ms = elapsed.as_millis() as u64, "request done");
        state.metrics.record_request(
            route.as_deref().unwrap_or(crate::metrics::UNMATCHED),
            &method,
            status,
            elapsed,
        );
        res
    }
}

fn json_response(
    status: StatusCode,
    content_type: &'static str,
    body: &serde_json::Value,
) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
