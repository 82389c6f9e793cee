//! The portal at the HTTP level (faster than the browser): sign-in, sessions, the lock-out,
//! CSRF, and that every user reaches only its own organisation's or partner's things.

mod common;

use common::{TestApp, by, lid, world};
use jiff::SignedDuration;
use ledgerport_core::world::{KeyKind, KeyOwner, PartnerKind, PartnerState};
use ledgerport_server::portal::auth::hash_password;
use ledgerport_store::{NewPortalUser, PortalRole};
use std::collections::HashMap;

const PW: &str = "correct horse battery";

/// A cookie-keeping client that does not follow redirects, so each answer can be checked.
struct Visitor<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
    cookies: HashMap<String, String>,
    /// Set-Cookie headers of the last response, as sent.
    last_set_cookies: Vec<String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

impl<'a> Visitor<'a> {
    fn new(app: &'a TestApp) -> Self {
        Visitor {
            app,
            http: ledgerport_server::http::client_builder()
                .expect("an HTTP client builder")
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: HashMap::new(),
            last_set_cookies: vec![],
        }
    }

    async fn send(&mut self, r: reqwest::RequestBuilder) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let res = r.header("Cookie", cookie).send().await.expect("request");
        self.last_set_cookies = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().expect("ascii").to_owned())
            .collect();
        for c in &self.last_set_cookies {
            let pair = c.split(';').next().unwrap_or("");
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() || c.contains("Max-Age=0") {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        Page {
            status: res.status().as_u16(),
            location: res
                .headers()
                .get("location")
                .map(|v| v.to_str().expect("ascii").to_owned()),
            body: res.text().await.expect("body"),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let r = self.http.get(self.app.url(path));
        self.send(r).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(form).expect("form");
        let r = self
            .http
            .post(self.app.url(path))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(r).await
    }

    /// The CSRF token of the page's forms.
    fn csrf_of(page: &Page) -> String {
        let at = page
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no csrf field in {}", page.body))
            + "name=\"csrf\" value=\"".len();
        page.body[at..].split('"').next().expect("token").to_owned()
    }

    async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        let form = self.get("/portal/sign-in").await;
        let csrf = Self::csrf_of(&form);
        self.post(
            "/portal/sign-in",
            &[("csrf", &csrf), ("email", email), ("password", password)],
        )
        .await
    }

    /// The session's CSRF token, read from a page of the signed-in user.
    async fn csrf(&mut self, path: &str) -> String {
        let p = self.get(path).await;
        assert_eq!(p.status, 200, "{path}: {}", p.body);
        Self::csrf_of(&p)
    }
}

async fn user(app: &TestApp, email: &str, role: PortalRole) {
    let password_hash = hash_password(PW.into()).await.expect("hash");
    app.store
        .create_portal_user(
            &by(),
            NewPortalUser {
                email: email.into(),
                role,
                password_hash,
            },
        )
        .await
        .expect("user");
}

#[tokio::test]
async fn passwords_are_argon2id_and_the_session_cookie_is_httponly_strict_and_secure() {
    let app = TestApp::start().await;
    user(&app, "ops@ledgerport.test", PortalRole::Operator).await;
    let stored = app
        .store
        .portal_user_by_email("ops@ledgerport.test")
        .await
        .expect("read")
        .expect("user");
    assert!(
        stored.password_hash.starts_with("$argon2id$"),
        "{}",
        stored.password_hash
    );

    let mut v = Visitor::new(&app);
    let p = v.sign_in("OPS@ledgerport.test", PW).await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location.as_deref(), Some("/portal/operator"));
    let session = v
        .last_set_cookies
        .iter()
        .find(|c| c.starts_with("__Host-lp_session="))
        .expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(session.contains(attr), "{attr} missing in {session}");
    }
    // The `__Host-` prefix: browsers keep it only without a Domain.
    assert!(!session.to_lowercase().contains("domain="), "{session}");
    assert_eq!(v.get("/portal/operator").await.status, 200);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_answer_alike_and_sign_in_needs_its_form_token() {
    let app = TestApp::start().await;
    user(&app, "ops@ledgerport.test", PortalRole::Operator).await;
    let mut v = Visitor::new(&app);
    let wrong = v.sign_in("ops@ledgerport.test", "not the password").await;
    let unknown = v
        .sign_in("nobody@ledgerport.test", "not the password")
        .await;
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert!(wrong.body.contains("Wrong e-mail or password."));
    assert!(unknown.body.contains("Wrong e-mail or password."));
    assert!(!v.cookies.contains_key("__Host-lp_session"));

    // A sign-in post from elsewhere (no token of this site's form) is refused.
    let mut other = Visitor::new(&app);
    let p = other
        .post(
            "/portal/sign-in",
            &[("email", "ops@ledgerport.test"), ("password", PW)],
        )
        .await;
    assert_eq!(p.status, 403);
    assert!(!other.cookies.contains_key("__Host-lp_session"));
}

#[tokio::test]
async fn five_failed_sign_ins_lock_the_email_for_fifteen_minutes_even_with_the_right_password() {
    let app = TestApp::start().await;
    user(&app, "ops@ledgerport.test", PortalRole::Operator).await;
    let mut v = Visitor::new(&app);
    for _ in 0..5 {
        assert_eq!(
            v.sign_in("ops@ledgerport.test", "wrong password")
                .await
                .status,
            401
        );
    }

    let locked = v.sign_in("ops@ledgerport.test", PW).await;
    assert_eq!(locked.status, 401);
    assert!(
        locked.body.contains("Too many failed sign-ins"),
        "{}",
        locked.body
    );

    app.clock.advance(SignedDuration::from_mins(14));
    assert_eq!(
        v.sign_in("ops@ledgerport.test", PW).await.status,
        401,
        "still locked"
    );
    app.clock.advance(SignedDuration::from_mins(2));
    assert_eq!(v.sign_in("ops@ledgerport.test", PW).await.status, 303);
    let failures = app
        .store
        .sign_in_failures("ops@ledgerport.test")
        .await
        .expect("failures");
    assert_eq!(failures.count, 0, "a successful sign-in clears the count");
}

#[tokio::test]
async fn signing_out_ends_the_session_on_the_server_and_sessions_expire() {
    let app = TestApp::start().await;
    user(&app, "ops@ledgerport.test", PortalRole::Operator).await;
    let mut v = Visitor::new(&app);
    v.sign_in("ops@ledgerport.test", PW).await;
    let stolen = v
        .cookies
        .get("__Host-lp_session")
        .cloned()
        .expect("session");
    let csrf = v.csrf("/portal/operator").await;

    let out = v.post("/portal/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.location.as_deref(), Some("/portal/sign-in"));

    // The old cookie, replayed, signs nobody in.
    v.cookies.insert("__Host-lp_session".into(), stolen);
    let p = v.get("/portal/operator").await;
    assert_eq!(p.location.as_deref(), Some("/portal/sign-in"));

    v.sign_in("ops@ledgerport.test", PW).await;
    assert_eq!(v.get("/portal/operator").await.status, 200);
    app.clock.advance(SignedDuration::from_hours(13));
    let p = v.get("/portal/operator").await;
    assert_eq!(p.location.as_deref(), Some("/portal/sign-in"), "expired");
}

#[tokio::test]
async fn every_post_without_the_sessions_csrf_token_is_refused_and_changes_nothing() {
    let app = TestApp::start().await;
    user(&app, "ops@ledgerport.test", PortalRole::Operator).await;
    let applied =
        common::partner(app.store.as_ref(), "Ny AS", PartnerKind::Accounting, false).await;
    let mut v = Visitor::new(&app);
    v.sign_in("ops@ledgerport.test", PW).await;
    let pid = applied.to_string();

    let mut other = Visitor::new(&app);
    other.sign_in("ops@ledgerport.test", PW).await;
    let other_token = other.csrf("/portal/operator").await;

    for csrf in [None, Some("forged"), Some(other_token.as_str())] {
        let mut form = vec![("partner", pid.as_str()), ("to", "approved")];
        if let Some(c) = csrf {
            form.push(("csrf", c));
        }
        let p = v.post("/portal/operator/partners/state", &form).await;
        assert_eq!(p.status, 403, "csrf {csrf:?}");
    }
    let p = app
        .store
        .partner(applied)
        .await
        .expect("read")
        .expect("partner");
    assert_eq!(p.state, PartnerState::Applied);
}

#[tokio::test]
async fn a_merchant_user_reaches_only_its_own_organisations_units_ledgers_keys_and_grants() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    user(&app, "kari@acme.test", PortalRole::Merchant(w.merchant1)).await;
    let other_unit_keys = app
        .issue(
            KeyKind::SalesUnit,
            KeyOwner::SalesUnit(common::msn("222222")),
        )
        .await;
    let own_unit_keys = app
        .issue(
            KeyKind::SalesUnit,
            KeyOwner::SalesUnit(common::msn("123455")),
        )
        .await;
    app.store
        .create_grant(
            &by(),
            w.granted_partner,
            &lid("400"),
            &ledgerport_core::world::GrantScope::EVERYTHING,
        )
        .await
        .expect("the other merchant's own grant");
    let mut v = Visitor::new(&app);
    v.sign_in("kari@acme.test", PW).await;
    let csrf = v.csrf("/portal/merchant/partners").await;

    let page = v.get("/portal/merchant/partners").await;
    assert!(page.body.contains("123455") && !page.body.contains("222222"));
    let keys = v.get("/portal/merchant/keys").await;
    assert!(keys.body.contains(&own_unit_keys.client_id));
    assert!(!keys.body.contains(&other_unit_keys.client_id));

    // Another organisation's ids in URLs and form fields: refused, nothing done.
    let gp = w.granted_partner.to_string();
    let other_key = other_unit_keys.key_id.to_string();
    for (status, page) in [
        (
            403,
            v.get(&format!(
                "/portal/merchant/partners/remove?partner={gp}&ledger=400"
            ))
            .await,
        ),
        (
            403,
            v.post(
                "/portal/merchant/partners/remove",
                &[("csrf", &csrf), ("partner", &gp), ("ledger", "400")],
            )
            .await,
        ),
        (
            403,
            v.post(
                "/portal/merchant/keys/regenerate",
                &[("csrf", &csrf), ("key", &other_key)],
            )
            .await,
        ),
        (
            403,
            v.post(
                "/portal/merchant/partners/edit",
                &[("csrf", &csrf), ("partner", &gp), ("unit", "222222")],
            )
            .await,
        ),
        (403, v.get("/portal/merchant/settlements?ledger=400").await),
        (
            403,
            v.get("/portal/merchant/settlements.csv?ledger=400").await,
        ),
        (403, v.get("/portal/operator").await),
        (403, v.get("/portal/partner").await),
    ] {
        assert_eq!(page.status, status, "{}", page.body);
    }
    assert_eq!(
        app.store
            .grants(Some(w.granted_partner), Some(&lid("400")))
            .await
            .expect("grants")
            .len(),
        1
    );
    let k = app
        .store
        .key(other_unit_keys.key_id)
        .await
        .expect("read")
        .expect("key");
    assert_eq!(
        k.generation, 1,
        "the other organisation's secret is untouched"
    );

    // Its own key: the new secret is shown once and the old one stops working at once.
    let own = own_unit_keys.key_id.to_string();
    let p = v
        .post(
            "/portal/merchant/keys/regenerate",
            &[("csrf", &csrf), ("key", &own)],
        )
        .await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("lpsec_"), "the new secret is on the page");
    let res = app
        .standard_token_raw(&[
            ("client_id", &own_unit_keys.client_id),
            ("client_secret", &own_unit_keys.secret),
            (
                "Ocp-Apim-Subscription-Key",
                own_unit_keys.subscription_key.as_deref().expect("sub"),
            ),
        ])
        .await;
    // The standard token endpoint answers bad credentials with 400 (see token_api.rs).
    assert_eq!(res.status(), 400, "the old secret is dead");
    assert!(
        !v.get("/portal/merchant/keys").await.body.contains("lpsec_"),
        "shown once"
    );
}

#[tokio::test]
async fn a_partner_user_manages_only_its_own_keys_and_a_suspended_partner_vanishes_from_search() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let other = common::partner(
        app.store.as_ref(),
        "Annen AS",
        PartnerKind::Accounting,
        true,
    )
    .await;
    user(
        &app,
        "p@granted.test",
        PortalRole::Partner(w.granted_partner),
    )
    .await;
    user(&app, "kari@acme.test", PortalRole::Merchant(w.merchant1)).await;
    user(&app, "ops@ledgerport.test", PortalRole::Operator).await;
    let others_keys = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(other))
        .await;
    let own_keys = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(w.granted_partner))
        .await;

    let mut p = Visitor::new(&app);
    p.sign_in("p@granted.test", PW).await;
    let csrf = p.csrf("/portal/partner").await;
    let home = p.get("/portal/partner").await;
    assert!(home.body.contains("ACME AS") && home.body.contains(&own_keys.client_id));
    assert!(!home.body.contains(&others_keys.client_id));
    let theirs = others_keys.key_id.to_string();
    for path in [
        "/portal/partner/keys/revoke",
        "/portal/partner/keys/regenerate",
    ] {
        let r = p.post(path, &[("csrf", &csrf), ("key", &theirs)]).await;
        assert_eq!(r.status, 403, "{path}");
    }
    let k = app
        .store
        .key(others_keys.key_id)
        .await
        .expect("read")
        .expect("key");
    assert!(!k.revoked && k.generation == 1);
    assert_eq!(p.get("/portal/merchant/partners").await.status, 403);

    // The operator suspends the partner: its keys stop at once, merchants cannot find it.
    let mut ops = Visitor::new(&app);
    ops.sign_in("ops@ledgerport.test", PW).await;
    let ocsrf = ops.csrf("/portal/operator").await;
    let gp = w.granted_partner.to_string();
    let r = ops
        .post(
            "/portal/operator/partners/state",
            &[("csrf", &ocsrf), ("partner", &gp), ("to", "suspended")],
        )
        .await;
    assert_eq!(r.status, 303);
    let res = app
        .miami_token_raw(
            &own_keys.client_id,
            &own_keys.secret,
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(res.status(), 401, "a suspended partner's keys get no token");

    let mut m = Visitor::new(&app);
    m.sign_in("kari@acme.test", PW).await;
    let search = m.get("/portal/merchant/partners/edit?q=Granted").await;
    assert!(
        search
            .body
            .contains("No approved accounting partner matches"),
        "{}",
        search.body
    );
    let direct = m
        .get(&format!("/portal/merchant/partners/edit?partner={gp}"))
        .await;
    assert_eq!(direct.status, 404, "not even by editing the URL");

    // Reinstated, it is back.
    let r = ops
        .post(
            "/portal/operator/partners/state",
            &[("csrf", &ocsrf), ("partner", &gp), ("to", "approved")],
        )
        .await;
    assert_eq!(r.status, 303);
    let search = m.get("/portal/merchant/partners/edit?q=Granted").await;
    assert!(search.body.contains("Granted Regnskap"));
    // An operator change outside the paths is refused.
    let r = ops
        .post(
            "/portal/operator/partners/state",
            &[("csrf", &ocsrf), ("partner", &gp), ("to", "applied")],
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn the_application_form_validates_each_field_and_a_taken_email_gets_the_same_answer_as_a_new_one()
 {
    let app = TestApp::start().await;
    user(&app, "taken@example.test", PortalRole::Operator).await;
    let mut v = Visitor::new(&app);
    let form = v.get("/portal/apply").await;
    let csrf = Visitor::csrf_of(&form);
    let bad = v
        .post(
            "/portal/apply",
            &[
                ("csrf", &csrf),
                ("company", ""),
                ("org_number", "12"),
                ("email", "nope"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(bad.status, 400);
    for msg in [
        "Company name:",
        "Organisation number:",
        "Contact e-mail:",
        "Password:",
    ] {
        assert!(bad.body.contains(msg), "{msg} in {}", bad.body);
    }
    let csrf = Visitor::csrf_of(&bad);
    let taken = v
        .post(
            "/portal/apply",
            &[
                ("csrf", &csrf),
                ("company", "X AS"),
                ("org_number", "923456789"),
                ("email", "Taken@example.test"),
                ("password", PW),
            ],
        )
        .await;
    // The same answer as a new e-mail's (nobody may learn who has an account), and nothing
    // is written.
    assert_eq!(taken.status, 200, "{}", taken.body);
    assert!(!taken.body.contains("already has an account"));
    assert!(
        taken.body.contains("Application received"),
        "{}",
        taken.body
    );
    assert!(app.store.partners().await.expect("partners").is_empty());
    assert!(!v.cookies.contains_key("__Host-lp_session"));

    let fresh_form = v.get("/portal/apply").await;
    let csrf = Visitor::csrf_of(&fresh_form);
    let fresh = v
        .post(
            "/portal/apply",
            &[
                ("csrf", &csrf),
                ("company", "X AS"),
                ("org_number", "923456789"),
                ("email", "new@example.test"),
                ("password", PW),
            ],
        )
        .await;
    assert_eq!(fresh.status, 200);
    assert_eq!(
        taken
            .body
            .replace("Taken@example.test", "EMAIL")
            .replace("taken@example.test", "EMAIL"),
        fresh.body.replace("new@example.test", "EMAIL"),
        "a taken e-mail and a new one get the same page"
    );
    assert_eq!(app.store.partners().await.expect("partners").len(), 1);
}

/// A fresh sign-in form: its CSRF token and the cookie that goes with it, for a request sent
/// outside a [`Visitor`] (several at once).
async fn sign_in_form(app: &TestApp) -> (String, String) {
    let mut v = Visitor::new(app);
    let form = v.get("/portal/sign-in").await;
    let csrf = Visitor::csrf_of(&form);
    let cookie = format!("lp_csrf={}", v.cookies.get("lp_csrf").expect("csrf cookie"));
    (csrf, cookie)
}

/// Sends one sign-in post per password, all at once; returns each answer's status and body.
async fn parallel_sign_ins(app: &TestApp, email: &str, passwords: &[&str]) -> Vec<(u16, String)> {
    let mut forms = vec![];
    for _ in passwords {
        forms.push(sign_in_form(app).await);
    }
    let http = ledgerport_server::http::client_builder()
        .expect("an HTTP client builder")
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut set = tokio::task::JoinSet::new();
    for (i, (pw, (csrf, cookie))) in passwords.iter().zip(forms).enumerate() {
        let body = serde_urlencoded::to_string([
            ("csrf", csrf.as_str()),
            ("email", email),
            ("password", pw),
        ])
        .expect("form");
        let req = http
            .post(app.url("/portal/sign-in"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Cookie", cookie)
            .body(body);
        set.spawn(async move {
            let res = req.send().await.expect("request");
            let status = res.status().as_u16();
            (i, status, res.text().await.expect("body"))
        });
    }
    let mut out = vec![(0, String::new()); passwords.len()];
    while let Some(r) = set.join_next().await {
        let (i, status, body) = r.expect("task");
        out[i] = (status, body);
    }
    out
}

#[tokio::test]
async fn twelve_parallel_sign_ins_check_at_most_five_passwords_and_the_right_one_cannot_slip_in() {
    let app = TestApp::start().await;
    user(&app, "ops@ledgerport.test", PortalRole::Operator).await;
    let mut passwords = vec!["wrong password"; 11];
    passwords.push(PW);
    let answers = parallel_sign_ins(&app, "ops@ledgerport.test", &passwords).await;
    // An attempt whose password was checked answers "wrong" (401) or signs in (303); every other
    // one was refused before any hashing.
    let checked = answers
        .iter()
        .filter(|(s, b)| *s == 303 || b.contains("Wrong e-mail or password."))
        .count();
    assert!(
        checked <= 5,
        "{checked} of 12 parallel attempts had their password checked: {:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    let signed_in = answers.iter().filter(|(s, _)| *s == 303).count();
    if signed_in == 0 {
        let mut v = Visitor::new(&app);
        let after = v.sign_in("ops@ledgerport.test", PW).await;
        assert_eq!(after.status, 401, "locked after the burst");
        assert!(
            after.body.contains("Too many failed sign-ins"),
            "{}",
            after.body
        );
    }
}

#[tokio::test]
async fn the_remove_page_names_only_a_partner_that_holds_a_grant_on_the_ledger() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    user(&app, "kari@acme.test", PortalRole::Merchant(w.merchant1)).await;
    let applied = common::partner(
        app.store.as_ref(),
        "Hemmelig Søker AS",
        PartnerKind::Accounting,
        false,
    )
    .await;
    let integration = common::partner(
        app.store.as_ref(),
        "Hemmelig Kasse AS",
        PartnerKind::Integration,
        true,
    )
    .await;
    let mut v = Visitor::new(&app);
    v.sign_in("kari@acme.test", PW).await;
    let csrf = v.csrf("/portal/merchant/partners").await;

    // Ledger 300 is the merchant's own, but no partner has a grant on it.
    for (partner, ledger) in [
        (applied, "100"),
        (integration, "100"),
        (w.granted_partner, "300"),
        (9999, "100"),
    ] {
        let path = format!("/portal/merchant/partners/remove?partner={partner}&ledger={ledger}");
        let p = v.get(&path).await;
        assert_eq!(p.status, 404, "{path}: {}", p.body);
        assert!(!p.body.contains("Hemmelig") && !p.body.contains("Granted"));
        let p = v
            .post(
                "/portal/merchant/partners/remove",
                &[
                    ("csrf", &csrf),
                    ("partner", &partner.to_string()),
                    ("ledger", ledger),
                ],
            )
            .await;
        assert_eq!(p.status, 404, "POST {partner} {ledger}");
        let page = v.get("/portal/merchant/partners").await;
        assert!(!page.body.contains("Hemmelig"), "named in a flash message");
    }
    // The real grant is named, and can be removed.
    let gp = w.granted_partner.to_string();
    let p = v
        .get(&format!(
            "/portal/merchant/partners/remove?partner={gp}&ledger=100"
        ))
        .await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("Granted Regnskap"));
}

#[tokio::test]
async fn portal_pages_carry_a_strict_content_security_policy_and_framing_sniffing_referrer_headers()
{
    let app = TestApp::start().await;
    user(&app, "ops@ledgerport.test", PortalRole::Operator).await;
    let mut v = Visitor::new(&app);
    v.sign_in("ops@ledgerport.test", PW).await;
    let session = v
        .cookies
        .get("__Host-lp_session")
        .cloned()
        .expect("session");
    let http = ledgerport_server::http::client_builder()
        .expect("an HTTP client builder")
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for (path, signed_in) in [
        ("/portal/sign-in", false),
        ("/portal/apply", false),
        ("/portal/style.css", false),
        ("/portal/operator", true),
        ("/portal/operator/world", true),
        ("/portal/merchant/partners", true),
    ] {
        let mut r = http.get(app.url(path));
        if signed_in {
            r = r.header("Cookie", format!("__Host-lp_session={session}"));
        }
        let res = r.send().await.expect("request");
        let h = |n: &str| {
            res.headers()
                .get(n)
                .map(|v| v.to_str().expect("ascii").to_owned())
                .unwrap_or_else(|| panic!("{path}: no {n}"))
        };
        let csp = h("content-security-policy");
        for directive in [
            "default-src 'self'",
            "script-src 'none'",
            "style-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(
                csp.contains(directive),
                "{path}: {directive} missing in {csp}"
            );
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h("x-frame-options"), "DENY", "{path}");
        assert_eq!(h("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(h("referrer-policy"), "same-origin", "{path}");
    }
}

/// Ledger 300 (vm-number unit NO:11111) on 2024-04-03: a sale of 1 249.00, its fee, the net
/// closing (fees retained on both topics) and the payout.
async fn settled_day(app: &TestApp) {
    use common::new_entry;
    use ledgerport_core::ids::Topic;
    let funds = vec![
        new_entry(
            "3001",
            "2024-04-03T08:00:00Z",
            "capture",
            124_900,
            "NO:11111",
            None,
        ),
        new_entry(
            "3001",
            "2024-04-03T09:00:00Z",
            "refund",
            -900,
            "NO:11111",
            None,
        ),
        new_entry(
            "",
            "2024-04-03T21:59:59Z",
            "fees-retained",
            -2_186,
            "",
            None,
        ),
        new_entry(
            "300-2000001",
            "2024-04-03T21:59:59.000001Z",
            "payout-scheduled",
            -121_814,
            "",
            None,
        ),
    ];
    app.store
        .append_entries(&lid("300"), Topic::Funds, funds)
        .await
        .expect("funds");
    let fees = vec![
        new_entry(
            "3001",
            "2024-04-03T08:00:00Z",
            "capture-fee",
            -2_186,
            "NO:11111",
            None,
        ),
        new_entry("", "2024-04-03T21:59:59Z", "fees-retained", 2_186, "", None),
    ];
    app.store
        .append_entries(&lid("300"), Topic::Fees, fees)
        .await
        .expect("fees");
}

#[tokio::test]
async fn the_settlements_page_shows_fees_retained_per_topic_in_reading_order_with_payout_reference()
{
    let app = TestApp::start().await;
    let w = world(&app).await;
    settled_day(&app).await;
    user(&app, "kari@acme.test", PortalRole::Merchant(w.merchant1)).await;
    let mut v = Visitor::new(&app);
    v.sign_in("kari@acme.test", PW).await;
    let p = v
        .get("/portal/merchant/settlements?ledger=300&from=2024-04-03&to=2024-04-03")
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    let head = p.body.split("<tbody>").next().expect("table head");
    let at = |label: &str| {
        head.find(&format!("<th class=\"num\">{label}</th>"))
            .unwrap_or_else(|| panic!("no column {label} in {head}"))
    };
    let order = [
        "Sales",
        "Refunds",
        "Fees",
        "Fees retained",
        "Payout",
        "Entries",
        "Closing balance",
    ];
    for pair in order.windows(2) {
        assert!(at(pair[0]) < at(pair[1]), "{} before {}", pair[0], pair[1]);
    }
    assert!(head.contains("<th>Payout reference</th>"));
    for raw in ["capture-fee", "payout-scheduled", ">capture<", ">refund<"] {
        assert!(!head.contains(raw), "raw entry type {raw} as a column");
    }
    let row = p
        .body
        .split("<tr><td>2024-04-03</td>")
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .expect("the row of 2024-04-03");
    let cells: Vec<&str> = row
        .split("<td")
        .skip(1)
        .map(|c| c.split('>').nth(1).unwrap_or("").trim_end_matches("</td"))
        .collect();
    let nb = '\u{202f}';
    assert_eq!(
        &cells[..8],
        &[
            format!("1{nb}249.00").as_str(),
            "-9.00",
            "-21.86",
            "-21.86",
            format!("1{nb}218.14").as_str(),
            "300-2000001",
            "6",
            "0.00",
        ],
        "{row}"
    );
    // The chart names its series as the table names its columns.
    let chart = p.body.split("<svg").nth(1).expect("chart");
    for series in ["Sales", "Refunds", "Fees", "Payout"] {
        assert!(chart.contains(&format!(">{series}</text>")), "{series}");
    }
    assert!(!chart.contains(">Payouts<"));
}

#[tokio::test]
async fn the_settlements_csv_gives_decimal_amounts_with_the_currency() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    settled_day(&app).await;
    user(&app, "kari@acme.test", PortalRole::Merchant(w.merchant1)).await;
    let mut v = Visitor::new(&app);
    v.sign_in("kari@acme.test", PW).await;
    let csv = v
        .get("/portal/merchant/settlements.csv?ledger=300&from=2024-04-03&to=2024-04-03")
        .await;
    assert_eq!(csv.status, 200);
    let mut lines = csv.body.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (currency, amount, before, after) = (
        col("currency"),
        col("amount"),
        col("balanceBefore"),
        col("balanceAfter"),
    );
    let capture: Vec<&str> = lines
        .find(|l| l.contains(",capture,"))
        .expect("the capture")
        .split(',')
        .collect();
    assert_eq!(capture[currency], "NOK");
    assert_eq!(capture[amount], "1249.00");
    assert_eq!(capture[before], "0.00");
    assert_eq!(capture[after], "1249.00");
    let fee = csv
        .body
        .lines()
        .find(|l| l.starts_with("fees,") && l.contains(",capture-fee,"))
        .expect("the fee");
    assert!(fee.contains(",NOK,-21.86,0.00,-21.86,"), "{fee}");
}

/// Posts a complete partner application.
async fn apply(v: &mut Visitor<'_>, country: &str, org: &str, email: &str) -> Page {
    let form = v.get("/portal/apply").await;
    let csrf = Visitor::csrf_of(&form);
    v.post(
        "/portal/apply",
        &[
            ("csrf", &csrf),
            ("company", &format!("Firma {country}")),
            ("country", country),
            ("org_number", org),
            ("email", email),
            ("password", PW),
        ],
    )
    .await
}

#[tokio::test]
async fn applications_take_danish_and_finnish_numbers_and_the_operator_sees_every_org_number() {
    let app = TestApp::start().await;
    user(&app, "ops@ledgerport.test", PortalRole::Operator).await;
    let mut v = Visitor::new(&app);
    let form = v.get("/portal/apply").await;
    assert!(form.body.contains("name=\"country\""), "a country choice");

    for (country, org, email) in [
        ("NO", "923 456 789", "no@example.test"),
        ("DK", "12345678", "dk@example.test"),
        ("FI", "2345678-1", "fi@example.test"),
    ] {
        let p = apply(&mut v, country, org, email).await;
        assert_eq!(p.status, 200, "{country}: {}", p.body);
    }
    // A number of another country's form is refused, naming the field and the format.
    for (country, org, expected) in [
        (
            "NO",
            "12345678",
            "Organisation number: must be a Norwegian organisation number of 9 digits",
        ),
        (
            "DK",
            "923456789",
            "Organisation number: must be a Danish CVR number of 8 digits",
        ),
        (
            "FI",
            "23456781",
            "Organisation number: must be a Finnish Y-tunnus",
        ),
        ("SE", "5566778899", "Country:"),
    ] {
        let p = apply(&mut v, country, org, "x@example.test").await;
        assert_eq!(p.status, 400, "{country} {org}");
        assert!(p.body.contains(expected), "{expected} in {}", p.body);
    }
    let partners = app.store.partners().await.expect("partners");
    let schemes: Vec<String> = partners
        .iter()
        .map(|p| p.business.as_ref().expect("business").to_string())
        .collect();
    assert_eq!(
        schemes,
        [
            "business:NO:ORG:923456789",
            "business:DK:CVR:12345678",
            "business:FI:Y-tunnus:2345678-1"
        ]
    );

    let mut ops = Visitor::new(&app);
    ops.sign_in("ops@ledgerport.test", PW).await;
    let page = ops.get("/portal/operator").await;
    let applications = page
        .body
        .split("<h2>All partners</h2>")
        .next()
        .expect("applications");
    for org in ["923456789", "12345678", "2345678-1"] {
        assert!(
            applications.contains(&format!("<td>{org}")),
            "{org} in {applications}"
        );
    }
}

#[tokio::test]
async fn merchant_pages_show_each_units_recipient_handle() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    user(&app, "kari@acme.test", PortalRole::Merchant(w.merchant1)).await;
    let mut v = Visitor::new(&app);
    v.sign_in("kari@acme.test", PW).await;
    let partners = v.get("/portal/merchant/partners").await;
    for handle in ["api:123455", "api:654321", "NO:57860", "NO:11111"] {
        assert!(
            partners.body.contains(handle),
            "{handle} on the partners page"
        );
    }
    let edit = v
        .get(&format!(
            "/portal/merchant/partners/edit?partner={}",
            w.granted_partner
        ))
        .await;
    assert!(edit.body.contains("NO:57860"), "{}", edit.body);
    let settlements = v.get("/portal/merchant/settlements").await;
    assert!(settlements.body.contains("NO:57860"));
}

#[tokio::test]
async fn the_operator_creates_merchants_units_and_ledgers_audited_and_bad_fields_are_named() {
    let app = TestApp::start().await;
    user(&app, "ops@ledgerport.test", PortalRole::Operator).await;
    let mut ops = Visitor::new(&app);
    ops.sign_in("ops@ledgerport.test", PW).await;
    let csrf = ops.csrf("/portal/operator/world").await;

    let p = ops
        .post(
            "/portal/operator/merchants",
            &[
                ("csrf", &csrf),
                ("country", "DK"),
                ("org_number", "1234567"),
                ("name", "Hygge ApS"),
            ],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(
        p.body
            .contains("Organisation number: must be a Danish CVR number of 8 digits"),
        "{}",
        p.body
    );
    let p = ops
        .post(
            "/portal/operator/merchants",
            &[
                ("csrf", &csrf),
                ("country", "DK"),
                ("org_number", "12345678"),
                ("name", "Hygge ApS"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let m = app
        .store
        .merchant_by_org("12345678")
        .await
        .expect("read")
        .expect("the merchant");
    let mid = m.id.to_string();
    // The same number again is refused naming the field.
    let p = ops
        .post(
            "/portal/operator/merchants",
            &[
                ("csrf", &csrf),
                ("country", "DK"),
                ("org_number", "12345678"),
                ("name", "Igen ApS"),
            ],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("Organisation number:"), "{}", p.body);

    for (form, expected) in [
        (
            vec![("msn", "12"), ("name", "Kbh"), ("kind", "api")],
            "MSN:",
        ),
        (
            vec![("msn", "445566"), ("name", ""), ("kind", "api")],
            "Name:",
        ),
        (
            vec![("msn", "445566"), ("name", "Kbh"), ("kind", "vm-number")],
            "Vippsnummer:",
        ),
        (
            vec![("msn", "445566"), ("name", "Kbh"), ("kind", "shop")],
            "Kind:",
        ),
    ] {
        let mut f = vec![("csrf", csrf.as_str()), ("merchant", mid.as_str())];
        f.extend(form);
        let p = ops.post("/portal/operator/units", &f).await;
        assert_eq!(p.status, 400, "{expected}");
        assert!(p.body.contains(expected), "{expected} in {}", p.body);
    }
    for (msn, kind, vm) in [("445566", "api", ""), ("445567", "vm-number", "90601")] {
        let p = ops
            .post(
                "/portal/operator/units",
                &[
                    ("csrf", &csrf),
                    ("merchant", &mid),
                    ("msn", msn),
                    ("name", &format!("Hygge {msn}")),
                    ("kind", kind),
                    ("vm_number", vm),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
    }
    let vm = app
        .store
        .sales_unit(common::msn("445567"))
        .await
        .expect("read")
        .expect("unit");
    assert_eq!(vm.handle.to_string(), "DK:90601");

    let ledger = |units: &'static str, account: &'static str, tz: &'static str| {
        vec![
            ("ledger_id", "770001"),
            ("units", units),
            ("account_scheme", "BBAN:DK"),
            ("account", account),
            ("time_zone", tz),
            ("payout", "weekly"),
            ("fee_bp", "150"),
        ]
    };
    for (form, expected) in [
        (
            ledger("445566,999999", "30004004001234", ""),
            "Sales units: no sales unit 999999",
        ),
        (ledger("445566", "", ""), "Bank account:"),
        (
            ledger("445566", "30004004001234", "Mars/Olympus"),
            "Time zone:",
        ),
    ] {
        let mut f = vec![("csrf", csrf.as_str()), ("merchant", mid.as_str())];
        f.extend(form);
        let p = ops.post("/portal/operator/ledgers", &f).await;
        assert_eq!(p.status, 400, "{expected}");
        assert!(p.body.contains(expected), "{expected} in {}", p.body);
    }
    let mut f = vec![("csrf", csrf.as_str()), ("merchant", mid.as_str())];
    f.extend(ledger("445566, 445567", "30004004001234", ""));
    let p = ops.post("/portal/operator/ledgers", &f).await;
    assert_eq!(p.status, 303, "{}", p.body);
    let (_, l) = app
        .store
        .ledger(&lid("770001"))
        .await
        .expect("read")
        .expect("ledger")
        .open(&ledgerport_core::access::Principal::Operator { user_id: None })
        .expect("the operator reads every ledger");
    assert_eq!(
        l.ledger.currency.as_str(),
        "DKK",
        "the merchant's country's currency"
    );
    assert_eq!(l.ledger.time_zone, "Europe/Copenhagen");
    assert_eq!(l.ledger.payout_frequency.as_str(), "weekly");
    assert_eq!(l.units.len(), 2);

    let world = ops.get("/portal/operator/world").await;
    assert!(world.body.contains("Hygge ApS") && world.body.contains("770001"));
    let audit = app.store.audit_log(50).await.expect("audit");
    let by_ops = audit
        .iter()
        .filter(|a| a.actor == "portal:operator:ops@ledgerport.test")
        .count();
    assert!(
        by_ops >= 4,
        "merchant, two units, ledger audited: {audit:?}"
    );

    // Another kind of user cannot.
    let w = world_merchant(&app).await;
    user(&app, "kari@acme.test", PortalRole::Merchant(w)).await;
    let mut m = Visitor::new(&app);
    m.sign_in("kari@acme.test", PW).await;
    let mcsrf = m.csrf("/portal/merchant/partners").await;
    let p = m
        .post(
            "/portal/operator/merchants",
            &[
                ("csrf", &mcsrf),
                ("country", "NO"),
                ("org_number", "911111111"),
                ("name", "Sneaky AS"),
            ],
        )
        .await;
    assert_eq!(p.status, 403);
    assert!(
        app.store
            .merchant_by_org("911111111")
            .await
            .expect("read")
            .is_none()
    );
}

async fn world_merchant(app: &TestApp) -> ledgerport_core::world::RowId {
    common::merchant(app.store.as_ref(), "987654321", "ACME AS").await
}

#[tokio::test]
async fn the_operator_sees_ingestion_counts_and_each_ledgers_closing_progress() {
    let app = TestApp::start().await;
    common::world(&app).await;
    user(&app, "ops@ledgerport.test", PortalRole::Operator).await;
    app.state.metrics.events_ingested(7, 2);
    // Two days on, with the closing task off (as in every test), every ledger is behind.
    app.clock.advance(SignedDuration::from_hours(48));
    let mut ops = Visitor::new(&app);
    ops.sign_in("ops@ledgerport.test", PW).await;
    let p = ops.get("/portal/operator/status").await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("<strong>7</strong> accepted"), "{}", p.body);
    assert!(p.body.contains("<strong>2</strong> rejected"));
    for ledger in ["100", "200", "300", "400"] {
        assert!(
            p.body.contains(&format!("<td>{ledger}</td>")),
            "ledger {ledger}"
        );
    }
    assert!(p.body.contains("h behind"), "{}", p.body);
    assert!(
        p.body.contains("4 ledger(s) have a payout point"),
        "{}",
        p.body
    );
    assert!(p.body.contains("does not close dates"));
    // Closing them makes them up to date.
    ledgerport_server::close_all_due(&app.state)
        .await
        .expect("close");
    let p = ops.get("/portal/operator/status").await;
    assert!(
        p.body.contains("Every ledger is closed up to date"),
        "{}",
        p.body
    );
}

#[tokio::test]
async fn a_burst_of_sign_ins_is_refused_with_retry_after_and_health_stays_fast() {
    let app = TestApp::start().await;
    // 40 sign-ins at once for 40 different e-mails, so the per-e-mail lock-out plays no part.
    let mut forms = vec![];
    for _ in 0..40 {
        forms.push(sign_in_form(&app).await);
    }
    let http = ledgerport_server::http::client_builder()
        .expect("an HTTP client builder")
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut set = tokio::task::JoinSet::new();
    for (i, (csrf, cookie)) in forms.into_iter().enumerate() {
        let email = format!("guess{i}@example.test");
        let body = serde_urlencoded::to_string([
            ("csrf", csrf.as_str()),
            ("email", email.as_str()),
            ("password", "not the password"),
        ])
        .expect("form");
        let req = http
            .post(app.url("/portal/sign-in"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Cookie", cookie)
            .body(body);
        set.spawn(async move {
            let res = req.send().await.expect("request");
            let retry_after = res
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            (res.status().as_u16(), retry_after)
        });
    }
    // While the burst runs, the server still answers its health check at once.
    let mut slowest = std::time::Duration::ZERO;
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let res = app
            .http
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("healthz");
        assert_eq!(res.status(), 200);
        slowest = slowest.max(started.elapsed());
    }
    let mut answers = vec![];
    while let Some(r) = set.join_next().await {
        answers.push(r.expect("task"));
    }
    let refused: Vec<_> = answers
        .iter()
        .filter(|(s, _)| *s == 429 || *s == 503)
        .collect();
    assert!(
        refused.len() >= 20,
        "only {} of 40 refused: {answers:?}",
        refused.len()
    );
    assert!(
        refused.iter().all(|(_, r)| r.is_some_and(|s| s >= 1)),
        "every refusal says when to retry: {answers:?}"
    );
    assert!(
        answers.iter().filter(|(s, _)| *s == 401).count() <= 20,
        "{answers:?}"
    );
    assert!(
        slowest < std::time::Duration::from_millis(500),
        "{slowest:?}"
    );
}

#[tokio::test]
async fn applications_from_one_address_are_limited_so_rows_are_bounded() {
    let app = TestApp::start().await;
    let mut v = Visitor::new(&app);
    let mut statuses = vec![];
    for i in 0..7 {
        let p = apply(&mut v, "NO", "923456789", &format!("a{i}@example.test")).await;
        statuses.push(p.status);
    }
    assert_eq!(statuses[..5], [200; 5], "{statuses:?}");
    assert_eq!(statuses[5..], [429, 429], "{statuses:?}");
    assert_eq!(app.store.partners().await.expect("partners").len(), 5);
    // The allowance comes back with time: one an hour's fifth.
    app.clock.advance(SignedDuration::from_mins(13));
    let p = apply(&mut v, "NO", "923456789", "later@example.test").await;
    assert_eq!(p.status, 200);
}

/// An approved accounting partner with no grants, for the access form tests.
async fn approved_partner(app: &TestApp, name: &str) -> ledgerport_core::world::RowId {
    common::partner(app.store.as_ref(), name, PartnerKind::Accounting, true).await
}

#[tokio::test]
async fn the_partner_access_form_asks_for_each_choice_and_a_merchant_changes_a_grants_scope() {
    use ledgerport_core::ids::LedgerDate;
    use ledgerport_core::world::{GrantScope, Topics};
    let app = TestApp::start().await;
    let w = world(&app).await;
    user(&app, "kari@acme.test", PortalRole::Merchant(w.merchant1)).await;
    let p = approved_partner(&app, "Tall og Tekst AS").await;
    let ps = p.to_string();
    let mut v = Visitor::new(&app);
    v.sign_in("kari@acme.test", PW).await;
    let edit = format!("/portal/merchant/partners/edit?partner={p}");

    // A new grant: every choice asked, nothing ticked in advance.
    let form = v.get(&edit).await;
    assert_eq!(form.status, 200);
    for field in [
        "name=\"expires_on\" value=\"\"",
        "name=\"from\" value=\"\"",
        "name=\"to\" value=\"\"",
        "name=\"topics\" value=\"funds\">",
        "name=\"topics\" value=\"fees\">",
        "name=\"personal_data\" value=\"yes\">",
    ] {
        assert!(form.body.contains(field), "{field} in {}", form.body);
    }
    let csrf = Visitor::csrf_of(&form);

    // Act: grant unit 123455 (ledger 100) for funds in late April, no personal data, until May.
    let saved = v
        .post(
            "/portal/merchant/partners/edit",
            &[
                ("csrf", &csrf),
                ("partner", &ps),
                ("unit", "123455"),
                ("expires_on", "2024-05-01"),
                ("from", "2024-04-05"),
                ("to", "2024-04-30"),
                ("topics", "funds"),
            ],
        )
        .await;

    // Assert
    assert_eq!(saved.status, 303, "{}", saved.body);
    let grants = app.store.grants(Some(p), None).await.expect("grants");
    assert_eq!(grants.len(), 1);
    let d = |s: &str| LedgerDate::parse("d", s).expect("date");
    assert_eq!(
        grants[0].scope,
        GrantScope {
            expires_at: Some("2024-05-01T00:00:00Z".parse().expect("time")),
            from: Some(d("2024-04-05")),
            to: Some(d("2024-04-30")),
            topics: Topics {
                funds: true,
                fees: false
            },
            personal_data: false,
        }
    );
    let page = v.get("/portal/merchant/partners").await;
    assert!(
        page.body.contains(
            "funds only · dates 2024-04-05 to 2024-04-30 · no personal data · until 2024-05-01 00:00 UTC"
        ),
        "the partners page shows the scope: {}",
        page.body
    );
    let form = v.get(&edit).await;
    for field in [
        "name=\"expires_on\" value=\"2024-05-01\"",
        "name=\"from\" value=\"2024-04-05\"",
        "name=\"to\" value=\"2024-04-30\"",
        "name=\"topics\" value=\"funds\" checked",
        "name=\"topics\" value=\"fees\">",
        "name=\"personal_data\" value=\"yes\">",
    ] {
        assert!(
            form.body.contains(field),
            "the form shows the scope: {field}"
        );
    }

    // A change of scope: both topics, personal data, every date, no expiry.
    let changed = v
        .post(
            "/portal/merchant/partners/edit",
            &[
                ("csrf", &csrf),
                ("partner", &ps),
                ("unit", "123455"),
                ("expires_on", ""),
                ("from", ""),
                ("to", ""),
                ("topics", "funds"),
                ("topics", "fees"),
                ("personal_data", "yes"),
            ],
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    let after = app.store.grants(Some(p), None).await.expect("grants");
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].scope, GrantScope::EVERYTHING);
    assert_eq!(after[0].created_at, grants[0].created_at, "the same grant");
    let audit = app.store.audit_log(5).await.expect("audit");
    assert!(
        audit
            .iter()
            .any(|r| r.action == "grant.scope" && r.actor == "portal:merchant:kari@acme.test"),
        "{audit:?}"
    );
}

#[tokio::test]
async fn the_partner_access_form_names_each_bad_field_and_changes_nothing() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    user(&app, "kari@acme.test", PortalRole::Merchant(w.merchant1)).await;
    let p = approved_partner(&app, "Tall og Tekst AS").await;
    let ps = p.to_string();
    let mut v = Visitor::new(&app);
    v.sign_in("kari@acme.test", PW).await;
    let csrf = v
        .csrf(&format!("/portal/merchant/partners/edit?partner={p}"))
        .await;
    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[], "topics: choose funds, fees or both"),
        (
            &[
                ("topics", "funds"),
                ("from", "2024-05-01"),
                ("to", "2024-04-30"),
            ],
            "from: 2024-05-01 is after the end of the period (2024-04-30)",
        ),
        (
            &[("topics", "funds"), ("from", "2024-02-30")],
            "from: 2024-02-30 is not a real date",
        ),
        (
            &[("topics", "fees"), ("to", "30.04.2024")],
            "to: must be a date in the form YYYY-MM-DD",
        ),
        (
            &[("topics", "fees"), ("expires_on", "2024-04-05")],
            "expires_on: access would end at once",
        ),
        (&[("topics", "payouts")], "topics: must be funds or fees"),
    ];
    for (fields, message) in cases {
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("partner", ps.as_str()),
            ("unit", "123455"),
        ];
        form.extend_from_slice(fields);
        let page = v.post("/portal/merchant/partners/edit", &form).await;
        assert_eq!(page.status, 400, "{fields:?}: {}", page.body);
        assert!(
            page.body.contains(message),
            "{fields:?}: expected {message:?} in {}",
            page.body
        );
    }
    // Without the session's CSRF token: refused like every other form.
    let page = v
        .post(
            "/portal/merchant/partners/edit",
            &[("partner", &ps), ("unit", "123455"), ("topics", "funds")],
        )
        .await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(
        app.store
            .grants(Some(p), None)
            .await
            .expect("grants")
            .is_empty(),
        "nothing was granted"
    );
}

#[tokio::test]
async fn a_partner_requests_access_the_merchant_approves_it_narrowed_and_the_keys_read_only_that() {
    use ledgerport_core::ids::LedgerDate;
    use ledgerport_core::world::{GrantScope, Topics};
    // Arrange
    let app = TestApp::start().await;
    let w = world(&app).await;
    user(&app, "kari@acme.test", PortalRole::Merchant(w.merchant1)).await;
    let p = approved_partner(&app, "Tall og Tekst AS").await;
    user(&app, "ola@tallogtekst.test", PortalRole::Partner(p)).await;
    let mut partner = Visitor::new(&app);
    partner.sign_in("ola@tallogtekst.test", PW).await;
    let csrf = partner.csrf("/portal/partner/requests").await;
    let ask = |org: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("org", org.to_owned()),
            ("units", "123455".to_owned()),
            ("expires_on", "2024-06-01".to_owned()),
            ("from", "2024-04-01".to_owned()),
            ("to", "".to_owned()),
            ("topics", "funds".to_owned()),
            ("topics", "fees".to_owned()),
            ("personal_data", "yes".to_owned()),
            ("message", "Hei! We keep your books.".to_owned()),
        ]
    };
    let form = |f: &[(&'static str, String)]| -> Vec<(&'static str, String)> { f.to_vec() };
    let post = |v: &Vec<(&'static str, String)>| {
        v.iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect::<Vec<(&str, String)>>()
    };

    // Act: a request to ACME, and one to a number that is nobody's.
    let known_form = post(&form(&ask("987654321")));
    let known_pairs: Vec<(&str, &str)> = known_form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let known = partner.post("/portal/partner/requests", &known_pairs).await;
    let known_cookies = partner.last_set_cookies.clone();
    let unknown_form = post(&form(&ask("999999999")));
    let unknown_pairs: Vec<(&str, &str)> =
        unknown_form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let unknown = partner
        .post("/portal/partner/requests", &unknown_pairs)
        .await;

    // Assert: the same answer either way.
    assert_eq!(known.status, 303, "{}", known.body);
    assert_eq!(
        (known.status, &known.location, &known.body, &known_cookies),
        (
            unknown.status,
            &unknown.location,
            &unknown.body,
            &partner.last_set_cookies
        ),
        "an unknown organisation number answers as a known one"
    );
    let mine = partner.get("/portal/partner/requests").await;
    assert_eq!(mine.body.matches(">pending<").count(), 2, "{}", mine.body);

    // The merchant sees the request to it (not the other) and approves it narrowed.
    let mut merchant = Visitor::new(&app);
    merchant.sign_in("kari@acme.test", PW).await;
    let list = merchant.get("/portal/merchant/requests").await;
    assert_eq!(list.status, 200);
    for shown in [
        "Tall og Tekst AS",
        "MSN 123455",
        "ledger(s) 100",
        "Hei! We keep your books.",
        "name=\"expires_on\" value=\"2024-06-01\"",
        "name=\"from\" value=\"2024-04-01\"",
        "name=\"personal_data\" value=\"yes\" checked",
    ] {
        assert!(list.body.contains(shown), "{shown} in {}", list.body);
    }
    assert_eq!(
        list.body.matches("name=\"request\"").count(),
        2,
        "approve and decline of one request"
    );
    let id = {
        let at = list
            .body
            .find("name=\"request\" value=\"")
            .expect("request id")
            + "name=\"request\" value=\"".len();
        list.body[at..].split('"').next().expect("id").to_owned()
    };
    let mcsrf = Visitor::csrf_of(&list);
    // Another organisation's user and another partner cannot answer or withdraw it.
    user(&app, "per@other.test", PortalRole::Merchant(w.merchant2)).await;
    let mut other = Visitor::new(&app);
    other.sign_in("per@other.test", PW).await;
    let ocsrf = other.csrf("/portal/merchant/requests").await;
    for path in [
        "/portal/merchant/requests/approve",
        "/portal/merchant/requests/decline",
    ] {
        let refused = other
            .post(
                path,
                &[("csrf", &ocsrf), ("request", &id), ("topics", "funds")],
            )
            .await;
        assert_eq!(refused.status, 403, "{path}");
    }
    let other_partner = approved_partner(&app, "Andre Tall AS").await;
    user(&app, "eva@andre.test", PortalRole::Partner(other_partner)).await;
    let mut eva = Visitor::new(&app);
    eva.sign_in("eva@andre.test", PW).await;
    let ecsrf = eva.csrf("/portal/partner/requests").await;
    let refused = eva
        .post(
            "/portal/partner/requests/withdraw",
            &[("csrf", &ecsrf), ("request", &id)],
        )
        .await;
    assert_eq!(refused.status, 403);
    let wider = merchant
        .post(
            "/portal/merchant/requests/approve",
            &[
                ("csrf", &mcsrf),
                ("request", &id),
                ("expires_on", "2024-05-01"),
                ("from", "2024-03-01"),
                ("topics", "funds"),
            ],
        )
        .await;
    assert_eq!(wider.status, 400);
    assert!(
        wider
            .body
            .contains("from: the partner asked for dates from 2024-04-01"),
        "{}",
        wider.body
    );
    assert!(
        app.store
            .grants(Some(p), None)
            .await
            .expect("grants")
            .is_empty()
    );
    let approved = merchant
        .post(
            "/portal/merchant/requests/approve",
            &[
                ("csrf", &mcsrf),
                ("request", &id),
                ("expires_on", "2024-05-01"),
                ("from", "2024-04-05"),
                ("to", "2024-04-30"),
                ("topics", "funds"),
            ],
        )
        .await;
    assert_eq!(approved.status, 303, "{}", approved.body);
    let grants = app.store.grants(Some(p), None).await.expect("grants");
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].ledger_id, lid("100"));
    let d = |s: &str| LedgerDate::parse("d", s).expect("date");
    assert_eq!(
        grants[0].scope,
        GrantScope {
            expires_at: Some("2024-05-01T00:00:00Z".parse().expect("time")),
            from: Some(d("2024-04-05")),
            to: Some(d("2024-04-30")),
            topics: Topics {
                funds: true,
                fees: false
            },
            personal_data: false,
        }
    );

    // The partner's keys read accordingly.
    let keys = app.issue(KeyKind::Accounting, KeyOwner::Partner(p)).await;
    let token = app.miami_token(&keys).await;
    for (path, status) in [
        ("/report/v2/ledgers/100/funds/dates/2024-04-05", 200),
        ("/report/v2/ledgers/100/funds/dates/2024-04-04", 403),
        ("/report/v2/ledgers/100/fees/feed", 403),
        ("/report/v2/ledgers/200/funds/feed", 404),
    ] {
        let res = app.get(path, Some(&token), &[]).await;
        assert_eq!(res.status().as_u16(), status, "{path}");
    }

    // A declined request grants nothing.
    let again_form = post(&form(&{
        let mut f = ask("987654321");
        f.retain(|(k, _)| *k != "units");
        f
    }));
    let again_pairs: Vec<(&str, &str)> = again_form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let again = partner.post("/portal/partner/requests", &again_pairs).await;
    assert_eq!(again.status, 303);
    let list = merchant.get("/portal/merchant/requests").await;
    assert!(list.body.contains("all sales units"), "{}", list.body);
    let id2 = {
        let at = list
            .body
            .find("name=\"request\" value=\"")
            .expect("request id")
            + "name=\"request\" value=\"".len();
        list.body[at..].split('"').next().expect("id").to_owned()
    };
    assert_ne!(id2, id);
    let declined = merchant
        .post(
            "/portal/merchant/requests/decline",
            &[("csrf", &mcsrf), ("request", &id2)],
        )
        .await;
    assert_eq!(declined.status, 303, "{}", declined.body);
    assert_eq!(
        app.store.grants(Some(p), None).await.expect("grants").len(),
        1
    );
    let mine = partner.get("/portal/partner/requests").await;
    assert!(mine.body.contains(">declined<"), "{}", mine.body);
    assert!(mine.body.contains(">approved<"), "{}", mine.body);
}
