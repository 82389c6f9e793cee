//! The settlement engine through the store: the worked example (captures, a refund, their fees, a
//! net closing and payout), and closing that is stopped at any point and then completed without
//! writing anything twice.

use jiff::Timestamp;
use ledgerport_core::clock::{Clock, ManualClock};
use ledgerport_core::engine::{EventKind, PaymentEvent};
use ledgerport_core::entry::Entry;
use ledgerport_core::ids::{Currency, LedgerId, Msn, Topic};
use ledgerport_core::world::{FeePlan, PayoutFrequency};
use ledgerport_store::{EventOutcome, Store};
use ledgerport_testkit::WorldBuilder;
use ledgerport_testkit::testing::{TestStore, fresh_store, postgres_from_env};
use std::sync::Arc;

fn t(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

/// A fresh store (PostgreSQL when `DATABASE_URL` names it, SQLite otherwise) at `now`.
async fn store_at(now: &str) -> (Arc<TestStore>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(t(now)));
    let store = fresh_store(clock.clone()).await;
    (Arc::new(store), clock)
}

/// A merchant with one api unit per ledger id given (MSNs 100000 up), each ledger settling for
/// its unit.
async fn ledgers(s: &dyn Store, ids: &[&str], freq: PayoutFrequency, fee: FeePlan) {
    let mut world = WorldBuilder::new().merchant("987654321", "ACME AS");
    for (i, id) in ids.iter().enumerate() {
        let msn = (100_000 + i).to_string();
        world = world
            .api_unit(&msn)
            .ledger(id, &[&msn])
            .payout(freq)
            .fees(fee.basis_points, fee.fixed_minor);
    }
    world.build(s).await.expect("world");
}

fn event(id: &str, kind: EventKind, msn: u32, psp: &str, amount: i64, time: &str) -> PaymentEvent {
    PaymentEvent {
        event_id: id.into(),
        kind,
        msn: Msn::parse("msn", &msn.to_string()).expect("msn"),
        psp_reference: psp.into(),
        capture_psp_reference: None,
        reference: format!("purchase-{psp}"),
        amount,
        currency: Currency::NOK,
        time: t(time),
        topic: None,
        payer: None,
    }
}

async fn all_entries(s: &dyn Store, ledger: &str, topic: Topic) -> Vec<Entry> {
    let (access, _) = ledgerport_core::access::open(
        &ledgerport_core::access::Principal::Operator { user_id: None },
        s.ledger(&LedgerId::parse("l", ledger).expect("id"))
            .await
            .expect("read ledger"),
    )
    .expect("the operator reads every ledger");
    s.feed_page(&access, topic, 0, 1_000_000)
        .await
        .expect("feed")
}

fn summary(entries: &[Entry]) -> Vec<(String, i64, i64, i64, String)> {
    entries
        .iter()
        .map(|e| {
            (
                e.entry_type.clone(),
                e.amount,
                e.balance_before,
                e.balance_after,
                e.ledger_date.to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_worked_example_retains_1200_in_fees_and_pays_out_28800() {
    // Arrange: ledger 12345, daily payouts, a fixed fee of 400 per capture.
    let (s, _clock) = store_at("2022-10-01T05:00:00Z").await;
    ledgers(
        &**s,
        &["12345"],
        PayoutFrequency::Daily,
        FeePlan {
            basis_points: 0,
            fixed_minor: 400,
        },
    )
    .await;
    let events = vec![
        event(
            "e1",
            EventKind::Capture,
            100_000,
            "3343121302",
            10_000,
            "2022-10-01T08:00:00.000001Z",
        ),
        event(
            "e2",
            EventKind::Capture,
            100_000,
            "3343121303",
            10_000,
            "2022-10-01T09:00:00Z",
        ),
        event(
            "e3",
            EventKind::Capture,
            100_000,
            "3343121304",
            20_000,
            "2022-10-01T10:00:00Z",
        ),
        event(
            "e4",
            EventKind::Refund,
            100_000,
            "3343121304",
            10_000,
            "2022-10-01T11:00:00Z",
        ),
    ];

    // Act
    let outcomes = s
        .ingest_events(events, t("2022-10-01T20:00:00Z"))
        .await
        .expect("ingest");
    let closed = s
        .close_due(
            &LedgerId::parse("l", "12345").expect("id"),
            t("2022-10-02T06:00:00Z"),
        )
        .await
        .expect("close");

    // Assert
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, EventOutcome::Accepted { .. })),
        "{outcomes:?}"
    );
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].payout, Some((2_000_001, 28_800)));
    assert_eq!(closed[0].fees, 1_200);
    let d = "2022-10-01".to_owned();
    let funds = all_entries(&**s, "12345", Topic::Funds).await;
    assert_eq!(
        summary(&funds),
        vec![
            ("capture".into(), 10_000, 0, 10_000, d.clone()),
            ("capture".into(), 10_000, 10_000, 20_000, d.clone()),
            ("capture".into(), 20_000, 20_000, 40_000, d.clone()),
            ("refund".into(), -10_000, 40_000, 30_000, d.clone()),
            ("fees-retained".into(), -1_200, 30_000, 28_800, d.clone()),
            ("payout-scheduled".into(), -28_800, 28_800, 0, d.clone()),
        ]
    );
    assert_eq!(funds[5].psp_reference, "12345-2000001");
    assert_eq!(funds[5].reference, "Utb. 2000001 Vippsnr 100000");
    assert_eq!(funds[5].time, "2022-10-01T21:59:59.999999Z");
    let fees = all_entries(&**s, "12345", Topic::Fees).await;
    assert_eq!(
        summary(&fees),
        vec![
            ("capture-fee".into(), -400, 0, -400, d.clone()),
            ("capture-fee".into(), -400, -400, -800, d.clone()),
            ("capture-fee".into(), -400, -800, -1_200, d.clone()),
            ("fees-retained".into(), 1_200, -1_200, 0, d.clone()),
        ]
    );
    assert_eq!(fees[0].psp_reference, "3343121302");
    assert_eq!(fees[0].reference, "purchase-3343121302");
}

#[tokio::test]
async fn ingesting_the_same_events_again_changes_nothing_and_answers_the_same() {
    let (s, _clock) = store_at("2022-10-01T05:00:00Z").await;
    ledgers(
        &**s,
        &["12345"],
        PayoutFrequency::Daily,
        FeePlan {
            basis_points: 175,
            fixed_minor: 0,
        },
    )
    .await;
    let events = vec![
        event(
            "e1",
            EventKind::Capture,
            100_000,
            "p1",
            10_000,
            "2022-10-01T08:00:00Z",
        ),
        event(
            "e2",
            EventKind::Refund,
            100_000,
            "p1",
            20_000,
            "2022-10-01T09:00:00Z",
        ),
        event(
            "e1",
            EventKind::Capture,
            100_000,
            "p1",
            10_000,
            "2022-10-01T08:00:00Z",
        ),
    ];
    let now = t("2022-10-01T20:00:00Z");

    let first = s.ingest_events(events.clone(), now).await.expect("first");
    let funds_after_first = all_entries(&**s, "12345", Topic::Funds).await;
    let second = s.ingest_events(events, now).await.expect("second");

    assert_eq!(first, second);
    assert_eq!(
        first[0], first[2],
        "a repeat inside one batch answers as the first"
    );
    assert!(
        matches!(&first[1], EventOutcome::Rejected { rejection, .. } if rejection.field == "amount")
    );
    assert_eq!(
        all_entries(&**s, "12345", Topic::Funds).await,
        funds_after_first
    );
    assert_eq!(funds_after_first.len(), 1);
}

/// Deterministic payments of one day of March 2024 (from 08:00Z) on each of the ledgers.
fn day_of_events(day: i64, ledger_count: u32) -> Vec<PaymentEvent> {
    let mut out = Vec::new();
    let start = t("2024-03-01T08:00:00Z");
    let mut x: u64 = 42 + day as u64;
    {
        for l in 0..ledger_count {
            for k in 0..4 {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let at = start
                    + jiff::SignedDuration::from_hours(24 * day)
                    + jiff::SignedDuration::from_mins(i64::from(k) * 97);
                let id = format!("{day}-{l}-{k}");
                let amount = 1_000 + (x >> 33) as i64 % 50_000;
                out.push(PaymentEvent {
                    event_id: format!("c{id}"),
                    kind: EventKind::Capture,
                    msn: Msn::parse("msn", &format!("{}", 100_000 + l)).expect("msn"),
                    psp_reference: format!("p{id}"),
                    capture_psp_reference: None,
                    reference: format!("r{id}"),
                    amount,
                    currency: Currency::NOK,
                    time: at,
                    topic: None,
                    payer: None,
                });
                if k == 3 {
                    let mut refund = out.last().cloned().expect("capture");
                    refund.event_id = format!("r{id}");
                    refund.kind = EventKind::Refund;
                    refund.amount = amount / 3;
                    refund.time = at + jiff::SignedDuration::from_mins(5);
                    out.push(refund);
                }
            }
        }
    }
    out
}

/// A name no other test run uses.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Ledgers of the stopped-closing test: enough that a closing run takes a while.
const LEDGER_COUNT: u32 = 24;
/// Days with payments, from 1 March; closing then runs as of 1 April.
const DAYS_WITH_PAYMENTS: i64 = 4;

fn ledger_ids() -> Vec<String> {
    (0..LEDGER_COUNT)
        .map(|i| (500_001 + i).to_string())
        .collect()
}

/// Payments on the first days of March, posted day by day at 20:00Z as they would arrive (each
/// day's first event closes the day before), then the rest of the month left to a closing run.
async fn month_world() -> Arc<TestStore> {
    // A database file: an in-memory database lives in one connection, which a stopped run may
    // take down with it, whereas a file survives like a real deployment's.
    let path = std::env::temp_dir().join(format!("ledgerport-closing-{}.db", uuid_like()));
    let clock = Arc::new(ManualClock::new(t("2024-03-01T00:30:00Z")));
    let s = Arc::new(if postgres_from_env().is_some() {
        fresh_store(clock).await
    } else {
        TestStore::wrap(
            ledgerport_store::open(&format!("sqlite://{}", path.display()), clock)
                .await
                .expect("store"),
        )
    });
    let ids = ledger_ids();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    ledgers(
        &**s,
        &ids,
        PayoutFrequency::Daily,
        FeePlan {
            basis_points: 175,
            fixed_minor: 100,
        },
    )
    .await;
    for day in 0..DAYS_WITH_PAYMENTS {
        let now = t("2024-03-01T20:00:00Z") + jiff::SignedDuration::from_hours(24 * day);
        let outcomes = s
            .ingest_events(day_of_events(day, LEDGER_COUNT), now)
            .await
            .expect("ingest");
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, EventOutcome::Accepted { .. }))
        );
    }
    s
}

async fn close_all(s: Arc<TestStore>, now: Timestamp) {
    for l in ledger_ids() {
        s.close_due(&LedgerId::parse("l", &l).expect("id"), now)
            .await
            .expect("close");
    }
}

async fn snapshot(s: &dyn Store) -> Vec<Vec<Entry>> {
    let mut out = Vec::new();
    for l in ledger_ids() {
        out.push(all_entries(s, &l, Topic::Funds).await);
        out.push(all_entries(s, &l, Topic::Fees).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closing_run_stopped_at_any_point_is_completed_by_the_next_without_duplicates() {
    // Arrange: what a closing run that is never interrupted writes.
    let now = t("2024-04-01T12:00:00Z");
    let reference = month_world().await;
    close_all(reference.clone(), now).await;
    let expected = snapshot(&**reference).await;
    let payouts: usize = expected
        .iter()
        .flatten()
        .filter(|e| e.entry_type == "payout-scheduled")
        .count();
    assert_eq!(
        payouts,
        (LEDGER_COUNT as usize) * (DAYS_WITH_PAYMENTS as usize),
        "every day with payments of every ledger paid out"
    );

    // Act and assert: stop a run after a growing delay, then run again.
    let mut stopped_midway = 0;
    for delay_us in [0u64, 200, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000] {
        let s = month_world().await;
        let run = tokio::spawn(close_all(s.clone(), now));
        tokio::time::sleep(std::time::Duration::from_micros(delay_us)).await;
        run.abort();
        let _ = run.await;
        let partial: usize = snapshot(&**s).await.iter().map(Vec::len).sum();
        let full: usize = expected.iter().map(Vec::len).sum();
        if partial < full {
            stopped_midway += 1;
        }
        close_all(s.clone(), now).await;
        assert_eq!(
            snapshot(&**s).await,
            expected,
            "after a run stopped at {delay_us} µs"
        );
        // And a third run finds nothing left to do.
        for l in ledger_ids() {
            let again = s
                .close_due(&LedgerId::parse("l", &l).expect("id"), now)
                .await
                .expect("close");
            assert!(again.is_empty());
        }
    }
    assert!(
        stopped_midway > 0,
        "no run was actually stopped before it finished"
    );
    let prefix = format!("ledgerport-closing-{}-", std::process::id());
    for f in std::fs::read_dir(std::env::temp_dir())
        .expect("temp dir")
        .flatten()
    {
        if f.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(f.path());
        }
    }
}

#[tokio::test]
async fn a_late_event_for_a_closed_date_is_booked_on_the_first_open_date() {
    let (s, clock) = store_at("2022-10-01T05:00:00Z").await;
    ledgers(
        &**s,
        &["12345"],
        PayoutFrequency::Daily,
        FeePlan {
            basis_points: 0,
            fixed_minor: 400,
        },
    )
    .await;
    s.ingest_events(
        vec![event(
            "e1",
            EventKind::Capture,
            100_000,
            "p1",
            10_000,
            "2022-10-01T08:00:00Z",
        )],
        t("2022-10-01T09:00:00Z"),
    )
    .await
    .expect("ingest");
    clock.set(t("2022-10-02T06:00:00Z"));
    s.close_due(&LedgerId::parse("l", "12345").expect("id"), clock.now())
        .await
        .expect("close");

    s.ingest_events(
        vec![event(
            "e2",
            EventKind::Capture,
            100_000,
            "p2",
            5_000,
            "2022-10-01T23:00:00Z",
        )],
        clock.now(),
    )
    .await
    .expect("late");

    let funds = all_entries(&**s, "12345", Topic::Funds).await;
    let late = funds.last().expect("late entry");
    assert_eq!(late.entry_type, "capture");
    assert_eq!(late.time, "2022-10-01T23:00:00.000000Z");
    assert_eq!(late.ledger_date.to_string(), "2022-10-02");
    assert_eq!(late.balance_before, 0);
}

#[tokio::test]
async fn a_period_passed_before_the_clocks_go_back_is_closed_before_the_next_date_is_booked() {
    // 2024-10-27 in Oslo: 03:00 CEST (01:00Z) becomes 02:00 CET, so 02:00-03:00 local happens
    // twice. With a 02:30 cutoff, 2024-10-27 begins at the first 02:30 (00:30Z). A capture of
    // 02:45 CEST (00:45Z) posted at 02:15 CET (01:15Z), in the repeated hour, is booked on
    // 2024-10-27, and the period ending 2024-10-26 must be closed first: found by the simulator
    // (seed 1796013366948507515), when the local clock's 02:15 put "now" back on 2024-10-26.
    let (s, _clock) = store_at("2024-10-26T05:00:00Z").await;
    WorldBuilder::new()
        .merchant("987654321", "ACME AS")
        .api_unit("100000")
        .ledger("12345", &["100000"])
        .payout(PayoutFrequency::Daily)
        .fees(0, 400)
        .cutoff("02:30")
        .build(&**s)
        .await
        .expect("world");
    let capture =
        |id: &str, psp: &str, time: &str| event(id, EventKind::Capture, 100_000, psp, 10_000, time);
    s.ingest_events(
        vec![capture("e1", "p1", "2024-10-26T10:00:00Z")],
        t("2024-10-26T10:00:00Z"),
    )
    .await
    .expect("ingest");
    s.ingest_events(
        vec![capture("e2", "p2", "2024-10-27T00:45:00Z")],
        t("2024-10-27T01:15:00Z"),
    )
    .await
    .expect("ingest in the repeated hour");

    let dates = |entries: Vec<Entry>| {
        entries
            .iter()
            .map(|e| (e.entry_type.clone(), e.ledger_date.to_string()))
            .collect::<Vec<_>>()
    };
    let d = |ty: &str, date: &str| (ty.to_owned(), date.to_owned());
    assert_eq!(
        dates(all_entries(&**s, "12345", Topic::Funds).await),
        vec![
            d("capture", "2024-10-26"),
            d("fees-retained", "2024-10-26"),
            d("payout-scheduled", "2024-10-26"),
            d("capture", "2024-10-27"),
        ]
    );
    assert_eq!(
        dates(all_entries(&**s, "12345", Topic::Fees).await),
        vec![
            d("capture-fee", "2024-10-26"),
            d("fees-retained", "2024-10-26"),
            d("capture-fee", "2024-10-27"),
        ]
    );
}
