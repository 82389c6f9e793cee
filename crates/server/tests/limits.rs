//! Rate limits (429 with `Retry-After`), the slow-down of repeated failed token requests, header
//! size limits and graceful shutdown.

mod common;

use common::{Keys, TestApp, msn, world};
use jiff::SignedDuration;
use ledgerport_core::world::{KeyKind, KeyOwner};
use ledgerport_server::{LimitsConfig, ServerConfig};
use serde_json::Value;
use std::time::{Duration, Instant};

fn config(limits: LimitsConfig) -> ServerConfig {
    ServerConfig {
        close_interval: None,
        limits,
        ..ServerConfig::default()
    }
}

async fn app_with(limits: LimitsConfig) -> TestApp {
    let app = TestApp::start_with(config(limits)).await;
    world(&app).await;
    app
}

async fn sales_unit_keys(app: &TestApp, m: &str) -> Keys {
    app.issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn(m)))
        .await
}

async fn standard(app: &TestApp, k: &Keys) -> reqwest::Response {
    app.standard_token_raw(&[
        ("client_id", &k.client_id),
        ("client_secret", &k.secret),
        (
            "Ocp-Apim-Subscription-Key",
            k.subscription_key.as_deref().unwrap_or(""),
        ),
    ])
    .await
}

async fn standard_wrong_secret(app: &TestApp, client_id: &str, k: &Keys) -> reqwest::Response {
    app.standard_token_raw(&[
        ("client_id", client_id),
        ("client_secret", "lpsec_wrong"),
        (
            "Ocp-Apim-Subscription-Key",
            k.subscription_key.as_deref().unwrap_or(""),
        ),
    ])
    .await
}

/// Checks a 429: `Retry-After` in whole seconds (returned), a problem body whose detail names
/// the limit.
async fn assert_429(res: reqwest::Response, detail_mentions: &str) -> u64 {
    assert_eq!(res.status(), 429);
    let retry_after: u64 = res
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("whole seconds");
    assert!(retry_after >= 1);
    assert_eq!(
        res.headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or("")),
        Some("application/problem+json")
    );
    assert!(res.headers().contains_key("x-request-id"));
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["status"], 429);
    assert_eq!(body["title"], "Too Many Requests");
    let detail = body["detail"].as_str().expect("detail");
    assert!(
        detail.contains(detail_mentions),
        "{detail:?} should mention {detail_mentions:?}"
    );
    retry_after
}

#[tokio::test]
async fn load_above_the_token_limit_gets_429_with_retry_after() {
    let app = app_with(LimitsConfig {
        token_per_second: 1.0,
        token_burst: 3,
        ..LimitsConfig::default()
    })
    .await;
    let k = sales_unit_keys(&app, "123455").await;
    for _ in 0..3 {
        assert_eq!(standard(&app, &k).await.status(), 200);
    }
    let retry = assert_429(standard(&app, &k).await, "client_id").await;
    assert_eq!(retry, 1);
    // Refused requests take nothing: still refused, still 1 s.
    assert_eq!(assert_429(standard(&app, &k).await, "client_id").await, 1);

    // The miami endpoint is limited by the Basic user.
    let acc = app
        .issue(
            KeyKind::Accounting,
            KeyOwner::Partner(
                common::partner(
                    app.store.as_ref(),
                    "P",
                    ledgerport_core::world::PartnerKind::Accounting,
                    true,
                )
                .await,
            ),
        )
        .await;
    for _ in 0..3 {
        let res = app
            .miami_token_raw(&acc.client_id, &acc.secret, "grant_type=client_credentials")
            .await;
        assert_eq!(res.status(), 200);
    }
    let res = app
        .miami_token_raw(&acc.client_id, &acc.secret, "grant_type=client_credentials")
        .await;
    assert_429(res, "client_id").await;
}

#[tokio::test]
async fn the_token_limit_comes_before_the_secret_check() {
    let app = app_with(LimitsConfig {
        token_per_second: 1.0,
        token_burst: 2,
        failed_token_slowdown_after: 1000,
        ..LimitsConfig::default()
    })
    .await;
    let k = sales_unit_keys(&app, "123455").await;
    for _ in 0..2 {
        assert_eq!(
            standard_wrong_secret(&app, &k.client_id, &k).await.status(),
            400
        );
    }
    // A flood of guesses is refused before any secret is checked, the right one included.
    assert_429(
        standard_wrong_secret(&app, &k.client_id, &k).await,
        "client_id",
    )
    .await;
    assert_429(standard(&app, &k).await, "client_id").await;
}

#[tokio::test]
async fn traffic_at_the_configured_rate_is_never_refused() {
    let app = app_with(LimitsConfig {
        token_per_second: 2.0,
        token_burst: 2,
        report_per_second: 10.0,
        report_burst: 5,
        ..LimitsConfig::default()
    })
    .await;
    let k = sales_unit_keys(&app, "123455").await;
    let mut token = String::new();
    for _ in 0..40 {
        let res = standard(&app, &k).await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.expect("json");
        token = body["access_token"].as_str().expect("token").to_owned();
        app.clock.advance(SignedDuration::from_millis(500));
    }
    let sub = k.subscription_key.clone().expect("sub");
    for _ in 0..200 {
        let res = app
            .get(
                "/report/v2/ledgers/100/funds/feed",
                Some(&token),
                &[("Ocp-Apim-Subscription-Key", &sub)],
            )
            .await;
        assert_eq!(res.status(), 200);
        app.clock.advance(SignedDuration::from_millis(100));
    }
    // And bursts up to the burst size, once the bucket has refilled.
    app.clock.advance(SignedDuration::from_secs(1));
    for _ in 0..5 {
        let res = app
            .get(
                "/report/v2/ledgers/100/funds/feed",
                Some(&token),
                &[("Ocp-Apim-Subscription-Key", &sub)],
            )
            .await;
        assert_eq!(res.status(), 200);
    }
}

#[tokio::test]
async fn load_above_the_report_limit_gets_429_and_other_principals_are_unaffected() {
    let app = app_with(LimitsConfig {
        report_per_second: 1.0,
        report_burst: 4,
        ..LimitsConfig::default()
    })
    .await;
    let a = sales_unit_keys(&app, "123455").await;
    let b = sales_unit_keys(&app, "222222").await;
    let (ta, tb) = (app.standard_token(&a).await, app.standard_token(&b).await);
    let (sa, sb) = (
        a.subscription_key.clone().expect("sub"),
        b.subscription_key.clone().expect("sub"),
    );
    for _ in 0..4 {
        let res = app
            .get(
                "/settlement/v1/ledgers",
                Some(&ta),
                &[("Ocp-Apim-Subscription-Key", &sa)],
            )
            .await;
        assert_eq!(res.status(), 200);
    }
    let res = app
        .get(
            "/report/v2/ledgers/100/funds/feed",
            Some(&ta),
            &[("Ocp-Apim-Subscription-Key", &sa)],
        )
        .await;
    assert_eq!(assert_429(res, "Report API").await, 1);
    // Another principal has its own bucket.
    for _ in 0..4 {
        let res = app
            .get(
                "/settlement/v1/ledgers",
                Some(&tb),
                &[("Ocp-Apim-Subscription-Key", &sb)],
            )
            .await;
        assert_eq!(res.status(), 200);
    }
    // The refused request is in the access log under its key.
    let records = app
        .store
        .access_log(&ledgerport_store::AccessLogFilter {
            limit: 1000,
            ..ledgerport_store::AccessLogFilter::default()
        })
        .await
        .expect("access log");
    assert!(
        records
            .iter()
            .any(|r| r.rec.status == 429 && r.rec.key_id == Some(a.key_id)),
        "a 429 of key {} in the access log",
        a.key_id
    );
}

#[tokio::test]
async fn limits_are_per_client_id() {
    let app = app_with(LimitsConfig {
        token_per_second: 1.0,
        token_burst: 2,
        ..LimitsConfig::default()
    })
    .await;
    let a = sales_unit_keys(&app, "123455").await;
    let b = sales_unit_keys(&app, "654321").await;
    for _ in 0..2 {
        assert_eq!(standard(&app, &a).await.status(), 200);
    }
    assert_429(standard(&app, &a).await, "client_id").await;
    for _ in 0..2 {
        assert_eq!(standard(&app, &b).await.status(), 200);
    }
}

#[tokio::test]
async fn the_bucket_refills_as_the_clock_advances() {
    let app = app_with(LimitsConfig {
        token_per_second: 0.5,
        token_burst: 1,
        ..LimitsConfig::default()
    })
    .await;
    let k = sales_unit_keys(&app, "123455").await;
    assert_eq!(standard(&app, &k).await.status(), 200);
    assert_eq!(assert_429(standard(&app, &k).await, "client_id").await, 2);
    app.clock.advance(SignedDuration::from_secs(1));
    assert_eq!(assert_429(standard(&app, &k).await, "client_id").await, 1);
    app.clock.advance(SignedDuration::from_secs(1));
    assert_eq!(standard(&app, &k).await.status(), 200);
    assert_429(standard(&app, &k).await, "client_id").await;
}

#[tokio::test]
async fn disabled_limits_never_429() {
    let app = app_with(LimitsConfig {
        enabled: false,
        token_per_second: 0.001,
        token_burst: 1,
        report_per_second: 0.001,
        report_burst: 1,
        failed_token_slowdown_after: 1,
    })
    .await;
    let k = sales_unit_keys(&app, "123455").await;
    let mut token = String::new();
    for _ in 0..20 {
        let res = standard(&app, &k).await;
        assert_eq!(res.status(), 200);
        token = res.json::<Value>().await.expect("json")["access_token"]
            .as_str()
            .expect("token")
            .to_owned();
    }
    let sub = k.subscription_key.clone().expect("sub");
    for _ in 0..20 {
        let res = app
            .get(
                "/settlement/v1/ledgers",
                Some(&token),
                &[("Ocp-Apim-Subscription-Key", &sub)],
            )
            .await;
        assert_eq!(res.status(), 200);
    }
    // No slow-down either.
    let started = Instant::now();
    for _ in 0..10 {
        assert_eq!(
            standard_wrong_secret(&app, &k.client_id, &k).await.status(),
            400
        );
    }
    // With the limits on these would wait 100 ms + 200 ms + ... (over 10 s).
    assert!(started.elapsed() < Duration::from_secs(3));
}

async fn timed(res: impl std::future::Future<Output = reqwest::Response>) -> (u16, Duration) {
    let started = Instant::now();
    let r = res.await;
    let status = r.status().as_u16();
    let _ = r.bytes().await;
    (status, started.elapsed())
}

#[tokio::test]
async fn repeated_failures_slow_one_client_id_down_until_a_success() {
    let app = app_with(LimitsConfig {
        failed_token_slowdown_after: 3,
        ..LimitsConfig::default()
    })
    .await;
    let k = sales_unit_keys(&app, "123455").await;
    // Generous bounds: an unslowed answer is far under `fast` even on a loaded machine, and
    // each `fast` check stands where a slowed answer would take 800 ms or more.
    let fast = Duration::from_millis(400);
    // Three failures answered at once.
    for _ in 0..3 {
        let (status, took) = timed(standard_wrong_secret(&app, &k.client_id, &k)).await;
        assert_eq!(status, 400);
        assert!(took < fast, "{took:?}");
    }
    // Then each attempt waits: 100 ms, 200 ms, 400 ms, ...
    for wait in [100, 200, 400] {
        let (status, took) = timed(standard_wrong_secret(&app, &k.client_id, &k)).await;
        assert_eq!(status, 400);
        assert!(took >= Duration::from_millis(wait), "{took:?} < {wait} ms");
    }
    // Other client ids are not slowed down.
    let other = sales_unit_keys(&app, "654321").await;
    let (status, took) = timed(standard(&app, &other)).await;
    assert_eq!(status, 200);
    assert!(took < fast, "{took:?}");
    // The right secret is answered at once (whoever guesses at a client id cannot slow its
    // owner down), and resets the count: without the reset the next failure would wait 800 ms.
    let (status, took) = timed(standard(&app, &k)).await;
    assert_eq!(status, 200);
    assert!(took < fast, "{took:?}");
    let (status, took) = timed(standard_wrong_secret(&app, &k.client_id, &k)).await;
    assert_eq!(status, 400);
    assert!(took < fast, "{took:?}");
}

#[tokio::test]
async fn forty_parallel_bad_secrets_for_a_client_id_do_not_slow_its_owner_down() {
    let app = app_with(LimitsConfig::default()).await;
    let k = sales_unit_keys(&app, "123455").await;
    let acc = app
        .issue(
            KeyKind::Accounting,
            KeyOwner::Partner(
                common::partner(
                    app.store.as_ref(),
                    "P",
                    ledgerport_core::world::PartnerKind::Accounting,
                    true,
                )
                .await,
            ),
        )
        .await;
    // Someone who knows the client ids guesses at them, 40 connections at a time.
    let mut guesses = tokio::task::JoinSet::new();
    for i in 0..40 {
        let (http, url, cid, sub) = (
            app.http.clone(),
            app.url("/accesstoken/get"),
            k.client_id.clone(),
            k.subscription_key.clone().expect("sub"),
        );
        let miami = app.url("/miami/v1/token");
        let acc_id = acc.client_id.clone();
        guesses.spawn(async move {
            let res = if i % 2 == 0 {
                http.post(url)
                    .header("client_id", cid)
                    .header("client_secret", "lpsec_guess")
                    .header("Ocp-Apim-Subscription-Key", sub)
                    .send()
                    .await
            } else {
                http.post(miami)
                    .basic_auth(acc_id, Some("lpsec_guess"))
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body("grant_type=client_credentials")
                    .send()
                    .await
            };
            res.expect("request").status().as_u16()
        });
    }
    // Let the guesses pile up their failures first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(app.state.limits.failure_delay(&k.client_id) > Duration::ZERO);
    // The owners, with the right secrets, are answered at once.
    let fast = Duration::from_millis(400);
    let (status, took) = timed(standard(&app, &k)).await;
    assert_eq!(status, 200);
    assert!(took < fast, "standard token took {took:?}");
    let (status, took) =
        timed(app.miami_token_raw(&acc.client_id, &acc.secret, "grant_type=client_credentials"))
            .await;
    assert_eq!(status, 200);
    assert!(took < fast, "miami token took {took:?}");
    while let Some(s) = guesses.join_next().await {
        let s = s.expect("task");
        assert!([400, 401, 429].contains(&s), "{s}");
    }
}

#[tokio::test]
async fn failed_token_requests_are_limited_per_client_address_whatever_client_id_they_name() {
    let app = app_with(LimitsConfig {
        // No slow-down: it would only make this test slow.
        failed_token_slowdown_after: 0,
        ..LimitsConfig::default()
    })
    .await;
    let k = sales_unit_keys(&app, "123455").await;
    let mut refused = None;
    for i in 0..200 {
        let client_id = format!("4b0f3c8e-0000-4000-8000-{i:012}");
        let res = if i % 2 == 0 {
            standard_wrong_secret(&app, &client_id, &k).await
        } else {
            app.miami_token_raw(&client_id, "lpsec_x", "grant_type=client_credentials")
                .await
        };
        if res.status() == 429 {
            refused = Some((i, assert_429(res, "client address").await));
            break;
        }
        assert!([400, 401].contains(&res.status().as_u16()));
    }
    let (after, retry) = refused.expect("random client ids are limited too");
    assert!(after <= 60, "refused only after {after} failures");
    assert!(retry >= 1);
    // The address's allowance comes back with time.
    app.clock.advance(SignedDuration::from_secs(5));
    assert_eq!(standard(&app, &k).await.status(), 200);
}

#[tokio::test]
async fn an_unknown_client_id_is_slowed_down_like_a_known_one() {
    let app = app_with(LimitsConfig {
        failed_token_slowdown_after: 2,
        ..LimitsConfig::default()
    })
    .await;
    let k = sales_unit_keys(&app, "123455").await;
    let unknown = "4b0f3c8e-0000-4000-8000-000000000000";
    for _ in 0..2 {
        let (status, _) = timed(standard_wrong_secret(&app, unknown, &k)).await;
        assert_eq!(status, 400);
    }
    let (status, took) = timed(standard_wrong_secret(&app, unknown, &k)).await;
    assert_eq!(status, 400);
    assert!(took >= Duration::from_millis(100), "{took:?}");

    // The miami endpoint too, by the Basic user.
    for _ in 0..2 {
        let res = app
            .miami_token_raw("nobody", "lpsec_x", "grant_type=client_credentials")
            .await;
        assert_eq!(res.status(), 401);
    }
    let (status, took) =
        timed(app.miami_token_raw("nobody", "lpsec_x", "grant_type=client_credentials")).await;
    assert_eq!(status, 401);
    assert!(took >= Duration::from_millis(100), "{took:?}");
}

#[tokio::test]
async fn a_100_kib_header_is_refused_without_harm() {
    let app = TestApp::start().await;
    let big = "a".repeat(100 * 1024);
    let res = app
        .http
        .get(app.url("/healthz"))
        .header("X-Big", big)
        .send()
        .await;
    let res = res.expect("answered");
    assert_eq!(res.status(), 431);
    assert_eq!(
        res.headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or("")),
        Some("application/problem+json")
    );
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["status"], 431);
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("headers:"))
    );
    // Heads past what hyper buffers (about 400 KiB) are cut off by hyper itself.
    let huge = "a".repeat(1024 * 1024);
    match app
        .http
        .get(app.url("/healthz"))
        .header("X-Big", huge)
        .send()
        .await
    {
        Ok(r) => assert!(r.status() == 431 || r.status() == 400, "{}", r.status()),
        Err(e) => assert!(!e.is_timeout(), "{e}"),
    }
    // The server is still fine.
    let ok = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("request");
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight_and_refuses_new_connections() {
    // A failed request held 2 s by the slow-down of its client id stands in for a slow request.
    let mut app = app_with(LimitsConfig {
        failed_token_slowdown_after: 1,
        ..LimitsConfig::default()
    })
    .await;
    let k = sales_unit_keys(&app, "123455").await;
    // Failures recorded directly: the next failure for this client id waits the full 2 s.
    for _ in 0..10 {
        app.state.limits.token_outcome(&k.client_id, false);
    }
    assert_eq!(
        app.state.limits.failure_delay(&k.client_id),
        Duration::from_secs(2)
    );
    let addr = app.base.trim_start_matches("http://").to_owned();
    let http = app.http.clone();
    let url = app.url("/accesstoken/get");
    let (cid, secret, sub) = (
        k.client_id.clone(),
        "lpsec_wrong".to_owned(),
        k.subscription_key.clone().expect("sub"),
    );
    let in_flight = tokio::spawn(async move {
        let res = http
            .post(url)
            .header("client_id", cid)
            .header("client_secret", secret)
            .header("Ocp-Apim-Subscription-Key", sub)
            .send()
            .await
            .expect("the request in flight is answered");
        let status = res.status();
        let body: Value = res.json().await.expect("json");
        (status, body)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!in_flight.is_finished());
    app.begin_shutdown();

    // New connections are refused soon after, while the request is still in flight.
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        if tokio::net::TcpStream::connect(&addr).await.is_err() {
            break;
        }
        assert!(Instant::now() < deadline, "still accepting connections");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!in_flight.is_finished());

    let (status, body) = in_flight.await.expect("task");
    assert_eq!(status, 400);
    assert_eq!(body["error"], "unauthorized_client");
}
