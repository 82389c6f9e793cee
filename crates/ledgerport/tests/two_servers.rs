//! Several servers on one database: two real `ledgerport serve` processes on the same PostgreSQL
//! database (a fresh one on the server `DATABASE_URL` names; without it these tests are ignored,
//! and fail saying so when run anyway).
//!
//! The world: merchant 987654321 with api unit 123455 on ledger 302321 (Europe/Oslo, midnight
//! cutoff, daily net payouts, 1 % capture fee), an approved accounting partner granted that
//! ledger, its keys, and the operator's service key.

use ledgerport_core::clock::SystemClock;
use ledgerport_core::ids::LedgerId;
use ledgerport_core::world::{KeyKind, RowId};
use ledgerport_server::credentials::{hash_secret, new_secret};
use ledgerport_store::{Actor, Store};
use ledgerport_testkit::WorldBuilder;
use ledgerport_testkit::testing::TestDatabase;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LEDGER: &str = "302321";
const KEK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn by() -> Actor {
    Actor::new("two-servers-test")
}

/// A `serve` process, killed when the test ends.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `ledgerport serve` on `url` at a free port and waits until it answers `/healthz`.
async fn serve(url: &str, http: &reqwest::Client) -> Server {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        probe.local_addr().expect("addr").port()
    };
    let child = Command::new(env!("CARGO_BIN_EXE_ledgerport"))
        .env("LEDGERPORT_DATABASE_URL", url)
        .env("LEDGERPORT_LISTEN", format!("127.0.0.1:{port}"))
        .env("LEDGERPORT_LOG", "warn")
        // Both servers read the signing keys with the same key-encryption key.
        .env("LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY", KEK)
        .env("LEDGERPORT_METRICS_LISTEN", "off")
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start serve");
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    // A process has no readiness signal but its port: poll it (the start migrates and loads keys).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{}/healthz", server.base)).send().await
            && r.status() == 200
        {
            return server;
        }
        assert!(Instant::now() < deadline, "serve on {port} did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct World {
    db: TestDatabase,
    store: Arc<dyn Store>,
    partner: RowId,
    accounting: (RowId, String, String),
    service: (String, String),
}

async fn world() -> World {
    let db = TestDatabase::create().await;
    let store = ledgerport_store::open(&db.url, Arc::new(SystemClock))
        .await
        .expect("open store");
    let built = WorldBuilder::new()
        .by("two-servers-test")
        .merchant("987654321", "ACME AS")
        .api_unit("123455")
        .ledger(LEDGER, &["123455"])
        .fees(100, 0)
        .partner("Books AS")
        .grant(LEDGER)
        .partner_keys("accounting", KeyKind::Accounting)
        .service_keys("service")
        .build(store.as_ref())
        .await
        .expect("world");
    let (acc, svc) = (built.keys("accounting"), built.keys("service"));
    World {
        partner: built.partner("Books AS"),
        accounting: (acc.key_id, acc.client_id.clone(), acc.secret.clone()),
        service: (svc.client_id.clone(), svc.secret.clone()),
        db,
        store,
    }
}

async fn token(http: &reqwest::Client, server: &Server, client_id: &str, secret: &str) -> String {
    let res = http
        .post(format!("{}/miami/v1/token", server.base))
        .basic_auth(client_id, Some(secret))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("token request");
    assert_eq!(res.status(), 200, "token from {}", server.base);
    let body: serde_json::Value = res.json().await.expect("json");
    body["access_token"].as_str().expect("token").to_owned()
}

async fn feed_status(http: &reqwest::Client, server: &Server, token: &str) -> u16 {
    http.get(format!(
        "{}/report/v2/ledgers/{LEDGER}/funds/feed",
        server.base
    ))
    .bearer_auth(token)
    .send()
    .await
    .expect("feed request")
    .status()
    .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DATABASE_URL naming PostgreSQL"]
async fn a_token_from_one_server_is_accepted_by_the_other_and_changes_through_either_apply_at_once()
{
    // Arrange: two servers started at the same moment on one empty key table.
    let w = world().await;
    let http = ledgerport_server::http::client_builder()
        .expect("an HTTP client builder")
        .no_proxy()
        .build()
        .expect("client");
    let (a, b) = tokio::join!(serve(&w.db.url, &http), serve(&w.db.url, &http));
    let (_, client_id, secret) = &w.accounting;

    // Act + Assert: tokens from each are good at both.
    let from_a = token(&http, &a, client_id, secret).await;
    let from_b = token(&http, &b, client_id, secret).await;
    for (t, server) in [(&from_a, &b), (&from_b, &a), (&from_a, &a), (&from_b, &b)] {
        assert_eq!(
            feed_status(&http, server, t).await,
            200,
            "at {}",
            server.base
        );
    }
    let signing = w.store.signing_keys().await.expect("signing keys");
    assert!(
        !signing.is_empty() && signing.len() <= 2,
        "each start adds at most one key: {signing:?}"
    );

    // Removing the grant (as `admin grant remove` does, from a third process) is refused by both
    // servers on their very next request (404, as for any ledger out of the caller's reach).
    let removed = w
        .store
        .remove_grant(&by(), w.partner, &LedgerId::parse("l", LEDGER).expect("id"))
        .await
        .expect("remove grant");
    assert!(removed);
    let started = Instant::now();
    assert_eq!(feed_status(&http, &a, &from_b).await, 404);
    assert_eq!(feed_status(&http, &b, &from_a).await, 404);
    assert!(started.elapsed() < Duration::from_secs(1));

    // Regenerating the secret ends every token of the old generation, at both servers.
    w.store
        .create_grant(
            &by(),
            w.partner,
            &LedgerId::parse("l", LEDGER).expect("id"),
            &ledgerport_core::world::GrantScope::EVERYTHING,
        )
        .await
        .expect("grant again");
    assert_eq!(feed_status(&http, &a, &from_b).await, 200);
    let fresh = new_secret();
    w.store
        .replace_secret(&by(), w.accounting.0, hash_secret(fresh.reveal()))
        .await
        .expect("regenerate");
    let started = Instant::now();
    assert_eq!(feed_status(&http, &a, &from_a).await, 401);
    assert_eq!(feed_status(&http, &b, &from_a).await, 401);
    assert_eq!(feed_status(&http, &a, &from_b).await, 401);
    assert!(started.elapsed() < Duration::from_secs(1));
    let new_token = token(&http, &b, client_id, fresh.reveal()).await;
    assert_eq!(feed_status(&http, &a, &new_token).await, 200);
}

/// A batch of `n` captures of 100.00 NOK numbered from `first`, a second apart from ten minutes
/// ago (the ledger's first date is today: earlier dates are closed).
fn captures(first: usize, n: usize, tag: &str) -> serde_json::Value {
    let start = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(10);
    let events: Vec<serde_json::Value> = (first..first + n)
        .map(|i| {
            serde_json::json!({
                "eventId": format!("{tag}-{i}"), "type": "capture", "msn": "123455",
                "pspReference": format!("{tag}-p{i}"), "reference": format!("order-{tag}-{i}"),
                "amount": 10_000, "currency": "NOK",
                "time": ledgerport_core::entry::wire_time(start + jiff::SignedDuration::from_secs(i as i64)),
            })
        })
        .collect();
    serde_json::json!({ "events": events })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DATABASE_URL naming PostgreSQL"]
async fn ingestion_and_closing_on_two_servers_at_once_keep_every_chain_intact() {
    // Arrange
    let w = world().await;
    let http = ledgerport_server::http::client_builder()
        .expect("an HTTP client builder")
        .no_proxy()
        .build()
        .expect("client");
    let (a, b) = tokio::join!(serve(&w.db.url, &http), serve(&w.db.url, &http));
    let (svc_id, svc_secret) = &w.service;

    // Act: both servers take batches for the same ledger at the same time, and the same
    // batch is posted to both at once (its events must be applied once).
    let post = |server: &Server, body: serde_json::Value| {
        let req = http
            .post(format!("{}/ingest/v1/events", server.base))
            .basic_auth(svc_id, Some(svc_secret))
            .json(&body);
        async move {
            let res = req.send().await.expect("ingest request");
            assert_eq!(res.status(), 200);
        }
    };
    const BATCHES: usize = 8;
    const PER_BATCH: usize = 50;
    let mut jobs = Vec::new();
    for i in 0..BATCHES {
        jobs.push(post(&a, captures(i * PER_BATCH, PER_BATCH, "a")));
        jobs.push(post(&b, captures(i * PER_BATCH, PER_BATCH, "b")));
        jobs.push(post(&a, captures(i * 10, 10, "both")));
        jobs.push(post(&b, captures(i * 10, 10, "both")));
    }
    futures_join_all(jobs).await;

    // Assert: the chains verify, and every event was applied exactly once.
    let verify = Command::new(env!("CARGO_BIN_EXE_ledgerport"))
        .args(["--log", "warn", "--database-url", &w.db.url, "verify"])
        .output()
        .expect("run verify");
    assert!(
        verify.status.success(),
        "verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    // 8 x 50 of each server's own, and 80 distinct ids of the batches posted to both.
    let pool = sqlx::PgPool::connect(&w.db.url).await.expect("connect");
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .expect("count events");
    let captured: i64 =
        sqlx::query_scalar("SELECT count(*) FROM entries WHERE entry_type = 'capture'")
            .fetch_one(&pool)
            .await
            .expect("count entries");
    assert_eq!((events, captured), (880, 880));
    pool.close().await;
}

/// Awaits all futures concurrently (no extra dependency for `join_all`).
async fn futures_join_all<F: std::future::Future<Output = ()> + Send + 'static>(jobs: Vec<F>) {
    let handles: Vec<_> = jobs.into_iter().map(tokio::spawn).collect();
    for h in handles {
        h.await.expect("job");
    }
}
