//! Invitation links at the HTTP level: a partner makes a signed link proposing a scope; a
//! merchant user who opens it sees the partner and the proposal and grants (narrowed) or
//! declines; a link changed in any way is refused as damaged, one past its expiry as expired;
//! each merchant answers a link once; only a merchant's user answers.

mod common;

use common::{TestApp, by, lid, world};
use jiff::SignedDuration;
use ledgerport_core::world::{PartnerKind, PartnerState, RequestState, Topics};
use ledgerport_server::portal::auth::hash_password;
use ledgerport_store::{NewPortalUser, PortalRole, RequestFilter};
use std::collections::HashMap;

const PW: &str = "correct horse battery";

/// A cookie-keeping client that does not follow redirects.
struct Visitor<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
    cookies: HashMap<String, String>,
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
        }
    }

    async fn send(&mut self, r: reqwest::RequestBuilder) -> Page {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let res = r
            .header("Cookie", cookie.join("; "))
            .send()
            .await
            .expect("request");
        for c in res.headers().get_all("set-cookie") {
            let c = c.to_str().expect("ascii");
            if let Some((k, v)) = c.split(';').next().and_then(|p| p.split_once('=')) {
                self.cookies.insert(k.to_owned(), v.to_owned());
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
        let r = self
            .http
            .post(self.app.url(path))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).expect("form"));
        self.send(r).await
    }

    async fn signed_in(app: &'a TestApp, email: &str) -> Visitor<'a> {
        let mut v = Visitor::new(app);
        let form = v.get("/portal/sign-in").await;
        let csrf = csrf_of(&form.body);
        let p = v
            .post(
                "/portal/sign-in",
                &[("csrf", &csrf), ("email", email), ("password", PW)],
            )
            .await;
        assert_eq!(p.status, 303, "sign-in of {email}: {}", p.body);
        v
    }
}

fn csrf_of(body: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let at = body
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf field in {body}"))
        + marker.len();
    body[at..].split('"').next().expect("token").to_owned()
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

/// The invitation link on the page the partner gets, as a path with its query.
fn link_path(body: &str) -> String {
    let marker = "id=\"invitation-link\" href=\"";
    let at = body
        .find(marker)
        .unwrap_or_else(|| panic!("no invitation link in {body}"))
        + marker.len();
    let href = body[at..].split('"').next().expect("href");
    let path = &href[href
        .find("/portal/invitation")
        .expect("the invitation path")..];
    assert!(
        href.starts_with("http://127.0.0.1:"),
        "a full link to this server: {href}"
    );
    path.to_owned()
}

/// The link text (`t`) of an invitation path.
fn text_of(path: &str) -> &str {
    path.split_once("?t=").expect("t").1
}

/// ACME AS (merchant 1 of the world) with user kari, Other AS (merchant 2) with user eva, and
/// the approved accounting partner Tall og Tekst AS with user post. Returns the partner.
async fn parties(app: &TestApp) -> i64 {
    let w = world(app).await;
    let p = common::partner(
        &*app.store,
        "Tall og Tekst AS",
        PartnerKind::Accounting,
        true,
    )
    .await;
    user(app, "kari@acme.test", PortalRole::Merchant(w.merchant1)).await;
    user(app, "eva@other.test", PortalRole::Merchant(w.merchant2)).await;
    user(app, "post@tallogtekst.test", PortalRole::Partner(p)).await;
    p
}

/// The partner makes a link proposing funds and fees, dates from 2024-04-01, personal data,
/// until 2024-06-01.
async fn make_link(app: &TestApp) -> String {
    let mut partner = Visitor::signed_in(app, "post@tallogtekst.test").await;
    let page = partner.get("/portal/partner/requests").await;
    assert!(page.body.contains("Make invitation link"), "{}", page.body);
    let csrf = csrf_of(&page.body);
    let made = partner
        .post(
            "/portal/partner/invitations",
            &[
                ("csrf", &csrf),
                ("topics", "funds"),
                ("topics", "fees"),
                ("from", "2024-04-01"),
                ("personal_data", "yes"),
                ("expires_on", "2024-06-01"),
            ],
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.body);
    assert!(
        made.body.contains(
            "Proposed: funds and fees · dates from 2024-04-01 · with personal data · until \
             2024-06-01 00:00 UTC"
        ),
        "{}",
        made.body
    );
    link_path(&made.body)
}

#[tokio::test]
async fn a_merchant_opens_a_partners_invitation_and_grants_it_narrowed_once() {
    // Arrange
    let app = TestApp::start().await;
    let p = parties(&app).await;
    let link = make_link(&app).await;

    // Act: the merchant's user opens it, signed in, and grants unit 123455 (ledger 100) funds
    // only.
    let mut kari = Visitor::signed_in(&app, "kari@acme.test").await;
    let shown = kari.get(&link).await;
    let csrf = csrf_of(&shown.body);
    let t = text_of(&link).to_owned();
    let granted = kari
        .post(
            "/portal/invitation",
            &[
                ("csrf", &csrf),
                ("t", &t),
                ("unit", "123455"),
                ("topics", "funds"),
                ("from", "2024-04-01"),
                ("expires_on", "2024-05-01"),
                ("answer", "grant"),
            ],
        )
        .await;
    let flash_page = kari.get("/portal/merchant/partners").await;
    let again = kari
        .post(
            "/portal/invitation",
            &[("csrf", &csrf), ("t", &t), ("answer", "decline")],
        )
        .await;
    let wider = {
        let mut eva = Visitor::signed_in(&app, "eva@other.test").await;
        let csrf = csrf_of(&eva.get(&link).await.body);
        eva.post(
            "/portal/invitation",
            &[
                ("csrf", &csrf),
                ("t", &t),
                ("unit", "222222"),
                ("topics", "funds"),
                ("answer", "grant"),
            ],
        )
        .await
    };

    // Assert: the page names the partner and prefills the proposal.
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(
        shown
            .body
            .contains("<h1>Invitation from Tall og Tekst AS</h1>"),
        "{}",
        shown.body
    );
    assert!(
        shown.body.contains(
            "funds and fees · dates from 2024-04-01 · with personal data · until 2024-06-01 \
             00:00 UTC"
        ),
        "{}",
        shown.body
    );
    assert!(
        shown
            .body
            .contains("name=\"expires_on\" value=\"2024-06-01\""),
        "{}",
        shown.body
    );
    assert!(
        shown
            .body
            .contains("name=\"personal_data\" value=\"yes\" checked"),
        "{}",
        shown.body
    );
    assert!(
        shown
            .body
            .contains("name=\"unit\" value=\"123455\" checked"),
        "{}",
        shown.body
    );
    assert_eq!(granted.status, 303, "{}", granted.body);
    assert_eq!(
        granted.location.as_deref(),
        Some("/portal/merchant/partners")
    );
    assert!(
        flash_page
            .body
            .contains("Granted Tall og Tekst AS access: 1 ledger(s) (100)."),
        "{}",
        flash_page.body
    );
    let grants = app.store.grants(Some(p), None).await.expect("grants");
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].ledger_id, lid("100"));
    assert_eq!(
        grants[0].scope.topics,
        Topics {
            funds: true,
            fees: false
        }
    );
    assert!(!grants[0].scope.personal_data);
    assert_eq!(again.status, 400, "answered once: {}", again.body);
    assert!(
        again
            .body
            .contains("invitation: this organisation has answered the invitation already"),
        "{}",
        again.body
    );
    assert_eq!(wider.status, 400, "{}", wider.body);
    assert!(
        wider
            .body
            .contains("expires_on: the partner asked for access until"),
        "an answer cannot widen the proposal: {}",
        wider.body
    );
    let requests = app
        .store
        .access_requests(&RequestFilter {
            partner: Some(p),
            merchant: None,
        })
        .await
        .expect("requests");
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].state, RequestState::Approved);
    assert!(requests[0].invitation);
    // The partner is told, in words about its invitation.
    let mut post = Visitor::signed_in(&app, "post@tallogtekst.test").await;
    let told = post.get("/portal/notifications").await;
    assert!(
        told.body.contains(
            "ACME AS approved your invitation for sales units 123455: 1 ledger(s) granted"
        ),
        "{}",
        told.body
    );
    let listed = post.get("/portal/partner/requests").await;
    assert!(listed.body.contains("(invitation)"), "{}", listed.body);
}

#[tokio::test]
async fn a_declined_invitation_grants_nothing_and_tells_the_partner() {
    let app = TestApp::start().await;
    let p = parties(&app).await;
    let link = make_link(&app).await;
    let mut kari = Visitor::signed_in(&app, "kari@acme.test").await;
    let csrf = csrf_of(&kari.get(&link).await.body);

    let declined = kari
        .post(
            "/portal/invitation",
            &[
                ("csrf", &csrf),
                ("t", text_of(&link)),
                ("answer", "decline"),
            ],
        )
        .await;

    assert_eq!(declined.status, 303, "{}", declined.body);
    assert_eq!(
        declined.location.as_deref(),
        Some("/portal/merchant/requests")
    );
    assert!(
        app.store
            .grants(Some(p), None)
            .await
            .expect("grants")
            .is_empty()
    );
    let mut post = Visitor::signed_in(&app, "post@tallogtekst.test").await;
    let told = post.get("/portal/notifications").await;
    assert!(
        told.body
            .contains("ACME AS declined your invitation for all sales units. Nothing was granted."),
        "{}",
        told.body
    );
}

#[tokio::test]
async fn a_changed_or_expired_link_is_refused_clearly_and_only_a_merchants_user_answers() {
    // Arrange
    let app = TestApp::start().await;
    let p = parties(&app).await;
    let link = make_link(&app).await;
    let t = text_of(&link).to_owned();
    // The payload's one character changed (as someone widening the proposal would), and the
    // MAC's.
    let mut body_changed = t.clone().into_bytes();
    body_changed[5] = if body_changed[5] == b'A' { b'B' } else { b'A' };
    let body_changed = String::from_utf8(body_changed).expect("ascii");
    let mut mac_changed = t.clone().into_bytes();
    let last = mac_changed.len() - 2;
    mac_changed[last] = if mac_changed[last] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let mac_changed = String::from_utf8(mac_changed).expect("ascii");

    // Act
    let mut kari = Visitor::signed_in(&app, "kari@acme.test").await;
    let damaged = [
        kari.get(&format!("/portal/invitation?t={body_changed}"))
            .await,
        kari.get(&format!("/portal/invitation?t={mac_changed}"))
            .await,
        kari.get("/portal/invitation?t=").await,
    ];
    let csrf = csrf_of(&kari.get(&link).await.body);
    let posted_damaged = kari
        .post(
            "/portal/invitation",
            &[
                ("csrf", &csrf),
                ("t", &body_changed),
                ("unit", "123455"),
                ("topics", "funds"),
                ("answer", "grant"),
            ],
        )
        .await;
    let anonymous = Visitor::new(&app).get(&link).await;
    let mut post = Visitor::signed_in(&app, "post@tallogtekst.test").await;
    let partner_opens = post.get(&link).await;
    app.clock.advance(SignedDuration::from_hours(30 * 24));
    let mut kari = Visitor::signed_in(&app, "kari@acme.test").await;
    let expired = kari.get(&link).await;
    let csrf = csrf_of(&kari.get("/portal/merchant/requests").await.body);
    let posted_expired = kari
        .post(
            "/portal/invitation",
            &[
                ("csrf", &csrf),
                ("t", &t),
                ("unit", "123455"),
                ("topics", "funds"),
                ("answer", "grant"),
            ],
        )
        .await;

    // Assert
    for page in damaged.iter().chain([&posted_damaged]) {
        assert_eq!(page.status, 400, "{}", page.body);
        assert!(
            page.body.contains("Invitation link damaged")
                && page.body.contains("Ask the partner to send it again"),
            "{}",
            page.body
        );
    }
    assert_eq!(anonymous.status, 200, "{}", anonymous.body);
    assert!(
        anonymous.body.contains("Invitation from Tall og Tekst AS")
            && anonymous
                .body
                .contains("sign in</a> as a user of the merchant"),
        "{}",
        anonymous.body
    );
    assert!(
        !anonymous.body.contains("Grant access"),
        "{}",
        anonymous.body
    );
    assert_eq!(partner_opens.status, 403, "{}", partner_opens.body);
    for page in [&expired, &posted_expired] {
        assert_eq!(page.status, 410, "{}", page.body);
        assert!(
            page.body.contains(
                "This invitation from Tall og Tekst AS expired on 2024-05-05 12:00 UTC. Ask \
                 the partner for a new link."
            ),
            "{}",
            page.body
        );
    }
    assert!(
        app.store
            .grants(Some(p), None)
            .await
            .expect("grants")
            .is_empty()
    );
    assert!(
        app.store
            .access_requests(&RequestFilter::default())
            .await
            .expect("requests")
            .is_empty(),
        "nothing was answered"
    );
}

#[tokio::test]
async fn a_partner_suspended_after_making_the_link_cannot_be_granted_through_it() {
    let app = TestApp::start().await;
    let p = parties(&app).await;
    let link = make_link(&app).await;
    app.store
        .set_partner_state(&by(), p, PartnerState::Suspended)
        .await
        .expect("suspend");
    let mut kari = Visitor::signed_in(&app, "kari@acme.test").await;

    let shown = kari.get(&link).await;
    let csrf = csrf_of(&shown.body);
    let posted = kari
        .post(
            "/portal/invitation",
            &[
                ("csrf", &csrf),
                ("t", text_of(&link)),
                ("unit", "123455"),
                ("topics", "funds"),
                ("answer", "grant"),
            ],
        )
        .await;

    assert_eq!(shown.status, 200);
    assert!(
        shown
            .body
            .contains("Tall og Tekst AS can no longer be granted access"),
        "{}",
        shown.body
    );
    assert!(!shown.body.contains("Grant access"), "{}", shown.body);
    assert_eq!(posted.status, 400, "{}", posted.body);
    assert!(
        app.store
            .grants(Some(p), None)
            .await
            .expect("grants")
            .is_empty()
    );
}
