//! Money that moves back must have something to move back: a returned dispute needs a retained
//! one on its pspReference (and returns no more than is still retained), a `payout-aborted`
//! brings back a payout of its ledger whole and once, and a refund that carries its own
//! pspReference is limited by the capture it names. Through the store, on SQLite or (with
//! `DATABASE_URL`) PostgreSQL.

use jiff::Timestamp;
use ledgerport_core::access::{Principal, open};
use ledgerport_core::clock::ManualClock;
use ledgerport_core::engine::{EventKind, PaymentEvent};
use ledgerport_core::entry::Entry;
use ledgerport_core::ids::{Currency, LedgerId, Msn, Topic};
use ledgerport_core::verify::check_ledger;
use ledgerport_core::world::{PayoutFrequency, SettlementMode};
use ledgerport_store::EventOutcome;
use ledgerport_testkit::WorldBuilder;
use ledgerport_testkit::testing::{TestStore, fresh_store};
use std::sync::Arc;

const LEDGER: &str = "12345";
const MSN: &str = "100000";

fn t(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

/// Ledger 12345 (daily, net, no fees) settling for api unit 100000, and a second ledger 12346
/// for unit 100001, whose payouts ledger 12345's events must not reach.
async fn world() -> TestStore {
    let s = fresh_store(Arc::new(ManualClock::new(t("2022-10-01T05:00:00Z")))).await;
    WorldBuilder::new()
        .merchant("987654321", "ACME")
        .api_unit(MSN)
        .ledger(LEDGER, &[MSN])
        .payout(PayoutFrequency::Daily)
        .mode(SettlementMode::Net)
        .fees(0, 0)
        .api_unit("100001")
        .ledger("12346", &["100001"])
        .payout(PayoutFrequency::Daily)
        .fees(0, 0)
        .build(&*s)
        .await
        .expect("world");
    s
}

fn event(id: &str, kind: EventKind, psp: &str, amount: i64, time: &str) -> PaymentEvent {
    PaymentEvent {
        event_id: id.into(),
        kind,
        msn: Msn::parse("msn", MSN).expect("msn"),
        psp_reference: psp.into(),
        capture_psp_reference: None,
        reference: format!("order-{psp}"),
        amount,
        currency: Currency::NOK,
        time: t(time),
        topic: None,
        payer: None,
    }
}

/// A refund with its own pspReference naming the capture it refunds.
fn refund_of(id: &str, own: &str, capture: &str, amount: i64, time: &str) -> PaymentEvent {
    PaymentEvent {
        capture_psp_reference: Some(capture.into()),
        ..event(id, EventKind::Refund, own, amount, time)
    }
}

/// (event id, rejected field or `None` when accepted) of each outcome.
fn answers(outcomes: &[EventOutcome]) -> Vec<(String, Option<&'static str>)> {
    outcomes
        .iter()
        .map(|o| match o {
            EventOutcome::Accepted { event_id, .. } => (event_id.clone(), None),
            EventOutcome::Rejected {
                event_id,
                rejection,
            } => (event_id.clone(), Some(rejection.field)),
        })
        .collect()
}

fn ids(list: &[(&str, Option<&'static str>)]) -> Vec<(String, Option<&'static str>)> {
    list.iter().map(|(id, f)| ((*id).to_owned(), *f)).collect()
}

async fn funds(s: &TestStore, ledger: &str) -> Vec<Entry> {
    let (access, _) = open(
        &Principal::Operator { user_id: None },
        s.ledger(&LedgerId::parse("l", ledger).expect("id"))
            .await
            .expect("read"),
    )
    .expect("the operator reads every ledger");
    s.feed_page(&access, Topic::Funds, 0, 10_000)
        .await
        .expect("feed")
}

fn balance(entries: &[Entry]) -> i64 {
    entries.last().map_or(0, |e| e.balance_after)
}

/// Every rule `verify` checks holds on ledger 12345, with the refunds the store links.
async fn verify_clean(s: &TestStore) {
    let (access, view) = open(
        &Principal::Operator { user_id: None },
        s.ledger(&LedgerId::parse("l", LEDGER).expect("id"))
            .await
            .expect("read"),
    )
    .expect("the operator reads every ledger");
    let f = s
        .feed_page(&access, Topic::Funds, 0, 10_000)
        .await
        .expect("funds");
    let fees = s
        .feed_page(&access, Topic::Fees, 0, 10_000)
        .await
        .expect("fees");
    let refunds = s.refunded_captures(&access).await.expect("refunds");
    let v = check_ledger(&view.ledger, &f, &fees, &refunds);
    assert!(v.is_empty(), "{v:?}");
}

#[tokio::test]
async fn a_returned_dispute_with_nothing_retained_is_refused_and_the_funds_balance_unchanged() {
    // Arrange: 10,000 captured on p1.
    let s = world().await;
    let now = t("2022-10-01T09:00:00Z");
    let at = "2022-10-01T08:00:00Z";
    s.ingest_events(vec![event("c1", EventKind::Capture, "p1", 10_000, at)], now)
        .await
        .expect("ingest");

    // Act: the attack, a dispute given back that was never retained (on a captured pspReference
    // and on one never seen), between two good events.
    let outcomes = s
        .ingest_events(
            vec![
                event("c2", EventKind::Capture, "p2", 500, at),
                event("x1", EventKind::DisputeReturned, "p1", 5_000, at),
                event("x2", EventKind::DisputeReturned, "never", 5_000, at),
                event("c3", EventKind::Capture, "p3", 700, at),
            ],
            now,
        )
        .await
        .expect("the batch is answered");

    // Assert: refused naming pspReference, no money credited, the rest applied.
    assert_eq!(
        answers(&outcomes),
        ids(&[
            ("c2", None),
            ("x1", Some("pspReference")),
            ("x2", Some("pspReference")),
            ("c3", None)
        ])
    );
    let f = funds(&s, LEDGER).await;
    assert_eq!(balance(&f), 11_200);
    assert!(f.iter().all(|e| e.entry_type == "capture"));

    // A retained dispute can be given back, never more than it still retains.
    let outcomes = s
        .ingest_events(
            vec![
                event("d1", EventKind::DisputeRetained, "p1", 3_000, at),
                event("g1", EventKind::DisputeReturned, "p1", 1_000, at),
                event("g2", EventKind::DisputeReturned, "p1", 2_001, at),
                event("g3", EventKind::DisputeReturned, "p1", 2_000, at),
                event("g4", EventKind::DisputeReturned, "p1", 1, at),
                event("g5", EventKind::DisputeReturned, "p2", 1, at),
            ],
            now,
        )
        .await
        .expect("ingest");
    assert_eq!(
        answers(&outcomes),
        ids(&[
            ("d1", None),
            ("g1", None),
            ("g2", Some("amount")),
            ("g3", None),
            ("g4", Some("amount")),
            ("g5", Some("pspReference")),
        ])
    );
    assert_eq!(balance(&funds(&s, LEDGER).await), 11_200);

    // Posting again changes nothing and answers the same.
    let again = s
        .ingest_events(
            vec![
                event("x1", EventKind::DisputeReturned, "p1", 5_000, at),
                event("g3", EventKind::DisputeReturned, "p1", 2_000, at),
            ],
            now,
        )
        .await
        .expect("again");
    assert_eq!(
        answers(&again),
        ids(&[("x1", Some("pspReference")), ("g3", None)])
    );
    assert_eq!(funds(&s, LEDGER).await.len(), 6);
    verify_clean(&s).await;
}

#[tokio::test]
async fn a_payout_aborted_without_its_payout_is_refused_and_a_payout_comes_back_whole_once() {
    // Arrange: 10,000 captured on 2022-10-01 on ledger 12345, 4,000 on ledger 12346.
    let s = world().await;
    let at = "2022-10-01T08:00:00Z";
    let mut other = event("o1", EventKind::Capture, "q1", 4_000, at);
    other.msn = Msn::parse("msn", "100001").expect("msn");
    s.ingest_events(
        vec![event("c1", EventKind::Capture, "p1", 10_000, at), other],
        t("2022-10-01T09:00:00Z"),
    )
    .await
    .expect("ingest");

    // Act 1: the attack, before any payout exists.
    let next_day = "2022-10-02T08:00:00Z";
    let now = t("2022-10-01T09:30:00Z");
    let outcomes = s
        .ingest_events(
            vec![event(
                "a0",
                EventKind::PayoutAborted,
                "12345-2000001",
                10_000,
                "2022-10-01T09:00:00Z",
            )],
            now,
        )
        .await
        .expect("ingest");
    assert_eq!(answers(&outcomes), ids(&[("a0", Some("pspReference"))]));
    assert_eq!(balance(&funds(&s, LEDGER).await), 10_000);

    // Act 2: the day closes and pays out 10,000 as 12345-2000001 (and 12346-2000001 on the
    // other ledger); then aborts of it, of another ledger's payout and of one never made.
    let now = t("2022-10-02T09:00:00Z");
    for l in [LEDGER, "12346"] {
        s.close_due(&LedgerId::parse("l", l).expect("id"), now)
            .await
            .expect("close");
    }
    let outcomes = s
        .ingest_events(
            vec![
                event(
                    "a1",
                    EventKind::PayoutAborted,
                    "12345-2000001",
                    9_999,
                    next_day,
                ),
                event(
                    "a2",
                    EventKind::PayoutAborted,
                    "12345-2000001",
                    10_001,
                    next_day,
                ),
                event(
                    "a3",
                    EventKind::PayoutAborted,
                    "12346-2000001",
                    4_000,
                    next_day,
                ),
                event(
                    "a4",
                    EventKind::PayoutAborted,
                    "12345-2000002",
                    10_000,
                    next_day,
                ),
                event(
                    "a5",
                    EventKind::PayoutAborted,
                    "12345-2000001",
                    10_000,
                    next_day,
                ),
                event(
                    "a6",
                    EventKind::PayoutAborted,
                    "12345-2000001",
                    10_000,
                    next_day,
                ),
            ],
            now,
        )
        .await
        .expect("ingest");

    // Assert: only the payout's own amount, once.
    assert_eq!(
        answers(&outcomes),
        ids(&[
            ("a1", Some("amount")),
            ("a2", Some("amount")),
            ("a3", Some("pspReference")),
            ("a4", Some("pspReference")),
            ("a5", None),
            ("a6", Some("pspReference")),
        ])
    );
    let f = funds(&s, LEDGER).await;
    assert_eq!(
        f.iter()
            .map(|e| (e.entry_type.as_str(), e.amount))
            .collect::<Vec<_>>(),
        vec![
            ("capture", 10_000),
            ("payout-scheduled", -10_000),
            ("payout-aborted", 10_000)
        ]
    );
    // The money that came back is paid out again at the next closing, and that payout may be
    // aborted in its turn, in the same batch that closes it.
    let outcomes = s
        .ingest_events(
            vec![
                event("c2", EventKind::Capture, "p2", 500, "2022-10-03T08:00:00Z"),
                event(
                    "a7",
                    EventKind::PayoutAborted,
                    "12345-2000002",
                    10_000,
                    "2022-10-03T08:01:00Z",
                ),
            ],
            t("2022-10-03T09:00:00Z"),
        )
        .await
        .expect("ingest");
    assert_eq!(answers(&outcomes), ids(&[("c2", None), ("a7", None)]));
    assert_eq!(balance(&funds(&s, LEDGER).await), 10_500);
    verify_clean(&s).await;
}

#[tokio::test]
async fn a_refund_with_its_own_psp_reference_is_limited_by_the_capture_it_names() {
    // Arrange: 10,000 captured on p1.
    let s = world().await;
    let now = t("2022-10-01T09:00:00Z");
    let at = "2022-10-01T08:00:00Z";
    s.ingest_events(vec![event("c1", EventKind::Capture, "p1", 10_000, at)], now)
        .await
        .expect("ingest");

    // Act
    let outcomes = s
        .ingest_events(
            vec![
                refund_of("r1", "rf-1", "p1", 6_000, at),
                refund_of("r2", "rf-2", "p1", 4_001, at),
                refund_of("r3", "rf-3", "nope", 1, at),
                refund_of("r4", "rf-1", "p1", 1, at),
                refund_of("r5", "p1", "p1", 1_000, at),
                event("r6", EventKind::Refund, "rf-1", 1, at),
                event("c2", EventKind::Capture, "rf-1", 1, at),
                event("r7", EventKind::Refund, "p1", 3_000, at),
                refund_of("r8", "rf-9", "p1", 1, at),
            ],
            now,
        )
        .await
        .expect("ingest");

    // Assert: the capture's 10,000 bound the refunds whatever their pspReference; a refund's own
    // pspReference is used once and never as a capture's.
    assert_eq!(
        answers(&outcomes),
        ids(&[
            ("r1", None),
            ("r2", Some("amount")),
            ("r3", Some("capturePspReference")),
            ("r4", Some("pspReference")),
            ("r5", None),
            ("r6", Some("pspReference")),
            ("c2", Some("pspReference")),
            ("r7", None),
            ("r8", Some("amount")),
        ])
    );
    let f = funds(&s, LEDGER).await;
    assert_eq!(
        f.iter()
            .map(|e| (e.psp_reference.as_str(), e.entry_type.as_str(), e.amount))
            .collect::<Vec<_>>(),
        vec![
            ("p1", "capture", 10_000),
            ("rf-1", "refund", -6_000),
            ("p1", "refund", -1_000),
            ("p1", "refund", -3_000)
        ]
    );
    // Posting the first refund again changes nothing.
    let again = s
        .ingest_events(vec![refund_of("r1", "rf-1", "p1", 6_000, at)], now)
        .await
        .expect("again");
    assert_eq!(answers(&again), ids(&[("r1", None)]));
    assert_eq!(funds(&s, LEDGER).await.len(), 4);
    verify_clean(&s).await;
}
