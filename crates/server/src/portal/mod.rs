//! The portal: server-rendered pages for merchants, partners and the operator.
//!
//! Plain HTML forms, no JavaScript. Every page and every POST loads the session and the user from
//! the store ([`auth::SignedIn`]) and checks the user's role and organisation again; every POST
//! checks the session's CSRF token ([`csrf`]). Changes go through the [`Store`] with the user as
//! the [`Actor`](ledgerport_store::Actor), so the audit log names them.
//!
//! - [`auth`]: passwords, sessions, sign-in and the lock-out
//! - [`public`]: sign-in, sign-out, the partner application
//! - [`notifications`]: the notifications page of merchant and partner users
//! - [`requests`]: partners' access requests and merchants' answers; [`invitations`]: the
//!   signed invitation links a partner sends and a merchant answers
//! - [`merchant`], [`partner`], [`operator`]: each kind of user's pages; [`console`]: the
//!   operator's forms for merchants, sales units and ledgers, and the ingestion status
//! - [`templates`]: the askama templates' structs

pub mod access_log;
pub mod auth;
pub mod console;
pub mod csrf;
pub mod invitations;
pub mod merchant;
pub mod notifications;
pub mod operator;
pub mod partner;
pub mod public;
pub mod requests;
pub mod settlements;
pub mod templates;
pub mod webhooks;

use crate::AppState;
use askama::Template;
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use ledgerport_store::{PortalRole, StoreError};
use templates::{Layout, MessagePage};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/portal") }))
        .route("/portal", get(public::home))
        .route("/portal/style.css", get(style))
        .route(
            "/portal/sign-in",
            get(public::sign_in_page).post(public::sign_in),
        )
        .route("/portal/sign-out", post(public::sign_out))
        .route("/portal/apply", get(public::apply_page).post(public::apply))
        .route("/portal/merchant/partners", get(merchant::partners))
        .route(
            "/portal/merchant/partners/edit",
            get(merchant::edit_access).post(merchant::save_access),
        )
        .route(
            "/portal/merchant/partners/remove",
            get(merchant::confirm_remove).post(merchant::remove),
        )
        .route("/portal/merchant/keys", get(merchant::keys))
        .route(
            "/portal/merchant/keys/regenerate",
            post(merchant::regenerate),
        )
        .route(
            "/portal/merchant/access-log",
            get(access_log::merchant_page),
        )
        .route(
            "/portal/merchant/access-log.csv",
            get(access_log::merchant_csv),
        )
        .route("/portal/partner/access-log", get(access_log::partner_page))
        .route(
            "/portal/partner/access-log.csv",
            get(access_log::partner_csv),
        )
        .route("/portal/merchant/settlements", get(settlements::page_route))
        .route("/portal/merchant/settlements.csv", get(settlements::csv))
        .route(
            "/portal/merchant/settlements/camt053",
            get(settlements::camt053),
        )
        .route("/portal/merchant/requests", get(requests::merchant_page))
        .route("/portal/merchant/requests/approve", post(requests::approve))
        .route("/portal/merchant/requests/decline", post(requests::decline))
        .route("/portal/notifications", get(notifications::list))
        .route("/portal/notifications/read", post(notifications::mark_read))
        .route("/portal/partner", get(partner::home))
        .route(
            "/portal/partner/requests",
            get(requests::partner_page).post(requests::ask),
        )
        .route(
            "/portal/partner/requests/withdraw",
            post(requests::withdraw),
        )
        .route("/portal/partner/invitations", post(invitations::make))
        .route(
            invitations::INVITATION_PATH,
            get(invitations::show).post(invitations::answer),
        )
        .route("/portal/partner/keys/issue", post(partner::issue))
        .route("/portal/partner/keys/regenerate", post(partner::regenerate))
        .route("/portal/partner/keys/revoke", post(partner::revoke))
        .route("/portal/merchant/webhooks", get(webhooks::page_route))
        .route("/portal/partner/webhooks", get(webhooks::page_route))
        .route("/portal/webhooks/create", post(webhooks::create))
        .route("/portal/webhooks/rotate", post(webhooks::rotate))
        .route("/portal/webhooks/enable", post(webhooks::enable))
        .route("/portal/webhooks/delete", post(webhooks::delete))
        .route("/portal/webhooks/redeliver", post(webhooks::redeliver))
        .route("/portal/operator", get(operator::partners))
        .route("/portal/operator/partners/state", post(operator::set_state))
        .route("/portal/operator/world", get(operator::world))
        .route("/portal/operator/merchants", post(console::create_merchant))
        .route("/portal/operator/units", post(console::create_sales_unit))
        .route("/portal/operator/ledgers", post(console::create_ledger))
        .route("/portal/operator/status", get(console::status))
        .layer(axum::middleware::map_response(security_headers))
}

/// The portal's pages load only their own style sheet and send forms only to themselves: no
/// script, inline or not, runs; no other site may frame them, sniff their types or learn the
/// page's address from a link.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'none'; \
     style-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    r
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("../../templates/style.css"),
    )
        .into_response()
}

/// What can go wrong on a portal page; each answers as an HTML page, never a JSON problem.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// No valid session: to the sign-in page.
    #[error("not signed in")]
    NotSignedIn,
    /// 403: signed in, but this is not the user's to see or change (another organisation's ids
    /// answer the same way as pages of another kind of user).
    #[error("forbidden")]
    Forbidden,
    /// 403: a form without the session's CSRF token.
    #[error("bad csrf token")]
    Csrf,
    /// 404.
    #[error("not found")]
    NotFound,
    /// 400 with a message naming the field.
    #[error("{0}")]
    BadRequest(String),
    /// 429 with `Retry-After` (seconds): too many requests of this kind from this client.
    #[error("too many requests")]
    TooMany(u64),
    /// 503 with `Retry-After` (seconds): every password-hashing slot is taken.
    #[error("busy")]
    Busy(u64),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<StoreError> for PortalError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => PortalError::NotFound,
            StoreError::Invalid(m) | StoreError::Conflict(m) => PortalError::BadRequest(m),
            other => PortalError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            PortalError::TooMany(s) | PortalError::Busy(s) => Some(*s),
            _ => None,
        };
        let (status, heading, text) = match &self {
            PortalError::NotSignedIn => return Redirect::to("/portal/sign-in").into_response(),
            PortalError::Forbidden => (
                StatusCode::FORBIDDEN,
                "Not yours",
                "This page or item does not belong to your account.".to_owned(),
            ),
            PortalError::Csrf => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "The form was not sent from this site or your session changed. Go back, reload the page and try again.".to_owned(),
            ),
            PortalError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here.".to_owned(),
            ),
            PortalError::BadRequest(m) => (StatusCode::BAD_REQUEST, "Cannot do that", m.clone()),
            PortalError::TooMany(s) => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                format!("Too many attempts from your network. Try again in {s} seconds."),
            ),
            PortalError::Busy(s) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Busy",
                format!("The server is busy. Try again in {s} seconds."),
            ),
            PortalError::Internal(m) => {
                tracing::error!(error = %m, "portal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Please try again later.".to_owned(),
                )
            }
        };
        let page = MessagePage {
            l: Layout::error(),
            heading,
            text,
            back: "/portal",
        };
        let mut r = (status, html(&page)).into_response();
        if let Some(s) = retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

/// Renders a template; a template error is a bug and answers 500.
pub fn html(t: &impl Template) -> Response {
    match t.render() {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a portal page");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A page for a signed-in user: the rendered template, and the flash cookie cleared once shown.
pub fn page(had_flash: bool, t: &impl Template) -> Response {
    page_clearing_flash(html(t), had_flash)
}

pub fn page_clearing_flash(mut r: Response, had_flash: bool) -> Response {
    if had_flash {
        set_cookie(
            &mut r,
            &format!("{FLASH_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict; Secure"),
        );
    }
    r
}

const FLASH_COOKIE: &str = "lp_flash";

/// After a change: back to `to`, with a message shown once there (`kind`: `ok` or `err`).
pub fn redirect_flash(to: &str, kind: &str, message: &str) -> Response {
    let mut r = Redirect::to(to).into_response();
    let value =
        serde_urlencoded::to_string([("m", format!("{kind}:{message}"))]).unwrap_or_default();
    set_cookie(
        &mut r,
        &format!(
            "{FLASH_COOKIE}={}; Path=/; Max-Age=60; HttpOnly; SameSite=Strict; Secure",
            value.trim_start_matches("m=")
        ),
    );
    r
}

/// The flash message of the request, as `(kind, text)`.
pub fn flash_of(headers: &HeaderMap) -> Option<(String, String)> {
    let raw = cookie(headers, FLASH_COOKIE).filter(|v| !v.is_empty())?;
    let decoded: Vec<(String, String)> = serde_urlencoded::from_str(&format!("m={raw}")).ok()?;
    let (_, text) = decoded.into_iter().next()?;
    let (kind, msg) = text.split_once(':')?;
    let kind = if kind == "ok" { "ok" } else { "err" };
    Some((kind.to_owned(), msg.to_owned()))
}

pub fn set_cookie(r: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The value of cookie `name` in the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A form body as name/value pairs (repeated names kept, as checkboxes send them).
pub fn form_pairs(body: &[u8]) -> Result<Vec<(String, String)>, PortalError> {
    serde_urlencoded::from_bytes(body)
        .map_err(|_| PortalError::BadRequest("the form could not be read".into()))
}

pub fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A row id field of a form; a missing or malformed one is a bad request naming it.
pub fn id_field(pairs: &[(String, String)], name: &str) -> Result<i64, PortalError> {
    field(pairs, name)
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| PortalError::BadRequest(format!("{name}: must be a number")))
}

/// Checks the session's CSRF token against the form's `csrf` field.
pub fn check_csrf(who: &auth::SignedIn, pairs: &[(String, String)]) -> Result<(), PortalError> {
    if csrf::matches(&who.csrf, field(pairs, "csrf")) {
        Ok(())
    } else {
        Err(PortalError::Csrf)
    }
}

/// A form posted by a signed-in user, its CSRF token checked: the one way a handler that changes
/// something gets its form, so no such handler can forget the check.
pub struct PostedForm {
    pub who: auth::SignedIn,
    pub pairs: Vec<(String, String)>,
}

impl axum::extract::FromRequest<AppState> for PostedForm {
    type Rejection = PortalError;

    async fn from_request(
        req: axum::extract::Request,
        state: &AppState,
    ) -> Result<Self, PortalError> {
        let (mut parts, body) = req.into_parts();
        let who =
            <auth::SignedIn as axum::extract::FromRequestParts<AppState>>::from_request_parts(
                &mut parts, state,
            )
            .await?;
        let req = axum::extract::Request::from_parts(parts, body);
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| PortalError::BadRequest("the form could not be read".into()))?;
        let pairs = form_pairs(&body)?;
        check_csrf(&who, &pairs)?;
        Ok(PostedForm { who, pairs })
    }
}

/// Where each kind of user starts.
pub fn home_of(role: PortalRole) -> &'static str {
    match role {
        PortalRole::Merchant(_) => "/portal/merchant/partners",
        PortalRole::Partner(_) => "/portal/partner",
        PortalRole::Operator => "/portal/operator",
    }
}

/// A date as pages show it: `2024-04-05 12:00 UTC`.
pub fn show_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// A grant's scope in words, as the merchant's and the partner's pages show it: topics, dates,
/// personal data and expiry.
pub fn scope_words(scope: &ledgerport_core::world::GrantScope) -> String {
    let topics = match (scope.topics.funds, scope.topics.fees) {
        (true, true) => "funds and fees",
        (true, false) => "funds only",
        _ => "fees only",
    };
    let dates = match (scope.from, scope.to) {
        (None, None) => "all dates".to_owned(),
        (Some(f), Some(t)) => format!("dates {f} to {t}"),
        (Some(f), None) => format!("dates from {f}"),
        (None, Some(t)) => format!("dates up to {t}"),
    };
    let personal = if scope.personal_data {
        "with personal data"
    } else {
        "no personal data"
    };
    let expiry = match scope.expires_at {
        None => "no expiry".to_owned(),
        Some(e) => format!("until {}", show_time(e)),
    };
    format!("{topics} · {dates} · {personal} · {expiry}")
}
