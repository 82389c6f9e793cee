//! Two stores on one PostgreSQL database, as two `serve` processes hold it: closing runs at once
//! close every period exactly once. Ignored unless run with `DATABASE_URL`
//! naming a PostgreSQL server.

use jiff::Timestamp;
use ledgerport_core::access::LedgerAccess;
use ledgerport_core::clock::ManualClock;
use ledgerport_core::engine::{EventKind, PaymentEvent};
use ledgerport_core::entry::Entry;
use ledgerport_core::ids::{Currency, LedgerId, Msn, Topic};
use ledgerport_store::postgres::PostgresStore;
use ledgerport_store::prelude::*;
use ledgerport_store::{EventOutcome, LedgerView, Store};
use ledgerport_testkit::WorldBuilder;
use ledgerport_testkit::testing::TestDatabase;
use std::sync::Arc;

const LEDGERS: u32 = 6;
const DAYS: i64 = 12;

fn t(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

fn ledger_id(i: u32) -> LedgerId {
    LedgerId::parse("l", &(700_001 + i).to_string()).expect("id")
}

/// `LEDGERS` daily-payout ledgers, each with one capture on its first day.
async fn world(s: &dyn Store, now: Timestamp) {
    let mut world = WorldBuilder::new().merchant("987654321", "ACME AS");
    let mut events = Vec::new();
    for i in 0..LEDGERS {
        let msn = (100_000 + i).to_string();
        world = world
            .api_unit(&msn)
            .ledger(&ledger_id(i).to_string(), &[&msn])
            .fees(100, 0);
        events.push(PaymentEvent {
            event_id: format!("e-{i}"),
            kind: EventKind::Capture,
            msn: Msn::parse("msn", &msn).expect("msn"),
            psp_reference: format!("p-{i}"),
            capture_psp_reference: None,
            reference: format!("purchase-{i}"),
            amount: 10_000,
            currency: Currency::NOK,
            time: now,
            topic: None,
            payer: None,
        });
    }
    world.build(s).await.expect("world");
    let outcomes = s.ingest_events(events, now).await.expect("ingest");
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, EventOutcome::Accepted { .. })),
        "{outcomes:?}"
    );
}

async fn all_entries(s: &dyn Store, ledger: &LedgerId, topic: Topic) -> Vec<Entry> {
    let (access, _) = operator_read(s, ledger).await;
    s.feed_page(&access, topic, 0, 10_000).await.expect("feed")
}

/// The operator's access to a ledger and its description.
async fn operator_read(s: &dyn Store, ledger: &LedgerId) -> (LedgerAccess, LedgerView) {
    ledgerport_core::access::open(
        &ledgerport_core::access::Principal::Operator { user_id: None },
        s.ledger(ledger).await.expect("read ledger"),
    )
    .expect("the operator reads every ledger")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DATABASE_URL naming PostgreSQL"]
async fn closing_runs_of_two_processes_at_once_close_each_period_exactly_once() {
    // Arrange: two stores (two pools, like two processes) on one database.
    let db = TestDatabase::create().await;
    let start = t("2024-03-01T10:00:00Z");
    let clock = Arc::new(ManualClock::new(start));
    let one = Arc::new(
        PostgresStore::open(&db.url, clock.clone())
            .await
            .expect("open one"),
    );
    let two = Arc::new(
        PostgresStore::open(&db.url, clock.clone())
            .await
            .expect("open two"),
    );
    world(one.as_ref(), start).await;
    let now = start + jiff::SignedDuration::from_hours(24 * DAYS);

    // Act: both close every ledger, in opposite orders, at the same time.
    let run = |s: Arc<PostgresStore>, reverse: bool| {
        tokio::spawn(async move {
            let mut ids: Vec<u32> = (0..LEDGERS).collect();
            if reverse {
                ids.reverse();
            }
            let mut closed = 0;
            for i in ids {
                closed += s.close_due(&ledger_id(i), now).await.expect("close").len();
            }
            closed
        })
    };
    let (a, b) = tokio::join!(run(one.clone(), false), run(two.clone(), true));
    let closed = a.expect("run one") + b.expect("run two");

    // Assert: DAYS periods per ledger in all, each ledger's one payout once, chains intact.
    assert_eq!(closed, (LEDGERS as usize) * DAYS as usize);
    for i in 0..LEDGERS {
        let id = ledger_id(i);
        let funds = all_entries(one.as_ref(), &id, Topic::Funds).await;
        let kinds: Vec<&str> = funds.iter().map(|e| e.entry_type.as_str()).collect();
        assert_eq!(
            kinds,
            ["capture", "fees-retained", "payout-scheduled"],
            "ledger {id}"
        );
        for topic in [Topic::Funds, Topic::Fees] {
            let entries = all_entries(one.as_ref(), &id, topic).await;
            let mut balance = 0;
            for (n, e) in entries.iter().enumerate() {
                assert_eq!(e.seq, n as i64 + 1, "gap-free on {id}");
                assert_eq!(e.balance_before, balance, "chained on {id}");
                balance = e.balance_after;
            }
            assert_eq!(balance, 0, "{id} {topic:?} paid out and settled");
        }
        let (_, view) = operator_read(one.as_ref(), &id).await;
        assert_eq!(view.ledger.next_payout_number, 2_000_002, "{id}");
    }
}
