//! The access log as merchants and partners read it in the portal: each request described by
//! whose credentials, ledger, topic, date or feed page and result; refusals attributed honestly;
//! requests without credentials counted, not listed; the CSV export; and pruning by retention.

mod common;

use common::{Keys, TestApp, by, world};
use jiff::SignedDuration;
use ledgerport_core::world::{KeyKind, KeyOwner};
use ledgerport_server::ServerConfig;
use ledgerport_server::portal::auth::hash_password;
use ledgerport_store::{AccessLogFilter, NewPortalUser, PortalRole};
use std::collections::HashMap;

const PW: &str = "correct horse battery";

/// A signed-in portal user: a cookie-keeping client.
struct Visitor<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

impl<'a> Visitor<'a> {
    async fn signed_in(app: &'a TestApp, email: &str, role: PortalRole) -> Visitor<'a> {
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
        let mut v = Visitor {
            app,
            http: ledgerport_server::http::client_builder()
                .expect("an HTTP client builder")
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: HashMap::new(),
        };
        let (_, form) = v.get("/portal/sign-in").await;
        let marker = "name=\"csrf\" value=\"";
        let at = form.find(marker).expect("csrf field") + marker.len();
        let csrf = form[at..].split('"').next().expect("token").to_owned();
        let body = serde_urlencoded::to_string([
            ("csrf", csrf.as_str()),
            ("email", email),
            ("password", PW),
        ])
        .expect("form");
        let r = v
            .http
            .post(app.url("/portal/sign-in"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        let (status, _) = v.send(r).await;
        assert_eq!(status, 303, "sign-in of {email}");
        v
    }

    async fn send(&mut self, r: reqwest::RequestBuilder) -> (u16, String) {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let res = r.header("Cookie", cookie).send().await.expect("request");
        for c in res.headers().get_all("set-cookie") {
            let c = c.to_str().expect("ascii");
            if let Some((k, v)) = c.split(';').next().and_then(|p| p.split_once('=')) {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        (
            res.status().as_u16(),
            res.text()
                .await
                .expect("body")
                .replace("&#x27;", "'")
                .replace("&#39;", "'"),
        )
    }

    async fn get(&mut self, path: &str) -> (u16, String) {
        let r = self.http.get(self.app.url(path));
        self.send(r).await
    }

    async fn page(&mut self, path: &str) -> String {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }
}

/// GET a Report API path as these keys (Miami token; a sales unit's standard token with its
/// subscription key); returns the status and the JSON body.
async fn read(app: &TestApp, k: &Keys, path: &str) -> (u16, serde_json::Value) {
    let (token, headers) = match &k.subscription_key {
        Some(sk) => (
            app.standard_token(k).await,
            vec![("Ocp-Apim-Subscription-Key", sk.as_str())],
        ),
        None => (app.miami_token(k).await, vec![]),
    };
    let res = app.get(path, Some(&token), &headers).await;
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

#[tokio::test]
async fn the_merchant_reads_each_request_on_its_ledgers_in_its_own_words_and_exports_them() {
    // Arrange: a partner reads a date page, two feed pages and the listing; another merchant's
    // keys, the merchant's own sales unit and a bad token try ledger 100.
    let app = TestApp::start().await;
    let w = world(&app).await;
    let partner = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(w.granted_partner))
        .await;
    let other = app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant2))
        .await;
    let unit = app
        .issue(
            KeyKind::SalesUnit,
            KeyOwner::SalesUnit(common::msn("123455")),
        )
        .await;
    let (s1, _) = read(
        &app,
        &partner,
        "/report/v2/ledgers/100/fees/dates/2024-04-04?includeGDPRSensitiveData=true",
    )
    .await;
    let (s2, first) = read(&app, &partner, "/report/v2/ledgers/100/funds/feed").await;
    let cursor = first["cursor"].as_str().expect("cursor").to_owned();
    let (s3, _) = read(
        &app,
        &partner,
        &format!("/report/v2/ledgers/100/funds/feed?cursor={cursor}"),
    )
    .await;
    let (s4, listing) = read(&app, &partner, "/settlement/v1/ledgers").await;
    let (s5, _) = read(&app, &other, "/report/v2/ledgers/100/funds/feed").await;
    let (s6, _) = read(&app, &unit, "/report/v2/ledgers/100/funds/feed").await;
    let bad = app
        .get(
            "/report/v2/ledgers/100/funds/feed",
            Some("not-a-token"),
            &[],
        )
        .await;
    assert_eq!(
        (s1, s2, s3, s4, s5, s6, bad.status().as_u16()),
        (200, 200, 200, 200, 404, 200, 401)
    );
    assert_eq!(listing["items"].as_array().map(Vec::len), Some(2));
    let mut merchant =
        Visitor::signed_in(&app, "owner@acme.test", PortalRole::Merchant(w.merchant1)).await;

    // Act
    let page = merchant.page("/portal/merchant/access-log").await;
    let only_200 = merchant
        .page("/portal/merchant/access-log?ledger=200")
        .await;
    let (csv_status, csv) = merchant.get("/portal/merchant/access-log.csv").await;
    let (_, csv_200) = merchant
        .get("/portal/merchant/access-log.csv?ledger=200&from=2024-04-05&to=2024-04-05")
        .await;
    let (_, csv_none) = merchant
        .get("/portal/merchant/access-log.csv?from=2024-04-06")
        .await;
    let (bad_status, _) = merchant.get("/portal/merchant/access-log?ledger=400").await;

    // Assert: the page.
    let named = format!("Granted Regnskap, key {}", partner.client_id);
    assert!(page.contains(&named), "{page}");
    assert!(page.contains("feed, first page"), "{page}");
    assert!(page.contains("feed, after entry 3"), "{page}");
    assert!(page.contains("ledger listing"), "{page}");
    assert!(page.contains("2024-04-04"), "{page}");
    assert!(page.contains("asked, given"), "{page}");
    assert!(page.contains("another organisation's keys"), "{page}");
    assert!(
        !page.contains("Other AS"),
        "another merchant is never named"
    );
    assert!(page.contains("refused: no access to this ledger"), "{page}");
    assert!(
        page.contains("your sales unit's keys (MSN 123455"),
        "{page}"
    );
    assert!(
        !page.contains("not-a-token") && !page.contains("invalid token"),
        "no row for a request without credentials"
    );
    assert!(
        page.contains("1 requests without valid credentials"),
        "{page}"
    );
    assert_eq!(only_200.matches(&named).count(), 1, "{only_200}");
    assert!(only_200.contains("ledger listing"));
    assert_eq!(bad_status, 400, "another merchant's ledger is no filter");

    // Assert: the CSV, newest first, one line per authenticated request on ACME's ledgers (the
    // listing twice: ledgers 100 and 200).
    assert_eq!(csv_status, 200);
    let lines: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert_eq!(
        lines[0],
        "time,credentials,ledgerId,topic,dateOrPage,personalData,result,status,endpoint,requestId"
    );
    assert_eq!(lines.len(), 1 + 7, "{csv}");
    let at = "2024-04-05T12:00:00.000000Z";
    let cid = &partner.client_id;
    let expected_starts = [
        "MSN 123455".to_owned(),
        format!(
            "{at},another organisation's keys,100,funds,\"feed, first page\",,refused: no access to this ledger,404,"
        ),
        format!("{at},\"Granted Regnskap, key {cid}\",200,,ledger listing,,read,200,"),
        format!("{at},\"Granted Regnskap, key {cid}\",100,,ledger listing,,read,200,"),
        format!(
            "{at},\"Granted Regnskap, key {cid}\",100,funds,\"feed, after entry 3\",,read,200,"
        ),
        format!("{at},\"Granted Regnskap, key {cid}\",100,funds,\"feed, first page\",,read,200,"),
        format!(
            "{at},\"Granted Regnskap, key {cid}\",100,fees,2024-04-04,\"asked, given\",read,200,"
        ),
    ];
    for (line, start) in lines[1..].iter().zip(&expected_starts[..]) {
        if start.contains("MSN 123455") {
            // The unit's name, whatever the test world calls it, follows the MSN.
            assert!(
                line.starts_with(&format!("{at},\"your sales unit's keys (MSN 123455")),
                "{line}"
            );
            assert!(
                line.contains(",100,funds,\"feed, first page\",,read,200,"),
                "{line}"
            );
        } else {
            assert!(line.starts_with(start.as_str()), "{line}\n  wanted {start}");
        }
    }
    let lines_200: Vec<&str> = csv_200.split_terminator("\r\n").collect();
    assert_eq!(lines_200.len(), 2, "{csv_200}");
    assert!(lines_200[1].contains(",200,,ledger listing,"));
    assert_eq!(
        csv_none.split_terminator("\r\n").count(),
        1,
        "only the header"
    );
}

#[tokio::test]
async fn a_partner_sees_its_own_keys_reads_and_no_one_elses() {
    // Arrange
    let app = TestApp::start().await;
    let w = world(&app).await;
    let partner = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(w.granted_partner))
        .await;
    let other = app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant2))
        .await;
    read(&app, &partner, "/report/v2/ledgers/100/funds/feed").await;
    read(&app, &partner, "/report/v2/ledgers/400/funds/feed").await;
    read(&app, &other, "/report/v2/ledgers/400/funds/feed").await;
    let mut v = Visitor::signed_in(
        &app,
        "books@regnskap.test",
        PortalRole::Partner(w.granted_partner),
    )
    .await;

    // Act
    let page = v.page("/portal/partner/access-log").await;
    let (status, csv) = v.get("/portal/partner/access-log.csv").await;
    let (merchant_page, _) = v.get("/portal/merchant/access-log").await;

    // Assert
    let key = format!("key {}", partner.client_id);
    assert_eq!(page.matches(&key).count(), 2, "{page}");
    assert!(page.contains("not found or not granted"), "{page}");
    assert!(!page.contains(&other.client_id));
    assert!(
        !page.contains("Other AS"),
        "a refused ledger's owner is not told"
    );
    assert_eq!(status, 200);
    let lines: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines[1].contains(&format!(",{key},400,funds,")),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains(&format!(",{key},100,funds,")),
        "{}",
        lines[2]
    );
    assert_eq!(merchant_page, 403, "a partner user has no merchant page");
}

#[tokio::test]
async fn rows_older_than_the_retention_are_pruned_at_the_boundary() {
    // Arrange: one read now (START), retention 10 days.
    let app = TestApp::start_with(ServerConfig {
        close_interval: None,
        access_log_retention_days: 10,
        ..ServerConfig::default()
    })
    .await;
    let w = world(&app).await;
    let partner = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(w.granted_partner))
        .await;
    read(&app, &partner, "/report/v2/ledgers/100/funds/feed").await;
    let count = || async {
        app.store
            .access_log(&AccessLogFilter {
                limit: 100,
                ..AccessLogFilter::default()
            })
            .await
            .expect("log")
            .len()
    };
    assert_eq!(count().await, 1);

    // Act: exactly ten days later the row is kept; a microsecond after, it goes.
    app.clock.advance(SignedDuration::from_hours(240));
    let at_the_boundary = ledgerport_server::prune_access_log(&app.state)
        .await
        .expect("prune");
    let kept = count().await;
    app.clock.advance(SignedDuration::from_micros(1));
    let past_it = ledgerport_server::prune_access_log(&app.state)
        .await
        .expect("prune");

    // Assert
    assert_eq!((at_the_boundary, kept), (0, 1));
    assert_eq!(past_it, 1);
    assert_eq!(count().await, 0);
}

#[tokio::test]
async fn a_retention_of_zero_keeps_every_row() {
    let app = TestApp::start_with(ServerConfig {
        close_interval: None,
        access_log_retention_days: 0,
        ..ServerConfig::default()
    })
    .await;
    let w = world(&app).await;
    let partner = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(w.granted_partner))
        .await;
    read(&app, &partner, "/report/v2/ledgers/100/funds/feed").await;
    app.clock.advance(SignedDuration::from_hours(24 * 10_000));

    let pruned = ledgerport_server::prune_access_log(&app.state)
        .await
        .expect("prune");

    assert_eq!(pruned, 0);
}
