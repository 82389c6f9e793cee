//! Property tests of the settlement engine through the store: random event streams (times around
//! cutoffs and a daylight-saving change, duplicates, reorderings within a batch, refunds larger
//! than what was captured, refunds with their own pspReference, disputes given back, payouts
//! aborted) interleaved with closing runs keep every invariant `verify` checks and the rules of
//! money moving back, and posting any prefix of the stream again changes nothing.

use jiff::{SignedDuration, Timestamp};
use ledgerport_core::clock::ManualClock;
use ledgerport_core::engine::{EventKind, PaymentEvent};
use ledgerport_core::entry::Entry;
use ledgerport_core::ids::{Currency, LedgerId, Msn, Topic};
use ledgerport_core::verify::check_ledger;
use ledgerport_core::world::{PayoutFrequency, SettlementMode};
use ledgerport_store::{EventOutcome, Store};
use ledgerport_testkit::WorldBuilder;
use ledgerport_testkit::testing::{TestStore, fresh_store};
use proptest::prelude::*;
use std::sync::Arc;

/// Three ledgers that differ where the engine has choices: daily with a 04:00 cutoff (crossing
/// the DST change at 02:00Z/01:00Z), weekly at midnight, and gross monthly.
const LEDGERS: [(&str, u32, PayoutFrequency, &str, SettlementMode, i64, i64); 3] = [
    (
        "900001",
        100_000,
        PayoutFrequency::Daily,
        "04:00",
        SettlementMode::Net,
        175,
        100,
    ),
    (
        "900002",
        100_001,
        PayoutFrequency::Weekly,
        "00:00",
        SettlementMode::Net,
        0,
        400,
    ),
    (
        "900003",
        100_002,
        PayoutFrequency::Monthly,
        "00:00",
        SettlementMode::Gross,
        250,
        0,
    ),
];

/// The stream starts three days before Oslo's clocks go forward (2024-03-31) and runs on for a
/// fortnight, past a month end.
const START: &str = "2024-03-28T00:00:00Z";

#[derive(Debug, Clone)]
struct EventSpec {
    kind: u8,
    unit: usize,
    amount: i64,
    minutes_back: i64,
    pick: usize,
    duplicate: bool,
}

#[derive(Debug, Clone)]
struct Step {
    advance_minutes: i64,
    events: Vec<EventSpec>,
    shuffle: u64,
    close: bool,
}

fn event_spec() -> impl Strategy<Value = EventSpec> {
    (
        0u8..20,
        0usize..3,
        1i64..200_000,
        0i64..3_000,
        any::<usize>(),
        prop::bool::weighted(0.15),
    )
        .prop_map(
            |(kind, unit, amount, minutes_back, pick, duplicate)| EventSpec {
                kind,
                unit,
                amount,
                minutes_back,
                pick,
                duplicate,
            },
        )
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (
            // Mostly small moves, so times cluster around cutoffs; now and then most of a day.
            prop_oneof![3 => 0i64..180, 1 => 180i64..1_600],
            prop::collection::vec(event_spec(), 0..12),
            any::<u64>(),
            prop::bool::weighted(0.4),
        )
            .prop_map(|(advance_minutes, events, shuffle, close)| Step {
                advance_minutes,
                events,
                shuffle,
                close,
            }),
        1..40,
    )
}

fn t(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

/// A fresh world (PostgreSQL when `DATABASE_URL` names it, SQLite otherwise).
async fn world() -> Arc<TestStore> {
    let clock = Arc::new(ManualClock::new(t(START)));
    let s = Arc::new(fresh_store(clock).await);
    let mut world = WorldBuilder::new().merchant("987654321", "ACME");
    for (id, msn, freq, cutoff, mode, bp, fixed) in LEDGERS {
        let msn = msn.to_string();
        world = world
            .api_unit(&msn)
            .unit_name(id)
            .ledger(id, &[&msn])
            .payout(freq)
            .cutoff(cutoff)
            .mode(mode)
            .fees(bp, fixed);
    }
    world.build(&**s).await.expect("world");
    s
}

/// A payout the ledgers have scheduled: the unit of its ledger, its pspReference and amount.
type Payout = (u32, String, i64);

/// Turns the specs into events: new ones at `now` minus a little, or repeats of earlier events.
/// Refunds and disputes name earlier captures (now and then an unknown pspReference); returned
/// disputes name earlier retained ones; aborted payouts name a payout of `payouts` with its
/// amount, or (now and then) one that does not exist.
fn events_of(
    step: &Step,
    now: Timestamp,
    posted: &[PaymentEvent],
    payouts: &[Payout],
    next_id: &mut u64,
) -> Vec<PaymentEvent> {
    let mut out: Vec<PaymentEvent> = Vec::new();
    for spec in &step.events {
        let earlier: Vec<&PaymentEvent> = posted.iter().chain(out.iter()).collect();
        if spec.duplicate && !earlier.is_empty() {
            let again = earlier[spec.pick % earlier.len()].clone();
            out.push(again);
            continue;
        }
        let time = (now - SignedDuration::from_mins(spec.minutes_back)).max(t(START));
        let unit = LEDGERS[spec.unit].1;
        let of_unit = |kind: EventKind| -> Vec<&&PaymentEvent> {
            earlier
                .iter()
                .filter(|e| e.kind == kind && e.msn.get() == unit)
                .collect()
        };
        let captures = of_unit(EventKind::Capture);
        let disputes = of_unit(EventKind::DisputeRetained);
        let payouts: Vec<&Payout> = payouts.iter().filter(|p| p.0 == unit).collect();
        let (kind, psp, amount, topic) = match spec.kind {
            0..=9 => (EventKind::Capture, None, spec.amount, None),
            10..=13 => (EventKind::Refund, None, spec.amount / 3 + 1, None),
            14 => (EventKind::DisputeRetained, None, spec.amount / 4 + 1, None),
            15 if !disputes.is_empty() => {
                let d = disputes[spec.pick % disputes.len()];
                let amount = (spec.amount % d.amount) + 1;
                (
                    EventKind::DisputeReturned,
                    Some(d.psp_reference.clone()),
                    amount,
                    None,
                )
            }
            15 => (EventKind::DisputeReturned, None, spec.amount / 4 + 1, None),
            16 => (EventKind::TopUp, None, spec.amount, None),
            17 => (EventKind::ServiceFee, None, spec.amount / 10 + 1, None),
            18 => (
                EventKind::Correction,
                None,
                spec.amount - 100_000,
                Some(if spec.pick % 2 == 0 {
                    Topic::Funds
                } else {
                    Topic::Fees
                }),
            ),
            _ if !payouts.is_empty() && spec.pick % 4 != 0 => {
                let p = payouts[spec.pick % payouts.len()];
                (EventKind::PayoutAborted, Some(p.1.clone()), p.2, None)
            }
            _ => (EventKind::PayoutAborted, None::<String>, spec.amount, None),
        };
        // Refunds and disputes name an earlier capture of the same unit (or an unknown one).
        let psp = psp.unwrap_or_else(|| match kind {
            EventKind::Refund | EventKind::DisputeRetained | EventKind::DisputeReturned
                if !captures.is_empty() =>
            {
                captures[spec.pick % captures.len()].psp_reference.clone()
            }
            _ => format!("psp-{next_id}"),
        });
        // Every other refund carries its own pspReference and names its capture.
        let (psp, capture_psp_reference) = if kind == EventKind::Refund && spec.pick % 2 == 0 {
            (format!("rf-{next_id}"), Some(psp))
        } else {
            (psp, None)
        };
        *next_id += 1;
        out.push(PaymentEvent {
            event_id: format!("ev-{next_id}"),
            kind,
            msn: Msn::parse("msn", &unit.to_string()).expect("msn"),
            psp_reference: psp,
            capture_psp_reference,
            reference: format!("ref-{next_id}"),
            amount,
            currency: Currency::NOK,
            time,
            topic,
            payer: None,
        });
    }
    // Reorder within the batch.
    let n = out.len();
    if n > 1 {
        let mut x = step.shuffle | 1;
        for i in (1..n).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.swap(i, (x % (i as u64 + 1)) as usize);
        }
    }
    out
}

async fn entries(s: &dyn Store, ledger: &str, topic: Topic) -> Vec<Entry> {
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

async fn snapshot(s: &dyn Store) -> Vec<Vec<Entry>> {
    let mut out = Vec::new();
    for (id, ..) in LEDGERS {
        out.push(entries(s, id, Topic::Funds).await);
        out.push(entries(s, id, Topic::Fees).await);
    }
    out
}

async fn run(steps: Vec<Step>, prefix: usize) -> Result<(), TestCaseError> {
    let s = world().await;
    let mut now = t(START);
    let mut posted: Vec<PaymentEvent> = Vec::new();
    let mut batches: Vec<(Vec<PaymentEvent>, Vec<EventOutcome>)> = Vec::new();
    let mut next_id = 0;
    for step in &steps {
        now += SignedDuration::from_mins(step.advance_minutes);
        let mut payouts = Vec::new();
        for (id, unit, ..) in LEDGERS {
            for e in entries(&**s, id, Topic::Funds).await {
                if e.entry_type == "payout-scheduled" {
                    payouts.push((unit, e.psp_reference, -e.amount));
                }
            }
        }
        let events = events_of(step, now, &posted, &payouts, &mut next_id);
        let outcomes = s.ingest_events(events.clone(), now).await.expect("ingest");
        prop_assert_eq!(outcomes.len(), events.len());
        posted.extend(events.iter().cloned());
        batches.push((events, outcomes));
        if step.close {
            for (id, ..) in LEDGERS {
                s.close_due(&LedgerId::parse("l", id).expect("id"), now)
                    .await
                    .expect("close");
            }
        }
    }
    now += SignedDuration::from_hours(24 * 35);
    for (id, ..) in LEDGERS {
        s.close_due(&LedgerId::parse("l", id).expect("id"), now)
            .await
            .expect("close");
    }

    // Every invariant holds on every ledger.
    for (id, ..) in LEDGERS {
        let (access, view) = ledgerport_core::access::open(
            &ledgerport_core::access::Principal::Operator { user_id: None },
            s.ledger(&LedgerId::parse("l", id).expect("id"))
                .await
                .expect("read"),
        )
        .expect("the operator reads every ledger");
        let funds = entries(&**s, id, Topic::Funds).await;
        let fees = entries(&**s, id, Topic::Fees).await;
        let refunds = s.refunded_captures(&access).await.expect("refunds");
        let violations = check_ledger(&view.ledger, &funds, &fees, &refunds);
        prop_assert!(
            violations.is_empty(),
            "{}",
            violations
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    // Money moved back only where there was something to move back: an aborted payout names
    // one of its ledger's payouts, with its amount, once; disputes given back never exceed what
    // was retained; a made-up payout is refused naming its pspReference.
    for (id, ..) in LEDGERS {
        let funds = entries(&**s, id, Topic::Funds).await;
        let mut aborted = std::collections::HashSet::new();
        let mut disputes: std::collections::HashMap<&str, i64> = Default::default();
        for e in &funds {
            match e.entry_type.as_str() {
                "payout-aborted" => {
                    prop_assert!(
                        funds.iter().any(|p| p.entry_type == "payout-scheduled"
                            && p.psp_reference == e.psp_reference
                            && p.amount == -e.amount
                            && p.seq < e.seq),
                        "{e:?} brings back no payout"
                    );
                    prop_assert!(aborted.insert(&e.psp_reference), "{e:?} aborted twice");
                }
                "retained-disputed-capture" => {
                    *disputes.entry(&e.psp_reference).or_default() -= e.amount;
                }
                "returned-disputed-capture" => {
                    let still = disputes.entry(&e.psp_reference).or_default();
                    *still -= e.amount;
                    prop_assert!(*still >= 0, "{e:?} returns more than was retained");
                }
                _ => {}
            }
        }
    }
    for (events, outcomes) in &batches {
        for (e, o) in events.iter().zip(outcomes) {
            if e.kind == EventKind::PayoutAborted && e.psp_reference.starts_with("psp-") {
                prop_assert!(
                    matches!(o, EventOutcome::Rejected { rejection, .. } if rejection.field == "pspReference"),
                    "{e:?}: {o:?}"
                );
            }
        }
    }

    // Posting a prefix of the stream again changes nothing and answers as the first time.
    let before = snapshot(&**s).await;
    let k = prefix % (batches.len() + 1);
    for (events, first) in &batches[..k] {
        let again = s.ingest_events(events.clone(), now).await.expect("again");
        for (a, b) in again.iter().zip(first) {
            if let EventOutcome::Accepted { .. } = b {
                prop_assert_eq!(a, b);
            }
        }
    }
    prop_assert_eq!(snapshot(&**s).await, before);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_event_streams_keep_every_invariant_and_replays_change_nothing(steps in steps(), prefix in any::<usize>()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(run(steps, prefix))?;
    }
}
