//! Money that does not fit: sums that would overflow are refused, never wrapped, and one event
//! that cannot be booked does not fail its batch; net closing retains the whole fees balance.
//! Through the store, on SQLite or (with `DATABASE_URL`) PostgreSQL.

use jiff::Timestamp;
use ledgerport_core::clock::ManualClock;
use ledgerport_core::engine::{EventKind, PaymentEvent};
use ledgerport_core::ids::{BankAccount, BusinessId, Country, Currency, LedgerId, Msn};
use ledgerport_core::world::{
    FeePlan, PayoutFrequency, SalesUnitKind, SettlementMode, parse_cutoff,
};
use ledgerport_store::{Actor, EventOutcome, NewLedger, NewMerchant, NewSalesUnit};
use ledgerport_testkit::testing::{TestStore, fresh_store};

const LEDGER: &str = "12345";
const MSN: u32 = 100_000;

fn t(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

fn by() -> Actor {
    Actor::new("test")
}

/// A fresh store with ledger 12345 (daily, net, `fee`) settling for api unit 100000.
async fn world(fee: FeePlan) -> TestStore {
    let s = fresh_store(std::sync::Arc::new(ManualClock::new(t(
        "2022-10-01T05:00:00Z",
    ))))
    .await;
    let m = s
        .create_merchant(
            &by(),
            NewMerchant {
                business: BusinessId::parse("o", "business:NO:ORG", "987654321").expect("org"),
                name: "ACME AS".into(),
            },
        )
        .await
        .expect("merchant");
    let msn = Msn::parse("msn", &MSN.to_string()).expect("msn");
    s.create_sales_unit(
        &by(),
        NewSalesUnit {
            msn,
            merchant_id: m.id,
            name: "Unit".into(),
            kind: SalesUnitKind::Api,
            country: Country::NO,
            vm_number: None,
        },
    )
    .await
    .expect("unit");
    s.create_ledger(
        &by(),
        NewLedger {
            ledger_id: LedgerId::parse("l", LEDGER).expect("id"),
            currency: Currency::NOK,
            payout_account: BankAccount::parse("a", "BBAN:NO", "86011117947").expect("account"),
            owner_merchant_id: m.id,
            settles_for: vec![msn],
            time_zone: "Europe/Oslo".into(),
            cutoff: parse_cutoff("c", "00:00").expect("cutoff"),
            payout_frequency: PayoutFrequency::Daily,
            settlement_mode: SettlementMode::Net,
            fee_plan: fee,
            page_size: 1000,
            created_at: None,
        },
    )
    .await
    .expect("ledger");
    s
}

fn event(id: &str, kind: EventKind, psp: &str, amount: i64) -> PaymentEvent {
    PaymentEvent {
        event_id: id.into(),
        kind,
        msn: Msn::parse("msn", &MSN.to_string()).expect("msn"),
        psp_reference: psp.into(),
        capture_psp_reference: None,
        reference: format!("purchase-{psp}"),
        amount,
        currency: Currency::NOK,
        time: t("2022-10-01T08:00:00Z"),
        topic: None,
        payer: None,
    }
}

/// (event id, accepted, rejected field) of each outcome.
fn answers(outcomes: &[EventOutcome]) -> Vec<(String, bool, Option<&'static str>)> {
    outcomes
        .iter()
        .map(|o| match o {
            EventOutcome::Accepted { event_id, .. } => (event_id.clone(), true, None),
            EventOutcome::Rejected {
                event_id,
                rejection,
            } => (event_id.clone(), false, Some(rejection.field)),
        })
        .collect()
}

fn no_fees() -> FeePlan {
    FeePlan {
        basis_points: 0,
        fixed_minor: 0,
    }
}

#[tokio::test]
async fn a_refund_whose_sum_would_overflow_is_refused_naming_the_amount() {
    // Arrange: capture 100, refund 50.
    let s = world(no_fees()).await;
    let now = t("2022-10-01T09:00:00Z");
    let first = vec![
        event("c", EventKind::Capture, "p1", 100),
        event("r1", EventKind::Refund, "p1", 50),
    ];
    s.ingest_events(first, now).await.expect("ingest");

    // Act: a refund whose sum with the 50 refunded overflows, then what is really left.
    let outcomes = s
        .ingest_events(
            vec![
                event("r2", EventKind::Refund, "p1", i64::MAX - 9),
                event("r3", EventKind::Refund, "p1", 50),
                event("r4", EventKind::Refund, "p1", 1),
            ],
            now,
        )
        .await
        .expect("ingest");

    // Assert
    assert_eq!(
        answers(&outcomes),
        vec![
            ("r2".into(), false, Some("amount")),
            ("r3".into(), true, None),
            ("r4".into(), false, Some("amount")),
        ]
    );
}

#[tokio::test]
async fn an_event_that_would_overflow_a_balance_is_refused_and_the_rest_of_its_batch_applied() {
    // Arrange: 10,000 on the funds balance.
    let s = world(no_fees()).await;
    let now = t("2022-10-01T09:00:00Z");
    s.ingest_events(vec![event("c1", EventKind::Capture, "p1", 10_000)], now)
        .await
        .expect("ingest");

    // Act: a batch with a capture the balance cannot hold between two good ones.
    let outcomes = s
        .ingest_events(
            vec![
                event("c2", EventKind::Capture, "p2", 500),
                event("poison", EventKind::Capture, "p3", i64::MAX - 5_000),
                event("c3", EventKind::Capture, "p4", 700),
            ],
            now,
        )
        .await
        .expect("the batch is answered, not failed");

    // Assert
    assert_eq!(
        answers(&outcomes),
        vec![
            ("c2".into(), true, None),
            ("poison".into(), false, Some("amount")),
            ("c3".into(), true, None),
        ]
    );
    // Posting the batch again answers the same and the good events are there once.
    let again = s
        .ingest_events(
            vec![
                event("c2", EventKind::Capture, "p2", 500),
                event("poison", EventKind::Capture, "p3", i64::MAX - 5_000),
            ],
            now,
        )
        .await
        .expect("again");
    assert_eq!(
        answers(&again),
        vec![
            ("c2".into(), true, None),
            ("poison".into(), false, Some("amount"))
        ]
    );
    let closed = s
        .close_due(
            &LedgerId::parse("l", LEDGER).expect("id"),
            t("2022-10-02T06:00:00Z"),
        )
        .await
        .expect("close");
    assert_eq!(closed[0].payout, Some((2_000_001, 11_200)));
}

#[tokio::test]
async fn net_closing_retains_the_whole_fees_balance_and_leaves_the_fees_topic_at_zero() {
    // Arrange: a capture with a fee of 400 and a service fee of 300.
    let s = world(FeePlan {
        basis_points: 0,
        fixed_minor: 400,
    })
    .await;
    let outcomes = s
        .ingest_events(
            vec![
                event("c1", EventKind::Capture, "p1", 10_000),
                event("s1", EventKind::ServiceFee, "sub-2022-10", 300),
            ],
            t("2022-10-01T09:00:00Z"),
        )
        .await
        .expect("ingest");
    assert!(
        answers(&outcomes).iter().all(|(_, ok, _)| *ok),
        "{outcomes:?}"
    );

    // Act
    let closed = s
        .close_due(
            &LedgerId::parse("l", LEDGER).expect("id"),
            t("2022-10-02T06:00:00Z"),
        )
        .await
        .expect("close");

    // Assert: 700 retained, 9,300 paid out, nothing left on either topic.
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].fees, 700);
    assert_eq!(closed[0].payout, Some((2_000_001, 9_300)));
    let next = s
        .ingest_events(
            vec![event("c2", EventKind::Capture, "p2", 1_000)],
            t("2022-10-02T09:00:00Z"),
        )
        .await
        .expect("next day");
    assert!(answers(&next)[0].1);
    let closed = s
        .close_due(
            &LedgerId::parse("l", LEDGER).expect("id"),
            t("2022-10-03T06:00:00Z"),
        )
        .await
        .expect("close the next day");
    // Only the next day's own fee: the service fee was not carried over.
    assert_eq!(closed[0].fees, 400);
    assert_eq!(closed[0].payout, Some((2_000_002, 600)));
}
