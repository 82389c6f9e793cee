//! Completeness proofs: written by closing for every date it closes, on both topics, chained
//! from the ledger's first date; read one date at a time or all of a topic, within the reader's
//! grant.

use super::helpers::*;
use ledgerport_core::proof::{DateProof, Previous, ProofEntry, check_date, check_link, prove_date};

/// Ledger 100001 created on 2024-04-01 at 10:00 in Oslo, entries appended on its first three
/// dates, and everything due by the contract's clock closed: 2024-04-01 to 2024-04-04.
async fn closed_ledger(s: &dyn Store) {
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    add_api_unit(s, m.id, "123455", "ACME Fitness Oslo").await;
    let created: Timestamp = "2024-04-01T08:00:00Z".parse().expect("time");
    must(
        s.create_ledger(
            &by(),
            NewLedger {
                created_at: Some(created),
                ..ledger_spec("100001", m.id, &["123455"])
            },
        )
        .await,
        "create a ledger in the past",
    );
    append(
        s,
        "100001",
        Topic::Funds,
        &[
            entry("capture", 10000, "2024-04-01", 1),
            entry("capture", 5000, "2024-04-01", 2),
        ],
    )
    .await;
    append(
        s,
        "100001",
        Topic::Fees,
        &[entry("capture-fee", -275, "2024-04-01", 1)],
    )
    .await;
    // 2024-04-01 and 02 close at 00:30 on the 3rd (Oslo); the refund is booked on the 3rd after
    // that, as the engine would book it; the rest closes by the contract's clock.
    let third: Timestamp = "2024-04-02T22:30:00Z".parse().expect("time");
    must(
        s.close_due(&lid("100001"), third).await,
        "close the first two dates",
    );
    append(
        s,
        "100001",
        Topic::Funds,
        &[entry("refund", -2000, "2024-04-03", 3)],
    )
    .await;
    must(
        s.close_due(&lid("100001"), contract_now()).await,
        "close the due dates",
    );
}

const CLOSED: [&str; 4] = ["2024-04-01", "2024-04-02", "2024-04-03", "2024-04-04"];

pub async fn closing_proves_every_date_it_closes_on_both_topics_chained_from_the_first(
    s: &dyn Store,
) {
    // Arrange
    closed_ledger(s).await;
    let access = owner_access(s, "100001").await;

    for topic in [Topic::Funds, Topic::Fees] {
        // Act
        let all = must(s.date_proofs(&access, topic).await, "the topic's proofs");
        let mut one_by_one = Vec::new();
        for d in CLOSED {
            one_by_one.push(some(
                must(s.date_proof(&access, topic, day(d)).await, "a proof"),
                &format!("the proof of {topic} {d}"),
            ));
        }
        let before_first = must(
            s.date_proof(&access, topic, day("2024-03-31")).await,
            "the day before the first",
        );
        let open = must(
            s.date_proof(&access, topic, day("2024-04-05")).await,
            "an open date",
        );

        // Assert
        assert_eq!(all, one_by_one, "{topic}: date order, one row per date");
        assert_eq!(before_first, None, "{topic}: nothing before the first date");
        assert_eq!(open, None, "{topic}: an open date has no proof yet");
        let mut previous: Option<&DateProof> = None;
        for p in &all {
            let entries = must(
                s.date_page(&access, topic, p.ledger_date, 0, 1000).await,
                "the date's entries",
            );
            let found = check_date(p, entries.iter().map(ProofEntry::from));
            assert!(found.is_empty(), "{topic} {}: {found:?}", p.ledger_date);
            // What a client computes from the entries and the previous proof alone.
            let start = previous.map_or(Previous::START, DateProof::as_previous);
            let expected = must(
                prove_date(
                    &lid("100001"),
                    topic,
                    p.ledger_date,
                    entries.iter().map(ProofEntry::from),
                    start,
                )
                .map_err(|e| StoreError::Corrupt(e.to_string())),
                "prove",
            );
            assert_eq!(p, &expected, "{topic} {}", p.ledger_date);
            if let Some(prev) = previous {
                assert!(check_link(prev, p).is_empty(), "{topic} {}", p.ledger_date);
            }
            previous = Some(p);
        }
    }
    // The funds of the first date: two captures, the fees retained and the payout.
    let first = some(
        must(
            s.date_proof(&access, Topic::Funds, day("2024-04-01")).await,
            "funds 2024-04-01",
        ),
        "funds 2024-04-01",
    );
    assert_eq!(first.entry_count, 4);
    assert_eq!((first.opening_balance, first.closing_balance), (0, 0));
    assert_eq!(first.previous_chain_digest, None);
    // 2024-04-03's refund leaves a negative balance that carries over to 2024-04-04.
    let last = some(
        must(
            s.date_proof(&access, Topic::Funds, day("2024-04-04")).await,
            "funds 2024-04-04",
        ),
        "funds 2024-04-04",
    );
    assert_eq!((last.entry_count, last.opening_balance), (0, -2000));
}

pub async fn a_reader_gets_only_the_proofs_of_its_grants_topics_and_period(s: &dyn Store) {
    // Arrange
    closed_ledger(s).await;
    let p = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;
    must(
        s.create_grant(
            &by(),
            p.id,
            &lid("100001"),
            &GrantScope {
                topics: Topics {
                    funds: true,
                    fees: false,
                },
                from: Some(day("2024-04-02")),
                to: Some(day("2024-04-03")),
                ..GrantScope::EVERYTHING
            },
        )
        .await,
        "grant",
    );
    let keys = Principal::Accounting {
        key_id: 1,
        partner_id: p.id,
    };
    let facts = facts_of(s, "100001").await;
    let access = match decide(&keys, Some(&facts)) {
        Decision::Allow(a) => a,
        other => panic!("the partner must read ledger 100001, got {other:?}"),
    };

    // Act
    let funds = must(s.date_proofs(&access, Topic::Funds).await, "funds");
    let fees = must(s.date_proofs(&access, Topic::Fees).await, "fees");
    let outside = must(
        s.date_proof(&access, Topic::Funds, day("2024-04-01")).await,
        "outside the period",
    );
    let other_topic = must(
        s.date_proof(&access, Topic::Fees, day("2024-04-02")).await,
        "outside the topics",
    );
    let inside = must(
        s.date_proof(&access, Topic::Funds, day("2024-04-02")).await,
        "inside",
    );

    // Assert
    let dates: Vec<String> = funds.iter().map(|p| p.ledger_date.to_string()).collect();
    assert_eq!(dates, ["2024-04-02", "2024-04-03"]);
    assert!(fees.is_empty(), "{fees:?}");
    assert_eq!((outside, other_topic), (None, None));
    assert_eq!(inside.as_ref(), funds.first());
}

/// Every proof of `topic` is what its date's entries give, each chained to the one before;
/// returns them in date order.
async fn proofs_that_hold(s: &dyn Store, access: &LedgerAccess, topic: Topic) -> Vec<DateProof> {
    let all = must(s.date_proofs(access, topic).await, "the topic's proofs");
    let dates: Vec<String> = all.iter().map(|p| p.ledger_date.to_string()).collect();
    assert_eq!(dates, CLOSED, "{topic}: one proof per closed date");
    for (i, p) in all.iter().enumerate() {
        let entries = must(
            s.date_page(access, topic, p.ledger_date, 0, 1000).await,
            "the date's entries",
        );
        let found = check_date(p, entries.iter().map(ProofEntry::from));
        assert!(found.is_empty(), "{topic} {}: {found:?}", p.ledger_date);
        if i > 0 {
            let link = check_link(&all[i - 1], p);
            assert!(link.is_empty(), "{topic} {}: {link:?}", p.ledger_date);
        }
    }
    all
}

pub async fn appending_to_a_closed_date_proves_it_and_every_later_date_anew(s: &dyn Store) {
    // Arrange
    closed_ledger(s).await;
    let access = owner_access(s, "100001").await;
    let funds_before = proofs_that_hold(s, &access, Topic::Funds).await;
    let fees_before = proofs_that_hold(s, &access, Topic::Fees).await;

    // Act: a capture dated 2024-04-03, closed (with 2024-04-04 after it) before it arrives; then
    // one on the open 2024-04-05, which no proof covers.
    append(
        s,
        "100001",
        Topic::Funds,
        &[entry("capture", 700, "2024-04-03", 4)],
    )
    .await;
    let funds_after = proofs_that_hold(s, &access, Topic::Funds).await;
    append(
        s,
        "100001",
        Topic::Funds,
        &[entry("capture", 300, "2024-04-05", 5)],
    )
    .await;
    let funds_later = proofs_that_hold(s, &access, Topic::Funds).await;

    // Assert
    assert_eq!(
        funds_after[..2],
        funds_before[..2],
        "the dates before hold what they held"
    );
    let (third, fourth) = (&funds_after[2], &funds_after[3]);
    assert_eq!(third.entry_count, funds_before[2].entry_count + 1);
    assert_eq!(third.amount_sum, funds_before[2].amount_sum + 700);
    assert_eq!(
        (fourth.opening_balance, fourth.closing_balance),
        (-1300, -1300)
    );
    for i in 2..CLOSED.len() {
        assert_ne!(
            funds_after[i].chain_digest, funds_before[i].chain_digest,
            "{}: the change shows in every later chain digest",
            CLOSED[i]
        );
    }
    assert_eq!(
        proofs_that_hold(s, &access, Topic::Fees).await,
        fees_before,
        "the other topic's proofs are untouched"
    );
    assert_eq!(funds_later, funds_after, "an open date changes no proof");
}

/// The digest states of both topics of `ledger` are what its entries give, date by date (the
/// `proof` rule of `verify`); returns the stored states of `topic`.
async fn states_that_hold(
    s: &dyn Store,
    ledger: &str,
    topic: Topic,
) -> Vec<(LedgerDate, ledgerport_core::proof::DateDigestState)> {
    use ledgerport_core::verify::{check_date_states, check_proofs};
    let access = owner_access(s, ledger).await;
    let view = some(
        must(operator_view(s, &lid(ledger)).await, "the ledger"),
        "the ledger",
    );
    let mut wanted = Vec::new();
    for t in [Topic::Funds, Topic::Fees] {
        let entries = whole_feed(s, ledger, t).await;
        let states = must(s.date_digest_states(&access, t).await, "digest states");
        let proofs = must(s.date_proofs(&access, t).await, "proofs");
        let found = check_date_states(&view.ledger, t, &entries, &states);
        assert!(found.is_empty(), "{t}: {found:?}");
        let found = check_proofs(&view.ledger, t, &entries, &proofs);
        assert!(found.is_empty(), "{t}: {found:?}");
        if t == topic {
            wanted = states;
        }
    }
    wanted
}

pub async fn digest_states_follow_every_batch_that_books_on_a_date(s: &dyn Store) {
    use ledgerport_core::engine::{EventKind, PaymentEvent};
    // Arrange: ledger 100001, created at the contract's clock (2024-04-05, Oslo).
    one_ledger(s, "100001").await;
    let capture = |id: &str, at: &str| PaymentEvent {
        event_id: id.into(),
        kind: EventKind::Capture,
        msn: msn("123455"),
        psp_reference: format!("p-{id}"),
        capture_psp_reference: None,
        reference: format!("r-{id}"),
        amount: 1000,
        currency: Currency::NOK,
        time: at.parse().expect("time"),
        topic: None,
        payer: None,
    };
    let now = contract_now();
    let fifth = day("2024-04-05");

    // Act and assert: three batches, each its own transaction, and an appended entry between
    // them, all booked on 2024-04-05; each time the date's state is what its entries give.
    let mut funds_count = 0;
    for (batch, ids) in [["a1", "a2"], ["b1", "b2"], ["c1", "c2"]]
        .iter()
        .enumerate()
    {
        let events = ids.iter().map(|id| capture(id, CONTRACT_NOW)).collect();
        let outcomes = must(s.ingest_events(events, now).await, "ingest");
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, ledgerport_store::EventOutcome::Accepted { .. })),
            "{outcomes:?}"
        );
        funds_count += 2;
        if batch == 1 {
            append(
                s,
                "100001",
                Topic::Funds,
                &[entry("capture", 300, "2024-04-05", 9)],
            )
            .await;
            funds_count += 1;
        }
        let states = states_that_hold(s, "100001", Topic::Funds).await;
        assert_eq!(states.len(), 1, "one date booked: {states:?}");
        assert_eq!(states[0].0, fifth);
        assert_eq!(states[0].1.count, funds_count, "after batch {batch}");
    }
    let before_closing = states_that_hold(s, "100001", Topic::Funds).await[0].1;

    // The closing adds its entries to 2024-04-05's state and proves it from there; a batch on
    // the next date starts that date's state afresh.
    let closed = must(
        s.close_due(
            &lid("100001"),
            "2024-04-06T06:00:00Z".parse().expect("time"),
        )
        .await,
        "close 2024-04-05",
    );
    assert_eq!(closed.len(), 1);
    let after_closing = states_that_hold(s, "100001", Topic::Funds).await;
    assert!(
        after_closing[0].1.count > before_closing.count,
        "the closing's entries count"
    );
    let proof = some(
        must(
            s.date_proof(&owner_access(s, "100001").await, Topic::Funds, fifth)
                .await,
            "the proof",
        ),
        "the proof of 2024-04-05",
    );
    assert_eq!(proof.digest, after_closing[0].1.digest);
    assert_eq!(proof.entry_count, after_closing[0].1.count);
    let later = "2024-04-06T07:00:00Z";
    must(
        s.ingest_events(vec![capture("d1", later)], later.parse().expect("time"))
            .await,
        "ingest on 2024-04-06",
    );
    let states = states_that_hold(s, "100001", Topic::Funds).await;
    assert_eq!(states.len(), 2, "{states:?}");
    assert_eq!((states[1].0, states[1].1.count), (day("2024-04-06"), 1));
    assert_eq!(
        states[0], after_closing[0],
        "the closed date keeps its state"
    );
}
