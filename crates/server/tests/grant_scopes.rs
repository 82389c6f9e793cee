//! A grant's scope on the wire: an expired grant answers exactly as a ledger never granted (the
//! same bytes), tokens and cursors do not outlive it; a topic or date outside the grant is a 403
//! problem naming it; the feed holds only the period's entries, paged with cursors as always;
//! personal data not covered is withheld with a header; `GET /ledgerport/v1/grants` lists what
//! the keys may read.

mod common;

use common::*;
use jiff::SignedDuration;
use ledgerport_core::clock::Clock;
use ledgerport_core::ids::LedgerDate;
use ledgerport_core::world::{GrantScope, KeyKind, KeyOwner, Topics};
use serde_json::{Value, json};

fn date(s: &str) -> LedgerDate {
    LedgerDate::parse("date", s).expect("date")
}

/// Status, the headers a client could tell apart (all but the request id and date), and the
/// body's bytes.
async fn answer(app: &TestApp, path: &str, token: &str) -> (u16, Vec<(String, Vec<u8>)>, Vec<u8>) {
    let res = app.get(path, Some(token), &[]).await;
    let status = res.status().as_u16();
    let mut headers: Vec<(String, Vec<u8>)> = res
        .headers()
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "x-request-id" | "date"))
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect();
    headers.sort();
    let body = res.bytes().await.expect("body").to_vec();
    (status, headers, body)
}

fn psp_refs(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            format!(
                "{}/{}",
                i["pspReference"].as_str().unwrap_or(""),
                i["ledgerDate"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[tokio::test]
async fn an_expired_grant_answers_byte_for_byte_as_a_ledger_never_granted() {
    // Arrange: a grant on 100 expiring in a minute, a partner never granted 100; a cursor and a
    // token issued while the grant stands.
    let app = TestApp::start().await;
    world(&app).await;
    let expiry = app.clock.now() + SignedDuration::from_mins(1);
    let (_, expiring) = partner_with(
        &app,
        "Expiring AS",
        "100",
        GrantScope {
            expires_at: Some(expiry),
            ..GrantScope::EVERYTHING
        },
    )
    .await;
    let (_, never) = partner_with(&app, "Other Ledger AS", "400", GrantScope::EVERYTHING).await;
    let first: Value = app
        .get("/report/v2/ledgers/100/funds/feed", Some(&expiring), &[])
        .await
        .json()
        .await
        .expect("json");
    let cursor = first["cursor"].as_str().expect("cursor").to_owned();
    let paths = [
        "/report/v2/ledgers/100/funds/feed".to_owned(),
        format!("/report/v2/ledgers/100/funds/feed?cursor={cursor}"),
        "/report/v2/ledgers/100/fees/dates/2024-04-04".to_owned(),
        "/report/v2/ledgers/100/funds/dates/2024-04-05?includeGDPRSensitiveData=true".to_owned(),
    ];
    for p in &paths[..3] {
        assert_eq!(
            answer(&app, p, &expiring).await.0,
            200,
            "{p} before the expiry"
        );
    }

    // Act: the clock passes the expiry (the token is still within its lifetime).
    app.clock.set(expiry);

    // Assert
    for p in &paths {
        let expired = answer(&app, p, &expiring).await;
        let never_granted = answer(&app, p, &never).await;
        assert_eq!(expired.0, 404, "{p}");
        assert_eq!(
            expired, never_granted,
            "{p}: the expired grant's answer differs"
        );
    }
    let listed: Value = app
        .get("/settlement/v1/ledgers", Some(&expiring), &[])
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        listed["items"],
        json!([]),
        "the ledger drops out of the listing"
    );
    let grants: Value = app
        .get("/ledgerport/v1/grants", Some(&expiring), &[])
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(grants["items"], json!([]), "and out of the grants");
}

#[tokio::test]
async fn a_topic_or_date_outside_the_grant_is_a_403_problem_naming_it() {
    let app = TestApp::start().await;
    world(&app).await;
    let (_, token) = partner_with(
        &app,
        "Funds In April AS",
        "100",
        GrantScope {
            from: Some(date("2024-04-05")),
            to: Some(date("2024-04-30")),
            topics: Topics {
                funds: true,
                fees: false,
            },
            ..GrantScope::EVERYTHING
        },
    )
    .await;

    let cases = [
        (
            "/report/v2/ledgers/100/fees/feed",
            "topic: the grant on this ledger does not cover the topic fees",
        ),
        (
            "/report/v2/ledgers/100/fees/dates/2024-04-05",
            "topic: the grant on this ledger does not cover the topic fees",
        ),
        (
            "/report/v2/ledgers/100/funds/dates/2024-04-04",
            "ledgerDate: 2024-04-04 is outside the grant's period (2024-04-05 to 2024-04-30)",
        ),
        (
            "/report/v2/ledgers/100/funds/dates/2024-05-01",
            "ledgerDate: 2024-05-01 is outside the grant's period (2024-04-05 to 2024-04-30)",
        ),
    ];
    for (path, detail) in cases {
        let res = app.get(path, Some(&token), &[]).await;
        assert_eq!(res.status(), 403, "{path}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["status"], 403, "{path}");
        assert_eq!(body["detail"], detail, "{path}");
        assert_eq!(body["instance"], path.split('?').next().unwrap_or(path));
    }
    // Inside the scope: 200; on a ledger not granted, still the 404 whatever the topic.
    let res = app
        .get(
            "/report/v2/ledgers/100/funds/dates/2024-04-05",
            Some(&token),
            &[],
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = app
        .get("/report/v2/ledgers/200/fees/feed", Some(&token), &[])
        .await;
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn a_grants_feed_holds_only_its_period_paged_with_cursors() {
    // Ledger 100 (page size 3): five funds entries on 2024-04-04, two on 2024-04-05.
    let app = TestApp::start().await;
    world(&app).await;
    let (_, early) = partner_with(
        &app,
        "Early AS",
        "100",
        GrantScope {
            to: Some(date("2024-04-04")),
            ..GrantScope::EVERYTHING
        },
    )
    .await;
    let (_, late) = partner_with(
        &app,
        "Late AS",
        "100",
        GrantScope {
            from: Some(date("2024-04-05")),
            ..GrantScope::EVERYTHING
        },
    )
    .await;
    let walk = |token: String| {
        let app = &app;
        async move {
            let mut seen = vec![];
            let mut path = "/report/v2/ledgers/100/funds/feed".to_owned();
            for _ in 0..10 {
                let body: Value = app
                    .get(&path, Some(&token), &[])
                    .await
                    .json()
                    .await
                    .expect("json");
                seen.extend(psp_refs(&body));
                if body["tryLater"] == json!(true) {
                    return seen;
                }
                path = format!(
                    "/report/v2/ledgers/100/funds/feed?cursor={}",
                    body["cursor"].as_str().expect("cursor")
                );
            }
            panic!("the feed never ended")
        }
    };
    assert_eq!(
        walk(early).await,
        vec![
            "1001/2024-04-04",
            "1002/2024-04-04",
            "1003/2024-04-04",
            "1003/2024-04-04",
            "100-2000001/2024-04-04"
        ]
    );
    assert_eq!(walk(late).await, vec!["1004/2024-04-05", "1005/2024-04-05"]);
}

#[tokio::test]
async fn personal_data_not_covered_is_withheld_with_a_header_and_the_page_still_answers() {
    // Ledger 200's first funds entry is a vm-number payment with payer details.
    let app = TestApp::start().await;
    world(&app).await;
    let (_, without) = partner_with(
        &app,
        "No Personal Data AS",
        "200",
        GrantScope {
            personal_data: false,
            ..GrantScope::EVERYTHING
        },
    )
    .await;
    let (_, with) = partner_with(&app, "Personal Data AS", "200", GrantScope::EVERYTHING).await;
    for path in [
        "/report/v2/ledgers/200/funds/feed?includeGDPRSensitiveData=true",
        "/report/v2/ledgers/200/funds/dates/2024-04-04?includeGDPRSensitiveData=true",
    ] {
        let res = app.get(path, Some(&without), &[]).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(
            res.headers()["ledgerport-personal-data"],
            "withheld",
            "{path}"
        );
        let body: Value = res.json().await.expect("json");
        let first = &body["items"][0];
        assert_eq!(first["pspReference"], "2001");
        for field in ["name", "message", "maskedPhoneNo"] {
            assert!(first.get(field).is_none(), "{path}: {field} in {first}");
        }

        let res = app.get(path, Some(&with), &[]).await;
        assert!(
            res.headers().get("ledgerport-personal-data").is_none(),
            "{path}"
        );
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["items"][0]["name"], "Kari Nordmann", "{path}");
        assert_eq!(body["items"][0]["maskedPhoneNo"], "xxxx 1234", "{path}");
    }
    // Not asking: nothing to withhold, no header.
    let res = app
        .get("/report/v2/ledgers/200/funds/feed", Some(&without), &[])
        .await;
    assert!(res.headers().get("ledgerport-personal-data").is_none());
}

#[tokio::test]
async fn the_grants_extension_lists_an_accounting_partners_grants_and_refuses_other_keys() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let expiry = app.clock.now() + SignedDuration::from_hours(48);
    app.store
        .set_grant_scope(
            &by(),
            w.granted_partner,
            &lid("200"),
            &GrantScope {
                expires_at: Some(expiry),
                from: Some(date("2024-01-01")),
                to: Some(date("2024-12-31")),
                topics: Topics {
                    funds: false,
                    fees: true,
                },
                personal_data: false,
            },
        )
        .await
        .expect("scope");
    let keys = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(w.granted_partner))
        .await;
    let token = app.miami_token(&keys).await;

    let res = app.get("/ledgerport/v1/grants", Some(&token), &[]).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(
        body,
        json!({"items": [
            {"ledgerId": "100",
             "merchant": {"name": "ACME AS", "scheme": "business:NO:ORG", "id": "987654321"},
             "settlesForRecipientHandles": ["api:123455"],
             "scope": {"from": null, "to": null, "topics": ["funds", "fees"], "personalData": true},
             "expiresAt": null},
            {"ledgerId": "200",
             "merchant": {"name": "ACME AS", "scheme": "business:NO:ORG", "id": "987654321"},
             "settlesForRecipientHandles": ["api:654321", "NO:57860"],
             "scope": {"from": "2024-01-01", "to": "2024-12-31", "topics": ["fees"], "personalData": false},
             "expiresAt": ledgerport_core::entry::wire_time(expiry)}
         ],
         "cursor": ""})
    );

    // Merchant-level keys, sales-unit keys and integration keys: 403.
    let ml = app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant1))
        .await;
    let ml_token = app.miami_token(&ml).await;
    let res = app.get("/ledgerport/v1/grants", Some(&ml_token), &[]).await;
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.expect("json");
    assert_eq!(
        body["detail"],
        "Only an accounting partner's keys have grants to list."
    );
    let unit = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;
    let unit_token = app.standard_token(&unit).await;
    let sub = unit.subscription_key.clone().expect("sub");
    let res = app
        .get(
            "/ledgerport/v1/grants",
            Some(&unit_token),
            &[("Ocp-Apim-Subscription-Key", sub.as_str())],
        )
        .await;
    assert_eq!(res.status(), 403);
    let res = app.get("/ledgerport/v1/grants", None, &[]).await;
    assert_eq!(res.status(), 401);
}
