//! Pages anyone may reach: the start, sign-in, sign-out and the partner application.

use super::PostedForm;
use super::auth::{self, SESSION_COOKIE, SignedIn};
use super::templates::{ApplyForm, ApplyPage, Layout, MessagePage, SignInPage};
use super::{
    PortalError, cookie, csrf, field, form_pairs, home_of, html, redirect_flash, set_cookie,
};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use ledgerport_core::ids::BusinessId;
use ledgerport_core::world::PartnerKind;
use ledgerport_store::{Actor, NewPartner, StoreError};

/// The cookie holding the CSRF token of forms shown before sign-in.
const PRE_CSRF_COOKIE: &str = "lp_csrf";

pub async fn home(who: Result<SignedIn, PortalError>) -> Response {
    match who {
        Ok(w) => Redirect::to(home_of(w.user.role)).into_response(),
        Err(_) => Redirect::to("/portal/sign-in").into_response(),
    }
}

/// A page with a form shown before sign-in: a fresh token in the page and in its cookie.
fn with_pre_csrf(render: impl FnOnce(&str) -> Response) -> Response {
    let token = csrf::new_token();
    let mut r = render(&token);
    set_cookie(
        &mut r,
        &format!("{PRE_CSRF_COOKIE}={token}; Path=/portal; HttpOnly; SameSite=Strict; Secure"),
    );
    r
}

fn check_pre_csrf(headers: &HeaderMap, pairs: &[(String, String)]) -> Result<(), PortalError> {
    let expected = cookie(headers, PRE_CSRF_COOKIE).unwrap_or_default();
    if csrf::matches(&expected, field(pairs, "csrf")) {
        Ok(())
    } else {
        Err(PortalError::Csrf)
    }
}

fn sign_in_form(email: &str, flash: Option<(String, String)>, csrf: &str) -> Response {
    let mut l = Layout::anonymous(csrf);
    l.flash = flash;
    html(&SignInPage {
        l,
        email: email.to_owned(),
    })
}

pub async fn sign_in_page(headers: HeaderMap) -> Response {
    let flash = super::flash_of(&headers);
    let had = flash.is_some();
    let r = with_pre_csrf(|t| sign_in_form("", flash, t));
    super::page_clearing_flash(r, had)
}

pub async fn sign_in(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match try_sign_in(&state, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn try_sign_in(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, PortalError> {
    let pairs = form_pairs(body)?;
    check_pre_csrf(headers, &pairs)?;
    let email = field(&pairs, "email").unwrap_or("").trim().to_lowercase();
    let password = field(&pairs, "password").unwrap_or("").to_owned();
    let refuse = |text: String| {
        let mut r = with_pre_csrf(|t| sign_in_form(&email, Some(("err".into(), text)), t));
        *r.status_mut() = axum::http::StatusCode::UNAUTHORIZED;
        r
    };

    let now = state.clock.now();
    let failures = state.store.sign_in_failures(&email).await?;
    let locked_until = failures
        .last_at
        .filter(|_| failures.count >= auth::MAX_FAILURES)
        .map(|last| last.checked_add(auth::LOCKOUT).unwrap_or(last))
        .filter(|until| now < *until);
    if let Some(until) = locked_until {
        let mins = (until.as_second() - now.as_second()).div_euclid(60) + 1;
        return Ok(refuse(format!(
            "Too many failed sign-ins for this e-mail. Try again in {mins} minutes."
        )));
    }
    let user = state.store.portal_user_by_email(&email).await?;
    let ok = auth::verify_password(password, user.as_ref().map(|u| u.password_hash.clone())).await;
    let user = match (ok, user) {
        (true, Some(u)) => u,
        _ => {
            state.store.record_sign_in_failure(&email).await?;
            return Ok(refuse("Wrong e-mail or password.".into()));
        }
    };
    state.store.clear_sign_in_failures(&email).await?;

    let token = csrf::new_token();
    let session_csrf = csrf::new_token();
    let expires = now
        .checked_add(auth::SESSION_LIFETIME)
        .map_err(|e| PortalError::Internal(e.to_string()))?;
    state
        .store
        .create_session(user.id, auth::token_hash(&token), &session_csrf, expires)
        .await?;
    let mut r = Redirect::to(home_of(user.role)).into_response();
    set_cookie(
        &mut r,
        &format!(
            "{SESSION_COOKIE}={token}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict; Secure",
            auth::SESSION_LIFETIME.as_secs()
        ),
    );
    set_cookie(
        &mut r,
        &format!("{PRE_CSRF_COOKIE}=; Path=/portal; Max-Age=0"),
    );
    Ok(r)
}

pub async fn sign_out(
    State(state): State<AppState>,
    PostedForm { who, pairs: _ }: PostedForm,
) -> Result<Response, PortalError> {
    state.store.delete_session(who.token_hash).await?;
    let mut r = redirect_flash("/portal/sign-in", "ok", "You are signed out.");
    set_cookie(
        &mut r,
        &format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict; Secure"),
    );
    Ok(r)
}

pub async fn apply_page() -> Response {
    with_pre_csrf(|t| {
        html(&ApplyPage {
            l: Layout::anonymous(t),
            form: ApplyForm::default(),
            errors: vec![],
        })
    })
}

/// Checks an application; each problem names its field.
fn validate(form: &ApplyForm, password: &str) -> (Vec<String>, Option<BusinessId>) {
    let mut errors = vec![];
    let company = form.company.trim();
    if company.is_empty() || company.chars().count() > 200 {
        errors.push("Company name: must be 1 to 200 characters.".to_owned());
    }
    let business = BusinessId::parse("org_number", "business:NO:ORG", form.org_number.trim());
    if business.is_err() {
        errors.push("Organisation number: must be 9 digits.".to_owned());
    }
    let email = form.email.trim();
    let valid_email = email.len() <= 254
        && email.split_once('@').is_some_and(|(a, d)| {
            !a.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
        })
        && !email.chars().any(char::is_whitespace);
    if !valid_email {
        errors.push("Contact e-mail: must be an e-mail address.".to_owned());
    }
    if password.chars().count() < auth::MIN_PASSWORD_LEN {
        errors.push(format!(
            "Password: must be at least {} characters.",
            auth::MIN_PASSWORD_LEN
        ));
    }
    if form.description.chars().count() > 2000 {
        errors.push("Description: at most 2000 characters.".to_owned());
    }
    (errors, business.ok())
}

pub async fn apply(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let result: Result<Response, PortalError> = async {
        let pairs = form_pairs(&body)?;
        check_pre_csrf(&headers, &pairs)?;
        let get = |n: &str| field(&pairs, n).unwrap_or("").to_owned();
        let form = ApplyForm {
            company: get("company"),
            org_number: get("org_number"),
            email: get("email"),
            description: get("description"),
        };
        let password = get("password");
        let again = |errors: Vec<String>, form: ApplyForm| {
            let mut r = with_pre_csrf(|t| {
                html(&ApplyPage {
                    l: Layout::anonymous(t),
                    form,
                    errors,
                })
            });
            *r.status_mut() = axum::http::StatusCode::BAD_REQUEST;
            r
        };
        let (errors, business) = validate(&form, &password);
        let Some(business) = business.filter(|_| errors.is_empty()) else {
            return Ok(again(errors, form));
        };
        let hash = auth::hash_password(password)
            .await
            .map_err(PortalError::Internal)?;
        let email = form.email.trim().to_lowercase();
        let applied = state
            .store
            .apply_as_partner(
                &Actor::new(format!("portal:applicant:{email}")),
                NewPartner {
                    name: form.company.trim().to_owned(),
                    kind: PartnerKind::Accounting,
                    business: Some(business),
                    contact_email: email.clone(),
                },
                &email,
                &hash,
            )
            .await;
        match applied {
            Ok(_) => Ok(html(&MessagePage {
                l: Layout::anonymous(""),
                heading: "Application received",
                text: format!(
                    "Thank you. The operator will review the application of {}. Sign in with {email} to follow it.",
                    form.company.trim()
                ),
                back: "/portal/sign-in",
            })),
            Err(StoreError::Conflict(_)) => Ok(again(
                vec!["Contact e-mail: already has an account; sign in instead.".into()],
                form,
            )),
            Err(e) => Err(e.into()),
        }
    }
    .await;
    result.unwrap_or_else(|e| e.into_response())
}
