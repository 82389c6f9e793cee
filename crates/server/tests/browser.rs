//! The portal driven through real headless Chromium (Debian `chromium` + `chromium-driver`, via
//! WebDriver): a partner applies, the operator approves, a merchant grants two units, the
//! partner's keys then read exactly those ledgers through the Report API, the merchant removes
//! one grant and the very next API call no longer sees it; a merchant editing URLs and form
//! fields to reach another organisation is refused; a form without its CSRF token is refused.
//!
//! And the consent story: a partner requests access with a proposed scope, the merchant narrows
//! and approves it, the partner's keys read only within the scope, the grant expires on the
//! test's clock, and every step's mail arrives at aiosmtpd on loopback.
//!
//! Screenshots of the main pages go to `target/screenshots/`. When Chromium or its driver is
//! missing the test runs `scripts/install-chromium.sh`; if that fails, the test fails saying so.

mod common;

use common::smtp::{SmtpSink, envelope_to, free_port, mail_dir, messages, smtp};
use common::{TestApp, by, lid, world};
use fantoccini::{Client, ClientBuilder, Locator};
use ledgerport_core::world::{KeyKind, KeyOwner};
use ledgerport_server::portal::auth::hash_password;
use ledgerport_store::{NewPortalUser, PortalRole};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Installs Chromium and chromedriver with the project's script when either is missing.
fn ensure_chromium() {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return;
    }
    let script = repo_root().join("scripts/install-chromium.sh");
    let status = Command::new("sh").arg(&script).status();
    let ok = matches!(status, Ok(s) if s.success());
    assert!(
        ok && Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists(),
        "the browser tests need {CHROMIUM} and {CHROMEDRIVER}; installing them with {} failed ({status:?}): run it as root (or with sudo) and test again",
        script.display()
    );
}

/// chromedriver (and the Chromium it starts) in their own process group, killed as a group
/// when dropped, even when the test fails half-way.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Driver {
        ensure_chromium();
        // A free port: bind :0, read it, let it go for chromedriver.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        // chromedriver says when it listens; reading that line is the wait.
        let out = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(out).lines();
        let started = lines
            .by_ref()
            .take(20)
            .map_while(Result::ok)
            .any(|l| l.contains("started successfully"));
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        assert!(started, "chromedriver did not start on port {port}");
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn browser(&self) -> Client {
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                    "--window-size=1280,900"
                ]
            }
        });
        let caps = match caps {
            serde_json::Value::Object(m) => m,
            _ => unreachable!("an object"),
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a WebDriver session in headless Chromium")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and every Chromium process it started.
        let pgid = self.child.id();
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{pgid}")])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Ui<'a> {
    app: &'a TestApp,
    c: Client,
}

impl Ui<'_> {
    async fn go(&self, path: &str) {
        self.c.goto(&self.app.url(path)).await.expect("navigate");
    }

    async fn source(&self) -> String {
        self.c.source().await.expect("page source")
    }

    async fn fill(&self, css: &str, text: &str) {
        let e = self
            .c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        e.clear().await.expect("clear");
        e.send_keys(text).await.expect("type");
    }

    /// Clicks something that loads a new page, and waits until the old page is gone.
    async fn click(&self, loc: Locator<'_>) {
        let old = self.c.find(Locator::Css("html")).await.expect("page");
        self.tick(loc).await;
        let gone = async {
            // A reference into the old document goes stale once the next one has replaced it.
            while old.tag_name().await.is_ok() {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), gone)
            .await
            .expect("the click should load a new page");
    }

    /// Clicks something on the page (a checkbox).
    async fn tick(&self, loc: Locator<'_>) {
        let what = format!("{loc:?}");
        let e = match self.c.find(loc).await {
            Ok(e) => e,
            Err(e) => panic!("{what}: {e}\n{}", self.source().await),
        };
        e.click().await.expect("click");
    }

    async fn text(&self, css: &str) -> String {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .expect("text")
    }

    /// Saves a screenshot for people to look at.
    async fn shot(&self, name: &str) {
        let png = self.c.screenshot().await.expect("screenshot");
        let dir = repo_root().join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    async fn sign_in(&self, email: &str, password: &str) {
        self.go("/portal/sign-in").await;
        self.fill("input[name=email]", email).await;
        self.fill("input[name=password]", password).await;
        self.click(Locator::Css("main button[type=submit]")).await;
        let src = self.source().await;
        assert!(src.contains("Sign out"), "signed in as {email}:\n{src}");
    }

    async fn sign_out(&self) {
        self.click(Locator::Css("form.signout button")).await;
        let src = self.source().await;
        assert!(src.contains("You are signed out."), "{src}");
    }

    /// Asserts the page shows `text`, printing the page when it does not.
    async fn expect(&self, text: &str) {
        let src = self.source().await;
        assert!(
            src.contains(text),
            "the page should contain {text:?}:\n{src}"
        );
    }

    async fn flash(&self) -> String {
        self.text(".flash").await
    }
}

async fn user(app: &TestApp, email: &str, role: PortalRole, password: &str) {
    let password_hash = hash_password(password.into()).await.expect("hash");
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
        .expect("portal user");
}

/// The ledger ids the keys list through the Report API, fetched afresh.
async fn listed_ledgers(app: &TestApp, client_id: &str, secret: &str) -> BTreeSet<String> {
    let res = app
        .miami_token_raw(client_id, secret, "grant_type=client_credentials")
        .await;
    assert_eq!(res.status(), 200, "token");
    let body: serde_json::Value = res.json().await.expect("json");
    let token = body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let res = app.get("/settlement/v1/ledgers", Some(&token), &[]).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|l| l["ledgerId"].as_str().expect("ledgerId").to_owned())
        .collect()
}

const PW: &str = "correct horse battery";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_applies_operator_approves_merchant_grants_and_removes_in_a_real_browser() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    user(&app, "ops@ledgerport.test", PortalRole::Operator, PW).await;
    user(
        &app,
        "kari@acme.test",
        PortalRole::Merchant(w.merchant1),
        PW,
    )
    .await;
    let unit_keys = app
        .issue(
            KeyKind::SalesUnit,
            KeyOwner::SalesUnit(common::msn("123455")),
        )
        .await;
    let driver = Driver::start();
    let ui = Ui {
        app: &app,
        c: driver.browser().await,
    };

    // A partner applies through the public form; a bad organisation number is named first.
    ui.go("/portal/apply").await;
    ui.fill("input[name=company]", "Tall og Tekst AS").await;
    ui.fill("input[name=org_number]", "92345678x").await;
    ui.fill("input[name=email]", "post@tallogtekst.test").await;
    ui.fill("input[name=password]", PW).await;
    ui.fill("textarea[name=description]", "Bookkeeping for shops.")
        .await;
    // The browser's own pattern check would stop the bad number; switch it off to reach the server.
    ui.c.execute(
        "document.querySelector('form.card').noValidate = true",
        vec![],
    )
    .await
    .expect("novalidate");
    ui.click(Locator::Css("main button[type=submit]")).await;
    ui.expect("Organisation number: must be a Norwegian organisation number of 9 digits.")
        .await;
    ui.shot("apply-errors").await;
    ui.fill("input[name=org_number]", "923456789").await;
    ui.fill("input[name=password]", PW).await;
    ui.click(Locator::Css("main button[type=submit]")).await;
    ui.expect("Application received").await;
    let partner = app
        .store
        .partners()
        .await
        .expect("partners")
        .into_iter()
        .find(|p| p.name == "Tall og Tekst AS")
        .expect("the application is a partner");
    assert_eq!(partner.state.as_str(), "applied");

    // Before approval the merchant cannot find it.
    ui.sign_in("kari@acme.test", PW).await;
    ui.go("/portal/merchant/partners/edit?q=Tall").await;
    ui.expect("No approved accounting partner matches").await;
    ui.sign_out().await;

    // The operator approves.
    ui.sign_in("ops@ledgerport.test", PW).await;
    ui.shot("operator-applications").await;
    ui.click(Locator::XPath(
        "//tr[td[text()='Tall og Tekst AS']]//button[text()='Approve']",
    ))
    .await;
    assert_eq!(ui.flash().await, "Tall og Tekst AS approved.");
    ui.go("/portal/operator/world").await;
    ui.shot("operator-world").await;
    ui.sign_out().await;

    // The merchant grants two units (on ledgers 100 and 300).
    ui.sign_in("kari@acme.test", PW).await;
    ui.shot("merchant-partners-before").await;
    ui.click(Locator::LinkText("Edit partner access")).await;
    ui.fill("input[name=q]", "tall").await;
    ui.click(Locator::Css("form.card button[type=submit]"))
        .await;
    ui.click(Locator::LinkText("Tall og Tekst AS")).await;
    ui.tick(Locator::Css("input[name=unit][value='123455']"))
        .await;
    ui.tick(Locator::Css("input[name=unit][value='334455']"))
        .await;
    // Every choice of the scope is asked; nothing is ticked in advance for a new grant.
    ui.tick(Locator::Css("input[name=topics][value='funds']"))
        .await;
    ui.tick(Locator::Css("input[name=topics][value='fees']"))
        .await;
    ui.shot("merchant-edit-access").await;
    ui.click(Locator::XPath("//button[text()='Save']")).await;
    assert_eq!(
        ui.flash().await,
        "Saved access for Tall og Tekst AS: 2 ledger(s) granted, 0 removed."
    );
    ui.shot("merchant-partners").await;
    ui.sign_out().await;

    // The partner signs in, issues accounting keys and sees the secret once.
    ui.sign_in("post@tallogtekst.test", PW).await;
    ui.expect("ACME AS").await;
    ui.click(Locator::XPath("//button[text()='Issue new keys']"))
        .await;
    let client_id = ui.text("#shown-client-id").await;
    let secret = ui.text("#new-secret").await;
    ui.shot("partner-keys").await;
    ui.go("/portal/partner").await;
    assert!(
        !ui.source().await.contains(&secret),
        "the secret is shown only once"
    );
    ui.sign_out().await;

    // The keys list exactly the two granted ledgers, and read one of them.
    let want: BTreeSet<String> = ["100", "300"].map(String::from).into();
    assert_eq!(listed_ledgers(&app, &client_id, &secret).await, want);
    let res = app
        .miami_token_raw(&client_id, &secret, "grant_type=client_credentials")
        .await;
    let body: serde_json::Value = res.json().await.expect("json");
    let token = body["access_token"].as_str().expect("token").to_owned();
    let res = app
        .get("/report/v2/ledgers/300/funds/feed", Some(&token), &[])
        .await;
    assert_eq!(res.status(), 200);

    // The merchant removes one grant, confirming first.
    ui.sign_in("kari@acme.test", PW).await;
    ui.click(Locator::XPath(
        "//tr[td[text()='334455']]//div[contains(., 'Tall og Tekst AS')]/a[text()='Remove']",
    ))
    .await;
    ui.expect("will no longer be able to read ledger 300").await;
    ui.shot("merchant-confirm-remove").await;
    ui.click(Locator::XPath("//button[text()='Remove access']"))
        .await;
    assert_eq!(
        ui.flash().await,
        "Removed Tall og Tekst AS's access to ledger 300."
    );

    // The very next API call no longer sees it, with the token issued before the removal too.
    let res = app
        .get("/report/v2/ledgers/300/funds/feed", Some(&token), &[])
        .await;
    assert_eq!(res.status(), 404);
    let want: BTreeSet<String> = ["100"].map(String::from).into();
    assert_eq!(listed_ledgers(&app, &client_id, &secret).await, want);

    // The merchant's other pages.
    ui.go("/portal/merchant/keys").await;
    ui.expect(&unit_keys.client_id).await;
    ui.click(Locator::XPath("//button[text()='Regenerate secret']"))
        .await;
    let new_secret = ui.text("#new-secret").await;
    assert!(new_secret.starts_with("lpsec_") && new_secret != unit_keys.secret);
    ui.shot("merchant-keys").await;
    ui.go("/portal/merchant/access-log").await;
    // The partner's read of ledger 300 is in the log, under its name and key.
    ui.c.find(Locator::XPath(
        "//tr[td[starts-with(text(),'Tall og Tekst AS, key ')] and td[text()='300']]",
    ))
    .await
    .expect("the partner's read of ledger 300 is logged");
    ui.shot("merchant-access-log").await;

    // Another organisation's ledger by URL: refused, and nothing removed.
    ui.go(&format!(
        "/portal/merchant/partners/remove?partner={}&ledger=400",
        w.granted_partner
    ))
    .await;
    ui.expect("Not yours").await;
    ui.shot("merchant-refused").await;
    // Pages of another kind of user: refused.
    ui.go("/portal/operator").await;
    ui.expect("Not yours").await;
    // A form field edited to another organisation's sales unit: refused whole.
    ui.go(&format!(
        "/portal/merchant/partners/edit?partner={}",
        partner.id
    ))
    .await;
    ui.c.execute(
        "document.querySelector(\"input[name=unit][value='654321']\").value = '222222';\
         document.querySelector(\"input[name=unit][value='222222']\").checked = true;",
        vec![],
    )
    .await
    .expect("tamper");
    ui.click(Locator::XPath("//button[text()='Save']")).await;
    ui.expect("Not yours").await;
    let grants = app
        .store
        .grants(Some(partner.id), None)
        .await
        .expect("grants");
    assert_eq!(
        grants
            .iter()
            .map(|g| g.ledger_id.to_string())
            .collect::<Vec<_>>(),
        vec!["100"],
        "a refused form changes nothing"
    );

    // A form post without the CSRF token, with the browser's own session: refused.
    let session =
        ui.c.get_named_cookie("__Host-lp_session")
            .await
            .expect("session cookie");
    let post = |body: String| {
        app.http
            .post(app.url("/portal/merchant/partners/remove"))
            .header("Cookie", format!("__Host-lp_session={}", session.value()))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let res = post(format!("partner={}&ledger=100", partner.id))
        .await
        .expect("post");
    assert_eq!(res.status(), 403);
    let res = post(format!("partner={}&ledger=100&csrf=guess", partner.id))
        .await
        .expect("post");
    assert_eq!(res.status(), 403);
    assert_eq!(
        app.store
            .grants(Some(partner.id), Some(&lid("100")))
            .await
            .expect("grants")
            .len(),
        1,
        "the grant is still there"
    );

    // Settlements: dates with totals per entry type, open dates marked, a chart; CSV downloads.
    ui.go("/portal/merchant/settlements?ledger=100&from=2024-04-01&to=2024-04-05")
        .await;
    ui.c.find(Locator::XPath(
        "//tr[td[text()='2024-04-05']]//span[text()='open']",
    ))
    .await
    .expect("today's date is open");
    ui.c.find(Locator::XPath(
        "//tr[td[text()='2024-04-04']]//span[text()='closed']",
    ))
    .await
    .expect("yesterday is closed");
    ui.expect("<th class=\"num\">Sales</th>").await;
    ui.expect("<svg class=\"chart\"").await;
    ui.shot("merchant-settlements").await;
    let csv = |query: &'static str| {
        app.http
            .get(app.url(&format!("/portal/merchant/settlements.csv?{query}")))
            .header("Cookie", format!("__Host-lp_session={}", session.value()))
            .send()
    };
    let plain = csv("ledger=200&from=2024-04-04&to=2024-04-04")
        .await
        .expect("csv")
        .text()
        .await
        .expect("body");
    assert!(
        plain.starts_with("topic,pspReference,time,ledgerDate,entryType"),
        "{plain}"
    );
    assert!(
        plain.contains("2001") && !plain.contains("Kari Nordmann"),
        "{plain}"
    );
    let personal = csv("ledger=200&from=2024-04-04&to=2024-04-04&personal=on")
        .await
        .expect("csv")
        .text()
        .await
        .expect("body");
    assert!(
        personal.contains(",Kari Nordmann,Kaffe,xxxx 1234"),
        "{personal}"
    );
    let other = csv("ledger=400&from=2024-04-04&to=2024-04-04")
        .await
        .expect("csv");
    assert_eq!(other.status(), 403, "another organisation's ledger");

    // On a phone.
    ui.c.set_window_size(390, 844).await.expect("resize");
    ui.go("/portal/merchant/partners").await;
    ui.shot("merchant-partners-phone").await;
    ui.sign_out().await;

    ui.c.close().await.expect("close the browser");
    drop(driver);
}

/// A fresh miami token for accounting keys.
async fn token(app: &TestApp, client_id: &str, secret: &str) -> String {
    let res = app
        .miami_token_raw(client_id, secret, "grant_type=client_credentials")
        .await;
    assert_eq!(res.status(), 200, "token");
    let body: serde_json::Value = res.json().await.expect("json");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// The messages to `to` whose text holds `needle`.
fn mails_to<'m>(got: &'m [String], to: &str, needle: &str) -> Vec<&'m String> {
    got.iter()
        .filter(|m| envelope_to(m) == to && m.contains(needle))
        .collect()
}

/// Waits until the sink holds a mail to `to` holding `needle`, and returns how many do.
async fn arrived(dir: &Path, to: &str, needle: &str) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let got = messages(dir);
        let n = mails_to(&got, to, needle).len();
        if n > 0 || std::time::Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_requests_access_the_merchant_narrows_it_and_the_grant_expires_in_a_real_browser()
{
    // Arrange: the server's own sender delivers to aiosmtpd on loopback (every 5 s).
    let port = free_port();
    let dir = mail_dir("browser-consent");
    let _sink = SmtpSink::start(port, &dir);
    let app = TestApp::start_with(ledgerport_server::ServerConfig {
        close_interval: None,
        mail: Some(smtp(port)),
        ..ledgerport_server::ServerConfig::default()
    })
    .await;
    let w = world(&app).await;
    let partner = common::partner(
        &*app.store,
        "Tall og Tekst AS",
        ledgerport_core::world::PartnerKind::Accounting,
        true,
    )
    .await;
    let (kari, post) = ("kari@acme.test", "post@tallogtekst.test");
    user(&app, kari, PortalRole::Merchant(w.merchant1), PW).await;
    user(&app, post, PortalRole::Partner(partner), PW).await;
    let driver = Driver::start();
    let ui = Ui {
        app: &app,
        c: driver.browser().await,
    };
    let ask = "form[action='/portal/partner/requests']";

    // The partner asks ACME AS for units 123455 (ledger 100) and 654321 (ledger 200): both
    // topics, April 2024, personal data, until 2024-05-01.
    ui.sign_in(post, PW).await;
    ui.go("/portal/partner/requests").await;
    ui.fill(&format!("{ask} input[name=org]"), "987654321")
        .await;
    ui.fill(&format!("{ask} input[name=units]"), "123455, 654321")
        .await;
    for (name, value) in [
        ("expires_on", "2024-05-01"),
        ("from", "2024-04-01"),
        ("to", "2024-04-30"),
    ] {
        // Date inputs take the date as the browser's locale types it; set the value directly.
        ui.c.execute(
            &format!("document.querySelector(\"{ask} input[name={name}]\").value = '{value}'"),
            vec![],
        )
        .await
        .expect("set a date");
    }
    ui.tick(Locator::Css(&format!(
        "{ask} input[name=topics][value='funds']"
    )))
    .await;
    ui.tick(Locator::Css(&format!(
        "{ask} input[name=topics][value='fees']"
    )))
    .await;
    ui.tick(Locator::Css(&format!("{ask} input[name=personal_data]")))
        .await;
    ui.fill(
        &format!("{ask} textarea[name=message]"),
        "We keep your books.",
    )
    .await;
    ui.shot("consent-partner-asks").await;
    ui.click(Locator::Css(&format!("{ask} button[type=submit]")))
        .await;
    assert!(ui.flash().await.starts_with("Request sent."));
    ui.sign_out().await;
    // The merchant's user is mailed of the request.
    assert_eq!(
        arrived(&dir, kari, "Subject: Access request from Tall og Tekst AS").await,
        1,
        "{:#?}",
        messages(&dir)
    );

    // The merchant narrows it: funds only, no personal data, dates up to 2024-04-04, until
    // 2024-04-20; and approves.
    ui.sign_in(kari, PW).await;
    ui.click(Locator::LinkText("Access requests")).await;
    ui.expect("Tall og Tekst AS").await;
    ui.expect("We keep your books.").await;
    ui.expect("ledger(s) 100, 200").await;
    ui.tick(Locator::Css("input[name=topics][value='fees']"))
        .await;
    ui.tick(Locator::Css("input[name=personal_data]")).await;
    for (name, value) in [("expires_on", "2024-04-20"), ("to", "2024-04-04")] {
        ui.c.execute(
            &format!("document.querySelector(\"input[name={name}]\").value = '{value}'"),
            vec![],
        )
        .await
        .expect("set a date");
    }
    ui.shot("consent-merchant-narrows").await;
    ui.click(Locator::XPath("//button[text()='Approve']")).await;
    assert_eq!(
        ui.flash().await,
        "Approved: 2 ledger(s) granted (100, 200)."
    );
    ui.go("/portal/merchant/partners").await;
    ui.expect("funds only · dates 2024-04-01 to 2024-04-04 · no personal data · until 2024-04-20 00:00 UTC")
        .await;
    ui.shot("consent-merchant-granted").await;
    ui.sign_out().await;
    // The partner is mailed of the approval, in words about the request, and of each grant.
    assert_eq!(
        arrived(&dir, post, "Subject: ACME AS approved your access request").await,
        1
    );
    assert_eq!(
        arrived(&dir, post, "Subject: Access granted: ledger 100").await,
        1
    );
    assert_eq!(
        arrived(&dir, post, "Subject: Access granted: ledger 200").await,
        1
    );

    // The partner issues keys and reads within the scope only.
    ui.sign_in(post, PW).await;
    ui.expect("Notifications (3 unread)").await;
    ui.click(Locator::XPath("//button[text()='Issue new keys']"))
        .await;
    let client_id = ui.text("#shown-client-id").await;
    let secret = ui.text("#new-secret").await;
    ui.sign_out().await;
    let t = token(&app, &client_id, &secret).await;
    let status = |path: &'static str| {
        let (app, t) = (&app, t.clone());
        async move { app.get(path, Some(&t), &[]).await.status().as_u16() }
    };
    assert_eq!(
        status("/report/v2/ledgers/100/funds/dates/2024-04-04").await,
        200
    );
    assert_eq!(
        status("/report/v2/ledgers/100/funds/dates/2024-04-05").await,
        403,
        "a date outside the grant's period"
    );
    assert_eq!(
        status("/report/v2/ledgers/100/fees/feed").await,
        403,
        "a topic the grant does not cover"
    );
    assert_eq!(status("/report/v2/ledgers/300/funds/feed").await, 404);
    let res = app
        .get(
            "/report/v2/ledgers/200/funds/dates/2024-04-04?includeGDPRSensitiveData=true",
            Some(&t),
            &[],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["ledgerport-personal-data"], "withheld");
    let body: serde_json::Value = res.json().await.expect("json");
    let first = &body["items"][0];
    assert_eq!(first["pspReference"], "2001", "{body}");
    for field in ["name", "message", "maskedPhoneNo"] {
        assert!(first.get(field).is_none(), "{field} in {first}");
    }
    let want: BTreeSet<String> = ["100", "200"].map(String::from).into();
    assert_eq!(listed_ledgers(&app, &client_id, &secret).await, want);

    // Six days before the expiry both sides are warned; past it, told it expired.
    app.clock.set("2024-04-14T00:00:00Z".parse().expect("time"));
    ledgerport_server::notify_expiries(&app.state)
        .await
        .expect("expiring notices");
    assert_eq!(
        arrived(&dir, post, "Subject: Access expires soon: ledger 100").await,
        1
    );
    assert_eq!(
        arrived(&dir, kari, "Subject: Access expires soon: ledger 200").await,
        1
    );
    // Five minutes before the expiry a fresh token still reads; at the expiry, that very token
    // (valid for 15 minutes) reads nothing.
    app.clock.set("2024-04-19T23:55:00Z".parse().expect("time"));
    let t = token(&app, &client_id, &secret).await;
    assert_eq!(
        app.get(
            "/report/v2/ledgers/100/funds/dates/2024-04-04",
            Some(&t),
            &[]
        )
        .await
        .status(),
        200,
        "still readable before the expiry"
    );
    app.clock.set("2024-04-20T00:00:00Z".parse().expect("time"));
    ledgerport_server::notify_expiries(&app.state)
        .await
        .expect("expired notices");
    let after = app
        .get(
            "/report/v2/ledgers/100/funds/dates/2024-04-04",
            Some(&t),
            &[],
        )
        .await;
    assert_eq!(
        after.status(),
        404,
        "from its expiry on, a token issued before reads nothing"
    );
    assert_eq!(
        listed_ledgers(&app, &client_id, &secret).await,
        BTreeSet::new(),
        "gone from the listing"
    );
    assert_eq!(
        arrived(&dir, post, "Subject: Access expired: ledger 100").await,
        1
    );
    assert_eq!(
        arrived(&dir, kari, "Subject: Access expired: ledger 200").await,
        1
    );

    // The partner's notifications page tells the whole story.
    ui.sign_in(post, PW).await;
    ui.click(Locator::LinkText("Notifications (7 unread)"))
        .await;
    ui.expect("ACME AS approved your access request for sales units 123455, 654321")
        .await;
    ui.expect("has expired").await;
    ui.shot("consent-partner-notifications").await;
    ui.sign_out().await;

    // Every step's mail arrived once: nothing twice.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let got = messages(&dir);
    for (to, subject) in [
        (kari, "Subject: Access request from Tall og Tekst AS"),
        (post, "Subject: ACME AS approved your access request"),
        (post, "Subject: Access granted: ledger 100"),
        (kari, "Subject: Access granted: ledger 200"),
        (post, "Subject: Access expires soon: ledger 200"),
        (kari, "Subject: Access expires soon: ledger 100"),
        (post, "Subject: Access expired: ledger 200"),
        (kari, "Subject: Access expired: ledger 100"),
    ] {
        assert_eq!(
            mails_to(&got, to, subject).len(),
            1,
            "{to}: {subject}\n{got:#?}"
        );
    }

    ui.c.close().await.expect("close the browser");
    drop(driver);
}
