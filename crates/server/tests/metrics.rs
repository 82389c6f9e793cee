//! `GET /metrics` on the metrics listener: Prometheus text exposition of requests by route,
//! method and status with latency histograms, tokens issued, Report API entries served, Report
//! API pages by where their body came from and pages read ahead, ingestion
//! outcomes, the closing lag (as a maximum and a count of ledgers behind, never per ledger) and
//! database pool use (OPERATIONS.md). The public listener does not serve it.

mod common;

use common::{TestApp, lid, msn, new_entry, partner_with, world};
use ledgerport_core::ids::Topic;
use ledgerport_core::world::{GrantScope, KeyKind, KeyOwner};
use ledgerport_testkit::WorldBuilder;
use serde_json::json;

/// Starts the metrics listener of `app`'s server on a port of its own; returns its base URL.
async fn metrics_listener(app: &TestApp) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let state = app.state.clone();
    tokio::spawn(async move {
        ledgerport_server::serve_metrics(listener, state, std::future::pending())
            .await
            .expect("serve metrics");
    });
    base
}

async fn scrape(app: &TestApp) -> String {
    let base = metrics_listener(app).await;
    let res = app
        .http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    res.text().await.expect("body")
}

/// The value of the sample `series` (name and labels exactly as exposed), if there is one.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .map(|v| v.parse().expect("a number"))
    })
}

fn has(text: &str, series: &str, expected: f64) {
    assert_eq!(value(text, series), Some(expected), "{series} in\n{text}");
}

#[tokio::test]
async fn metrics_count_requests_tokens_entries_and_events() {
    // Arrange
    let app = TestApp::start().await;
    let w = world(&app).await;
    let merchant = app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant1))
        .await;
    let unit = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;
    let service = app.service_keys().await;

    // Act: two miami tokens and one standard token; one bad token request; two pages of ledger
    // 100's funds (3 and 2 entries on 2024-04-04 with page size 3) and its fees feed (3);
    // an unknown path; a batch of one good and one bad event.
    let token = app.miami_token(&merchant).await;
    app.miami_token(&merchant).await;
    app.standard_token(&unit).await;
    let bad = app
        .miami_token_raw(
            &merchant.client_id,
            "wrong",
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(bad.status(), 401);
    let first = app
        .get(
            "/report/v2/ledgers/100/funds/dates/2024-04-04",
            Some(&token),
            &[],
        )
        .await;
    assert_eq!(first.status(), 200);
    let first: serde_json::Value = first.json().await.expect("json");
    let cursor = first["cursor"].as_str().expect("cursor");
    let second = app
        .get(
            &format!("/report/v2/ledgers/100/funds/dates/2024-04-04?cursor={cursor}"),
            Some(&token),
            &[],
        )
        .await;
    assert_eq!(second.status(), 200);
    let fees = app
        .get("/report/v2/ledgers/100/fees/feed", Some(&token), &[])
        .await;
    assert_eq!(fees.status(), 200);
    assert_eq!(app.get("/no/such/path", None, &[]).await.status(), 404);
    let events = json!({"events": [
        {"eventId": "m-1", "type": "capture", "msn": "123455", "pspReference": "7001",
         "reference": "r", "amount": 100, "currency": "NOK", "time": "2024-04-05T10:00:00Z"},
        {"eventId": "m-2", "type": "capture", "msn": "123455", "pspReference": "7002",
         "reference": "r", "amount": -100, "currency": "NOK", "time": "2024-04-05T10:00:00Z"},
    ]});
    assert_eq!(app.post_events(&service, &events).await.status(), 200);
    let text = scrape(&app).await;

    // Assert
    has(
        &text,
        r#"ledgerport_http_requests_total{route="/miami/v1/token",method="POST",status="200"}"#,
        2.0,
    );
    has(
        &text,
        r#"ledgerport_http_requests_total{route="/miami/v1/token",method="POST",status="401"}"#,
        1.0,
    );
    has(
        &text,
        r#"ledgerport_http_requests_total{route="/report/v2/ledgers/{ledger_id}/{topic}/dates/{ledger_date}",method="GET",status="200"}"#,
        2.0,
    );
    has(
        &text,
        r#"ledgerport_http_requests_total{route="unmatched",method="GET",status="404"}"#,
        1.0,
    );
    has(
        &text,
        r#"ledgerport_http_request_duration_seconds_count{route="/report/v2/ledgers/{ledger_id}/{topic}/feed"}"#,
        1.0,
    );
    has(
        &text,
        r#"ledgerport_http_request_duration_seconds_bucket{route="/report/v2/ledgers/{ledger_id}/{topic}/feed",le="+Inf"}"#,
        1.0,
    );
    has(
        &text,
        r#"ledgerport_tokens_issued_total{key_type="merchant-level"}"#,
        2.0,
    );
    has(
        &text,
        r#"ledgerport_tokens_issued_total{key_type="sales-unit"}"#,
        1.0,
    );
    has(
        &text,
        r#"ledgerport_report_entries_served_total{topic="funds"}"#,
        5.0,
    );
    has(
        &text,
        r#"ledgerport_report_entries_served_total{topic="fees"}"#,
        3.0,
    );
    has(
        &text,
        r#"ledgerport_ingest_events_total{result="accepted"}"#,
        1.0,
    );
    has(
        &text,
        r#"ledgerport_ingest_events_total{result="rejected"}"#,
        1.0,
    );
    has(&text, "ledgerport_closing_lag_seconds", 0.0);
    has(&text, "ledgerport_ledgers_behind", 0.0);
    // The test's SQLite store is a file, whose sqlx read pool opens connections as needed, up to
    // its maximum of 8 (idle or in use: sqlx gives a connection back asynchronously, so it may
    // still count as in use just after a request).
    let idle = value(&text, r#"ledgerport_db_pool_connections{state="idle"}"#);
    let in_use = value(&text, r#"ledgerport_db_pool_connections{state="in_use"}"#);
    let open = idle.zip(in_use).map(|(a, b)| a + b);
    if ledgerport_testkit::testing::backend_name() == "sqlite" {
        assert!(open.is_some_and(|n| (1.0..=8.0).contains(&n)), "{text}");
    } else {
        // A PostgreSQL pool opens connections as needed, up to its maximum of 10.
        assert!(open.is_some_and(|n| (1.0..=10.0).contains(&n)), "{text}");
    }
    for name in [
        "ledgerport_http_requests_total counter",
        "ledgerport_http_request_duration_seconds histogram",
        "ledgerport_tokens_issued_total counter",
        "ledgerport_report_entries_served_total counter",
        "ledgerport_report_pages_total counter",
        "ledgerport_report_pages_read_ahead_total counter",
        "ledgerport_ingest_events_total counter",
        "ledgerport_closing_lag_seconds gauge",
        "ledgerport_ledgers_behind gauge",
        "ledgerport_db_pool_connections gauge",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name}\n")),
            "{name} in\n{text}"
        );
    }
}

#[tokio::test]
async fn closing_lag_grows_from_the_oldest_passed_payout_point_until_it_is_closed() {
    // Arrange: the world's ledgers are closed through 2024-04-04 at noon on 2024-04-05.
    let app = TestApp::start().await;
    world(&app).await;
    let before = scrape(&app).await;

    // Act: two days later 2024-04-05 and 2024-04-06 have passed unclosed; then they are closed.
    app.clock.set("2024-04-07T12:00:00Z".parse().expect("time"));
    let behind = scrape(&app).await;
    ledgerport_server::close_all_due(&app.state)
        .await
        .expect("close");
    let after = scrape(&app).await;

    // Assert: the lag counts from the end of 2024-04-05 in Oslo (21:59:59.999999Z), the oldest
    // passed payout point of the four ledgers, all of which are behind until closed.
    has(&before, "ledgerport_closing_lag_seconds", 0.0);
    has(&before, "ledgerport_ledgers_behind", 0.0);
    has(
        &behind,
        "ledgerport_closing_lag_seconds",
        38.0 * 3600.0 + 0.000001,
    );
    has(&behind, "ledgerport_ledgers_behind", 4.0);
    has(&after, "ledgerport_closing_lag_seconds", 0.0);
    has(&after, "ledgerport_ledgers_behind", 0.0);
    assert!(
        app.store
            .ledger(&lid("100"))
            .await
            .expect("ledger")
            .is_some()
    );
}

#[tokio::test]
async fn the_public_listener_does_not_serve_metrics_and_no_ledger_id_is_exposed() {
    // Arrange: a world with ledgers 100, 200, 300 and 400, two days behind on closing.
    let app = TestApp::start().await;
    world(&app).await;
    app.clock.set("2024-04-07T12:00:00Z".parse().expect("time"));

    // Act
    let public = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("request");
    let public_status = public.status();
    let public_body = public.text().await.expect("body");
    let text = scrape(&app).await;

    // Assert: the public router answers as for any unknown path; the exposition names no ledger.
    assert_eq!(public_status, 404, "{public_body}");
    assert!(!public_body.contains("ledgerport_"), "{public_body}");
    assert!(!text.contains("ledger_id"), "{text}");
    for id in ["100", "200", "300", "400"] {
        assert!(
            !text.lines().any(|l| l.contains(&format!("\"{id}\""))),
            "ledger {id} named in\n{text}"
        );
    }
    has(&text, "ledgerport_ledgers_behind", 4.0);
}

/// A client following a feed's cursors: its first page is read for the request; each next full
/// page is read ahead while the one before it travels, and comes from the cache; the last page,
/// which may still grow, is read ahead too but not kept, and is read again for its request. A
/// second walk finds the full pages kept and reads nothing ahead again (the last page is not
/// read ahead once more each time round).
#[tokio::test]
async fn feed_pages_are_counted_by_where_their_body_came_from() {
    // Arrange: ledger 100 with 7 entries in pages of 2: three full pages, then one of 1.
    let app = TestApp::start().await;
    WorldBuilder::new()
        .merchant("987654321", "ACME AS")
        .api_unit("123455")
        .ledger("100", &["123455"])
        .page_size(2)
        .build(app.store.as_ref())
        .await
        .expect("world");
    let entries = (0..7)
        .map(|i| {
            let time = format!("2024-04-03T{:02}:00:00Z", 8 + i);
            new_entry(
                &format!("p{i}"),
                &time,
                "capture",
                100 + i,
                "api:123455",
                None,
            )
        })
        .collect();
    app.store
        .append_entries(&lid("100"), Topic::Funds, entries)
        .await
        .expect("append");
    let (_, token) = partner_with(&app, "Books AS", "100", GrantScope::EVERYTHING).await;

    // Act and assert: each walk reads 4 pages.
    let walk = || async {
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let q = cursor.map(|c| format!("?cursor={c}")).unwrap_or_default();
            let res = app
                .get(
                    &format!("/report/v2/ledgers/100/funds/feed{q}"),
                    Some(&token),
                    &[],
                )
                .await;
            assert_eq!(res.status(), 200);
            let page: serde_json::Value = res.json().await.expect("json");
            pages += 1;
            if page["tryLater"] == true {
                return pages;
            }
            cursor = Some(page["cursor"].as_str().expect("cursor").to_owned());
        }
    };
    // Pages from the database and from the cache; pages read ahead, kept and dropped.
    let counts = |text: String| {
        [
            r#"ledgerport_report_pages_total{source="database"}"#,
            r#"ledgerport_report_pages_total{source="cache"}"#,
            r#"ledgerport_report_pages_read_ahead_total{result="kept"}"#,
            r#"ledgerport_report_pages_read_ahead_total{result="dropped"}"#,
        ]
        .map(|series| value(&text, series).unwrap_or_else(|| panic!("{series} in\n{text}")))
    };
    assert_eq!(walk().await, 4);
    assert_eq!(counts(scrape(&app).await), [2.0, 2.0, 2.0, 1.0]);
    assert_eq!(walk().await, 4);
    assert_eq!(counts(scrape(&app).await), [3.0, 5.0, 2.0, 1.0]);
}
