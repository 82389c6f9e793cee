//! The one error type of the HTTP layer and the wire shapes it turns into.
//!
//! Client errors carry a detail that is safe to show and names the field that was wrong. Server
//! errors are opaque: the response says only "internal error" and a `contextId`, and the real
//! cause is logged once, under the same id, by the request middleware (which alone knows the id).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ledgerport_core::ParseError;
use ledgerport_store::StoreError;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400 `application/problem+json`; `detail` names the field.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 401 `{"code":"Unauthorized","message":"Please check your API keys"}`.
    #[error("unauthorized")]
    Unauthorized,
    /// 403 problem: credentials that may never do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 404 problem `No such ledgerId`, for a ledger that is unknown and for one the caller may not
    /// read alike.
    #[error("no such ledger")]
    NoSuchLedger,
    /// 404 problem: a closed ledger date that has no completeness proof (dates before the
    /// ledger's first); the detail names `ledgerDate`.
    #[error("no proof: {0}")]
    NoProof(String),
    /// 409 problem: the request asks for what does not exist yet (the proof of an open date).
    #[error("conflict: {0}")]
    Conflict(String),
    /// 404 problem for a path that names nothing.
    #[error("not found")]
    NotFound,
    /// 405 problem: the path exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 410 problem.
    #[error("gone: {0}")]
    Gone(&'static str),
    /// 401 in the API gateway's words, for a missing or unknown `Ocp-Apim-Subscription-Key`.
    #[error("subscription key: {0}")]
    SubscriptionKey(&'static str),
    /// RFC 6749 §5.2 error of the token endpoints.
    #[error("oauth {error}: {description}")]
    OAuth {
        status: StatusCode,
        error: &'static str,
        description: String,
        basic_challenge: bool,
    },
    /// 429 problem with `Retry-After` (whole seconds, at least 1); `detail` says which limit.
    #[error("too many requests: {detail}")]
    TooManyRequests {
        retry_after_secs: u64,
        detail: String,
    },
    /// 431 problem: the request's headers are larger than the server takes.
    #[error("request headers too large: {0}")]
    HeadersTooLarge(String),
    /// 500; the text goes to the log, never to the client.
    #[error("internal: {0}")]
    Internal(String),
}

pub const MISSING_SUBSCRIPTION_KEY: &str = "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.";
pub const INVALID_SUBSCRIPTION_KEY: &str = "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.";

impl AppError {
    pub fn bad(field: &str, reason: impl std::fmt::Display) -> Self {
        AppError::BadRequest(format!("{field}: {reason}"))
    }

    pub fn oauth(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        AppError::OAuth {
            status,
            error,
            description: description.into(),
            basic_challenge: false,
        }
    }

    pub fn too_many_requests(retry_after_secs: u64, detail: impl Into<String>) -> Self {
        AppError::TooManyRequests {
            retry_after_secs: retry_after_secs.max(1),
            detail: detail.into(),
        }
    }

    pub fn invalid_client(description: impl Into<String>) -> Self {
        AppError::OAuth {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: description.into(),
            basic_challenge: true,
        }
    }
}

impl From<ParseError> for AppError {
    fn from(e: ParseError) -> Self {
        AppError::BadRequest(e.to_string())
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        // Store errors reaching a handler unhandled are the server's fault, never the client's.
        AppError::Internal(format!("{e}: {:?}", std::error::Error::source(&e)))
    }
}

/// A problem (RFC 9457) whose `instance` the request middleware fills in with the request path.
#[derive(Debug, Clone)]
pub struct PendingProblem {
    pub status: StatusCode,
    pub title: &'static str,
    pub detail: String,
}

/// Marks a 500 response; the request middleware logs `0` and writes the body with the request's
/// id as `contextId`.
#[derive(Debug, Clone)]
pub struct PendingInternalError(pub String);

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let problem = |status: StatusCode, title: &'static str, detail: String| {
            let mut r = status.into_response();
            r.extensions_mut().insert(PendingProblem {
                status,
                title,
                detail,
            });
            r
        };
        match self {
            AppError::BadRequest(detail) => problem(StatusCode::BAD_REQUEST, "Bad Request", detail),
            AppError::Forbidden(detail) => problem(StatusCode::FORBIDDEN, "Forbidden", detail),
            AppError::NoSuchLedger => problem(
                StatusCode::NOT_FOUND,
                "Not Found",
                "No such ledgerId".into(),
            ),
            AppError::NoProof(detail) => problem(StatusCode::NOT_FOUND, "Not Found", detail),
            AppError::Conflict(detail) => problem(StatusCode::CONFLICT, "Conflict", detail),
            AppError::NotFound => problem(
                StatusCode::NOT_FOUND,
                "Not Found",
                "No such endpoint".into(),
            ),
            AppError::MethodNotAllowed => problem(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method Not Allowed",
                "method: not allowed on this path".into(),
            ),
            AppError::Gone(detail) => problem(StatusCode::GONE, "Gone", detail.into()),
            AppError::HeadersTooLarge(detail) => problem(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "Request Header Fields Too Large",
                detail,
            ),
            AppError::TooManyRequests {
                retry_after_secs,
                detail,
            } => {
                let mut r = problem(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests", detail);
                r.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_secs.max(1)),
                );
                r
            }
            AppError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                axum::Json(
                    json!({"code": "Unauthorized", "message": "Please check your API keys"}),
                ),
            )
                .into_response(),
            AppError::SubscriptionKey(message) => (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"statusCode": 401, "message": message})),
            )
                .into_response(),
            AppError::OAuth {
                status,
                error,
                description,
                basic_challenge,
            } => {
                let mut r = (
                    status,
                    axum::Json(json!({"error": error, "error_description": description})),
                )
                    .into_response();
                let h = r.headers_mut();
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                if basic_challenge {
                    h.insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"ledgerport\""),
                    );
                }
                r
            }
            AppError::Internal(cause) => {
                let mut r = StatusCode::INTERNAL_SERVER_ERROR.into_response();
                r.extensions_mut().insert(PendingInternalError(cause));
                r
            }
        }
    }
}

/// The body of a problem response.
pub fn problem_body(p: &PendingProblem, instance: &str) -> serde_json::Value {
    json!({
        "type": "about:blank",
        "title": p.title,
        "status": p.status.as_u16(),
        "detail": p.detail,
        "instance": instance,
    })
}

/// The body of a 500.
pub fn internal_body(context_id: &str) -> serde_json::Value {
    json!({
        "errorCode": 10001,
        "errorMessage": "An internal error occurred. Quote the contextId when you contact support.",
        "contextId": context_id,
    })
}
