//! Pages anyone may reach: the start, sign-in, sign-out and the partner application.

use super::PostedForm;
use super::auth::{self, SESSION_COOKIE, SignedIn};
use super::templates::{ApplyForm, ApplyPage, Layout, MessagePage, SignInPage};
use super::{
    PortalError, cookie, csrf, field, form_pairs, home_of, html, redirect_flash, set_cookie,
};
use crate::AppState;
use crate::limits::ClientAddr;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use ledgerport_core::ids::{BusinessId, Country, OrgScheme};
use ledgerport_core::world::PartnerKind;
use ledgerport_store::{Actor, NewMail, NewPartner, StoreError};

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

pub async fn sign_in(
    State(state): State<AppState>,
    addr: ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match try_sign_in(&state, addr, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn try_sign_in(
    state: &AppState,
    addr: ClientAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, PortalError> {
    state
        .limits
        .sign_in_request(addr)
        .map_err(PortalError::TooMany)?;
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
    let too_many = |until: jiff::Timestamp| {
        let mins = (until.as_second() - now.as_second()).div_euclid(60) + 1;
        refuse(format!(
            "Too many failed sign-ins for this e-mail. Try again in {mins} minutes."
        ))
    };
    let before = state.store.sign_in_failures(&email).await?;
    let lock_end = |f: &ledgerport_store::SignInFailures| {
        f.last_at
            .map(|last| last.checked_add(auth::LOCKOUT).unwrap_or(last))
            .unwrap_or(now)
    };
    if before.count >= auth::MAX_FAILURES && now < lock_end(&before) {
        return Ok(too_many(lock_end(&before)));
    }
    // The attempt is counted as a failure *before* the password is hashed, in one atomic
    // upsert, and forgiven below if it succeeds: parallel guesses each take their own number,
    // so no more than MAX_FAILURES of them get as far as the hash. A lock-out that has run out
    // leaves its count behind; it is the base the new allowance counts from.
    let base = if before.count >= auth::MAX_FAILURES {
        before.count
    } else {
        0
    };
    let reserved = state.store.record_sign_in_failure(&email).await?;
    if reserved.count.saturating_sub(base) > auth::MAX_FAILURES {
        return Ok(too_many(lock_end(&reserved)));
    }
    // A busy server's 503 keeps the attempt counted: it cannot be told from a guess.
    let permit = state
        .limits
        .hashing_permit()
        .await
        .map_err(PortalError::Busy)?;
    let user = state.store.portal_user_by_email(&email).await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let ok = auth::verify_password_holding(permit, password, stored).await;
    let user = match (ok, user) {
        (true, Some(u)) => u,
        _ => return Ok(refuse("Wrong e-mail or password.".into())),
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
            form: ApplyForm {
                country: "NO".into(),
                ..ApplyForm::default()
            },
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
    let business = match Country::parse("country", form.country.trim()) {
        Err(_) => {
            errors.push("Country: choose Norway, Denmark or Finland.".to_owned());
            None
        }
        Ok(country) => {
            // Spaces as people write them (`987 654 321`) are not part of the number.
            let number: String = form
                .org_number
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let scheme = OrgScheme::of_country(country).as_str();
            match BusinessId::parse("org_number", scheme, &number) {
                Ok(b) => Some(b),
                Err(e) => {
                    errors.push(format!("Organisation number: {}.", e.reason));
                    None
                }
            }
        }
    };
    let email = form.email.trim();
    let valid_email = email.len() <= 254
        && email.split_once('@').is_some_and(|(a, d)| {
            !a.is_empty()
                && d.contains('.')
                && !d.contains('@')
                && !d.starts_with('.')
                && !d.ends_with('.')
        })
        // One plain address: what the outbox can mail (a list or a display name is not one).
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || ",;<>\"".contains(c));
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
    (errors, business)
}

/// The mail to the address of a new application. Like the other mail below it repeats nothing
/// the applicant typed (the company name, the description): whoever applies chooses the
/// address, so anything echoed would be text of a stranger's choosing in someone's mailbox.
fn application_received(email: &str) -> NewMail {
    NewMail {
        recipient: email.to_owned(),
        subject: "Your Ledgerport partner application".into(),
        body: "Ledgerport received an application to become an accounting partner, made with \
               this e-mail address. The operator will review it; sign in to the Ledgerport \
               portal with this address and the password of the application to follow it.\n\n\
               If you did not apply, you need do nothing: the application stays waiting and \
               gives no one access to anything.\n"
            .into(),
    }
}

/// The mail to the owner of an account whose address someone applied with: the page said the
/// same as for a new address, so only the address's owner learns of it.
fn address_already_has_an_account(email: &str) -> NewMail {
    NewMail {
        recipient: email.to_owned(),
        subject: "Someone applied with your Ledgerport e-mail address".into(),
        body: "Someone applied to become an accounting partner on Ledgerport with this e-mail \
               address, which already has a Ledgerport account. No application was made and \
               your account is unchanged.\n\n\
               If it was you, sign in to the Ledgerport portal with your existing password \
               instead. If it was not you, you need do nothing.\n"
            .into(),
    }
}

pub async fn apply(
    State(state): State<AppState>,
    addr: ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result: Result<Response, PortalError> = async {
        let pairs = form_pairs(&body)?;
        check_pre_csrf(&headers, &pairs)?;
        let get = |n: &str| field(&pairs, n).unwrap_or("").to_owned();
        let form = ApplyForm {
            company: get("company"),
            // Norway unless chosen: the form's default, and what clients of the older form
            // (without the choice) meant.
            country: Some(get("country"))
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| "NO".into()),
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
        // Only complete applications count against the limits: a typo costs nothing.
        state
            .limits
            .apply_request(addr)
            .map_err(PortalError::TooMany)?;
        let permit = state.limits.hashing_permit().await.map_err(PortalError::Busy)?;
        let hash = auth::hash_password_holding(permit, password)
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
                &[application_received(&email)],
            )
            .await;
        // The same page whether or not the e-mail already had an account: an applicant must not
        // learn who has one. The page signs nobody in, and the existing account is untouched.
        let received = html(&MessagePage {
            l: Layout::anonymous(""),
            heading: "Application received",
            text: format!(
                "Thank you. The operator will review the application of {}. Sign in with {email} to follow it.",
                form.company.trim()
            ),
            back: "/portal/sign-in",
        });
        match applied {
            Ok(_) => Ok(received),
            Err(StoreError::Conflict(_)) => {
                // Nothing was written; the address's owner hears of it by mail instead (the
                // only change, so a transaction of its own).
                state
                    .store
                    .enqueue_mail(address_already_has_an_account(&email))
                    .await?;
                Ok(received)
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    result.unwrap_or_else(|e| e.into_response())
}
