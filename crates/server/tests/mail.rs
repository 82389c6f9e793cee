//! The mail outbox delivered to a real SMTP server on loopback: aiosmtpd (Debian
//! `python3-aiosmtpd`), run by `tests/fixtures/smtp_sink.py` ([`common::smtp`]), which writes
//! every message it accepts to a directory the test reads.
//!
//! Time is the test's `ManualClock`: backoffs pass by moving it, never by sleeping.

mod common;

use common::smtp::{SmtpSink, envelope_to, free_port, mail_dir, messages, smtp};
use common::{START, TestApp, by};
use jiff::SignedDuration;
use ledgerport_core::clock::Clock;
use ledgerport_server::ServerConfig;
use ledgerport_server::mail::{Delivered, Mailer, SmtpConfig, deliver_due};
use ledgerport_server::portal::auth::hash_password;
use ledgerport_store::{NewMail, NewPortalUser, PortalRole};
use std::collections::HashMap;

use std::time::{Duration, Instant};

const PW: &str = "correct horse battery";
/// A cookie-keeping client for the forms before sign-in (the double-submit CSRF cookie).
struct Visitor<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
    cookies: HashMap<String, String>,
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

    async fn send(&mut self, r: reqwest::RequestBuilder) -> (u16, String) {
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
        (res.status().as_u16(), res.text().await.expect("body"))
    }

    async fn get(&mut self, path: &str) -> (u16, String) {
        let r = self.http.get(self.app.url(path));
        self.send(r).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let r = self
            .http
            .post(self.app.url(path))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).expect("form"));
        self.send(r).await
    }

    async fn csrf(&mut self, path: &str) -> String {
        let (_, body) = self.get(path).await;
        csrf_of(&body).expect("a csrf field").to_owned()
    }

    async fn apply(&mut self, email: &str) -> (u16, String) {
        let csrf = self.csrf("/portal/apply").await;
        self.post(
            "/portal/apply",
            &[
                ("csrf", &csrf),
                ("company", "Tall og Tekst AS"),
                ("org_number", "923456789"),
                ("email", email),
                ("password", PW),
            ],
        )
        .await
    }
}

fn csrf_of(body: &str) -> Option<&str> {
    let marker = "name=\"csrf\" value=\"";
    let at = body.find(marker)? + marker.len();
    body[at..].split('"').next()
}

/// A page with its CSRF token (if any) and `email` replaced by placeholders.
fn normalised(body: &str, email: &str) -> String {
    let mut b = body.replace(email, "EMAIL");
    if let Some(token) = csrf_of(body).map(str::to_owned) {
        b = b.replace(&token, "CSRF");
    }
    b
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
async fn an_application_with_a_taken_address_answers_as_a_new_one_and_mails_the_owner() {
    let port = free_port();
    let dir = mail_dir("apply");
    let _sink = SmtpSink::start(port, &dir);
    // The server's own sender delivers (its first pass runs at start, then every 5 s).
    let app = TestApp::start_with(ServerConfig {
        close_interval: None,
        mail: Some(smtp(port)),
        ..ServerConfig::default()
    })
    .await;
    user(&app, "taken@example.test", PortalRole::Operator).await;

    let mut v = Visitor::new(&app);
    let (taken_status, taken) = v.apply("taken@example.test").await;
    let (new_status, fresh) = v.apply("new@example.test").await;

    assert_eq!((taken_status, new_status), (200, 200), "{taken}\n{fresh}");
    assert_eq!(
        normalised(&taken, "taken@example.test"),
        normalised(&fresh, "new@example.test"),
        "a taken address and a new one get the same page, byte for byte"
    );
    assert_eq!(
        app.store.partners().await.expect("partners").len(),
        1,
        "only the new address made an application"
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    while messages(&dir).len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A moment more, for any mail sent twice to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = messages(&dir);
    let to_owner: Vec<&String> = got
        .iter()
        .filter(|m| envelope_to(m) == "taken@example.test")
        .collect();
    let to_new: Vec<&String> = got
        .iter()
        .filter(|m| envelope_to(m) == "new@example.test")
        .collect();
    assert_eq!(
        (to_owner.len(), to_new.len(), got.len()),
        (1, 1, 2),
        "{got:#?}"
    );
    let owner = to_owner[0];
    assert!(
        owner.contains("Subject: Someone applied with your Ledgerport e-mail address"),
        "{owner}"
    );
    assert!(
        owner.contains("already has a Ledgerport account"),
        "{owner}"
    );
    assert!(
        owner.contains("From: Ledgerport <no-reply@ledgerport.test>"),
        "{owner}"
    );
    assert!(
        !owner.contains("Tall og Tekst"),
        "nothing the applicant typed is repeated: {owner}"
    );
    assert!(
        to_new[0].contains("Subject: Your Ledgerport partner application"),
        "{}",
        to_new[0]
    );
    let summary = app.store.outbox_summary().await.expect("summary");
    assert_eq!(summary.pending, 0, "{summary:?}");
}

#[tokio::test]
async fn an_smtp_outage_loses_no_mail_and_the_mail_arrives_once_when_the_server_is_back() {
    // The server has no SMTP configured: its mails wait. The test is the sender, on the
    // test's clock.
    let app = TestApp::start().await;
    user(&app, "ops@example.test", PortalRole::Operator).await;
    let port = free_port();
    let dir = mail_dir("outage");
    let mailer = Mailer::new(&smtp(port)).expect("mailer");
    let pass = || deliver_due(&*app.store, &*app.clock, &mailer, "test-sender");

    let (status, _) = Visitor::new(&app).apply("kari@example.test").await;
    assert_eq!(status, 200);

    // The SMTP server is down: the attempt fails and the mail waits a minute.
    assert_eq!(
        pass().await.expect("pass"),
        Delivered {
            sent: 0,
            failed: 1,
            gave_up: 0
        }
    );
    let waiting = app.store.outbox(false, 10).await.expect("outbox");
    assert_eq!(waiting.len(), 1);
    let start: jiff::Timestamp = START.parse().expect("start");
    assert_eq!(
        waiting[0].next_attempt_at,
        start + SignedDuration::from_mins(1)
    );
    assert!(waiting[0].last_error.is_some());
    assert_eq!(
        pass().await.expect("pass"),
        Delivered::default(),
        "backing off"
    );

    // The operator sees the queue.
    let mut op = Visitor::new(&app);
    let csrf = op.csrf("/portal/sign-in").await;
    op.post(
        "/portal/sign-in",
        &[
            ("csrf", &csrf),
            ("email", "ops@example.test"),
            ("password", PW),
        ],
    )
    .await;
    let (status, page) = op.get("/portal/operator/status").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("<strong>1</strong> mail(s) waiting"),
        "{page}"
    );
    assert!(page.contains("Last error:"), "{page}");
    assert!(page.contains("no SMTP server configured"), "{page}");

    // Still down a minute later: the next wait doubles.
    app.clock.advance(SignedDuration::from_mins(1));
    assert_eq!(
        pass().await.expect("pass"),
        Delivered {
            sent: 0,
            failed: 1,
            gave_up: 0
        }
    );
    let waiting = app.store.outbox(false, 10).await.expect("outbox");
    assert_eq!(
        waiting[0].next_attempt_at,
        start + SignedDuration::from_mins(3)
    );

    // The server comes back; the mail goes when its wait is over, once.
    let _sink = SmtpSink::start(port, &dir);
    assert_eq!(pass().await.expect("pass"), Delivered::default());
    assert!(messages(&dir).is_empty(), "not before its time");
    app.clock.advance(SignedDuration::from_mins(2));
    assert_eq!(
        pass().await.expect("pass"),
        Delivered {
            sent: 1,
            failed: 0,
            gave_up: 0
        }
    );
    app.clock.advance(SignedDuration::from_hours(2));
    assert_eq!(pass().await.expect("pass"), Delivered::default());
    let got = messages(&dir);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(envelope_to(&got[0]), "kari@example.test");
    assert!(got[0].contains("Subject: Your Ledgerport partner application"));
    let all = app.store.outbox(true, 10).await.expect("outbox");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].attempts, 3);
    assert!(all[0].sent_at.is_some());
    assert_eq!(
        app.store.outbox_summary().await.expect("summary").pending,
        0
    );
}

#[tokio::test]
async fn two_senders_on_one_database_send_each_mail_once() {
    let app = TestApp::start().await;
    let port = free_port();
    let dir = mail_dir("two-senders");
    let _sink = SmtpSink::start(port, &dir);
    let mailer = Mailer::new(&smtp(port)).expect("mailer");
    for i in 0..12 {
        app.store
            .enqueue_mail(NewMail {
                recipient: format!("r{i}@example.test"),
                subject: format!("Mail {i}"),
                body: "Hello.\n".into(),
            })
            .await
            .expect("enqueue");
    }

    let (a, b) = tokio::join!(
        deliver_due(&*app.store, &*app.clock, &mailer, "sender-a"),
        deliver_due(&*app.store, &*app.clock, &mailer, "sender-b"),
    );

    let (a, b) = (a.expect("a"), b.expect("b"));
    assert_eq!(a.sent + b.sent, 12, "{a:?} {b:?}");
    let mut to: Vec<String> = messages(&dir)
        .iter()
        .map(|m| envelope_to(m).to_owned())
        .collect();
    to.sort();
    let mut expected: Vec<String> = (0..12).map(|i| format!("r{i}@example.test")).collect();
    expected.sort();
    assert_eq!(to, expected, "each mail once");
}

/// Signs `email` in on a fresh visitor.
async fn signed_in<'a>(app: &'a TestApp, email: &str) -> Visitor<'a> {
    let mut v = Visitor::new(app);
    let csrf = v.csrf("/portal/sign-in").await;
    let (status, body) = v
        .post(
            "/portal/sign-in",
            &[("csrf", &csrf), ("email", email), ("password", PW)],
        )
        .await;
    assert_eq!(status, 303, "sign-in of {email}: {body}");
    v
}

/// How many times `needle` occurs in `hay`.
fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

#[tokio::test]
async fn a_grant_made_in_the_portal_tells_the_partner_in_the_portal_and_by_mail_and_its_expiry_once_each()
 {
    // Arrange: the server's own sender delivers to the sink.
    let port = free_port();
    let dir = mail_dir("grant-notices");
    let _sink = SmtpSink::start(port, &dir);
    let app = TestApp::start_with(ServerConfig {
        close_interval: None,
        mail: Some(smtp(port)),
        ..ServerConfig::default()
    })
    .await;
    let store = &*app.store;
    let m = common::merchant(store, "987654321", "Kaffe AS").await;
    common::unit(store, m, "123456", None).await;
    common::ledger(store, "100", m, &["123456"], 100).await;
    let p = common::partner(
        store,
        "Regnskap AS",
        ledgerport_core::world::PartnerKind::Accounting,
        true,
    )
    .await;
    user(&app, "kari@kaffe.test", PortalRole::Merchant(m)).await;
    user(&app, "ola@regnskap.test", PortalRole::Partner(p)).await;
    let mut merchant = signed_in(&app, "kari@kaffe.test").await;
    let mut partner = signed_in(&app, "ola@regnskap.test").await;
    let (_, empty) = partner.get("/portal/notifications").await;
    assert!(empty.contains("No notifications."), "{empty}");

    // Act: the merchant grants the partner the unit's ledger until 2024-04-25, funds only.
    let csrf = merchant.csrf("/portal/merchant/partners").await;
    let (status, body) = merchant
        .post(
            "/portal/merchant/partners/edit",
            &[
                ("csrf", &csrf),
                ("partner", &p.to_string()),
                ("unit", "123456"),
                ("topics", "funds"),
                ("expires_on", "2024-04-25"),
            ],
        )
        .await;
    assert_eq!(status, 303, "{body}");

    // Assert: the partner user's page and nav bar, on every page.
    let told = "Kaffe AS granted you access to ledger 100";
    let (status, page) = partner.get("/portal/notifications").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(count(&page, told), 1, "{page}");
    assert!(
        page.contains(
            "funds only, every ledger date, without personal data, until \
             2024-04-25T00:00:00.000000Z"
        ),
        "{page}"
    );
    assert!(page.contains("Notifications (1 unread)"), "{page}");
    let (_, home) = partner.get("/portal/partner").await;
    assert!(home.contains("Notifications (1 unread)"), "{home}");
    let (_, own) = merchant.get("/portal/merchant/partners").await;
    assert!(own.contains("Notifications (1 unread)"), "{own}");

    // The mail arrives at the SMTP server for the partner user (and the merchant user).
    let deadline = Instant::now() + Duration::from_secs(30);
    while messages(&dir).len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = messages(&dir);
    let to_partner: Vec<&String> = got
        .iter()
        .filter(|m| envelope_to(m) == "ola@regnskap.test")
        .collect();
    assert_eq!(to_partner.len(), 1, "{got:#?}");
    assert!(
        to_partner[0].contains("Subject: Access granted: ledger 100"),
        "{}",
        to_partner[0]
    );
    assert!(to_partner[0].contains(told), "{}", to_partner[0]);
    assert_eq!(
        got.iter()
            .filter(|m| envelope_to(m) == "kari@kaffe.test")
            .count(),
        1,
        "{got:#?}"
    );

    // Six days before the expiry: one expiring notice, however often the task runs.
    app.clock.advance(SignedDuration::from_hours(13 * 24 + 12));
    let first = ledgerport_server::notify_expiries(&app.state).await;
    let second = ledgerport_server::notify_expiries(&app.state).await;
    assert_eq!((first.expect("first"), second.expect("second")), (2, 0));
    // Sessions last 12 hours: sign in again at the new time.
    partner = signed_in(&app, "ola@regnskap.test").await;
    let (_, page) = partner.get("/portal/notifications").await;
    assert_eq!(
        count(
            &page,
            "Your access to ledger 100 (Unit 123456) of Kaffe AS expires on 2024-04-25T00:00:00.000000Z."
        ),
        1,
        "{page}"
    );
    assert!(page.contains("Notifications (2 unread)"), "{page}");

    // After the expiry: one expired notice.
    app.clock.advance(SignedDuration::from_hours(7 * 24));
    let first = ledgerport_server::notify_expiries(&app.state).await;
    let second = ledgerport_server::notify_expiries(&app.state).await;
    assert_eq!((first.expect("first"), second.expect("second")), (2, 0));
    // Sessions last 12 hours: sign in again at the new time.
    partner = signed_in(&app, "ola@regnskap.test").await;
    let (_, page) = partner.get("/portal/notifications").await;
    assert_eq!(count(&page, "has expired"), 1, "{page}");
    assert_eq!(count(&page, "expires on"), 1, "{page}");
    assert!(page.contains("Notifications (3 unread)"), "{page}");

    // Marking read: all of the partner user's, none of the merchant user's.
    let csrf = csrf_of(&page).expect("csrf").to_owned();
    let (status, _) = partner
        .post(
            "/portal/notifications/read",
            &[("csrf", &csrf), ("id", "all")],
        )
        .await;
    assert_eq!(status, 303);
    let (_, page) = partner.get("/portal/notifications").await;
    assert!(!page.contains("unread)"), "{page}");
    assert_eq!(count(&page, ">read<"), 3, "{page}");
    merchant = signed_in(&app, "kari@kaffe.test").await;
    let (_, own) = merchant.get("/portal/merchant/partners").await;
    assert!(own.contains("Notifications (3 unread)"), "{own}");
    let (status, _) = partner
        .post("/portal/notifications/read", &[("id", "all")])
        .await;
    assert_eq!(status, 403, "a form without the CSRF token");
}

/// The world of a grant: Kaffe AS owns ledger 100 (unit 123456) with user kari; Regnskap AS,
/// approved, has user ola. Returns the partner.
async fn kaffe_and_regnskap(app: &TestApp) -> i64 {
    let store = &*app.store;
    let m = common::merchant(store, "987654321", "Kaffe AS").await;
    common::unit(store, m, "123456", None).await;
    common::ledger(store, "100", m, &["123456"], 100).await;
    let p = common::partner(
        store,
        "Regnskap AS",
        ledgerport_core::world::PartnerKind::Accounting,
        true,
    )
    .await;
    user(app, "kari@kaffe.test", PortalRole::Merchant(m)).await;
    user(app, "ola@regnskap.test", PortalRole::Partner(p)).await;
    p
}

#[tokio::test]
async fn an_smtp_outage_during_a_grant_change_loses_no_mail_and_each_arrives_once() {
    // Arrange: no SMTP server listens yet; the test is the sender, on the test's clock.
    let app = TestApp::start().await;
    let p = kaffe_and_regnskap(&app).await;
    let port = free_port();
    let dir = mail_dir("grant-outage");
    let mailer = Mailer::new(&smtp(port)).expect("mailer");
    let pass = || deliver_due(&*app.store, &*app.clock, &mailer, "test-sender");

    // Act: the grant is made while the server is down.
    app.store
        .create_grant(
            &by(),
            p,
            &common::lid("100"),
            &ledgerport_core::world::GrantScope::EVERYTHING,
        )
        .await
        .expect("grant");
    let down = pass().await.expect("pass while down");
    app.clock.advance(SignedDuration::from_mins(1));
    let still_down = pass().await.expect("pass while still down");
    let waiting = app.store.outbox(false, 10).await.expect("outbox");
    let _sink = SmtpSink::start(port, &dir);
    app.clock.advance(SignedDuration::from_mins(2));
    let up = pass().await.expect("pass when up");
    app.clock.advance(SignedDuration::from_hours(2));
    let later = pass().await.expect("a later pass");

    // Assert
    assert_eq!(
        (down, still_down),
        (
            Delivered {
                sent: 0,
                failed: 2,
                gave_up: 0
            },
            Delivered {
                sent: 0,
                failed: 2,
                gave_up: 0
            }
        )
    );
    assert_eq!(waiting.len(), 2, "both sides' mails wait: {waiting:#?}");
    assert!(waiting.iter().all(|m| m.last_error.is_some()));
    assert_eq!(
        up,
        Delivered {
            sent: 2,
            failed: 0,
            gave_up: 0
        }
    );
    assert_eq!(later, Delivered::default(), "nothing sent twice");
    let got = messages(&dir);
    let mut to: Vec<&str> = got.iter().map(|m| envelope_to(m)).collect();
    to.sort_unstable();
    assert_eq!(to, ["kari@kaffe.test", "ola@regnskap.test"], "{got:#?}");
    assert!(
        got.iter()
            .all(|m| m.contains("Subject: Access granted: ledger 100 (Unit 123456)")),
        "{got:#?}"
    );
    let summary = app.store.outbox_summary().await.expect("summary");
    assert_eq!((summary.pending, summary.failed), (0, 0));
}

#[tokio::test]
async fn a_refused_mail_fails_at_once_a_deferred_one_after_the_give_up_time_and_retry_sends_both() {
    // Arrange: the SMTP server refuses for good first, then defers; the give-up time is 3 h.
    let app = TestApp::start().await;
    user(&app, "ops@example.test", PortalRole::Operator).await;
    let port = free_port();
    let dir = mail_dir("give-up");
    let _sink = SmtpSink::start(port, &dir);
    let mailer = Mailer::new(&SmtpConfig {
        give_up_after: Duration::from_secs(3 * 3600),
        ..smtp(port)
    })
    .expect("mailer");
    let pass = || deliver_due(&*app.store, &*app.clock, &mailer, "test-sender");
    let enqueue = |to: &'static str| {
        app.store.enqueue_mail(NewMail {
            recipient: to.into(),
            subject: format!("For {to}"),
            body: "Hello.\n".into(),
        })
    };
    let start: jiff::Timestamp = START.parse().expect("start");

    // Act 1: a 550 answer.
    std::fs::write(dir.join("refuse"), "").expect("refuse");
    let refused = enqueue("gone@example.test").await.expect("enqueue");
    let first = pass().await.expect("pass");
    app.clock.advance(SignedDuration::from_hours(10));
    let never_again = pass().await.expect("pass");

    // Act 2: 451 answers, for longer than the give-up time.
    std::fs::remove_file(dir.join("refuse")).expect("unrefuse");
    std::fs::write(dir.join("defer"), "").expect("defer");
    let deferred = enqueue("later@example.test").await.expect("enqueue");
    let deferred_at = app.clock.now();
    let mut passes = vec![];
    for _ in 0..10 {
        passes.push((app.clock.now(), pass().await.expect("pass")));
        app.clock.advance(SignedDuration::from_mins(30));
    }

    // Assert: each marked failed, visibly, the permanent one at once.
    assert_eq!(
        first,
        Delivered {
            sent: 0,
            failed: 0,
            gave_up: 1
        }
    );
    assert_eq!(
        never_again,
        Delivered::default(),
        "a failed mail is not tried again"
    );
    let gave_up: Vec<jiff::Timestamp> = passes
        .iter()
        .filter(|(_, d)| d.gave_up == 1)
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(gave_up.len(), 1, "{passes:#?}");
    assert!(
        gave_up[0] >= deferred_at + SignedDuration::from_hours(3)
            && gave_up[0] < deferred_at + SignedDuration::from_hours(4),
        "given up at {} (enqueued {deferred_at}): {passes:#?}",
        gave_up[0]
    );
    assert!(
        passes
            .iter()
            .filter(|(t, _)| *t < deferred_at + SignedDuration::from_hours(3))
            .all(|(_, d)| d.gave_up == 0),
        "{passes:#?}"
    );
    let listed = app.store.outbox(false, 10).await.expect("outbox");
    let shown = |id| listed.iter().find(|m| m.id == id).expect("listed").clone();
    let r = shown(refused.id);
    assert_eq!(r.failed_at, Some(start));
    assert!(
        r.last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("refused for good: ") && e.contains("550")),
        "{r:?}"
    );
    assert_eq!(r.attempts, 1);
    let d = shown(deferred.id);
    assert_eq!(d.failed_at, Some(gave_up[0]));
    assert!(
        d.last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("gave up after 3 h of failures: ") && e.contains("451")),
        "{d:?}"
    );
    let summary = app.store.outbox_summary().await.expect("summary");
    assert_eq!((summary.pending, summary.failed), (0, 2));

    // The operator console shows them.
    let mut op = signed_in(&app, "ops@example.test").await;
    let (status, page) = op.get("/portal/operator/status").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<strong>2</strong> mail(s) failed"), "{page}");
    assert!(page.contains("No mail is waiting."), "{page}");

    // Act 3: the server is fixed and the operator retries: both go, once.
    std::fs::remove_file(dir.join("defer")).expect("undefer");
    assert!(messages(&dir).is_empty());
    let retried = app
        .store
        .retry_mails(None, app.clock.now())
        .await
        .expect("retry");
    let sent = pass().await.expect("pass");
    app.clock.advance(SignedDuration::from_hours(5));
    let after = pass().await.expect("pass");

    // Assert
    assert_eq!(retried, 2);
    assert_eq!(
        sent,
        Delivered {
            sent: 2,
            failed: 0,
            gave_up: 0
        }
    );
    assert_eq!(after, Delivered::default());
    let mut to: Vec<String> = messages(&dir)
        .iter()
        .map(|m| envelope_to(m).to_owned())
        .collect();
    to.sort();
    assert_eq!(to, ["gone@example.test", "later@example.test"]);
    let summary = app.store.outbox_summary().await.expect("summary");
    assert_eq!((summary.pending, summary.failed), (0, 0));
}
