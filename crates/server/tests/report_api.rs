//! The Report API read path: date pages, the feed, cursors, bad input, GDPR fields,
//! the ledger listing, the access log, and changes to credentials taking effect on the next
//! request.

mod common;

use common::{Keys, TestApp, by, lid, msn, new_entry, world};
use ledgerport_core::clock::Clock;
use ledgerport_core::ids::Topic;
use ledgerport_core::world::{KeyKind, KeyOwner, PartnerState};
use ledgerport_server::ServerConfig;
use ledgerport_store::AccessLogFilter;
use serde_json::{Value, json};

const FUNDS_100: &str = "/report/v2/ledgers/100/funds/feed";
const UNAUTHORIZED: &str = r#"{"code":"Unauthorized","message":"Please check your API keys"}"#;

/// A response, read.
struct Res {
    status: u16,
    content_type: String,
    page_size: Option<String>,
    request_id: Option<String>,
    body: Value,
}

async fn read(res: reqwest::Response) -> Res {
    let h = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().expect("ascii").to_owned())
    };
    let (status, content_type, page_size, request_id) = (
        res.status().as_u16(),
        h("content-type").unwrap_or_default(),
        h("vipps-feed-page-size"),
        h("x-request-id"),
    );
    let text = res.text().await.expect("body");
    let body =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"));
    Res {
        status,
        content_type,
        page_size,
        request_id,
        body,
    }
}

/// Someone reading the Report API: a token, and the subscription key a standard token travels with.
struct Reader {
    token: String,
    subscription_key: Option<String>,
}

impl Reader {
    async fn standard(app: &TestApp, k: &Keys) -> Reader {
        Reader {
            token: app.standard_token(k).await,
            subscription_key: k.subscription_key.clone(),
        }
    }

    async fn miami(app: &TestApp, k: &Keys) -> Reader {
        Reader {
            token: app.miami_token(k).await,
            subscription_key: None,
        }
    }

    async fn get(&self, app: &TestApp, path: &str) -> Res {
        self.get_with(app, path, &[]).await
    }

    async fn get_with(&self, app: &TestApp, path: &str, extra: &[(&str, &str)]) -> Res {
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        if let Some(sk) = &self.subscription_key {
            headers.push(("Ocp-Apim-Subscription-Key", sk));
        }
        read(app.get(path, Some(&self.token), &headers).await).await
    }
}

async fn merchant1_reader(app: &TestApp, w: &common::World) -> Reader {
    let k = app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant1))
        .await;
    Reader::miami(app, &k).await
}

/// Asserts a problem response and returns its detail.
fn problem(r: &Res, status: u16, path: &str) -> String {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.content_type, "application/problem+json");
    let title = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        410 => "Gone",
        _ => panic!("no title for {status}"),
    };
    let detail = r.body["detail"].as_str().expect("detail").to_owned();
    assert_eq!(
        r.body,
        json!({"type": "about:blank", "title": title, "status": status, "detail": detail, "instance": path})
    );
    detail
}

fn cursor_of(r: &Res) -> String {
    r.body["cursor"]
        .as_str()
        .unwrap_or_else(|| panic!("no cursor in {}", r.body))
        .to_owned()
}

/// An entry as the wire shows it, without payer details. The world's references are `ref-<psp>`.
fn entry(psp: &str, time: &str, ty: &str, amount: i64, before: i64, handle: &str) -> Value {
    json!({
        "pspReference": psp,
        "time": time,
        "ledgerDate": &time[..10],
        "entryType": ty,
        "reference": format!("ref-{psp}"),
        "currency": "NOK",
        "amount": amount,
        "balanceBefore": before,
        "balanceAfter": before + amount,
        "recipientHandle": handle,
    })
}

/// Ledger 100's funds topic, in feed order: five entries on 2024-04-04, two on 2024-04-05.
fn funds_100() -> Vec<Value> {
    vec![
        entry(
            "1001",
            "2024-04-04T08:00:00.000001Z",
            "capture",
            10000,
            0,
            "api:123455",
        ),
        entry(
            "1002",
            "2024-04-04T09:00:00.000000Z",
            "capture",
            10000,
            10000,
            "api:123455",
        ),
        entry(
            "1003",
            "2024-04-04T10:00:00.000000Z",
            "capture",
            20000,
            20000,
            "api:123455",
        ),
        entry(
            "1003",
            "2024-04-04T11:00:00.000000Z",
            "refund",
            -10000,
            40000,
            "api:123455",
        ),
        entry(
            "100-2000001",
            "2024-04-04T21:59:59.999999Z",
            "payout-scheduled",
            -30000,
            30000,
            "",
        ),
        entry(
            "1004",
            "2024-04-05T08:00:00.000000Z",
            "capture",
            5000,
            0,
            "api:123455",
        ),
        entry(
            "1005",
            "2024-04-05T09:00:00.000000Z",
            "capture",
            7000,
            5000,
            "api:123455",
        ),
    ]
}

fn items(r: &Res) -> Vec<Value> {
    r.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {}", r.body))
        .clone()
}

fn listed(id: &str, org: &str, units: &[(&str, &str)]) -> Value {
    let business = json!({"scheme": "business:NO:ORG", "id": org});
    json!({
        "ledgerId": id,
        "currency": "NOK",
        "payoutBankAccount": {"scheme": "BBAN:NO", "id": "86011117947"},
        "owner": business,
        "settlesForRecipientHandles": units.iter().map(|(_, h)| *h).collect::<Vec<_>>(),
        "salesUnits": units
            .iter()
            .map(|(name, h)| json!({"name": name, "recipientHandle": h, "businessIdentifier": business}))
            .collect::<Vec<_>>(),
    })
}

fn ledger_100() -> Value {
    listed("100", "987654321", &[("Unit 123455", "api:123455")])
}

fn ledger_200() -> Value {
    listed(
        "200",
        "987654321",
        &[("Unit 654321", "api:654321"), ("Unit 223344", "NO:57860")],
    )
}

fn ledger_300() -> Value {
    listed("300", "987654321", &[("Unit 334455", "NO:11111")])
}

// ---------------------------------------------------------------- dates

#[tokio::test]
async fn a_closed_date_is_paged_by_the_ledgers_page_size_with_a_cursor_only_while_more_remain() {
    let app = TestApp::start().await;
    world(&app).await;
    let su = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;
    let reader = Reader::standard(&app, &su).await;
    let path = "/report/v2/ledgers/100/funds/dates/2024-04-04";

    let first = reader.get(&app, path).await;
    let second = reader
        .get(&app, &format!("{path}?cursor={}", cursor_of(&first)))
        .await;

    let all = funds_100();
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.content_type, "application/json");
    assert_eq!(first.page_size.as_deref(), Some("3"));
    assert_eq!(items(&first), all[0..3]);
    assert_eq!(first.body["hasMore"], true);
    assert_eq!(first.body["tryLater"], false);
    assert!(!cursor_of(&first).is_empty());
    assert_eq!(first.body.as_object().expect("object").len(), 4);
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.page_size.as_deref(), Some("3"));
    assert_eq!(items(&second), all[3..5]);
    assert_eq!(second.body["hasMore"], false);
    assert_eq!(second.body["tryLater"], false);
    assert!(second.body.get("cursor").is_none(), "{}", second.body);
    assert_eq!(second.body.as_object().expect("object").len(), 3);
}

#[tokio::test]
async fn a_date_of_exactly_one_page_has_no_more_and_no_cursor() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let reader = merchant1_reader(&app, &w).await;

    let r = reader
        .get(&app, "/report/v2/ledgers/100/fees/dates/2024-04-04")
        .await;

    assert_eq!(r.status, 200);
    assert_eq!(
        items(&r),
        vec![
            entry(
                "1001",
                "2024-04-04T08:00:00.000001Z",
                "capture-fee",
                -175,
                0,
                "api:123455"
            ),
            entry(
                "1002",
                "2024-04-04T09:00:00.000000Z",
                "capture-fee",
                -175,
                -175,
                "api:123455"
            ),
            entry(
                "1003",
                "2024-04-04T10:00:00.000000Z",
                "capture-fee",
                -350,
                -350,
                "api:123455"
            ),
        ]
    );
    assert_eq!(r.body["hasMore"], false);
    assert!(r.body.get("cursor").is_none());
}

#[tokio::test]
async fn balances_chain_across_dates() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    app.store
        .append_entries(
            &lid("100"),
            Topic::Fees,
            vec![new_entry(
                "1004",
                "2024-04-05T08:00:00Z",
                "capture-fee",
                -88,
                "api:123455",
                None,
            )],
        )
        .await
        .expect("append");
    let reader = merchant1_reader(&app, &w).await;

    let day1 = reader
        .get(&app, "/report/v2/ledgers/100/fees/dates/2024-04-04")
        .await;
    let day2 = reader
        .get(&app, "/report/v2/ledgers/100/fees/dates/2024-04-05")
        .await;

    let last_of_day1 = items(&day1).last().expect("entries")["balanceAfter"].clone();
    assert_eq!(last_of_day1, -700);
    assert_eq!(
        items(&day2),
        vec![entry(
            "1004",
            "2024-04-05T08:00:00.000000Z",
            "capture-fee",
            -88,
            -700,
            "api:123455"
        )]
    );
    assert_eq!(items(&day2)[0]["balanceBefore"], last_of_day1);
}

#[tokio::test]
async fn today_is_open_and_answers_200_with_try_later() {
    let app = TestApp::start().await;
    world(&app).await;
    let su = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;
    let reader = Reader::standard(&app, &su).await;

    let r = reader
        .get(&app, "/report/v2/ledgers/100/funds/dates/2024-04-05")
        .await;

    assert_eq!(r.status, 200);
    assert_eq!(r.page_size.as_deref(), Some("3"));
    assert_eq!(items(&r), funds_100()[5..7]);
    assert_eq!(
        items(&r)[0]["balanceBefore"],
        funds_100()[4]["balanceAfter"]
    );
    assert_eq!(r.body["hasMore"], false);
    assert_eq!(r.body["tryLater"], true);
    assert!(r.body.get("cursor").is_none());
}

#[tokio::test]
async fn a_future_date_is_open_and_empty() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let reader = merchant1_reader(&app, &w).await;

    for date in ["2024-04-06", "2030-01-01"] {
        let r = reader
            .get(&app, &format!("/report/v2/ledgers/100/funds/dates/{date}"))
            .await;

        assert_eq!(r.status, 200, "{date}");
        assert_eq!(
            r.body,
            json!({"items": [], "hasMore": false, "tryLater": true}),
            "{date}"
        );
    }
}

#[tokio::test]
async fn a_closed_date_without_entries_is_empty_and_final() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let reader = merchant1_reader(&app, &w).await;

    for date in ["2024-04-01", "2001-01-01"] {
        let r = reader
            .get(&app, &format!("/report/v2/ledgers/100/funds/dates/{date}"))
            .await;

        assert_eq!(r.status, 200, "{date}");
        assert_eq!(r.page_size.as_deref(), Some("3"));
        assert_eq!(
            r.body,
            json!({"items": [], "hasMore": false, "tryLater": false}),
            "{date}"
        );
    }
}

#[tokio::test]
async fn a_date_closes_once_midnight_oslo_time_has_passed_and_the_engine_closed_it() {
    let app = TestApp::start().await;
    world(&app).await;
    let su = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;
    let reader = Reader::standard(&app, &su).await;
    let path = "/report/v2/ledgers/100/funds/dates/2024-04-05";

    // 23:59:59 in Oslo (UTC+2 in April): the date is today, open, and closing does nothing.
    app.clock.set("2024-04-05T21:59:59Z".parse().expect("time"));
    let early = app
        .store
        .close_due(&lid("100"), app.clock.now())
        .await
        .expect("close");
    let before = reader.get(&app, path).await;
    // Midnight: the payout point has passed, but until the engine closes the date it stays open.
    app.clock.set("2024-04-05T22:00:00Z".parse().expect("time"));
    let pending = reader.get(&app, path).await;
    let closed = app
        .store
        .close_due(&lid("100"), app.clock.now())
        .await
        .expect("close");
    let after = reader.get(&app, path).await;

    assert!(early.is_empty());
    assert_eq!(before.body["tryLater"], true);
    assert_eq!(pending.body["tryLater"], true);
    assert_eq!(closed.len(), 1);
    assert_eq!(after.status, 200);
    assert_eq!(after.body["tryLater"], false);
    let got = items(&after);
    assert_eq!(got[..2], funds_100()[5..7]);
    // The day's balance of 12000 is paid out as the date's last entry.
    assert_eq!(got.len(), 3);
    assert_eq!(got[2]["entryType"], "payout-scheduled");
    assert_eq!(got[2]["amount"], -12000);
    assert_eq!(got[2]["balanceAfter"], 0);
    assert_eq!(got[2]["pspReference"], "100-2000001");
    let tomorrow = reader
        .get(&app, "/report/v2/ledgers/100/funds/dates/2024-04-06")
        .await;
    assert_eq!(tomorrow.body["tryLater"], true);
}

#[tokio::test]
async fn an_empty_cursor_means_no_cursor() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let reader = merchant1_reader(&app, &w).await;

    let date = reader
        .get(
            &app,
            "/report/v2/ledgers/100/funds/dates/2024-04-04?cursor=",
        )
        .await;
    let feed = reader.get(&app, &format!("{FUNDS_100}?cursor=")).await;
    let list = reader.get(&app, "/settlement/v1/ledgers?cursor=").await;

    assert_eq!(date.status, 200);
    assert_eq!(items(&date), funds_100()[0..3]);
    assert_eq!(feed.status, 200);
    assert_eq!(items(&feed), funds_100()[0..3]);
    assert_eq!(list.status, 200);
    assert_eq!(
        list.body["items"],
        json!([ledger_100(), ledger_200(), ledger_300()])
    );
}

// ---------------------------------------------------------------- feed

#[tokio::test]
async fn the_feed_walks_every_entry_in_order_and_then_hands_back_the_same_cursor() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let reader = merchant1_reader(&app, &w).await;

    let p1 = reader.get(&app, FUNDS_100).await;
    let p2 = reader
        .get(&app, &format!("{FUNDS_100}?cursor={}", cursor_of(&p1)))
        .await;
    let p3 = reader
        .get(&app, &format!("{FUNDS_100}?cursor={}", cursor_of(&p2)))
        .await;
    let end = reader
        .get(&app, &format!("{FUNDS_100}?cursor={}", cursor_of(&p3)))
        .await;

    let all = funds_100();
    for (i, p) in [&p1, &p2, &p3, &end].into_iter().enumerate() {
        assert_eq!(p.status, 200, "page {i}: {}", p.body);
        assert_eq!(p.page_size.as_deref(), Some("3"), "page {i}");
        let keys: Vec<&String> = p.body.as_object().expect("object").keys().collect();
        assert_eq!(keys.len(), 3, "page {i}: {keys:?}");
        assert!(!cursor_of(p).is_empty());
    }
    assert_eq!(items(&p1), all[0..3]);
    assert_eq!(p1.body["tryLater"], false);
    assert_eq!(items(&p2), all[3..6]);
    assert_eq!(p2.body["tryLater"], false);
    assert_eq!(items(&p3), all[6..7]);
    assert_eq!(p3.body["tryLater"], true);
    assert_eq!(items(&end), Vec::<Value>::new());
    assert_eq!(end.body["tryLater"], true);
    assert_eq!(cursor_of(&end), cursor_of(&p3));
    let cursors = [cursor_of(&p1), cursor_of(&p2), cursor_of(&p3)];
    assert!(
        cursors[0] != cursors[1] && cursors[1] != cursors[2],
        "{cursors:?}"
    );
}

#[tokio::test]
async fn a_feed_cursor_at_the_end_yields_exactly_the_entry_appended_later() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let reader = merchant1_reader(&app, &w).await;
    let mut cursor = String::new();
    loop {
        let p = reader
            .get(&app, &format!("{FUNDS_100}?cursor={cursor}"))
            .await;
        cursor = cursor_of(&p);
        if p.body["tryLater"] == true {
            break;
        }
    }
    let caught_up = reader
        .get(&app, &format!("{FUNDS_100}?cursor={cursor}"))
        .await;
    assert_eq!(items(&caught_up), Vec::<Value>::new());

    app.store
        .append_entries(
            &lid("100"),
            Topic::Funds,
            vec![new_entry(
                "1006",
                "2024-04-05T10:00:00Z",
                "capture",
                3000,
                "api:123455",
                None,
            )],
        )
        .await
        .expect("append");
    let next = reader
        .get(&app, &format!("{FUNDS_100}?cursor={cursor}"))
        .await;
    let after = reader
        .get(&app, &format!("{FUNDS_100}?cursor={}", cursor_of(&next)))
        .await;

    assert_eq!(next.status, 200);
    assert_eq!(
        items(&next),
        vec![entry(
            "1006",
            "2024-04-05T10:00:00.000000Z",
            "capture",
            3000,
            12000,
            "api:123455"
        )]
    );
    assert_eq!(next.body["tryLater"], true);
    assert_ne!(cursor_of(&next), cursor);
    assert_eq!(items(&after), Vec::<Value>::new());
    assert_eq!(cursor_of(&after), cursor_of(&next));
}

#[tokio::test]
async fn the_feed_and_the_dates_give_the_same_sequence() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let reader = merchant1_reader(&app, &w).await;
    let mut from_feed = Vec::new();
    let mut cursor = String::new();
    loop {
        let p = reader
            .get(&app, &format!("{FUNDS_100}?cursor={cursor}"))
            .await;
        from_feed.extend(items(&p));
        cursor = cursor_of(&p);
        if p.body["tryLater"] == true {
            break;
        }
    }

    let mut from_dates = Vec::new();
    for date in ["2024-04-04", "2024-04-05"] {
        let mut path = format!("/report/v2/ledgers/100/funds/dates/{date}");
        loop {
            let p = reader.get(&app, &path).await;
            from_dates.extend(items(&p));
            if p.body["hasMore"] == false {
                break;
            }
            path = format!(
                "/report/v2/ledgers/100/funds/dates/{date}?cursor={}",
                cursor_of(&p)
            );
        }
    }

    assert_eq!(from_feed, funds_100());
    assert_eq!(from_dates, from_feed);
}

// ---------------------------------------------------------------- cursors

#[tokio::test]
async fn a_cursor_is_rejected_anywhere_but_where_it_was_made() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let reader = merchant1_reader(&app, &w).await;
    let date_cursor = cursor_of(
        &reader
            .get(&app, "/report/v2/ledgers/100/funds/dates/2024-04-04")
            .await,
    );
    let feed_cursor = cursor_of(&reader.get(&app, FUNDS_100).await);
    let cases = [
        (
            "a dates cursor on the feed",
            FUNDS_100.to_owned(),
            &date_cursor,
        ),
        (
            "a feed cursor on a date",
            "/report/v2/ledgers/100/funds/dates/2024-04-04".to_owned(),
            &feed_cursor,
        ),
        (
            "a ledger 100 cursor on ledger 200",
            "/report/v2/ledgers/200/funds/feed".to_owned(),
            &feed_cursor,
        ),
        (
            "a funds cursor on fees",
            "/report/v2/ledgers/100/fees/feed".to_owned(),
            &feed_cursor,
        ),
        (
            "a funds date cursor on fees",
            "/report/v2/ledgers/100/fees/dates/2024-04-04".to_owned(),
            &date_cursor,
        ),
        (
            "a cursor of one date on another",
            "/report/v2/ledgers/100/funds/dates/2024-04-05".to_owned(),
            &date_cursor,
        ),
        (
            "a ledger 100 date cursor on ledger 200",
            "/report/v2/ledgers/200/funds/dates/2024-04-04".to_owned(),
            &date_cursor,
        ),
        (
            "a feed cursor on the ledger listing",
            "/settlement/v1/ledgers".to_owned(),
            &feed_cursor,
        ),
    ];

    for (what, path, cursor) in cases {
        let r = reader.get(&app, &format!("{path}?cursor={cursor}")).await;

        let detail = problem(&r, 400, &path);
        assert_eq!(
            detail, "cursor: is not a cursor of this ledger, topic and query",
            "{what}"
        );
    }
}

#[tokio::test]
async fn an_altered_or_made_up_cursor_is_400_naming_the_cursor() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let reader = merchant1_reader(&app, &w).await;
    let good = cursor_of(&reader.get(&app, FUNDS_100).await);
    let mut altered = good.clone().into_bytes();
    let i = altered.len() / 2;
    altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).expect("ascii");
    let truncated = good[..good.len() - 2].to_owned();

    for cursor in [
        altered.as_str(),
        truncated.as_str(),
        "%%%",
        "abc",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "////",
    ] {
        let r = reader
            .get(&app, &format!("{FUNDS_100}?cursor={cursor}"))
            .await;

        let detail = problem(&r, 400, FUNDS_100);
        assert!(detail.contains("cursor"), "{cursor}: {detail}");
    }
    assert_eq!(
        reader
            .get(&app, &format!("{FUNDS_100}?cursor={good}"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn cursors_are_url_safe_as_they_stand() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let reader = merchant1_reader(&app, &w).await;
    let mut cursors = Vec::new();
    let mut cursor = String::new();
    for _ in 0..4 {
        let p = reader
            .get(&app, &format!("{FUNDS_100}?cursor={cursor}"))
            .await;
        cursor = cursor_of(&p);
        cursors.push(cursor.clone());
    }
    cursors.push(cursor_of(
        &reader
            .get(&app, "/report/v2/ledgers/100/funds/dates/2024-04-04")
            .await,
    ));

    for c in &cursors {
        assert!(!c.is_empty());
        assert!(
            c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{c}"
        );
        assert!(!c.contains(['+', '/', '=']), "{c}");
    }
}

// ---------------------------------------------------------------- bad input

#[tokio::test]
async fn a_date_that_is_not_a_real_date_is_400_naming_ledger_date() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let reader = merchant1_reader(&app, &w).await;

    for date in [
        "2024-02-30",
        "2024-13-01",
        "20240401",
        "2024-4-01",
        "yesterday",
        "2023-02-29",
    ] {
        let path = format!("/report/v2/ledgers/100/funds/dates/{date}");
        let r = reader.get(&app, &path).await;

        let detail = problem(&r, 400, &path);
        assert!(detail.starts_with("ledgerDate: "), "{date}: {detail}");
    }
    assert_eq!(
        reader
            .get(&app, "/report/v2/ledgers/100/funds/dates/2024-02-29")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn an_unknown_topic_is_400_naming_topic() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let reader = merchant1_reader(&app, &w).await;

    for path in [
        "/report/v2/ledgers/100/payouts/feed",
        "/report/v2/ledgers/100/payouts/dates/2024-04-04",
    ] {
        let r = reader.get(&app, path).await;

        let detail = problem(&r, 400, path);
        assert_eq!(detail, "topic: must be funds or fees");
    }
}

#[tokio::test]
async fn a_gdpr_flag_that_is_not_a_boolean_is_400_naming_it() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let reader = merchant1_reader(&app, &w).await;

    for path in [FUNDS_100, "/report/v2/ledgers/100/funds/dates/2024-04-04"] {
        let r = reader
            .get(&app, &format!("{path}?includeGDPRSensitiveData=maybe"))
            .await;

        let detail = problem(&r, 400, path);
        assert_eq!(detail, "includeGDPRSensitiveData: must be true or false");
    }
}

#[tokio::test]
async fn a_query_parameter_given_twice_is_400() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let reader = merchant1_reader(&app, &w).await;
    let cursor = cursor_of(&reader.get(&app, FUNDS_100).await);

    let cases = [
        (
            FUNDS_100,
            format!("cursor={cursor}&cursor={cursor}"),
            "cursor",
        ),
        (
            "/report/v2/ledgers/100/funds/dates/2024-04-04",
            "includeGDPRSensitiveData=true&includeGDPRSensitiveData=false".to_owned(),
            "includeGDPRSensitiveData",
        ),
        (
            "/settlement/v1/ledgers",
            "settlesForRecipientHandles=api:123455&settlesForRecipientHandles=NO:57860".to_owned(),
            "settlesForRecipientHandles",
        ),
    ];

    for (path, query, name) in cases {
        let r = reader.get(&app, &format!("{path}?{query}")).await;

        let detail = problem(&r, 400, path);
        assert_eq!(detail, format!("{name}: given more than once"));
    }
}

#[tokio::test]
async fn bad_input_does_not_break_the_server() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let reader = merchant1_reader(&app, &w).await;
    let odd = [
        "/report/v2/ledgers/100/funds/dates/%FF%FE",
        "/report/v2/ledgers/100/funds/dates/0000-00-00",
        "/report/v2/ledgers/100/funds/dates/9999-12-31",
        "/report/v2/ledgers/100/funds/dates/2024-04-04?cursor=%FF",
        "/report/v2/ledgers/100/funds/feed?cursor=%00",
        "/report/v2/ledgers/99999999999999999999999/funds/feed",
        "/report/v2/ledgers/100/%FF/feed",
        "/settlement/v1/ledgers?settlesForRecipientHandles=%FF",
        "/settlement/v1/ledgers?cursor=%%%",
    ];

    for path in odd {
        let r = reader.get(&app, path).await;

        assert!(r.status < 500, "{path}: {} {}", r.status, r.body);
    }
    let r = reader.get(&app, FUNDS_100).await;
    assert_eq!(r.status, 200);
    assert_eq!(items(&r), funds_100()[0..3]);
}

#[tokio::test]
async fn an_unknown_ledger_and_a_ledger_id_that_cannot_exist_get_the_same_404() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let reader = merchant1_reader(&app, &w).await;

    for path in [
        "/report/v2/ledgers/999/funds/feed",
        "/report/v2/ledgers/abc/funds/feed",
        "/report/v2/ledgers/400/funds/feed",
        "/report/v2/ledgers/999/fees/dates/2024-04-04",
    ] {
        let r = reader.get(&app, path).await;

        let detail = problem(&r, 404, path);
        assert_eq!(detail, "No such ledgerId");
    }
}

// ---------------------------------------------------------------- GDPR

#[tokio::test]
async fn payer_details_appear_only_when_asked_for_and_only_on_vm_number_payments() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let k = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(w.granted_partner))
        .await;
    let reader = Reader::miami(&app, &k).await;
    let vm_capture = entry(
        "2001",
        "2024-04-04T08:00:00.000000Z",
        "capture",
        4000,
        0,
        "NO:57860",
    );
    let api_capture = entry(
        "2002",
        "2024-04-04T09:00:00.000000Z",
        "capture",
        6000,
        4000,
        "api:654321",
    );
    let mut vm_with_payer = vm_capture.clone();
    vm_with_payer["name"] = json!("Kari Nordmann");
    vm_with_payer["message"] = json!("Kaffe");
    vm_with_payer["maskedPhoneNo"] = json!("xxxx 1234");

    for base in [
        "/report/v2/ledgers/200/funds/dates/2024-04-04",
        "/report/v2/ledgers/200/funds/feed",
    ] {
        let plain = reader.get(&app, base).await;
        let explicit_false = reader
            .get(&app, &format!("{base}?includeGDPRSensitiveData=false"))
            .await;
        let with = reader
            .get(&app, &format!("{base}?includeGDPRSensitiveData=true"))
            .await;

        assert_eq!(plain.status, 200, "{base}: {}", plain.body);
        assert_eq!(
            items(&plain),
            vec![vm_capture.clone(), api_capture.clone()],
            "{base}"
        );
        assert_eq!(items(&explicit_false), items(&plain), "{base}");
        assert_eq!(with.status, 200);
        assert_eq!(
            items(&with),
            vec![vm_with_payer.clone(), api_capture.clone()],
            "{base}"
        );
        for e in items(&plain) {
            for key in ["name", "message", "maskedPhoneNo"] {
                assert!(e.get(key).is_none(), "{base}: {key} in {e}");
            }
        }
    }
}

// ---------------------------------------------------------------- ledger listing

#[tokio::test]
async fn merchant_level_keys_list_every_ledger_the_organisation_owns() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let reader = merchant1_reader(&app, &w).await;

    let r = reader.get(&app, "/settlement/v1/ledgers").await;

    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "application/json");
    assert_eq!(r.page_size.as_deref(), Some("1000"));
    assert_eq!(
        r.body,
        json!({"items": [ledger_100(), ledger_200(), ledger_300()], "cursor": ""})
    );
}

#[tokio::test]
async fn other_keys_list_exactly_what_they_may_read() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let accounting = Reader::miami(
        &app,
        &app.issue(KeyKind::Accounting, KeyOwner::Partner(w.granted_partner))
            .await,
    )
    .await;
    let unit_100 = Reader::standard(
        &app,
        &app.issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
            .await,
    )
    .await;
    let unit_in_200 = Reader::standard(
        &app,
        &app.issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("654321")))
            .await,
    )
    .await;
    let merchant2 = Reader::miami(
        &app,
        &app.issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant2))
            .await,
    )
    .await;

    let cases = [
        (
            "accounting keys",
            &accounting,
            json!([ledger_100(), ledger_200()]),
        ),
        ("keys of unit 123455", &unit_100, json!([ledger_100()])),
        (
            "keys of a unit of a multi-unit ledger",
            &unit_in_200,
            json!([]),
        ),
        (
            "merchant 2",
            &merchant2,
            json!([listed("400", "912345678", &[("Unit 222222", "api:222222")])]),
        ),
    ];

    for (who, reader, expected) in cases {
        let r = reader.get(&app, "/settlement/v1/ledgers").await;

        assert_eq!(r.status, 200, "{who}: {}", r.body);
        assert_eq!(r.body, json!({"items": expected, "cursor": ""}), "{who}");
    }
}

#[tokio::test]
async fn the_listing_filters_by_one_recipient_handle() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let reader = merchant1_reader(&app, &w).await;
    let unit_100 = Reader::standard(
        &app,
        &app.issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
            .await,
    )
    .await;
    let merchant2 = Reader::miami(
        &app,
        &app.issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant2))
            .await,
    )
    .await;

    let vm = reader
        .get(
            &app,
            "/settlement/v1/ledgers?settlesForRecipientHandles=NO:57860",
        )
        .await;
    let api = reader
        .get(
            &app,
            "/settlement/v1/ledgers?settlesForRecipientHandles=api:123455",
        )
        .await;
    let empty_filter = reader
        .get(&app, "/settlement/v1/ledgers?settlesForRecipientHandles=")
        .await;
    let not_theirs = unit_100
        .get(
            &app,
            "/settlement/v1/ledgers?settlesForRecipientHandles=NO:57860",
        )
        .await;
    let other_org = merchant2
        .get(
            &app,
            "/settlement/v1/ledgers?settlesForRecipientHandles=api:123455",
        )
        .await;
    let nobody = reader
        .get(
            &app,
            "/settlement/v1/ledgers?settlesForRecipientHandles=DK:90601",
        )
        .await;

    assert_eq!(vm.body, json!({"items": [ledger_200()], "cursor": ""}));
    assert_eq!(api.body, json!({"items": [ledger_100()], "cursor": ""}));
    assert_eq!(
        empty_filter.body,
        json!({"items": [ledger_100(), ledger_200(), ledger_300()], "cursor": ""})
    );
    for r in [&not_theirs, &other_org, &nobody] {
        assert_eq!(r.status, 200);
        assert_eq!(r.body, json!({"items": [], "cursor": ""}));
    }
}

#[tokio::test]
async fn a_malformed_recipient_handle_is_400_naming_the_filter() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let reader = merchant1_reader(&app, &w).await;

    for handle in ["api:12", "SE:57860", "57860", "NO:abc"] {
        let r = reader
            .get(
                &app,
                &format!("/settlement/v1/ledgers?settlesForRecipientHandles={handle}"),
            )
            .await;

        let detail = problem(&r, 400, "/settlement/v1/ledgers");
        assert!(
            detail.starts_with("settlesForRecipientHandles: "),
            "{handle}: {detail}"
        );
    }
}

#[tokio::test]
async fn the_listing_pages_with_cursors_and_shows_each_ledger_once() {
    let app = TestApp::start_with(ServerConfig {
        ledger_list_page_size: 1,
        ..ServerConfig::default()
    })
    .await;
    let w = world(&app).await;
    let reader = merchant1_reader(&app, &w).await;

    let mut pages = Vec::new();
    let mut path = "/settlement/v1/ledgers".to_owned();
    loop {
        let r = reader.get(&app, &path).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.page_size.as_deref(), Some("1"));
        let cursor = cursor_of(&r);
        pages.push(r.body);
        if cursor.is_empty() || pages.len() > 5 {
            break;
        }
        path = format!("/settlement/v1/ledgers?cursor={cursor}");
    }

    let seen: Vec<Value> = pages.iter().map(|p| p["items"].clone()).collect();
    assert_eq!(
        seen,
        vec![
            json!([ledger_100()]),
            json!([ledger_200()]),
            json!([ledger_300()])
        ]
    );
    assert!(pages[0]["cursor"] != "" && pages[1]["cursor"] != "");
    assert_eq!(pages[2]["cursor"], "");
}

#[tokio::test]
async fn a_listing_cursor_is_bound_to_its_filter() {
    let app = TestApp::start_with(ServerConfig {
        ledger_list_page_size: 1,
        ..ServerConfig::default()
    })
    .await;
    let w = world(&app).await;
    let reader = merchant1_reader(&app, &w).await;
    let unfiltered = cursor_of(&reader.get(&app, "/settlement/v1/ledgers").await);
    assert!(!unfiltered.is_empty());

    // A sales unit is on one ledger only, so a filtered listing is never more than one page:
    // the cursors to misuse are those of the unfiltered listing.
    let filters = ["api:123455", "NO:57860", "api:654321"];
    let mut refused = Vec::new();
    for handle in filters {
        let path = format!(
            "/settlement/v1/ledgers?settlesForRecipientHandles={handle}&cursor={unfiltered}"
        );
        refused.push(reader.get(&app, &path).await);
    }
    let same_filter = reader
        .get(&app, &format!("/settlement/v1/ledgers?cursor={unfiltered}"))
        .await;

    for r in &refused {
        let detail = problem(r, 400, "/settlement/v1/ledgers");
        assert_eq!(
            detail,
            "cursor: is not a cursor of this ledger, topic and query"
        );
    }
    assert_eq!(same_filter.status, 200);
    assert_eq!(same_filter.body["items"], json!([ledger_200()]));
}

// ---------------------------------------------------------------- retired and unknown paths

#[tokio::test]
async fn the_v1_ledger_transactions_endpoint_is_gone() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let reader = merchant1_reader(&app, &w).await;

    let with_token = reader.get(&app, "/report/v1/ledgertransactions").await;
    let without = read(app.get("/report/v1/ledgertransactions", None, &[]).await).await;

    for r in [&with_token, &without] {
        let detail = problem(r, 410, "/report/v1/ledgertransactions");
        assert_eq!(
            detail,
            "/report/v1/ledgertransactions is retired: use /report/v2 and /settlement/v1"
        );
    }
}

#[tokio::test]
async fn an_unknown_path_is_a_404_problem() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let reader = merchant1_reader(&app, &w).await;

    for path in [
        "/report/v3/ledgers",
        "/report/v2/ledgers/100/funds",
        "/nothing-here",
    ] {
        let r = reader.get(&app, path).await;

        let detail = problem(&r, 404, path);
        assert_eq!(detail, "No such endpoint");
    }
}

// ---------------------------------------------------------------- access log

#[tokio::test]
async fn every_report_api_request_is_recorded_in_the_access_log() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let keys = app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant1))
        .await;
    let reader = Reader::miami(&app, &keys).await;

    let feed = reader.get(&app, FUNDS_100).await;
    let date = reader
        .get(&app, "/report/v2/ledgers/100/fees/dates/2024-04-04")
        .await;
    let list = reader.get(&app, "/settlement/v1/ledgers").await;
    let other = reader.get(&app, "/report/v2/ledgers/400/funds/feed").await;
    let named = reader
        .get_with(
            &app,
            "/report/v2/ledgers/200/funds/feed",
            &[("X-Request-Id", "client-chosen-id-1")],
        )
        .await;
    let anonymous = read(app.get(FUNDS_100, None, &[]).await).await;

    let log = app
        .store
        .access_log(&AccessLogFilter {
            limit: 100,
            ..AccessLogFilter::default()
        })
        .await
        .expect("log");
    // The listing is one record per ledger it returned: 100, 200 and 300, written in that order.
    assert_eq!(log.len(), 8, "{log:#?}");
    // Newest first.
    let expected = [
        (
            &anonymous,
            "/report/v2/ledgers/{ledger_id}/{topic}/feed",
            Some("100"),
            401,
            false,
        ),
        (
            &named,
            "/report/v2/ledgers/{ledger_id}/{topic}/feed",
            Some("200"),
            200,
            true,
        ),
        (
            &other,
            "/report/v2/ledgers/{ledger_id}/{topic}/feed",
            Some("400"),
            404,
            true,
        ),
        (&list, "/settlement/v1/ledgers", Some("300"), 200, true),
        (&list, "/settlement/v1/ledgers", Some("200"), 200, true),
        (&list, "/settlement/v1/ledgers", Some("100"), 200, true),
        (
            &date,
            "/report/v2/ledgers/{ledger_id}/{topic}/dates/{ledger_date}",
            Some("100"),
            200,
            true,
        ),
        (
            &feed,
            "/report/v2/ledgers/{ledger_id}/{topic}/feed",
            Some("100"),
            200,
            true,
        ),
    ];
    for (record, (res, endpoint, ledger, status, attributed)) in log.iter().zip(expected) {
        let r = &record.rec;
        assert_eq!(res.status, status, "{endpoint}");
        assert_eq!(r.endpoint, endpoint);
        assert_eq!(r.ledger_id.as_deref(), ledger, "{endpoint}");
        assert_eq!(r.status, status, "{endpoint}");
        assert_eq!(Some(&r.request_id), res.request_id.as_ref(), "{endpoint}");
        let words = match status {
            200 => "read",
            404 => "not found or not granted",
            _ => "invalid token",
        };
        assert_eq!(r.result, words, "{endpoint}");
        assert_eq!(record.at, "2024-04-05T12:00:00.000000Z");
        assert_eq!(r.partner_id, None);
        assert_eq!(r.msn, None);
        if attributed {
            assert_eq!(r.key_id, Some(keys.key_id), "{endpoint}");
            assert_eq!(r.key_kind, Some(KeyKind::MerchantLevel), "{endpoint}");
            assert_eq!(
                r.client_id.as_deref(),
                Some(keys.client_id.as_str()),
                "{endpoint}"
            );
            assert_eq!(r.merchant_id, Some(w.merchant1), "{endpoint}");
        } else {
            assert_eq!(
                (r.key_id, r.key_kind, r.client_id.as_deref(), r.merchant_id),
                (None, None, None, None)
            );
        }
    }
    assert_eq!(named.request_id.as_deref(), Some("client-chosen-id-1"));
    let ids: std::collections::HashSet<&str> =
        log.iter().map(|r| r.rec.request_id.as_str()).collect();
    assert_eq!(ids.len(), 6);
}

#[tokio::test]
async fn the_access_log_attributes_partner_and_sales_unit_reads_to_their_owners() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let acc = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(w.granted_partner))
        .await;
    let su = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;

    let by_partner = Reader::miami(&app, &acc).await.get(&app, FUNDS_100).await;
    let by_unit = Reader::standard(&app, &su).await.get(&app, FUNDS_100).await;

    let log = app
        .store
        .access_log(&AccessLogFilter {
            ledger_id: Some(lid("100")),
            limit: 10,
            ..AccessLogFilter::default()
        })
        .await
        .expect("log");
    assert_eq!(log.len(), 2);
    let (unit_rec, partner_rec) = (&log[0].rec, &log[1].rec);
    assert_eq!(Some(&unit_rec.request_id), by_unit.request_id.as_ref());
    assert_eq!(unit_rec.key_kind, Some(KeyKind::SalesUnit));
    assert_eq!(unit_rec.msn, Some(msn("123455")));
    assert_eq!(unit_rec.client_id.as_deref(), Some(su.client_id.as_str()));
    assert_eq!((unit_rec.partner_id, unit_rec.merchant_id), (None, None));
    assert_eq!(
        Some(&partner_rec.request_id),
        by_partner.request_id.as_ref()
    );
    assert_eq!(partner_rec.key_kind, Some(KeyKind::Accounting));
    assert_eq!(partner_rec.partner_id, Some(w.granted_partner));
    assert_eq!(
        partner_rec.client_id.as_deref(),
        Some(acc.client_id.as_str())
    );
    assert_eq!((partner_rec.msn, partner_rec.merchant_id), (None, None));
    let partner_log = app
        .store
        .access_log(&AccessLogFilter {
            partner_id: Some(w.granted_partner),
            limit: 10,
            ..AccessLogFilter::default()
        })
        .await
        .expect("log");
    assert_eq!(partner_log.len(), 1);
}

#[tokio::test]
async fn token_requests_are_not_report_api_requests_and_are_not_logged() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let k = app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant1))
        .await;

    let _ = app.miami_token(&k).await;
    let _ = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks");

    let log = app
        .store
        .access_log(&AccessLogFilter {
            limit: 10,
            ..AccessLogFilter::default()
        })
        .await
        .expect("log");
    assert_eq!(log, vec![]);
}

// ---------------------------------------------------------------- changes take effect at once

#[tokio::test]
async fn removing_a_grant_takes_effect_on_the_next_request() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let k = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(w.granted_partner))
        .await;
    let reader = Reader::miami(&app, &k).await;
    assert_eq!(reader.get(&app, FUNDS_100).await.status, 200);

    assert!(
        app.store
            .remove_grant(&by(), w.granted_partner, &lid("100"))
            .await
            .expect("remove")
    );
    let feed = reader.get(&app, FUNDS_100).await;
    let date = reader
        .get(&app, "/report/v2/ledgers/100/funds/dates/2024-04-04")
        .await;
    let list = reader.get(&app, "/settlement/v1/ledgers").await;
    let still_granted = reader.get(&app, "/report/v2/ledgers/200/funds/feed").await;

    assert_eq!(problem(&feed, 404, FUNDS_100), "No such ledgerId");
    assert_eq!(
        problem(&date, 404, "/report/v2/ledgers/100/funds/dates/2024-04-04"),
        "No such ledgerId"
    );
    assert_eq!(list.body, json!({"items": [ledger_200()], "cursor": ""}));
    assert_eq!(still_granted.status, 200);
}

#[tokio::test]
async fn suspending_the_partner_takes_effect_on_the_next_request() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let k = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(w.granted_partner))
        .await;
    let reader = Reader::miami(&app, &k).await;
    assert_eq!(reader.get(&app, FUNDS_100).await.status, 200);

    app.store
        .set_partner_state(&by(), w.granted_partner, PartnerState::Suspended)
        .await
        .expect("suspend");
    let feed = reader.get(&app, FUNDS_100).await;
    let list = reader.get(&app, "/settlement/v1/ledgers").await;

    for r in [&feed, &list] {
        assert_eq!(r.status, 401);
        assert_eq!(
            r.body,
            serde_json::from_str::<Value>(UNAUTHORIZED).expect("json")
        );
    }
}

#[tokio::test]
async fn regenerating_a_secret_kills_the_old_tokens_at_once_and_the_new_secret_works() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let old = app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant1))
        .await;
    let reader = Reader::miami(&app, &old).await;
    assert_eq!(reader.get(&app, FUNDS_100).await.status, 200);

    let (_, secret) =
        ledgerport_server::credentials::regenerate_secret(app.store.as_ref(), &by(), old.key_id)
            .await
            .expect("regenerate");
    let old_token = reader.get(&app, FUNDS_100).await;
    let old_secret = app
        .miami_token_raw(&old.client_id, &old.secret, "grant_type=client_credentials")
        .await;
    let new_keys = Keys {
        secret: secret.reveal().to_owned(),
        ..old.clone()
    };
    let new_reader = Reader::miami(&app, &new_keys).await;
    let new_token = new_reader.get(&app, FUNDS_100).await;

    assert_eq!(old_token.status, 401);
    assert_eq!(
        old_token.body,
        serde_json::from_str::<Value>(UNAUTHORIZED).expect("json")
    );
    assert_eq!(old_secret.status(), 401);
    assert_eq!(new_token.status, 200);
    assert_eq!(items(&new_token), funds_100()[0..3]);
}

#[tokio::test]
async fn regenerating_a_sales_unit_secret_kills_its_standard_tokens_at_once() {
    let app = TestApp::start().await;
    world(&app).await;
    let old = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;
    let reader = Reader::standard(&app, &old).await;
    assert_eq!(reader.get(&app, FUNDS_100).await.status, 200);

    let (_, secret) =
        ledgerport_server::credentials::regenerate_secret(app.store.as_ref(), &by(), old.key_id)
            .await
            .expect("regenerate");
    let old_token = reader.get(&app, FUNDS_100).await;
    let old_secret = app
        .standard_token_raw(&[
            ("client_id", &old.client_id),
            ("client_secret", &old.secret),
            (
                "Ocp-Apim-Subscription-Key",
                old.subscription_key.as_deref().expect("sk"),
            ),
        ])
        .await;
    let new_reader = Reader::standard(
        &app,
        &Keys {
            secret: secret.reveal().to_owned(),
            ..old.clone()
        },
    )
    .await;

    assert_eq!(old_token.status, 401);
    assert_eq!(old_secret.status(), 400);
    assert_eq!(new_reader.get(&app, FUNDS_100).await.status, 200);
}

#[tokio::test]
async fn a_standard_token_needs_its_own_subscription_key_on_report_calls() {
    let app = TestApp::start().await;
    world(&app).await;
    let k = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;
    let other = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("222222")))
        .await;
    let token = app.standard_token(&k).await;

    let without = read(app.get(FUNDS_100, Some(&token), &[]).await).await;
    let foreign = read(
        app.get(
            FUNDS_100,
            Some(&token),
            &[(
                "Ocp-Apim-Subscription-Key",
                other.subscription_key.as_deref().expect("sk"),
            )],
        )
        .await,
    )
    .await;
    let own_msn = read(
        app.get(
            FUNDS_100,
            Some(&token),
            &[
                (
                    "Ocp-Apim-Subscription-Key",
                    k.subscription_key.as_deref().expect("sk"),
                ),
                ("Merchant-Serial-Number", "123455"),
            ],
        )
        .await,
    )
    .await;

    assert_eq!(without.status, 401);
    assert_eq!(without.body["statusCode"], 401);
    assert_eq!(foreign.status, 401);
    assert_eq!(foreign.body["statusCode"], 401);
    assert_eq!(own_msn.status, 200);
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem() {
    let app = TestApp::start().await;
    let res = app
        .http
        .get(app.url("/accesstoken/get"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["status"], 405);
    assert_eq!(body["instance"], "/accesstoken/get");
}

#[tokio::test]
async fn a_server_error_is_opaque_and_carries_the_request_id_as_context_id() {
    // Arrange: a server on a database file whose ledgers table then disappears behind its back.
    let path = std::env::temp_dir().join(format!("ledgerport-500-{}.db", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}", path.display());
    let clock = std::sync::Arc::new(ledgerport_core::clock::ManualClock::new(
        common::START.parse().expect("start"),
    ));
    let store = ledgerport_store::sqlite::SqliteStore::open(&url, clock.clone())
        .await
        .expect("store");
    let app = TestApp::start_on(std::sync::Arc::new(store), clock, ServerConfig::default()).await;
    let w = world(&app).await;
    let keys = app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant1))
        .await;
    let token = app.miami_token(&keys).await;
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("connect");
    sqlx::raw_sql("PRAGMA foreign_keys = OFF; DROP TABLE ledger_units; DROP TABLE grants; DROP TABLE entries; DROP TABLE ledgers;")
        .execute(&mut conn)
        .await
        .expect("drop");

    // Act
    let res = app
        .http
        .get(app.url("/settlement/v1/ledgers"))
        .header("Authorization", format!("Bearer {token}"))
        .header("X-Request-Id", "req-0001")
        .send()
        .await
        .expect("request");

    // Assert: 500, the request id as contextId, and nothing of the cause in the body.
    assert_eq!(res.status(), 500);
    assert_eq!(res.headers()["x-request-id"], "req-0001");
    let text = res.text().await.expect("body");
    let body: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(body["errorCode"], 10001);
    assert_eq!(body["contextId"], "req-0001");
    for leak in ["ledgers", "sqlite", "SQL", "table"] {
        assert!(!text.contains(leak), "500 body reveals {leak}: {text}");
    }
    for suffix in ledgerport_store::sqlite::access_log::FILE_SUFFIXES {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// A read waits until its access-log row is committed. On a SQLite file that row goes into the
/// access log's own database file, so a read is answered while another writer holds the ledger
/// database's write lock (as an ingestion batch does for tens of milliseconds), and its row is
/// there afterwards.
#[tokio::test]
async fn a_read_is_answered_and_logged_while_another_writer_holds_the_ledger_database() {
    // Arrange: a server on a database file; a connection of its own holds the write lock.
    let path = std::env::temp_dir().join(format!("ledgerport-busy-{}.db", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}", path.display());
    let clock = std::sync::Arc::new(ledgerport_core::clock::ManualClock::new(
        common::START.parse().expect("start"),
    ));
    let store = ledgerport_store::sqlite::SqliteStore::open(&url, clock.clone())
        .await
        .expect("store");
    let app = TestApp::start_on(std::sync::Arc::new(store), clock, ServerConfig::default()).await;
    let w = world(&app).await;
    let reader = merchant1_reader(&app, &w).await;
    let mut writer = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("connect");
    sqlx::raw_sql("BEGIN IMMEDIATE; INSERT INTO leases (name, holder, expires_at) VALUES ('held', 'test', 0);")
        .execute(&mut writer)
        .await
        .expect("write lock");

    // Act
    let answered = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        reader.get(&app, FUNDS_100),
    )
    .await;
    sqlx::raw_sql("COMMIT")
        .execute(&mut writer)
        .await
        .expect("commit");

    // Assert
    let r = answered.expect("the read waited for the ledger database's writer");
    assert_eq!(r.status, 200, "{}", r.body);
    let log = app
        .store
        .access_log(&AccessLogFilter {
            limit: 10,
            ..AccessLogFilter::default()
        })
        .await
        .expect("log");
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(log[0].rec.request_id, r.request_id.expect("request id"));
    assert_eq!(log[0].rec.status, 200);
    drop(app);
    for suffix in ledgerport_store::sqlite::access_log::FILE_SUFFIXES {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// Service keys post payment events and never get a token. A token that names one anyway,
/// signed with the server's real key (as a leaked signing key or a bug in issuance would make
/// it), is bad credentials like any other: 401, not a server error.
#[tokio::test]
async fn a_token_naming_a_service_key_is_unauthorized() {
    let app = TestApp::start().await;
    world(&app).await;
    let service = app.service_keys().await;
    let key = app
        .store
        .key(service.key_id)
        .await
        .expect("read key")
        .expect("service key");
    let (token, _) = app.state.tokens.issue(&key, 300).expect("sign");

    for path in [
        "/settlement/v1/ledgers",
        FUNDS_100,
        "/report/v2/ledgers/100/funds/dates/2024-04-04",
    ] {
        let res = read(app.get(path, Some(&token), &[]).await).await;
        assert_eq!(res.status, 401, "{path}: {}", res.body);
        assert_eq!(
            res.body,
            serde_json::from_str::<Value>(UNAUTHORIZED).expect("json"),
            "{path}"
        );
    }
}

/// Integration and management keys may never read: the answer is 403 before anything else of
/// the request is looked at, whatever the path and query hold.
#[tokio::test]
async fn keys_that_may_never_read_get_403_whatever_the_request_holds() {
    let app = TestApp::start().await;
    world(&app).await;
    let integrator = common::partner(
        app.store.as_ref(),
        "Kassa AS",
        ledgerport_core::world::PartnerKind::Integration,
        true,
    )
    .await;
    let int = app
        .issue(KeyKind::Integration, KeyOwner::Partner(integrator))
        .await;
    let manager = common::partner(
        app.store.as_ref(),
        "Management AS",
        ledgerport_core::world::PartnerKind::Management,
        true,
    )
    .await;
    let mgmt = app
        .issue(KeyKind::Management, KeyOwner::Partner(manager))
        .await;
    let readers = [
        Reader::standard(&app, &int).await,
        Reader::miami(&app, &mgmt).await,
    ];

    for reader in &readers {
        for path in [
            "/settlement/v1/ledgers?settlesForRecipientHandles=not-a-handle",
            "/report/v2/ledgers/100/funds/feed?cursor=not-a-cursor",
            "/report/v2/ledgers/100/nope/feed",
            "/report/v2/ledgers/100/funds/dates/not-a-date",
            "/report/v2/ledgers/999/funds/feed",
            "/report/v2/ledgers/not-an-id/funds/feed",
        ] {
            let res = reader.get(&app, path).await;
            problem(&res, 403, path.split('?').next().unwrap_or(path));
        }
    }
}
