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
            http: reqwest::Client::builder()
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
        .find(|c| c.starts_with("lp_session="))
        .expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(session.contains(attr), "{attr} missing in {session}");
    }
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
    assert!(!v.cookies.contains_key("lp_session"));

    // A sign-in post from elsewhere (no token of this site's form) is refused.
    let mut other = Visitor::new(&app);
    let p = other
        .post(
            "/portal/sign-in",
            &[("email", "ops@ledgerport.test"), ("password", PW)],
        )
        .await;
    assert_eq!(p.status, 403);
    assert!(!other.cookies.contains_key("lp_session"));
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
    let stolen = v.cookies.get("lp_session").cloned().expect("session");
    let csrf = v.csrf("/portal/operator").await;

    let out = v.post("/portal/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.location.as_deref(), Some("/portal/sign-in"));

    // The old cookie, replayed, signs nobody in.
    v.cookies.insert("lp_session".into(), stolen);
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
        .create_grant(&by(), w.granted_partner, &lid("400"))
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
async fn the_application_form_validates_each_field_and_a_taken_email_is_refused() {
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
    assert_eq!(taken.status, 400);
    assert!(taken.body.contains("already has an account"));
    assert!(app.store.partners().await.expect("partners").is_empty());
}
