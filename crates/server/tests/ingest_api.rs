//! `POST /ingest/v1/events`: payment events posted by the operator's payment systems
//! become ledger entries that the Report API serves; bad events are rejected naming their field
//! while the rest of the batch is applied; posting again changes nothing and answers the same.

mod common;

use common::{Keys, TestApp, by, ledger_with_fees, lid, merchant, unit};
use jiff::Timestamp;
use ledgerport_core::access::{self, Principal};
use ledgerport_core::clock::Clock;
use ledgerport_core::ids::Topic;
use ledgerport_core::world::{KeyKind, KeyOwner, PartnerKind, RowId};
use ledgerport_server::ServerConfig;
use serde_json::{Value, json};

const UNAUTHORIZED: &str = r#"{"code":"Unauthorized","message":"Please check your API keys"}"#;

/// When events are posted: the evening of 2022-10-01 (Oslo), a date still open.
const EVENING: &str = "2022-10-01T20:00:00Z";
/// The next morning: 2022-10-01 has passed and may be closed.
const NEXT_MORNING: &str = "2022-10-02T10:00:00Z";

fn t(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

/// A response, read.
struct Res {
    status: u16,
    content_type: String,
    text: String,
    body: Value,
}

async fn read(res: reqwest::Response) -> Res {
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_default();
    let text = res.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Res {
        status,
        content_type,
        text,
        body,
    }
}

/// The world of these tests, at [`EVENING`]:
/// - merchant ACME (NO 987654321): api unit 123455 on ledger 12345 (fixed fee 400 per capture,
///   0 bp); vm-number unit 223344 (`NO:57860`) on ledger 500 (no fees); api unit 654321 on no
///   ledger;
/// - operator service keys and ACME's merchant-level keys.
struct World {
    app: TestApp,
    merchant: RowId,
    service: Keys,
}

async fn world() -> World {
    let app = TestApp::start().await;
    app.clock.set(t(EVENING));
    let s = app.store.as_ref();
    let m = merchant(s, "987654321", "ACME AS").await;
    unit(s, m, "123455", None).await;
    unit(s, m, "223344", Some("57860")).await;
    unit(s, m, "654321", None).await;
    ledger_with_fees(s, "12345", m, &["123455"], 0, 400).await;
    ledger_with_fees(s, "500", m, &["223344"], 0, 0).await;
    let service = app.service_keys().await;
    World {
        app,
        merchant: m,
        service,
    }
}

/// One event in the wire shape.
fn ev(id: &str, kind: &str, msn: &str, psp: &str, amount: i64, time: &str) -> Value {
    json!({
        "eventId": id, "type": kind, "msn": msn, "pspReference": psp,
        "reference": format!("purchase-{psp}"), "amount": amount, "currency": "NOK", "time": time,
    })
}

fn batch(events: Vec<Value>) -> Value {
    json!({ "events": events })
}

fn accepted(id: &str, ledger: &str, entries: u32) -> Value {
    json!({"eventId": id, "status": "accepted", "ledgerId": ledger, "entries": entries})
}

fn rejected(id: Option<&str>, field: &str, reason: &str) -> Value {
    json!({"eventId": id, "status": "rejected", "field": field, "reason": reason})
}

/// The worked example as events: captures 10000, 10000, 20000 and a refund of 10000
/// on ledger 12345's date 2022-10-01.
fn worked_example() -> Value {
    batch(vec![
        ev(
            "e-1",
            "capture",
            "123455",
            "1001",
            10000,
            "2022-10-01T08:00:00.824993Z",
        ),
        ev(
            "e-2",
            "capture",
            "123455",
            "1002",
            10000,
            "2022-10-01T09:00:00Z",
        ),
        ev(
            "e-3",
            "capture",
            "123455",
            "1003",
            20000,
            "2022-10-01T10:00:00Z",
        ),
        ev(
            "e-4",
            "refund",
            "123455",
            "1003",
            10000,
            "2022-10-01T11:00:00Z",
        ),
    ])
}

/// Every entry of a ledger's topic, in feed order, straight from the store.
async fn entries(app: &TestApp, ledger: &str, topic: Topic) -> Vec<(String, i64)> {
    let (access, _) = access::open(
        &Principal::Operator { user_id: None },
        app.store.ledger(&lid(ledger)).await.expect("read ledger"),
    )
    .expect("the operator reads every ledger");
    app.store
        .feed_page(&access, topic, 0, 100_000)
        .await
        .expect("feed")
        .into_iter()
        .map(|e| (e.entry_type, e.amount))
        .collect()
}

/// A Report API date page read with the merchant's own merchant-level keys.
async fn date_page(w: &World, ledger: &str, topic: &str, date: &str, query: &str) -> Res {
    let keys = w
        .app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant))
        .await;
    let token = w.app.miami_token(&keys).await;
    read(
        w.app
            .get(
                &format!("/report/v2/ledgers/{ledger}/{topic}/dates/{date}{query}"),
                Some(&token),
                &[],
            )
            .await,
    )
    .await
}

/// An entry as the Report API shows it.
fn entry(
    psp: &str,
    time: &str,
    entry_type: &str,
    reference: &str,
    amount: i64,
    before: i64,
    handle: &str,
) -> Value {
    json!({
        "pspReference": psp, "time": time, "ledgerDate": "2022-10-01", "entryType": entry_type,
        "reference": reference, "currency": "NOK", "amount": amount,
        "balanceBefore": before, "balanceAfter": before + amount, "recipientHandle": handle,
    })
}

// ------------------------------------------------------------------ the worked example

#[tokio::test]
async fn the_worked_example_posted_as_events_is_settled_and_paid_out_as_spec_says() {
    // Arrange
    let w = world().await;

    // Act: post the day's events in the evening, close the date the next morning.
    let posted = read(w.app.post_events(&w.service, &worked_example()).await).await;
    w.app.clock.set(t(NEXT_MORNING));
    let closed = w
        .app
        .store
        .close_due(&lid("12345"), w.app.clock.now())
        .await
        .expect("close");

    // Assert: every event accepted onto ledger 12345 (a capture is two entries: it and its fee).
    assert_eq!(posted.status, 200, "{}", posted.text);
    assert_eq!(posted.content_type, "application/json");
    assert_eq!(
        posted.body,
        json!({
            "results": [
                accepted("e-1", "12345", 2),
                accepted("e-2", "12345", 2),
                accepted("e-3", "12345", 2),
                accepted("e-4", "12345", 1),
            ],
            "accepted": 4,
            "rejected": 0,
        })
    );
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].payout, Some((2_000_001, 28_800)));
    assert_eq!(closed[0].fees, 1200);

    // Assert: the funds date, through the Report API.
    let end = "2022-10-01T21:59:59.999999Z";
    let funds = date_page(&w, "12345", "funds", "2022-10-01", "").await;
    assert_eq!(funds.status, 200, "{}", funds.text);
    assert_eq!(
        funds.body,
        json!({
            "items": [
                entry("1001", "2022-10-01T08:00:00.824993Z", "capture", "purchase-1001", 10000, 0, "api:123455"),
                entry("1002", "2022-10-01T09:00:00.000000Z", "capture", "purchase-1002", 10000, 10000, "api:123455"),
                entry("1003", "2022-10-01T10:00:00.000000Z", "capture", "purchase-1003", 20000, 20000, "api:123455"),
                entry("1003", "2022-10-01T11:00:00.000000Z", "refund", "purchase-1003", -10000, 40000, "api:123455"),
                entry("12345-2022-10-01", end, "fees-retained", "12345-2022-10-01", -1200, 30000, ""),
                entry("12345-2000001", end, "payout-scheduled", "Utb. 2000001 Vippsnr 123455", -28800, 28800, ""),
            ],
            "hasMore": false,
            "tryLater": false,
        })
    );

    // Assert: the fees date: a fee of 400 per capture, then the fees retained from the funds.
    let fees = date_page(&w, "12345", "fees", "2022-10-01", "").await;
    assert_eq!(fees.status, 200, "{}", fees.text);
    assert_eq!(
        fees.body,
        json!({
            "items": [
                entry("1001", "2022-10-01T08:00:00.824993Z", "capture-fee", "purchase-1001", -400, 0, "api:123455"),
                entry("1002", "2022-10-01T09:00:00.000000Z", "capture-fee", "purchase-1002", -400, -400, "api:123455"),
                entry("1003", "2022-10-01T10:00:00.000000Z", "capture-fee", "purchase-1003", -400, -800, "api:123455"),
                entry("12345-2022-10-01", end, "fees-retained", "12345-2022-10-01", 1200, -1200, ""),
            ],
            "hasMore": false,
            "tryLater": false,
        })
    );
}

#[tokio::test]
async fn events_posted_on_an_open_date_are_readable_at_once_with_try_later() {
    // Arrange
    let w = world().await;

    // Act
    let posted = w.app.post_events(&w.service, &worked_example()).await;
    let funds = date_page(&w, "12345", "funds", "2022-10-01", "").await;

    // Assert: the four payment entries so far, and the date still open.
    assert_eq!(posted.status(), 200);
    assert_eq!(funds.body["tryLater"], true);
    let types: Vec<(&str, i64)> = funds.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| {
            (
                e["entryType"].as_str().expect("type"),
                e["balanceAfter"].as_i64().expect("balance"),
            )
        })
        .collect();
    assert_eq!(
        types,
        vec![
            ("capture", 10000),
            ("capture", 20000),
            ("capture", 40000),
            ("refund", 30000)
        ]
    );
}

// ------------------------------------------------------------------ idempotency

#[tokio::test]
async fn posting_the_same_batch_again_answers_the_same_body_and_writes_nothing() {
    // Arrange: the worked example plus one event the engine rejects.
    let w = world().await;
    let mut body = worked_example();
    body["events"].as_array_mut().expect("events").push(ev(
        "e-5",
        "refund",
        "123455",
        "1001",
        50000,
        "2022-10-01T12:00:00Z",
    ));
    let first = read(w.app.post_events(&w.service, &body).await).await;
    let funds = entries(&w.app, "12345", Topic::Funds).await;
    let fees = entries(&w.app, "12345", Topic::Fees).await;

    // Act
    let second = read(w.app.post_events(&w.service, &body).await).await;

    // Assert: byte for byte the same answer, and not one entry more.
    assert_eq!(first.status, 200);
    assert_eq!(first.body["accepted"], 4);
    assert_eq!(first.body["rejected"], 1);
    assert_eq!(second.status, 200);
    assert_eq!(second.text, first.text);
    assert_eq!(funds.len(), 4);
    assert_eq!(fees.len(), 3);
    assert_eq!(entries(&w.app, "12345", Topic::Funds).await, funds);
    assert_eq!(entries(&w.app, "12345", Topic::Fees).await, fees);
}

#[tokio::test]
async fn a_refund_rejected_before_its_capture_stays_rejected_when_the_batch_is_posted_again() {
    // Arrange: the refund comes first in the batch, so its capture is not there yet.
    let w = world().await;
    let body = batch(vec![
        ev(
            "r-1",
            "refund",
            "123455",
            "7001",
            5000,
            "2022-10-01T10:00:00Z",
        ),
        ev(
            "c-1",
            "capture",
            "123455",
            "7001",
            10000,
            "2022-10-01T09:00:00Z",
        ),
    ]);
    let first = read(w.app.post_events(&w.service, &body).await).await;

    // Act
    let second = read(w.app.post_events(&w.service, &body).await).await;

    // Assert: the refund answers as the first time and is still not applied.
    let expected = json!({
        "results": [
            rejected(Some("r-1"), "pspReference", "no capture with this pspReference on the ledger"),
            accepted("c-1", "12345", 2),
        ],
        "accepted": 1,
        "rejected": 1,
    });
    assert_eq!(first.body, expected);
    assert_eq!(second.body, expected);
    assert_eq!(
        entries(&w.app, "12345", Topic::Funds).await,
        vec![("capture".to_owned(), 10000)]
    );
}

#[tokio::test]
async fn an_event_id_repeated_within_a_batch_is_applied_once_and_answered_alike() {
    // Arrange
    let w = world().await;
    let capture = ev(
        "e-1",
        "capture",
        "123455",
        "1001",
        10000,
        "2022-10-01T08:00:00Z",
    );

    // Act
    let res = read(
        w.app
            .post_events(&w.service, &batch(vec![capture.clone(), capture]))
            .await,
    )
    .await;

    // Assert
    assert_eq!(
        res.body,
        json!({
            "results": [accepted("e-1", "12345", 2), accepted("e-1", "12345", 2)],
            "accepted": 2,
            "rejected": 0,
        })
    );
    assert_eq!(
        entries(&w.app, "12345", Topic::Funds).await,
        vec![("capture".to_owned(), 10000)]
    );
}

// ------------------------------------------------------------------ money moving back

#[tokio::test]
async fn a_dispute_never_retained_and_a_payout_never_made_are_refused_and_credit_nothing() {
    // Arrange: 10,000 captured.
    let w = world().await;
    let capture = ev(
        "c-1",
        "capture",
        "123455",
        "1001",
        10000,
        "2022-10-01T08:00:00Z",
    );
    read(w.app.post_events(&w.service, &batch(vec![capture])).await).await;

    // Act: the attack, money "given back" that was never withheld or paid out.
    let body = batch(vec![
        ev(
            "x-1",
            "dispute-returned",
            "123455",
            "1001",
            5000,
            "2022-10-01T09:00:00Z",
        ),
        ev(
            "x-2",
            "payout-aborted",
            "123455",
            "12345-2000001",
            5000,
            "2022-10-01T09:00:00Z",
        ),
        ev(
            "c-2",
            "capture",
            "123455",
            "1002",
            500,
            "2022-10-01T09:00:00Z",
        ),
    ]);
    let first = read(w.app.post_events(&w.service, &body).await).await;
    let second = read(w.app.post_events(&w.service, &body).await).await;

    // Assert: both refused naming pspReference, the capture after them applied, nothing credited.
    let expected = json!({
        "results": [
            rejected(Some("x-1"), "pspReference", "no retained dispute with this pspReference on the ledger"),
            rejected(Some("x-2"), "pspReference", "no payout with this pspReference on the ledger (a payout's is <ledgerId>-<payoutNumber>)"),
            accepted("c-2", "12345", 2),
        ],
        "accepted": 1,
        "rejected": 2,
    });
    assert_eq!(first.status, 200);
    assert_eq!(first.body, expected);
    assert_eq!(second.body, expected);
    assert_eq!(
        entries(&w.app, "12345", Topic::Funds).await,
        vec![("capture".to_owned(), 10000), ("capture".to_owned(), 500)]
    );
}

#[tokio::test]
async fn a_refund_with_its_own_psp_reference_names_the_capture_it_refunds() {
    // Arrange: 10,000 captured as 1001.
    let w = world().await;
    let capture = ev(
        "c-1",
        "capture",
        "123455",
        "1001",
        10000,
        "2022-10-01T08:00:00Z",
    );
    read(w.app.post_events(&w.service, &batch(vec![capture])).await).await;
    let refund = |id: &str, own: &str, capture: &str, amount: i64| {
        let mut e = ev(id, "refund", "123455", own, amount, "2022-10-01T09:00:00Z");
        e["capturePspReference"] = json!(capture);
        e
    };

    // Act
    let body = batch(vec![
        refund("r-1", "rf-1", "1001", 4000),
        refund("r-2", "rf-2", "9999", 1),
        refund("r-3", "rf-3", "1001", 6001),
        refund("r-4", "rf-1", "1001", 1),
    ]);
    let first = read(w.app.post_events(&w.service, &body).await).await;
    let second = read(w.app.post_events(&w.service, &body).await).await;

    // Assert: the refund is booked under its own pspReference, limited by the capture it names.
    assert_eq!(first.status, 200);
    assert_eq!(first.body["results"][0], accepted("r-1", "12345", 1));
    let fields: Vec<&Value> = first.body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| &r["field"])
        .collect();
    assert_eq!(
        fields,
        vec![
            &Value::Null,
            &json!("capturePspReference"),
            &json!("amount"),
            &json!("pspReference")
        ]
    );
    assert_eq!(second.text, first.text);
    let page = date_page(&w, "12345", "funds", "2022-10-01", "").await;
    let items = page.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[1]["pspReference"], "rf-1");
    assert_eq!(items[1]["entryType"], "refund");
    assert_eq!(items[1]["amount"], -4000);
}

// ------------------------------------------------------------------ rejections

#[tokio::test]
async fn each_bad_event_is_rejected_naming_its_field_and_the_rest_of_the_batch_is_applied() {
    // Arrange
    let w = world().await;
    let at = "2022-10-01T12:00:00Z";
    let mut dkk = ev("e-currency", "capture", "123455", "1006", 100, at);
    dkk["currency"] = json!("DKK");
    let mut no_amount = ev("e-missing", "capture", "123455", "1010", 100, at);
    no_amount.as_object_mut().expect("object").remove("amount");
    let mut no_id = ev("ignored", "capture", "123455", "1011", 100, at);
    no_id.as_object_mut().expect("object").remove("eventId");
    let body = batch(vec![
        ev("e-first", "capture", "123455", "1001", 10000, at),
        ev("e-msn", "capture", "999999", "1002", 100, at),
        ev("e-dispute", "dispute-retained", "223344", "1003", 100, at),
        ev("e-zero", "capture", "123455", "1004", 0, at),
        ev("e-negative", "capture", "123455", "1005", -500, at),
        dkk,
        ev("e-refund-too-much", "refund", "123455", "1001", 20000, at),
        ev("e-refund-unknown", "refund", "123455", "4040", 100, at),
        ev(
            "e-future",
            "capture",
            "123455",
            "1008",
            100,
            "2022-10-02T00:00:00Z",
        ),
        ev("e-no-ledger", "capture", "654321", "1009", 100, at),
        no_amount,
        no_id,
        json!("not an event"),
        ev("e-last", "capture", "123455", "1012", 20000, at),
        ev("e-refund-ok", "refund", "123455", "1001", 2500, at),
    ]);

    // Act
    let res = read(w.app.post_events(&w.service, &body).await).await;

    // Assert: one result per event, in order; the good ones before and after the bad applied.
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        res.body,
        json!({
            "results": [
                accepted("e-first", "12345", 2),
                rejected(Some("e-msn"), "msn", "no sales unit has this MSN"),
                rejected(Some("e-dispute"), "type", "dispute-retained events exist only for api sales units"),
                rejected(Some("e-zero"), "amount", "a capture carries a positive amount of minor units"),
                rejected(Some("e-negative"), "amount", "a capture carries a positive amount of minor units"),
                rejected(Some("e-currency"), "currency", "DKK is not the currency of ledger 12345 (NOK)"),
                rejected(
                    Some("e-refund-too-much"),
                    "amount",
                    "refund of 20000 is more than what is left of the captures of this pspReference (10000)"
                ),
                rejected(Some("e-refund-unknown"), "pspReference", "no capture with this pspReference on the ledger"),
                rejected(Some("e-future"), "time", "lies in the future"),
                rejected(Some("e-no-ledger"), "msn", "the sales unit settles on no ledger"),
                rejected(
                    Some("e-missing"),
                    "amount",
                    "is required: must be an integer number of minor units (a JSON number without \
                     fraction, within ±9223372036854775807)"
                ),
                rejected(None, "eventId", "is required: a non-empty string of at most 128 characters"),
                rejected(None, "event", "must be a JSON object"),
                accepted("e-last", "12345", 2),
                accepted("e-refund-ok", "12345", 1),
            ],
            "accepted": 3,
            "rejected": 12,
        })
    );
    assert_eq!(
        entries(&w.app, "12345", Topic::Funds).await,
        vec![
            ("capture".to_owned(), 10000),
            ("capture".to_owned(), 20000),
            ("refund".to_owned(), -2500)
        ]
    );
    assert_eq!(
        entries(&w.app, "12345", Topic::Fees).await,
        vec![
            ("capture-fee".to_owned(), -400),
            ("capture-fee".to_owned(), -400)
        ]
    );
    assert_eq!(entries(&w.app, "500", Topic::Funds).await, vec![]);
}

#[tokio::test]
async fn an_event_a_few_minutes_ahead_of_the_clock_is_accepted_as_clock_skew() {
    // Arrange
    let w = world().await;

    // Act: 4 minutes 59 seconds ahead (the limit is 5 minutes).
    let res = read(
        w.app
            .post_events(
                &w.service,
                &batch(vec![ev(
                    "e-skew",
                    "capture",
                    "123455",
                    "1001",
                    100,
                    "2022-10-01T20:04:59Z",
                )]),
            )
            .await,
    )
    .await;

    // Assert
    assert_eq!(res.body["results"], json!([accepted("e-skew", "12345", 2)]));
}

// ------------------------------------------------------------------ GDPR fields

#[tokio::test]
async fn a_vm_number_capture_keeps_its_payer_for_readers_who_ask_for_gdpr_data() {
    // Arrange
    let w = world().await;
    let mut capture = ev(
        "vm-1",
        "capture",
        "223344",
        "5001",
        4000,
        "2022-10-01T08:00:00Z",
    );
    capture["payer"] =
        json!({"name": "Kari Nordmann", "message": "Kaffe", "maskedPhoneNo": "xxxx 1234"});
    let mut api_with_payer = ev(
        "api-1",
        "capture",
        "123455",
        "5002",
        4000,
        "2022-10-01T08:00:00Z",
    );
    api_with_payer["payer"] = capture["payer"].clone();

    // Act
    let res = read(
        w.app
            .post_events(&w.service, &batch(vec![capture, api_with_payer]))
            .await,
    )
    .await;
    let with = date_page(
        &w,
        "500",
        "funds",
        "2022-10-01",
        "?includeGDPRSensitiveData=true",
    )
    .await;
    let without = date_page(&w, "500", "funds", "2022-10-01", "").await;

    // Assert: only vm-number captures carry payers; they show only when asked for.
    assert_eq!(
        res.body["results"],
        json!([
            accepted("vm-1", "500", 1),
            rejected(
                Some("api-1"),
                "payer",
                "only captures of vm-number sales units carry payer details"
            ),
        ])
    );
    assert_eq!(
        with.body["items"],
        json!([{
            "pspReference": "5001", "time": "2022-10-01T08:00:00.000000Z", "ledgerDate": "2022-10-01",
            "entryType": "capture", "reference": "purchase-5001", "currency": "NOK", "amount": 4000,
            "balanceBefore": 0, "balanceAfter": 4000, "recipientHandle": "NO:57860",
            "name": "Kari Nordmann", "message": "Kaffe", "maskedPhoneNo": "xxxx 1234",
        }])
    );
    let item = without.body["items"][0].as_object().expect("item");
    assert_eq!(item["pspReference"], "5001");
    for gdpr in ["name", "message", "maskedPhoneNo"] {
        assert!(!item.contains_key(gdpr), "{gdpr} shown without asking");
    }
}

// ------------------------------------------------------------------ authentication

#[tokio::test]
async fn only_operator_service_keys_may_post_events() {
    // Arrange
    let w = world().await;
    let app = &w.app;
    let merchant_keys = app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant))
        .await;
    let unit_keys = app
        .issue(
            KeyKind::SalesUnit,
            KeyOwner::SalesUnit(common::msn("123455")),
        )
        .await;
    let partner = common::partner(
        app.store.as_ref(),
        "Regnskap AS",
        PartnerKind::Accounting,
        true,
    )
    .await;
    let accounting_keys = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(partner))
        .await;
    let revoked = app.service_keys().await;
    app.store
        .revoke_key(&by(), revoked.key_id)
        .await
        .expect("revoke");
    let token = app.miami_token(&merchant_keys).await;
    let body = worked_example().to_string();
    let s = &w.service;
    let basic = |id: &str, secret: &str| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    };
    let attempts: Vec<(&str, Option<String>)> = vec![
        ("no Authorization", None),
        (
            "wrong secret",
            Some(basic(&s.client_id, "lpsec_not-the-secret")),
        ),
        ("unknown client id", Some(basic("nobody", &s.secret))),
        ("empty secret", Some(basic(&s.client_id, ""))),
        (
            "not base64",
            Some(format!("Basic {}:{}", s.client_id, s.secret)),
        ),
        ("a bearer token", Some(format!("Bearer {token}"))),
        (
            "merchant-level keys",
            Some(basic(&merchant_keys.client_id, &merchant_keys.secret)),
        ),
        (
            "sales-unit keys",
            Some(basic(&unit_keys.client_id, &unit_keys.secret)),
        ),
        (
            "accounting keys",
            Some(basic(&accounting_keys.client_id, &accounting_keys.secret)),
        ),
        (
            "revoked service keys",
            Some(basic(&revoked.client_id, &revoked.secret)),
        ),
    ];

    for (what, authorization) in attempts {
        // Act
        let mut req = app
            .http
            .post(app.url("/ingest/v1/events"))
            .header("Content-Type", "application/json")
            .body(body.clone());
        if let Some(a) = authorization {
            req = req.header("Authorization", a);
        }
        let res = req.send().await.expect("request");

        // Assert
        assert_eq!(res.status(), 401, "{what}");
        assert_eq!(
            res.headers()["www-authenticate"],
            "Basic realm=\"ledgerport-ingest\"",
            "{what}"
        );
        assert_eq!(res.text().await.expect("body"), UNAUTHORIZED, "{what}");
    }
    assert_eq!(entries(app, "12345", Topic::Funds).await, vec![]);
}

// ------------------------------------------------------------------ bad requests

#[tokio::test]
async fn a_body_that_is_not_a_json_batch_is_a_bad_request_naming_what_is_wrong() {
    // Arrange
    let w = world().await;
    let s = Some((w.service.client_id.as_str(), w.service.secret.as_str()));
    let cases: Vec<(&str, &str, &str)> = vec![
        (
            "text/plain",
            r#"{"events":[]}"#,
            "Content-Type: must be application/json",
        ),
        (
            "application/x-www-form-urlencoded",
            "events=1",
            "Content-Type: must be application/json",
        ),
        (
            "application/json",
            "[]",
            "body: must be a JSON object {\"events\":[…]}",
        ),
        (
            "application/json",
            r#"{"evnts":[]}"#,
            "events: is required: an array of events",
        ),
        (
            "application/json",
            r#"{"events":{"eventId":"e-1"}}"#,
            "events: must be an array of events",
        ),
    ];

    for (content_type, body, detail) in cases {
        // Act
        let res = read(w.app.post_events_raw(s, content_type, body).await).await;

        // Assert
        assert_eq!(res.status, 400, "{body}");
        assert_eq!(res.content_type, "application/problem+json");
        assert_eq!(res.body["detail"], detail, "{body}");
        assert_eq!(res.body["instance"], "/ingest/v1/events");
    }

    // Act: not JSON at all.
    let res = read(
        w.app
            .post_events_raw(s, "application/json; charset=utf-8", "events: e-1")
            .await,
    )
    .await;

    // Assert
    assert_eq!(res.status, 400);
    assert!(
        res.body["detail"]
            .as_str()
            .expect("detail")
            .starts_with("body: is not valid JSON ("),
        "{}",
        res.text
    );
}

#[tokio::test]
async fn an_empty_batch_is_answered_with_no_results() {
    // Arrange
    let w = world().await;

    // Act
    let res = read(w.app.post_events(&w.service, &batch(vec![])).await).await;

    // Assert
    assert_eq!(res.status, 200);
    assert_eq!(
        res.body,
        json!({"results": [], "accepted": 0, "rejected": 0})
    );
}

/// `n` distinct captures of 100 on ledger 12345.
fn captures(n: usize) -> Value {
    batch(
        (0..n)
            .map(|i| {
                ev(
                    &format!("bulk-{i:05}"),
                    "capture",
                    "123455",
                    &format!("{}", 100_000 + i),
                    100,
                    "2022-10-01T12:00:00Z",
                )
            })
            .collect(),
    )
}

#[tokio::test]
async fn a_batch_of_more_than_10000_events_is_refused_whole() {
    // Arrange
    let w = world().await;

    // Act
    let res = read(w.app.post_events(&w.service, &captures(10_001)).await).await;

    // Assert
    assert_eq!(res.status, 400);
    assert_eq!(
        res.body["detail"],
        "events: at most 10000 events per batch, this one has 10001"
    );
    assert_eq!(entries(&w.app, "12345", Topic::Funds).await.len(), 0);
}

#[tokio::test]
async fn a_full_batch_larger_than_the_default_body_limit_is_accepted() {
    // Arrange: 10000 events are about 2 MB, over the 1 MiB other endpoints accept.
    let w = world().await;
    let body = captures(10_000);
    assert!(body.to_string().len() > ledgerport_server::middleware::BODY_LIMIT);

    // Act
    let res = read(w.app.post_events(&w.service, &body).await).await;

    // Assert
    assert_eq!(res.status, 200, "{}", &res.text[..res.text.len().min(300)]);
    assert_eq!(res.body["accepted"], 10_000);
    assert_eq!(res.body["rejected"], 0);
    assert_eq!(
        res.body["results"][9_999],
        accepted("bulk-09999", "12345", 2)
    );
    assert_eq!(entries(&w.app, "12345", Topic::Funds).await.len(), 10_000);
}

#[tokio::test]
async fn a_body_over_16_mib_is_refused_and_other_endpoints_keep_their_1_mib_limit() {
    // Arrange
    let w = world().await;
    let s = Some((w.service.client_id.as_str(), w.service.secret.as_str()));
    let padding = " ".repeat(16 * 1024 * 1024);
    let huge = format!("{{\"events\":[]{padding}}}");
    let form = format!(
        "grant_type=client_credentials&pad={}",
        "x".repeat(1024 * 1024)
    );

    // Act
    let ingest = read(w.app.post_events_raw(s, "application/json", huge).await).await;
    let token = read(
        w.app
            .miami_token_raw(&w.service.client_id, &w.service.secret, &form)
            .await,
    )
    .await;

    // Assert
    assert_eq!(ingest.status, 413);
    assert_eq!(ingest.content_type, "application/problem+json");
    assert_eq!(ingest.body["detail"], "body: larger than 16777216 bytes");
    assert_eq!(token.status, 413);
    assert_eq!(token.body["detail"], "body: larger than 1048576 bytes");
}

#[tokio::test]
async fn the_events_path_answers_only_post() {
    // Arrange
    let w = world().await;

    // Act
    let res = read(w.app.get("/ingest/v1/events", None, &[]).await).await;

    // Assert
    assert_eq!(res.status, 405);
    assert_eq!(res.body["instance"], "/ingest/v1/events");
}

// ------------------------------------------------------------------ server errors

#[tokio::test]
async fn a_store_failure_is_an_opaque_500_and_no_event_is_applied() {
    // Arrange: a server on a database file whose payment bookkeeping then disappears.
    let path =
        std::env::temp_dir().join(format!("ledgerport-ingest-500-{}.db", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}", path.display());
    let clock = std::sync::Arc::new(ledgerport_core::clock::ManualClock::new(t(EVENING)));
    let store = ledgerport_store::sqlite::SqliteStore::open(&url, clock.clone())
        .await
        .expect("store");
    let app = TestApp::start_on(
        std::sync::Arc::new(store),
        clock,
        ServerConfig {
            close_interval: None,
            ..ServerConfig::default()
        },
    )
    .await;
    let s = app.store.as_ref();
    let m = merchant(s, "987654321", "ACME AS").await;
    unit(s, m, "123455", None).await;
    ledger_with_fees(s, "12345", m, &["123455"], 0, 400).await;
    let service = app.service_keys().await;
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("connect");
    sqlx::raw_sql("DROP TABLE payments;")
        .execute(&mut conn)
        .await
        .expect("drop");

    // Act
    let res = app
        .http
        .post(app.url("/ingest/v1/events"))
        .header("Authorization", {
            use base64::Engine;
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", service.client_id, service.secret))
            )
        })
        .header("Content-Type", "application/json")
        .header("X-Request-Id", "ingest-0001")
        .body(worked_example().to_string())
        .send()
        .await
        .expect("request");

    // Assert
    assert_eq!(res.status(), 500);
    let text = res.text().await.expect("body");
    let body: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(body["errorCode"], 10001);
    assert_eq!(body["contextId"], "ingest-0001");
    for leak in ["payments", "sqlite", "SQL", "table"] {
        assert!(!text.contains(leak), "500 body reveals {leak}: {text}");
    }
    assert_eq!(entries(&app, "12345", Topic::Funds).await, vec![]);
    drop(app);
    for suffix in ledgerport_store::sqlite::access_log::FILE_SUFFIXES {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
