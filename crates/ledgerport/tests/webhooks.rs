//! Webhooks end to end: real `ledgerport serve` processes deliver to a receiver on loopback
//! (`fixtures/webhook_receiver.py`, run with Debian's /usr/bin/python3), which checks every
//! signature with Python's own `hmac`. On PostgreSQL when `DATABASE_URL` names it, else on a
//! SQLite file the test and the servers share.
//!
//! The world: merchant 987654321 with units 123455 and 123456 on ledgers 302321 and 302322,
//! created five days ago (so their past dates close as soon as a server starts), both granted to
//! the approved accounting partner Books AS, which has accounting keys.

mod tls;

use ledgerport_core::clock::SystemClock;
use ledgerport_core::ids::LedgerId;
use ledgerport_core::world::{GrantScope, KeyKind, PartnerState, RowId};
use ledgerport_store::{Actor, DeliveryState, NewLedger, Store};
use ledgerport_testkit::WorldBuilder;
use ledgerport_testkit::testing::{TestDatabase, postgres_from_env};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const A: &str = "302321";
const B: &str = "302322";

fn by() -> Actor {
    Actor::new("webhooks-test")
}

/// A child process killed (SIGKILL) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where the test's database lives: a PostgreSQL database or a SQLite file.
struct Db {
    url: String,
    _pg: Option<TestDatabase>,
    _dir: Option<TempDir>,
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "ledgerport-{name}-{}-{}",
            std::process::id(),
            uuid_ish()
        ));
        std::fs::create_dir_all(&dir).expect("make a temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn uuid_ish() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

async fn database() -> Db {
    if postgres_from_env().is_some() {
        let pg = TestDatabase::create().await;
        Db {
            url: pg.url.clone(),
            _pg: Some(pg),
            _dir: None,
        }
    } else {
        let dir = TempDir::new("webhooks-db");
        Db {
            url: format!("sqlite://{}", dir.0.join("ledgerport.db").display()),
            _pg: None,
            _dir: Some(dir),
        }
    }
}

/// The receiver, in its own directory (see the script).
struct Receiver {
    dir: TempDir,
    port: u16,
    _proc: Proc,
}

impl Receiver {
    async fn start() -> Receiver {
        Receiver::start_with(None).await
    }

    /// With `tls`, the receiver speaks HTTPS with the test CA's certificate for 127.0.0.1.
    async fn start_with(tls: Option<&tls::TestCa>) -> Receiver {
        let dir = TempDir::new("webhooks-receiver");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhook_receiver.py");
        let mut command = Command::new("/usr/bin/python3");
        command.arg(&script).arg(&dir.0);
        if let Some(ca) = tls {
            command.arg(ca.cert()).arg(ca.key());
        }
        let proc = Proc(
            command
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start the receiver with /usr/bin/python3"),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(dir.0.join("port"))
                && let Ok(p) = p.trim().parse()
            {
                break p;
            }
            assert!(Instant::now() < deadline, "the receiver did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Receiver {
            dir,
            port,
            _proc: proc,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn set(&self, name: &str, value: Option<&str>) {
        let path = self.dir.0.join(name);
        match value {
            Some(v) => std::fs::write(path, v).expect("write a receiver switch"),
            None => {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    fn secrets(&self, secrets: &BTreeMap<String, Vec<String>>) {
        let text = serde_json::to_string(secrets).expect("json");
        let tmp = self.dir.0.join("secrets.tmp");
        std::fs::write(&tmp, text).expect("write secrets");
        std::fs::rename(tmp, self.dir.0.join("secrets.json")).expect("move secrets");
    }

    /// Every request so far, in arrival order.
    fn log(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.0.join("log.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a receiver log line"))
            .collect()
    }
}

/// `ledgerport serve` on `url` with webhooks allowed to loopback, quick retries and a short
/// attempt timeout; waits for `/healthz`.
async fn serve(url: &str, http: &reqwest::Client) -> (Proc, String) {
    serve_with(url, http, &[]).await
}

/// `serve` with further settings in its environment.
async fn serve_with(url: &str, http: &reqwest::Client, env: &[(&str, &str)]) -> (Proc, String) {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        probe.local_addr().expect("addr").port()
    };
    let child = Command::new(env!("CARGO_BIN_EXE_ledgerport"))
        .env("LEDGERPORT_DATABASE_URL", url)
        .env("LEDGERPORT_LISTEN", format!("127.0.0.1:{port}"))
        .env("LEDGERPORT_LOG", "warn")
        .env("LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY", KEK)
        .env("LEDGERPORT_METRICS_LISTEN", "off")
        .env("LEDGERPORT_CLOSE_INTERVAL", "1")
        .env("LEDGERPORT_WEBHOOKS_ALLOWED_NETWORKS", "127.0.0.1/32")
        .env("LEDGERPORT_WEBHOOKS_FIRST_RETRY", "1")
        .env("LEDGERPORT_WEBHOOKS_TIMEOUT", "2")
        .env("LEDGERPORT_WEBHOOKS_POLL_INTERVAL_MS", "100")
        .envs(env.iter().copied())
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start serve");
    let proc = Proc(child);
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await
            && r.status() == 200
        {
            return (proc, base);
        }
        assert!(Instant::now() < deadline, "serve on {port} did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct World {
    store: Arc<dyn Store>,
    partner: RowId,
    accounting: (String, String),
}

async fn world(url: &str) -> World {
    let store = ledgerport_store::open(url, Arc::new(SystemClock))
        .await
        .expect("open store");
    let built = WorldBuilder::new()
        .by("webhooks-test")
        .merchant("987654321", "ACME AS")
        .api_unit("123455")
        .api_unit("123456")
        .partner("Books AS")
        .partner_keys("accounting", KeyKind::Accounting)
        .build(store.as_ref())
        .await
        .expect("world");
    let merchant = built.merchant("987654321");
    let partner = built.partner("Books AS");
    let five_days_ago = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_hours(5 * 24))
        .expect("a time");
    for (id, unit) in [(A, "123455"), (B, "123456")] {
        store
            .create_ledger(
                &by(),
                NewLedger {
                    ledger_id: LedgerId::parse("ledger", id).expect("id"),
                    currency: ledgerport_core::ids::Currency::NOK,
                    payout_account: ledgerport_core::ids::BankAccount::parse(
                        "account",
                        "BBAN:NO",
                        "86011117947",
                    )
                    .expect("account"),
                    owner_merchant_id: merchant,
                    settles_for: vec![ledgerport_core::ids::Msn::parse("msn", unit).expect("msn")],
                    time_zone: "Europe/Oslo".into(),
                    cutoff: jiff::civil::time(0, 0, 0, 0),
                    payout_frequency: ledgerport_core::world::PayoutFrequency::Daily,
                    settlement_mode: ledgerport_core::world::SettlementMode::Net,
                    fee_plan: ledgerport_core::world::FeePlan {
                        basis_points: 100,
                        fixed_minor: 0,
                    },
                    page_size: 1000,
                    created_at: Some(five_days_ago),
                },
            )
            .await
            .expect("ledger");
        store
            .create_grant(&by(), partner, &lid(id), &GrantScope::EVERYTHING)
            .await
            .expect("grant");
    }
    let acc = built.keys("accounting");
    World {
        store,
        partner,
        accounting: (acc.client_id.clone(), acc.secret.clone()),
    }
}

fn lid(id: &str) -> LedgerId {
    LedgerId::parse("ledger", id).expect("ledger id")
}

async fn token(
    http: &reqwest::Client,
    base: &str,
    (client_id, secret): &(String, String),
) -> String {
    let res = http
        .post(format!("{base}/miami/v1/token"))
        .basic_auth(client_id, Some(secret))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("token request");
    assert_eq!(res.status(), 200, "token");
    let body: Value = res.json().await.expect("json");
    body["access_token"].as_str().expect("token").to_owned()
}

/// Registers an endpoint with the admin command (`owner` is `--merchant ORG` or `--partner
/// ID`); returns (id, secret).
fn admin_endpoint(db_url: &str, owner: [&str; 2], url: &str) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ledgerport"))
        .env("LEDGERPORT_DATABASE_URL", db_url)
        .env("LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY", KEK)
        .env("LEDGERPORT_WEBHOOKS_ALLOWED_NETWORKS", "127.0.0.1/32")
        .args([
            "admin", "--json", "webhooks", "create", owner[0], owner[1], "--url", url,
        ])
        .output()
        .expect("run admin");
    assert!(
        out.status.success(),
        "admin webhooks create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: Value = serde_json::from_slice(&out.stdout).expect("json");
    (
        body["id"].as_str().expect("id").to_owned(),
        body["secret"].as_str().expect("secret").to_owned(),
    )
}

/// Waits until `done` holds of the receiver's log, or fails saying `what`.
async fn until(receiver: &Receiver, secs: u64, what: &str, done: impl Fn(&[Value]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let log = receiver.log();
        if done(&log) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {secs}s; the receiver saw {} requests",
            log.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The webhook-ids answered 200 at `path`.
fn delivered(log: &[Value], path: &str) -> BTreeSet<String> {
    log.iter()
        .filter(|l| l["path"] == path && l["status"] == 200)
        .map(|l| l["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The webhook-ids each endpoint must get of the events so far: `msg_<event>_<endpoint>`.
async fn expected(store: &dyn Store, endpoint_uid: &str) -> BTreeSet<String> {
    let e = store
        .webhook_endpoint(endpoint_uid)
        .await
        .expect("read")
        .expect("endpoint");
    store
        .webhook_deliveries(e.id, None, 1000)
        .await
        .expect("deliveries")
        .iter()
        .filter(|d| d.state != DeliveryState::Withheld)
        .map(|d| d.message_id())
        .collect()
}

/// The merchant's secret as the receiver holds it.
fn m_secret_again(receiver: &Receiver) -> String {
    let text = std::fs::read_to_string(receiver.dir.0.join("secrets.json")).expect("secrets");
    let v: Value = serde_json::from_str(&text).expect("json");
    v["/merchant"][0].as_str().expect("secret").to_owned()
}

/// The extension API: the partner lists its endpoint, registers another (its secret shown
/// once), is refused a loopback address the operator has not allowed, deletes the new one, and
/// reads the delivery log; another organisation's endpoint is not found.
async fn api_manages_the_partners_endpoints(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    p_id: &str,
    receiver: &Receiver,
) {
    let list: Value = http
        .get(format!("{base}/ledgerport/v1/webhooks"))
        .bearer_auth(token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let ids: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ids, vec![p_id], "the partner's own endpoint only");
    assert!(list["items"][0].get("secret").is_none(), "never the secret");
    let res = http
        .post(format!("{base}/ledgerport/v1/webhooks"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "url": receiver.url("/extra"), "eventTypes": ["partner.suspended"] }))
        .send()
        .await
        .expect("register");
    assert_eq!(res.status(), 201, "registered");
    let created: Value = res.json().await.expect("json");
    assert!(
        created["secret"]
            .as_str()
            .expect("secret")
            .starts_with("whsec_")
    );
    let extra = created["id"].as_str().expect("id").to_owned();
    for (body, what) in [
        (
            serde_json::json!({ "url": "http://127.0.0.2:9/x" }),
            "loopback not allowed",
        ),
        (
            serde_json::json!({ "url": "http://169.254.169.254/x" }),
            "link-local",
        ),
        (serde_json::json!({ "url": "http://10.0.0.1/x" }), "private"),
        (
            serde_json::json!({ "url": receiver.url("/x"), "eventTypes": ["nope"] }),
            "unknown type",
        ),
    ] {
        let res = http
            .post(format!("{base}/ledgerport/v1/webhooks"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("register");
        assert_eq!(res.status(), 400, "{what}");
    }
    let del = http
        .delete(format!("{base}/ledgerport/v1/webhooks/{extra}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("delete");
    assert_eq!(del.status(), 204);
    let gone = http
        .delete(format!("{base}/ledgerport/v1/webhooks/{extra}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("delete again");
    assert_eq!(gone.status(), 404);
    let log = http
        .get(format!("{base}/ledgerport/v1/webhooks/{p_id}/deliveries"))
        .bearer_auth(token)
        .send()
        .await
        .expect("deliveries");
    assert_eq!(log.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_signed_after_an_outage_and_nothing_after_the_grant_is_removed() {
    let db = database().await;
    let w = world(&db.url).await;
    let http = ledgerport_server::http::client().expect("an HTTP client");
    let receiver = Receiver::start().await;
    // The receiver is down from the start.
    receiver.set("outage", Some("1"));
    // The dates close as soon as a server runs: the endpoints are registered before.
    let (m_id, m_secret) = admin_endpoint(
        &db.url,
        ["--merchant", "987654321"],
        &receiver.url("/merchant"),
    );
    let partner = w.partner.to_string();
    let (p_id, p_secret) =
        admin_endpoint(&db.url, ["--partner", &partner], &receiver.url("/partner"));
    receiver.secrets(&BTreeMap::from([
        ("/merchant".to_owned(), vec![m_secret]),
        ("/partner".to_owned(), vec![p_secret]),
    ]));

    let (server, base) = serve(&db.url, &http).await;
    let t = token(&http, &base, &w.accounting).await;
    api_manages_the_partners_endpoints(&http, &base, &t, &p_id, &receiver).await;

    // The server closes the past dates of both ledgers; every attempt fails for a while.
    until(&receiver, 30, "attempts during the outage", |log| {
        log.iter().filter(|l| l["status"] == 500).count() >= 4
    })
    .await;
    receiver.set("outage", None);
    // Both ledgers' closings are written (the closing task does one ledger after the other).
    let deadline = Instant::now() + Duration::from_secs(30);
    let closings = loop {
        let n = w
            .store
            .domain_events(None, 0, 1000)
            .await
            .expect("events")
            .iter()
            .filter(|e| e.event_type == "ledger.date.closed")
            .count();
        if n >= 8 || Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        closings >= 8,
        "both ledgers closed four or more dates: {closings}"
    );
    let (m_want, p_want) = (
        expected(w.store.as_ref(), &m_id).await,
        expected(w.store.as_ref(), &p_id).await,
    );
    assert!(m_want.len() >= closings && p_want.len() >= closings);
    until(&receiver, 60, "every event after the outage", |log| {
        delivered(log, "/merchant").is_superset(&m_want)
            && delivered(log, "/partner").is_superset(&p_want)
    })
    .await;
    let log = receiver.log();
    for line in &log {
        assert_eq!(
            line["verified"], true,
            "signature checked by Python: {line}"
        );
    }
    // A date-closed event carries its date's proofs: the proof endpoint's very JSON.
    let mut proved = 0;
    for line in log
        .iter()
        .filter(|l| l["path"] == "/partner" && l["type"] == "ledger.date.closed")
    {
        let data = &line["data"];
        for topic in ["funds", "fees"] {
            let served = http
                .get(format!(
                    "{base}/ledgerport/v1/ledgers/{}/{topic}/dates/{}/proof",
                    data["ledgerId"].as_str().expect("ledgerId"),
                    data["ledgerDate"].as_str().expect("ledgerDate"),
                ))
                .bearer_auth(&t)
                .send()
                .await
                .expect("proof");
            if served.status() == 200 {
                let served: Value = served.json().await.expect("proof json");
                assert_eq!(data["proofs"][topic], served, "{line}");
                proved += 1;
            } else {
                assert!(
                    data["proofs"][topic].is_null(),
                    "no proof, none sent: {line}"
                );
            }
        }
    }
    assert!(proved >= 4, "date-closed events carried proofs: {proved}");
    // A failed attempt and its successful retry carry the same webhook-id.
    let failed: BTreeSet<String> = log
        .iter()
        .filter(|l| l["status"] == 500)
        .map(|l| l["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(!failed.is_empty());
    let ok = delivered(&log, "/merchant")
        .union(&delivered(&log, "/partner"))
        .cloned()
        .collect::<BTreeSet<_>>();
    assert!(
        failed.is_subset(&ok),
        "every failed id was delivered later with the same id"
    );
    // Per ledger, the events carry their sequence numbers.
    let seqs: BTreeSet<i64> = log
        .iter()
        .filter(|l| l["path"] == "/merchant" && l["data"]["ledgerId"] == A)
        .filter_map(|l| l["data"]["ledgerSequence"].as_i64())
        .collect();
    assert!(seqs.len() >= 4, "ledger {A}'s events numbered: {seqs:?}");

    // The partner rotates its secret: from now on the receiver knows only the new one, and
    // each delivery carries both signatures during the overlap.
    let rotated = http
        .post(format!(
            "{base}/ledgerport/v1/webhooks/{p_id}/rotate-secret"
        ))
        .bearer_auth(&t)
        .json(&serde_json::json!({ "overlapHours": 1 }))
        .send()
        .await
        .expect("rotate");
    assert_eq!(rotated.status(), 200);
    let rotated: Value = rotated.json().await.expect("json");
    let new_secret = rotated["secret"].as_str().expect("secret").to_owned();
    receiver.secrets(&BTreeMap::from([
        ("/merchant".to_owned(), vec![m_secret_again(&receiver)]),
        ("/partner".to_owned(), vec![new_secret]),
    ]));

    // Now the receiver is down again, ledger B's grant changes (a delivery queued for the
    // partner) and is removed: the partner must hear nothing more about B, the retry included.
    receiver.set("outage", Some("1"));
    let seen_before = receiver.log().len();
    w.store
        .set_grant_scope(
            &by(),
            w.partner,
            &lid(B),
            &GrantScope {
                personal_data: false,
                ..GrantScope::EVERYTHING
            },
        )
        .await
        .expect("change the grant");
    until(
        &receiver,
        20,
        "the change attempted during the outage",
        |log| {
            log[seen_before..]
                .iter()
                .any(|l| l["path"] == "/partner" && l["type"] == "grant.changed")
        },
    )
    .await;
    assert!(
        w.store
            .remove_grant(&by(), w.partner, &lid(B))
            .await
            .expect("remove")
    );
    let cut = receiver.log().len();
    // Ledger A's grant changes too: the partner still hears of A.
    w.store
        .set_grant_scope(
            &by(),
            w.partner,
            &lid(A),
            &GrantScope {
                personal_data: false,
                ..GrantScope::EVERYTHING
            },
        )
        .await
        .expect("change A");
    receiver.set("outage", None);
    until(&receiver, 30, "the merchant hears of the removal", |log| {
        log[cut..]
            .iter()
            .any(|l| l["path"] == "/merchant" && l["type"] == "grant.removed" && l["status"] == 200)
    })
    .await;
    until(
        &receiver,
        30,
        "the partner hears of ledger A's change",
        |log| {
            log[cut..].iter().any(|l| {
                l["path"] == "/partner"
                    && l["type"] == "grant.changed"
                    && l["data"]["ledgerId"] == A
                    && l["status"] == 200
            })
        },
    )
    .await;
    // Give a stray retry time to show.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after: Vec<Value> = receiver.log()[cut..].to_vec();
    let about_b: Vec<&Value> = after
        .iter()
        .filter(|l| l["path"] == "/partner" && l["data"]["ledgerId"] == B)
        .collect();
    assert!(
        about_b.is_empty(),
        "the partner got something about {B} after its grant was removed: {about_b:?}"
    );
    let p = w
        .store
        .webhook_endpoint(&p_id)
        .await
        .expect("read")
        .expect("endpoint");
    let withheld = w
        .store
        .webhook_deliveries(p.id, None, 1000)
        .await
        .expect("deliveries")
        .into_iter()
        .filter(|d| d.state == DeliveryState::Withheld)
        .count();
    assert!(
        withheld >= 2,
        "the queued change and the removal are withheld: {withheld}"
    );
    for line in receiver.log() {
        assert_eq!(
            line["verified"], true,
            "signature checked by Python: {line}"
        );
    }
    let two_signatures = receiver.log()[cut..]
        .iter()
        .filter(|l| l["path"] == "/partner")
        .all(|l| l["signatures"] == 2);
    assert!(two_signatures, "both secrets sign during the overlap");
    // A suspended partner's own event still reaches it.
    w.store
        .set_partner_state(&by(), w.partner, PartnerState::Suspended)
        .await
        .expect("suspend");
    until(
        &receiver,
        30,
        "the partner hears of its suspension",
        |log| {
            log.iter().any(|l| {
                l["path"] == "/partner" && l["type"] == "partner.suspended" && l["status"] == 200
            })
        },
    )
    .await;
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_during_a_delivery_loses_nothing_the_retry_has_the_same_webhook_id() {
    let db = database().await;
    let _w = world(&db.url).await;
    let http = ledgerport_server::http::client().expect("an HTTP client");
    let receiver = Receiver::start().await;
    // The receiver takes its time: the server is killed while it waits for the answer.
    receiver.set("slow", Some("1.5"));
    let (m_id, m_secret) = admin_endpoint(
        &db.url,
        ["--merchant", "987654321"],
        &receiver.url("/merchant"),
    );
    receiver.secrets(&BTreeMap::from([("/merchant".to_owned(), vec![m_secret])]));
    let (mut server, _) = serve(&db.url, &http).await;
    until(&receiver, 30, "a first delivery under way", |log| {
        !log.is_empty()
    })
    .await;
    // SIGKILL: no chance to record anything.
    server.0.kill().expect("kill -9 the server");
    server.0.wait().expect("reap");
    let interrupted: BTreeSet<String> = receiver
        .log()
        .iter()
        .map(|l| l["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    receiver.set("slow", None);
    let store = ledgerport_store::open(&db.url, Arc::new(SystemClock))
        .await
        .expect("open");
    let want = expected(store.as_ref(), &m_id).await;
    assert!(interrupted.is_subset(&want));
    let (_server, _) = serve(&db.url, &http).await;
    // The interrupted deliveries' claims lapse (twice the 2 s timeout and 5 s) and they are
    // attempted again with the same ids; every other event arrives too.
    until(&receiver, 60, "every event after the restart", |log| {
        let ok: BTreeSet<String> = log
            .iter()
            .skip(interrupted.len())
            .filter(|l| l["status"] == 200)
            .map(|l| l["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        ok.is_superset(&want)
    })
    .await;
    let log = receiver.log();
    for id in &interrupted {
        assert!(
            log.iter().filter(|l| l["id"] == id.as_str()).count() >= 2,
            "{id} was attempted again after the kill"
        );
    }
    for line in &log {
        assert_eq!(line["verified"], true, "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_endpoint_gets_its_deliveries_once_its_ca_is_trusted() {
    let db = database().await;
    let _w = world(&db.url).await;
    let http = ledgerport_server::http::client().expect("an HTTP client");
    let ca = tls::TestCa::new("webhooks");
    let receiver = Receiver::start_with(Some(&ca)).await;
    let url = format!("https://127.0.0.1:{}/merchant", receiver.port);
    let (m_id, m_secret) = admin_endpoint(&db.url, ["--merchant", "987654321"], &url);
    receiver.secrets(&BTreeMap::from([("/merchant".to_owned(), vec![m_secret])]));
    let store = ledgerport_store::open(&db.url, Arc::new(SystemClock))
        .await
        .expect("open");
    let endpoint = store
        .webhook_endpoint(&m_id)
        .await
        .expect("read")
        .expect("endpoint");

    // The system's roots alone do not know the test CA: every attempt fails on the certificate
    // and nothing reaches the receiver.
    let (server, _) = serve(&db.url, &http).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        let deliveries = store
            .webhook_deliveries(endpoint.id, None, 1000)
            .await
            .expect("deliveries");
        if let Some(e) = deliveries.iter().find_map(|d| d.last_error.clone()) {
            break e;
        }
        assert!(Instant::now() < deadline, "no attempt within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    drop(server);
    assert!(refused.contains("certificate"), "{refused}");
    assert!(receiver.log().is_empty(), "{:?}", receiver.log());

    // Trusting the CA (webhooks.extra_ca_file), every event arrives, signed.
    let ca_file = ca.ca().display().to_string();
    let (_server, _) = serve_with(
        &db.url,
        &http,
        &[("LEDGERPORT_WEBHOOKS_EXTRA_CA_FILE", ca_file.as_str())],
    )
    .await;
    let want = expected(store.as_ref(), &m_id).await;
    assert!(!want.is_empty(), "the closed dates made deliveries");
    until(&receiver, 60, "every event over https", |log| {
        delivered(log, "/merchant").is_superset(&want)
    })
    .await;
    for line in receiver.log() {
        assert_eq!(line["verified"], true, "{line}");
    }
}
