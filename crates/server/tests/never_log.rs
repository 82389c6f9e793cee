//! The never-log list (OPERATIONS.md): client secrets, tokens, `Authorization` values, cookies,
//! subscription keys, payer names and payer messages never reach the logs, whatever happens.
//!
//! Every log line of this test binary, at the most verbose level (TRACE for Ledgerport's crates,
//! DEBUG for the rest), is captured twice, as JSON (what `--log-format json` writes) and as the
//! pretty text (`--log-format pretty`). Each test runs a scenario with every secret it can think
//! of and then scans both captures for each of them, failing with the name of what leaked.
//!
//! The same captures show that a request's log lines carry its request id, and that the
//! `contextId` of a 500 is the request id its log lines carry.

mod common;

use common::{Keys, TestApp, msn, world};
use ledgerport_core::world::{KeyKind, KeyOwner};
use ledgerport_server::ServerConfig;
use serde_json::{Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// A buffer log lines are written into.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

struct Captures {
    json: Capture,
    pretty: Capture,
}

/// The filter: everything of Ledgerport's own crates, debug of the libraries underneath.
const FILTER: &str =
    "debug,ledgerport=trace,ledgerport_server=trace,ledgerport_store=trace,ledgerport_core=trace";

/// Installs (once per test binary) the global subscriber writing every line into both captures.
fn captures() -> &'static Captures {
    static CAPTURES: OnceLock<Captures> = OnceLock::new();
    CAPTURES.get_or_init(|| {
        use tracing_subscriber::layer::SubscriberExt;
        let json = Capture::default();
        let pretty = Capture::default();
        let (j, p) = (json.clone(), pretty.clone());
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new(FILTER))
            .with(
                // As `init_logging` of the binary sets it up: the JSON format's defaults, which
                // include the current span and the list of spans.
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(move || j.clone()),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(move || p.clone()),
            );
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        Captures { json, pretty }
    })
}

/// Fails naming every secret of `secrets` ((what, value)) that either capture contains.
fn assert_never_logged(secrets: &[(String, String)]) {
    let c = captures();
    let (json, pretty) = (c.json.text(), c.pretty.text());
    assert!(
        json.contains("request done") && pretty.contains("request done"),
        "nothing was captured: the scan would prove nothing"
    );
    let mut leaks = Vec::new();
    for (what, value) in secrets {
        assert!(value.len() >= 4, "{what}: too short to scan for");
        for (format, text) in [("json", &json), ("pretty", &pretty)] {
            if let Some(at) = text.find(value.as_str()) {
                let line_start = text[..at].rfind('\n').map(|i| i + 1).unwrap_or(0);
                let line_end = text[at..].find('\n').map(|i| at + i).unwrap_or(text.len());
                leaks.push(format!(
                    "{what} ({value:?}) in the {format} log: {}",
                    &text[line_start..line_end]
                ));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "leaked into the logs:\n{}",
        leaks.join("\n")
    );
}

/// The parts of a JWT worth scanning for: the whole and each part on its own.
fn jwt_secrets(what: &str, token: &str) -> Vec<(String, String)> {
    let mut v = vec![(what.to_owned(), token.to_owned())];
    for (i, part) in token.split('.').enumerate() {
        if part.len() >= 16 {
            v.push((format!("{what} (part {i})"), part.to_owned()));
        }
    }
    v
}

fn basic(client_id: &str, secret: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"))
    )
}

fn key_secrets(what: &str, k: &Keys) -> Vec<(String, String)> {
    let mut v = vec![
        (format!("{what} client secret"), k.secret.clone()),
        (
            format!("{what} Basic Authorization value"),
            basic(&k.client_id, &k.secret),
        ),
    ];
    if let Some(sub) = &k.subscription_key {
        v.push((format!("{what} subscription key"), sub.clone()));
    }
    v
}

/// JSON log lines (parsed) whose `span.request_id` is `id`.
fn json_lines_of_request(id: &str) -> Vec<Value> {
    captures()
        .json
        .text()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["span"]["request_id"] == id)
        .collect()
}

#[tokio::test]
async fn no_secret_token_authorization_cookie_or_payer_detail_is_ever_logged() {
    // Arrange: the capturing subscriber first, then a server with the usual world, where ledger
    // 200 holds a vm-number capture by "Kari Nordmann" with the message "Kaffe".
    let _ = captures();
    let app = TestApp::start().await;
    let w = world(&app).await;
    let unit_keys = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("654321")))
        .await;
    let merchant_keys = app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant1))
        .await;
    let accounting_keys = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(w.granted_partner))
        .await;
    let service = app.service_keys().await;
    let wrong_secret = "lpsec_ThisIsNotTheSecretButStillASecret0123";
    let made_up_subscription_key = "0123456789abcdef0123456789abcdef";
    let cookie = "session=cookie-value-that-must-never-be-logged";
    let mut secrets: Vec<(String, String)> = vec![
        ("a wrong client secret".into(), wrong_secret.into()),
        (
            "a made-up subscription key".into(),
            made_up_subscription_key.into(),
        ),
        (
            "a cookie".into(),
            "cookie-value-that-must-never-be-logged".into(),
        ),
        ("the world's payer name".into(), "Kari Nordmann".into()),
        ("the world's payer message".into(), "Kaffe".into()),
    ];
    for (what, k) in [
        ("sales-unit keys'", &unit_keys),
        ("merchant-level keys'", &merchant_keys),
        ("accounting keys'", &accounting_keys),
        ("service keys'", &service),
    ] {
        secrets.extend(key_secrets(what, k));
    }
    let sub = unit_keys
        .subscription_key
        .clone()
        .expect("subscription key");

    // Act 1: token requests, good and bad, on both endpoints.
    let unit_token = app.standard_token(&unit_keys).await;
    let merchant_token = app.miami_token(&merchant_keys).await;
    let accounting_token = app.miami_token(&accounting_keys).await;
    let bad = [
        app.standard_token_raw(&[
            ("client_id", &unit_keys.client_id),
            ("client_secret", wrong_secret),
            ("Ocp-Apim-Subscription-Key", &sub),
            ("Cookie", cookie),
        ])
        .await,
        app.standard_token_raw(&[
            ("client_id", &unit_keys.client_id),
            ("client_secret", &unit_keys.secret),
            ("Ocp-Apim-Subscription-Key", made_up_subscription_key),
        ])
        .await,
        app.standard_token_raw(&[
            ("client_id", &merchant_keys.client_id),
            ("client_secret", &merchant_keys.secret),
            ("Ocp-Apim-Subscription-Key", &sub),
        ])
        .await,
        app.miami_token_raw(
            &merchant_keys.client_id,
            wrong_secret,
            "grant_type=client_credentials",
        )
        .await,
        app.miami_token_raw(
            &unit_keys.client_id,
            &unit_keys.secret,
            "grant_type=client_credentials",
        )
        .await,
        app.miami_token_raw(
            &merchant_keys.client_id,
            &merchant_keys.secret,
            "grant_type=password",
        )
        .await,
    ];
    for res in bad {
        assert!(res.status().is_client_error(), "{}", res.status());
    }

    // Act 2: Report API reads with GDPR data, and with a tampered token.
    let gdpr = "?includeGDPRSensitiveData=true";
    let date_page = app
        .get(
            &format!("/report/v2/ledgers/200/funds/dates/2024-04-04{gdpr}"),
            Some(&merchant_token),
            &[("Cookie", cookie)],
        )
        .await;
    assert_eq!(date_page.status(), 200);
    let date_page = date_page.text().await.expect("body");
    assert!(
        date_page.contains("Kari Nordmann") && date_page.contains("Kaffe"),
        "the payer was not even served: {date_page}"
    );
    let feed = app
        .get(
            &format!("/report/v2/ledgers/200/funds/feed{gdpr}"),
            Some(&accounting_token),
            &[],
        )
        .await;
    assert_eq!(feed.status(), 200);
    let unit_feed = app
        .get(
            &format!("/report/v2/ledgers/200/funds/feed{gdpr}"),
            Some(&unit_token),
            &[("Ocp-Apim-Subscription-Key", &sub)],
        )
        .await;
    assert!(unit_feed.status().as_u16() < 500);
    let list = app
        .get("/settlement/v1/ledgers", Some(&merchant_token), &[])
        .await;
    assert_eq!(list.status(), 200);
    let mut tampered = merchant_token.clone();
    tampered.push('x');
    let refused = app
        .get("/report/v2/ledgers/200/funds/feed", Some(&tampered), &[])
        .await;
    assert_eq!(refused.status(), 401);
    let no_subscription = app
        .get("/report/v2/ledgers/200/funds/feed", Some(&unit_token), &[])
        .await;
    assert!(no_subscription.status().is_client_error());
    for (what, t) in [
        ("a sales-unit token", &unit_token),
        ("a merchant-level token", &merchant_token),
        ("an accounting token", &accounting_token),
    ] {
        secrets.extend(jwt_secrets(what, t));
        secrets.push((
            format!("{what}'s Authorization value"),
            format!("Bearer {t}"),
        ));
    }

    // Act 3: ingestion of events with payer details, accepted and rejected, and bad credentials.
    let payer = json!({
        "name": "Ola Hemmeligsen", "message": "Takk for hemmelig kaffe", "maskedPhoneNo": "xxxx 9876"
    });
    let other_payer = json!({
        "name": "Per Avvistesen", "message": "Avvist beskjed", "maskedPhoneNo": "xxxx 5555"
    });
    secrets.extend([
        ("an ingested payer name".into(), "Ola Hemmeligsen".into()),
        (
            "an ingested payer message".into(),
            "Takk for hemmelig kaffe".into(),
        ),
        ("a rejected payer name".into(), "Per Avvistesen".into()),
        ("a rejected payer message".into(), "Avvist beskjed".into()),
    ]);
    let event = |id: &str, msn: &str, psp: &str, payer: &Value| {
        json!({
            "eventId": id, "type": "capture", "msn": msn, "pspReference": psp,
            "reference": format!("purchase-{psp}"), "amount": 2500, "currency": "NOK",
            "time": "2024-04-05T10:00:00Z", "payer": payer,
        })
    };
    let res = app
        .post_events(
            &service,
            &json!({"events": [
                event("nl-1", "223344", "9001", &payer),
                event("nl-2", "123455", "9002", &other_payer),
            ]}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["accepted"], 1, "{body}");
    assert_eq!(body["rejected"], 1, "{body}");
    let refused = app
        .post_events_raw(
            Some((&service.client_id, wrong_secret)),
            "application/json",
            json!({"events": [event("nl-3", "223344", "9003", &payer)]}).to_string(),
        )
        .await;
    assert_eq!(refused.status(), 401);
    let not_json = app
        .post_events_raw(
            Some((&service.client_id, &service.secret)),
            "application/json",
            "{\"events\": [{\"payer\": {\"name\": \"Ola Hemmeligsen\"",
        )
        .await;
    assert_eq!(not_json.status(), 400);
    secrets.push((
        "a wrong service Basic Authorization value".into(),
        basic(&service.client_id, wrong_secret),
    ));

    // Act 4: the server answers the GDPR data it was just given.
    let served = app
        .get(
            &format!("/report/v2/ledgers/200/funds/dates/2024-04-05{gdpr}"),
            Some(&merchant_token),
            &[],
        )
        .await
        .text()
        .await
        .expect("body");
    assert!(served.contains("Ola Hemmeligsen"), "{served}");

    // Assert: nothing of it in the logs; and the logged lines of a request carry its id.
    assert_never_logged(&secrets);
    let issued: Vec<Value> = captures()
        .json
        .text()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "issued token")
        .collect();
    assert!(issued.len() >= 3, "the token log lines are missing");
    for line in issued {
        let id = line["span"]["request_id"].as_str().unwrap_or("");
        assert!(
            !id.is_empty(),
            "a request's log line without its request id: {line}"
        );
    }
    let pretty = captures().pretty.text();
    let pretty_issued: Vec<&str> = pretty
        .lines()
        .filter(|l| l.contains("issued token"))
        .collect();
    assert!(
        pretty_issued.len() >= 3,
        "the pretty token log lines are missing"
    );
    for line in pretty_issued {
        assert!(
            line.contains("request{request_id="),
            "a request's pretty log line without its request id: {line}"
        );
    }
}

#[tokio::test]
async fn a_500_logs_the_request_id_its_body_names_and_nothing_secret() {
    // Arrange: a server on a database file whose tables then disappear behind its back.
    let _ = captures();
    let path =
        std::env::temp_dir().join(format!("ledgerport-never-log-{}.db", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}", path.display());
    let clock = Arc::new(ledgerport_core::clock::ManualClock::new(
        common::START.parse().expect("start"),
    ));
    let store = ledgerport_store::sqlite::SqliteStore::open(&url, clock.clone())
        .await
        .expect("store");
    let app = TestApp::start_on(
        Arc::new(store),
        clock,
        ServerConfig {
            close_interval: None,
            ..ServerConfig::default()
        },
    )
    .await;
    let w = world(&app).await;
    let keys = app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant1))
        .await;
    let token = app.miami_token(&keys).await;
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("connect");
    sqlx::raw_sql(
        "PRAGMA foreign_keys = OFF; DROP TABLE ledger_units; DROP TABLE grants; \
         DROP TABLE entries; DROP TABLE ledgers;",
    )
    .execute(&mut conn)
    .await
    .expect("drop");

    // Act: no X-Request-Id, so the server makes the id up.
    let res = app
        .get(
            "/report/v2/ledgers/200/funds/dates/2024-04-04?includeGDPRSensitiveData=true",
            Some(&token),
            &[("Cookie", "session=another-cookie-never-to-be-logged")],
        )
        .await;

    // Assert: the body's contextId is the id of the request's log lines, the internal error
    // among them; and no secret of the request is logged.
    assert_eq!(res.status(), 500);
    let header_id = res.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let body: Value = res.json().await.expect("json");
    let context_id = body["contextId"].as_str().expect("contextId").to_owned();
    assert_eq!(context_id, header_id);
    let lines = json_lines_of_request(&context_id);
    let error = lines
        .iter()
        .find(|l| l["fields"]["message"] == "internal error")
        .unwrap_or_else(|| panic!("no internal error logged under {context_id}: {lines:?}"));
    assert_eq!(error["level"], "ERROR");
    assert_eq!(error["fields"]["context_id"], context_id.as_str());
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "request done" && l["fields"]["status"] == 500),
        "no 500 'request done' under {context_id}"
    );
    let mut secrets = key_secrets("merchant-level keys'", &keys);
    secrets.extend(jwt_secrets("the token", &token));
    secrets.push((
        "a cookie".into(),
        "another-cookie-never-to-be-logged".into(),
    ));
    assert_never_logged(&secrets);
    drop(app);
    for suffix in ledgerport_store::sqlite::access_log::FILE_SUFFIXES {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
