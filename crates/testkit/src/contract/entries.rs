//! Entries: appending, balance chains, feed and date pages.

use super::helpers::*;

pub async fn appended_entries_are_numbered_from_one_on_each_ledger_and_topic(s: &dyn Store) {
    // Arrange
    let m = one_ledger(s, "100001").await;
    add_api_unit(s, m.id, "123456", "ACME Bergen").await;
    add_ledger(s, "100002", m.id, &["123456"]).await;
    let funds1 = [
        entry("capture", 10_000, "2024-04-05", 1),
        entry("capture", 2_500, "2024-04-05", 2),
    ];
    let fees1 = [entry("capture-fee", -275, "2024-04-05", 1)];
    let funds2 = [entry("capture", 500, "2024-04-05", 3)];
    let funds1_more = [entry("refund", -2_500, "2024-04-05", 4)];
    let fees1_more = [
        entry("service-fee", -4_900, "2024-04-05", 5),
        entry("correction", 100, "2024-04-05", 6),
    ];

    // Act
    let a = append(s, "100001", Topic::Funds, &funds1).await;
    let b = append(s, "100001", Topic::Fees, &fees1).await;
    let c = append(s, "100002", Topic::Funds, &funds2).await;
    let empty = append(s, "100001", Topic::Funds, &[]).await;
    let d = append(s, "100001", Topic::Funds, &funds1_more).await;
    let e = append(s, "100001", Topic::Fees, &fees1_more).await;

    // Assert
    assert_eq!(a, placed_all(&funds1, 1, 0));
    assert_eq!(
        b,
        placed_all(&fees1, 1, 0),
        "fees count from 1 on their own"
    );
    assert_eq!(
        c,
        placed_all(&funds2, 1, 0),
        "another ledger counts from 1 on its own"
    );
    assert_eq!(empty, vec![], "an empty batch writes nothing");
    assert_eq!(
        d,
        placed_all(&funds1_more, 3, 12_500),
        "the empty batch used no number"
    );
    assert_eq!(e, placed_all(&fees1_more, 2, -275));
    let funds_feed: Vec<i64> = whole_feed(s, "100001", Topic::Funds)
        .await
        .iter()
        .map(|e| e.seq)
        .collect();
    let fees_feed: Vec<i64> = whole_feed(s, "100001", Topic::Fees)
        .await
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(funds_feed, vec![1, 2, 3]);
    assert_eq!(fees_feed, vec![1, 2, 3]);
}

pub async fn appended_entries_chain_balances_across_calls(s: &dyn Store) {
    // Arrange
    one_ledger(s, "100001").await;
    let calls: Vec<Vec<NewEntry>> = vec![
        vec![
            entry("capture", 10_000, "2024-04-01", 1),
            entry("capture", 2_500, "2024-04-01", 2),
        ],
        vec![entry("refund", -2_500, "2024-04-01", 3)],
        vec![
            entry("fees-retained", -150, "2024-04-01", 4),
            entry("payout-scheduled", -9_850, "2024-04-01", 5),
        ],
        vec![entry("refund", -700, "2024-04-02", 6)],
        vec![
            entry("capture", 300, "2024-04-03", 7),
            entry("top-up", 400, "2024-04-03", 8),
        ],
    ];

    // Act
    let mut written = Vec::new();
    for call in &calls {
        written.push(append(s, "100001", Topic::Funds, call).await);
    }

    // Assert
    let expected_after: Vec<Vec<i64>> = vec![
        vec![10_000, 12_500],
        vec![10_000],
        vec![9_850, 0],
        vec![-700],
        vec![-400, 0],
    ];
    let got_after: Vec<Vec<i64>> = written
        .iter()
        .map(|w| w.iter().map(|e| e.balance_after).collect())
        .collect();
    assert_eq!(
        got_after, expected_after,
        "balances after each entry, call by call"
    );
    let expected: Vec<Entry> = {
        let all: Vec<NewEntry> = calls.concat();
        placed_all(&all, 1, 0)
    };
    assert_eq!(written.concat(), expected);
    let feed = whole_feed(s, "100001", Topic::Funds).await;
    assert_eq!(
        feed, expected,
        "the feed reads back what the appends returned"
    );
    for pair in feed.windows(2) {
        assert_eq!(
            pair[1].balance_before, pair[0].balance_after,
            "seq {} must start where seq {} ended",
            pair[1].seq, pair[0].seq
        );
    }
}

pub async fn an_entry_in_another_currency_is_invalid_and_none_of_its_batch_is_written(
    s: &dyn Store,
) {
    // Arrange
    one_ledger(s, "100001").await;
    let first = append(
        s,
        "100001",
        Topic::Funds,
        &[entry("capture", 1_000, "2024-04-05", 1)],
    )
    .await;
    let mut danish = entry("capture", 3_000, "2024-04-05", 3);
    danish.currency = Currency::DKK;
    let mut danish_fee = entry("capture-fee", -30, "2024-04-05", 4);
    danish_fee.currency = Currency::DKK;

    // Act
    let mixed = s
        .append_entries(
            &lid("100001"),
            Topic::Funds,
            vec![entry("capture", 2_000, "2024-04-05", 2), danish],
        )
        .await;
    let fee = s
        .append_entries(&lid("100001"), Topic::Fees, vec![danish_fee])
        .await;
    let next = append(
        s,
        "100001",
        Topic::Funds,
        &[entry("capture", 500, "2024-04-05", 5)],
    )
    .await;

    // Assert
    assert_error(mixed, Expect::Invalid, "a NOK ledger given a DKK entry");
    assert_error(fee, Expect::Invalid, "a NOK ledger given a DKK fee");
    assert_eq!(
        next,
        placed_all(&[entry("capture", 500, "2024-04-05", 5)], 2, 1_000),
        "the refused batch left no trace"
    );
    let mut expected = first;
    expected.extend(next);
    assert_eq!(whole_feed(s, "100001", Topic::Funds).await, expected);
    assert_eq!(whole_feed(s, "100001", Topic::Fees).await, vec![]);
}

pub async fn an_entry_type_that_does_not_belong_on_the_topic_is_invalid_and_none_of_its_batch_is_written(
    s: &dyn Store,
) {
    // Arrange
    one_ledger(s, "100001").await;

    // Act
    let fee_on_funds = s
        .append_entries(
            &lid("100001"),
            Topic::Funds,
            vec![
                entry("capture", 1_000, "2024-04-05", 1),
                entry("capture-fee", -25, "2024-04-05", 2),
            ],
        )
        .await;
    let capture_on_fees = s
        .append_entries(
            &lid("100001"),
            Topic::Fees,
            vec![
                entry("capture-fee", -25, "2024-04-05", 2),
                entry("capture", 1_000, "2024-04-05", 1),
            ],
        )
        .await;
    let unknown_type = s
        .append_entries(
            &lid("100001"),
            Topic::Funds,
            vec![
                entry("capture", 1_000, "2024-04-05", 1),
                entry("surprise", 5, "2024-04-05", 3),
            ],
        )
        .await;

    // Assert
    assert_error(fee_on_funds, Expect::Invalid, "capture-fee on funds");
    assert_error(capture_on_fees, Expect::Invalid, "capture on fees");
    assert_error(unknown_type, Expect::Invalid, "an unknown entry type");
    assert_eq!(
        whole_feed(s, "100001", Topic::Funds).await,
        vec![],
        "no funds entry of a refused batch"
    );
    assert_eq!(
        whole_feed(s, "100001", Topic::Fees).await,
        vec![],
        "no fees entry of a refused batch"
    );
    let ok = [entry("capture", 1_000, "2024-04-05", 1)];
    assert_eq!(
        append(s, "100001", Topic::Funds, &ok).await,
        placed_all(&ok, 1, 0)
    );
    let both_topics = [entry("fees-retained", 25, "2024-04-05", 4)];
    assert_eq!(
        append(s, "100001", Topic::Fees, &both_topics).await,
        placed_all(&both_topics, 1, 0)
    );
}

pub async fn appending_to_an_unknown_ledger_is_not_found(s: &dyn Store) {
    // Arrange
    one_ledger(s, "100001").await;

    // Act
    let r = s
        .append_entries(
            &lid("100002"),
            Topic::Funds,
            vec![entry("capture", 1_000, "2024-04-05", 1)],
        )
        .await;

    // Assert
    assert_error(r, Expect::NotFound, "appending to unknown ledger 100002");
    assert_eq!(
        whole_feed(s, "100001", Topic::Funds).await,
        vec![],
        "nothing landed on another ledger"
    );
}

pub async fn concurrent_appends_to_one_topic_stay_gap_free_and_chained(s: &dyn Store) {
    // Arrange
    one_ledger(s, "100001").await;
    let batch = |k: u32| -> Vec<NewEntry> {
        (0..3)
            .map(|j| {
                entry(
                    "capture",
                    i64::from(k * 100 + j + 1),
                    "2024-04-05",
                    k * 3 + j,
                )
            })
            .collect()
    };
    let id = lid("100001");

    // Act
    let (r0, r1, r2, r3) = tokio::join!(
        s.append_entries(&id, Topic::Funds, batch(0)),
        s.append_entries(&id, Topic::Funds, batch(1)),
        s.append_entries(&id, Topic::Funds, batch(2)),
        s.append_entries(&id, Topic::Funds, batch(3)),
    );

    // Assert
    let results = [r0, r1, r2, r3].map(|r| must(r, "a concurrent append"));
    for (k, written) in results.iter().enumerate() {
        let seqs: Vec<i64> = written.iter().map(|e| e.seq).collect();
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "batch {k} must get consecutive numbers, got {seqs:?}"
        );
    }
    let feed = whole_feed(s, "100001", Topic::Funds).await;
    assert_eq!(
        feed.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=12).collect::<Vec<i64>>()
    );
    let mut balance = 0;
    for e in &feed {
        assert_eq!(
            e.balance_before, balance,
            "seq {} must start at the previous balance",
            e.seq
        );
        assert_eq!(
            e.balance_after,
            e.balance_before + e.amount,
            "seq {}",
            e.seq
        );
        balance = e.balance_after;
    }
    // Batch k holds k*100 + 1, + 2, + 3: 300k + 6 each, 1 824 in all.
    assert_eq!(balance, 1_824);
    let mut from_results: Vec<Entry> = results.concat();
    from_results.sort_by_key(|e| e.seq);
    assert_eq!(
        feed, from_results,
        "the feed holds exactly what the appends returned"
    );
}

pub async fn feed_pages_return_exactly_the_entries_after_the_given_seq(s: &dyn Store) {
    // Arrange
    let m = one_ledger(s, "100001").await;
    add_api_unit(s, m.id, "123456", "ACME Bergen").await;
    add_ledger(s, "100002", m.id, &["123456"]).await;
    let funds: Vec<NewEntry> = (1..=7)
        .map(|n| entry("capture", i64::from(n) * 100, "2024-04-05", n))
        .collect();
    let written = append(s, "100001", Topic::Funds, &funds).await;
    append(
        s,
        "100001",
        Topic::Fees,
        &[entry("capture-fee", -3, "2024-04-05", 1)],
    )
    .await;
    append(
        s,
        "100002",
        Topic::Funds,
        &[entry("capture", 999, "2024-04-05", 8)],
    )
    .await;
    let access = owner_access(s, "100001").await;
    let page = |after: i64, limit: u32| s.feed_page(&access, Topic::Funds, after, limit);

    // Act
    let p1 = must(page(0, 3).await, "feed page");
    let p2 = must(page(3, 3).await, "feed page");
    let p3 = must(page(6, 3).await, "feed page");
    let end = must(page(7, 3).await, "feed page at the end");
    let beyond = must(page(100, 3).await, "feed page beyond the end");
    let middle = must(page(2, 100).await, "feed page");
    let one = must(page(0, 1).await, "feed page");
    let fees = must(s.feed_page(&access, Topic::Fees, 0, 100).await, "fees feed");

    // Assert
    assert_eq!(p1, written[0..3].to_vec());
    assert_eq!(p2, written[3..6].to_vec());
    assert_eq!(p3, written[6..7].to_vec());
    assert_eq!(end, vec![]);
    assert_eq!(beyond, vec![]);
    assert_eq!(middle, written[2..7].to_vec());
    assert_eq!(one, written[0..1].to_vec());
    assert_eq!(fees.len(), 1, "the fees topic has its own feed");
    assert_eq!(
        (fees[0].entry_type.as_str(), fees[0].amount),
        ("capture-fee", -3)
    );
}

pub async fn date_pages_return_only_that_dates_entries_after_the_given_seq(s: &dyn Store) {
    // Arrange: seq 1-2 on 04-01, 3-5 on 04-02, 6 on 04-03, 7 on 04-02 again (a late entry).
    let m = one_ledger(s, "100001").await;
    add_api_unit(s, m.id, "123456", "ACME Bergen").await;
    add_ledger(s, "100002", m.id, &["123456"]).await;
    let dates = [
        "2024-04-01",
        "2024-04-01",
        "2024-04-02",
        "2024-04-02",
        "2024-04-02",
        "2024-04-03",
        "2024-04-02",
    ];
    let funds: Vec<NewEntry> = dates
        .iter()
        .zip(1..)
        .map(|(d, n)| entry("capture", i64::from(n) * 100, d, n))
        .collect();
    let w = append(s, "100001", Topic::Funds, &funds).await;
    append(
        s,
        "100001",
        Topic::Fees,
        &[entry("capture-fee", -3, "2024-04-02", 1)],
    )
    .await;
    append(
        s,
        "100002",
        Topic::Funds,
        &[entry("capture", 999, "2024-04-02", 8)],
    )
    .await;
    let access = owner_access(s, "100001").await;
    let page = |date: &str, after: i64, limit: u32| {
        s.date_page(&access, Topic::Funds, day(date), after, limit)
    };

    // Act
    let apr2_first = must(page("2024-04-02", 0, 2).await, "date page");
    let apr2_second = must(page("2024-04-02", 4, 2).await, "date page");
    let apr2_end = must(page("2024-04-02", 7, 2).await, "date page");
    let apr2_after_5 = must(page("2024-04-02", 5, 10).await, "date page");
    let apr1 = must(page("2024-04-01", 0, 10).await, "date page");
    let apr3 = must(page("2024-04-03", 0, 10).await, "date page");
    let apr4 = must(
        page("2024-04-04", 0, 10).await,
        "date page of a date without entries",
    );
    let fees_apr2 = must(
        s.date_page(&access, Topic::Fees, day("2024-04-02"), 0, 10)
            .await,
        "fees date page",
    );

    // Assert
    assert_eq!(apr2_first, vec![w[2].clone(), w[3].clone()]);
    assert_eq!(apr2_second, vec![w[4].clone(), w[6].clone()]);
    assert_eq!(apr2_end, vec![]);
    assert_eq!(apr2_after_5, vec![w[6].clone()]);
    assert_eq!(apr1, vec![w[0].clone(), w[1].clone()]);
    assert_eq!(apr3, vec![w[5].clone()]);
    assert_eq!(apr4, vec![]);
    assert_eq!(
        fees_apr2
            .iter()
            .map(|e| (e.seq, e.amount))
            .collect::<Vec<_>>(),
        vec![(1, -3)]
    );
}

pub async fn payer_details_round_trip_and_stay_absent_when_not_given(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    add_vm_unit(s, m.id, "223344", Country::NO, "57860").await;
    add_ledger(s, "100001", m.id, &["223344"]).await;
    let with_payer = |n: u32, name: &str, message: &str, phone: &str| NewEntry {
        recipient_handle: "NO:57860".into(),
        payer: Some(PayerDetails {
            name: name.into(),
            message: message.into(),
            masked_phone_no: phone.into(),
        }),
        ..entry("capture", 10_000, "2024-04-05", n)
    };
    let entries = vec![
        with_payer(1, "Kari Nordmann", "Takk for maten 🍕 «ære»", "xxxx 1234"),
        NewEntry {
            recipient_handle: "NO:57860".into(),
            ..entry("capture", 5_000, "2024-04-05", 2)
        },
        with_payer(3, "Ola", "", "xxxx 5678"),
    ];

    // Act
    let written = append(s, "100001", Topic::Funds, &entries).await;
    let access = owner_access(s, "100001").await;
    let feed = must(s.feed_page(&access, Topic::Funds, 0, 10).await, "feed");
    let date = must(
        s.date_page(&access, Topic::Funds, day("2024-04-05"), 0, 10)
            .await,
        "date page",
    );

    // Assert
    let expected = placed_all(&entries, 1, 0);
    assert_eq!(written, expected);
    assert_eq!(feed, expected);
    assert_eq!(date, expected);
    assert_eq!(
        feed[1].payer, None,
        "an entry without payer details reads back without them"
    );
    assert_eq!(
        feed[2].payer,
        Some(PayerDetails {
            name: "Ola".into(),
            message: String::new(),
            masked_phone_no: "xxxx 5678".into()
        }),
        "an empty message is still a message"
    );
}

pub async fn a_page_of_a_thousand_entries_reads_back_whole_in_seq_order(s: &dyn Store) {
    // Arrange: 1,500 entries whose dates alternate in runs (so a date page joins several runs),
    // every third with payer details full of characters that need escaping, amounts beyond
    // what a double holds exactly.
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    add_vm_unit(s, m.id, "223344", Country::NO, "57860").await;
    add_ledger(s, "100001", m.id, &["223344"]).await;
    let entries: Vec<NewEntry> = (1..=1500u32)
        .map(|n| {
            let date = if n / 100 % 2 == 0 {
                "2024-04-05"
            } else {
                "2024-04-06"
            };
            let amount = if n % 2 == 1 {
                9_007_199_254_740_993
            } else {
                -9_007_199_254_740_992
            };
            NewEntry {
                recipient_handle: "NO:57860".into(),
                payer: (n % 3 == 0).then(|| PayerDetails {
                    name: format!("Kari \"K\" Nordmann {n}"),
                    message: format!("back\\slash\nline\ttab\u{1} «ære» 🍕 {n}"),
                    masked_phone_no: "xxxx 1234".into(),
                }),
                ..entry("capture", amount, date, n)
            }
        })
        .collect();
    let written = append(s, "100001", Topic::Funds, &entries).await;
    let access = owner_access(s, "100001").await;
    let on_the_5th: Vec<Entry> = written
        .iter()
        .filter(|e| e.ledger_date == day("2024-04-05"))
        .cloned()
        .collect();

    // Act
    let first = must(s.feed_page(&access, Topic::Funds, 0, 1000).await, "feed");
    let rest = must(s.feed_page(&access, Topic::Funds, 1000, 1000).await, "feed");
    let date_first = must(
        s.date_page(&access, Topic::Funds, day("2024-04-05"), 0, 500)
            .await,
        "date page",
    );
    let date_rest = must(
        s.date_page(
            &access,
            Topic::Funds,
            day("2024-04-05"),
            date_first[499].seq,
            1000,
        )
        .await,
        "date page",
    );

    // Assert
    assert_eq!(written, placed_all(&entries, 1, 0));
    assert_eq!(first, written[..1000].to_vec());
    assert_eq!(rest, written[1000..].to_vec());
    assert_eq!(date_first, on_the_5th[..500].to_vec());
    assert_eq!(date_rest, on_the_5th[500..].to_vec());
}

pub async fn wire_pages_hold_the_entry_pages_entries_and_say_whether_more_follow(s: &dyn Store) {
    // Arrange: 1,500 entries whose dates alternate in runs of 100 (a date page joins several
    // runs), every third with payer details that need escaping, amounts beyond 2^53.
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    add_vm_unit(s, m.id, "223344", Country::NO, "57860").await;
    add_ledger(s, "100001", m.id, &["223344"]).await;
    let entries: Vec<NewEntry> = (1..=1500u32)
        .map(|n| {
            let date = if n / 100 % 2 == 0 {
                "2024-04-05"
            } else {
                "2024-04-06"
            };
            let amount = if n % 2 == 1 {
                9_007_199_254_740_993
            } else {
                -9_007_199_254_740_992
            };
            NewEntry {
                recipient_handle: "NO:57860".into(),
                payer: (n % 3 == 0).then(|| PayerDetails {
                    name: format!("Kari \"K\" Nordmann {n}"),
                    message: format!("back\\slash\nline\ttab\u{1}\u{7f}\u{2028} 🍕 {n}"),
                    masked_phone_no: "xxxx 1234".into(),
                }),
                ..entry("capture", amount, date, n)
            }
        })
        .collect();
    append(s, "100001", Topic::Funds, &entries).await;
    let access = owner_access(s, "100001").await;
    let d5 = day("2024-04-05");

    // Act / Assert: pages from the start, the middle, the last entry and past it.
    for (after, limit) in [
        (0, 1000),
        (999, 1000),
        (1000, 1000),
        (1499, 1000),
        (1500, 1000),
        (0, 1),
    ] {
        let expected = must(
            s.feed_page(&access, Topic::Funds, after, limit).await,
            "feed",
        );
        let next_from = expected.last().map_or(after, |e| e.seq);
        let more = !must(
            s.feed_page(&access, Topic::Funds, next_from, 1).await,
            "feed",
        )
        .is_empty();
        for personal in [false, true] {
            let wire = must(
                s.feed_page_wire(&access, Topic::Funds, after, limit, personal)
                    .await,
                "wire feed",
            );
            let what = format!("feed after {after}, limit {limit}, personal {personal}");
            check_wire(&wire, &expected, more, personal, &what);
        }
    }
    let on_the_5th = must(
        s.date_page(&access, Topic::Funds, d5, 0, 1000).await,
        "date",
    );
    assert_eq!(on_the_5th.len(), 799, "entries of 2024-04-05");
    for (after, limit) in [
        (0, 300),
        (on_the_5th[299].seq, 300),
        (on_the_5th[598].seq, 300),
        (on_the_5th[798].seq, 300),
        (0, 799),
    ] {
        let expected = must(
            s.date_page(&access, Topic::Funds, d5, after, limit).await,
            "date",
        );
        let next_from = expected.last().map_or(after, |e| e.seq);
        let more = !must(
            s.date_page(&access, Topic::Funds, d5, next_from, 1).await,
            "date",
        )
        .is_empty();
        for personal in [false, true] {
            let wire = must(
                s.date_page_wire(&access, Topic::Funds, d5, after, limit, personal)
                    .await,
                "wire date page",
            );
            let what = format!("date page after {after}, limit {limit}, personal {personal}");
            check_wire(&wire, &expected, more, personal, &what);
        }
    }
}

/// A wire page against the entries of the same page: count, last seq, whether more follow, and
/// each object's fields (numbers exact, text unescaped back to what was written).
#[track_caller]
fn check_wire(
    wire: &ledgerport_store::WirePage,
    expected: &[Entry],
    more: bool,
    personal: bool,
    what: &str,
) {
    assert_eq!(wire.entries, expected.len(), "{what}: count");
    assert_eq!(
        wire.last_seq,
        expected.last().map(|e| e.seq),
        "{what}: last seq"
    );
    assert_eq!(wire.more, more, "{what}: whether more follow");
    let items: Vec<serde_json::Map<String, serde_json::Value>> =
        match serde_json::from_str(&format!("[{}]", wire.items())) {
            Ok(v) => v,
            Err(e) => panic!("{what}: the items are not JSON objects: {e}"),
        };
    assert_eq!(items.len(), expected.len(), "{what}: objects");
    for (o, e) in items.iter().zip(expected) {
        let text = |k: &str| o.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let int = |k: &str| o.get(k).and_then(|v| v.as_i64());
        assert_eq!(
            text("pspReference"),
            Some(e.psp_reference.clone()),
            "{what}"
        );
        assert_eq!(
            text("ledgerDate"),
            Some(e.ledger_date.to_string()),
            "{what}"
        );
        assert_eq!(int("amount"), Some(e.amount), "{what}: amount of {}", e.seq);
        assert_eq!(int("balanceAfter"), Some(e.balance_after), "{what}");
        let payer = o.get("name").map(|_| PayerDetails {
            name: text("name").unwrap_or_default(),
            message: text("message").unwrap_or_default(),
            masked_phone_no: text("maskedPhoneNo").unwrap_or_default(),
        });
        let expected_payer = if personal { e.payer.clone() } else { None };
        assert_eq!(payer, expected_payer, "{what}: payer of {}", e.seq);
    }
}

pub async fn refunded_captures_link_each_refund_with_its_own_psp_reference_to_its_capture(
    s: &dyn Store,
) {
    use ledgerport_core::engine::{EventKind, PaymentEvent};
    // Arrange: two captures on ledger 100001, refunds of both with their own pspReference, a
    // refund under its capture's pspReference, and a refund with its own on ledger 100002.
    let m = one_ledger(s, "100001").await;
    add_api_unit(s, m.id, "123456", "ACME Bergen").await;
    add_ledger(s, "100002", m.id, &["123456"]).await;
    let event =
        |id: &str, kind: EventKind, unit: &str, psp: &str, capture: Option<&str>| PaymentEvent {
            event_id: id.into(),
            kind,
            msn: msn(unit),
            psp_reference: psp.into(),
            capture_psp_reference: capture.map(str::to_owned),
            reference: String::new(),
            amount: if kind == EventKind::Capture {
                1000
            } else {
                100
            },
            currency: Currency::NOK,
            time: contract_now(),
            topic: None,
            payer: None,
        };
    let outcomes = must(
        s.ingest_events(
            vec![
                event("c1", EventKind::Capture, "123455", "p1", None),
                event("c2", EventKind::Capture, "123455", "p2", None),
                event("c3", EventKind::Capture, "123456", "p3", None),
                event("r1", EventKind::Refund, "123455", "rf-b", Some("p1")),
                event("r2", EventKind::Refund, "123455", "rf-a", Some("p2")),
                event("r3", EventKind::Refund, "123455", "p1", None),
                event("r4", EventKind::Refund, "123456", "rf-c", Some("p3")),
            ],
            contract_now(),
        )
        .await,
        "ingest",
    );
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, ledgerport_store::EventOutcome::Accepted { .. })),
        "{outcomes:?}"
    );

    // Act
    let links = must(
        s.refunded_captures(&owner_access(s, "100001").await).await,
        "refunded captures",
    );
    let other = must(
        s.refunded_captures(&owner_access(s, "100002").await).await,
        "refunded captures",
    );

    // Assert
    assert_eq!(
        links,
        vec![
            ("rf-a".to_owned(), "p2".to_owned()),
            ("rf-b".to_owned(), "p1".to_owned())
        ]
    );
    assert_eq!(other, vec![("rf-c".to_owned(), "p3".to_owned())]);
}

pub async fn the_balance_before_a_date_is_the_last_earlier_dates_closing_balance(s: &dyn Store) {
    // Arrange: funds 100 + 200 on 04-01, nothing on 04-02, 400 on 04-03; a fee of 3 on 04-01;
    // another ledger's 999 on 04-01.
    let m = one_ledger(s, "100001").await;
    add_api_unit(s, m.id, "123456", "ACME Bergen").await;
    add_ledger(s, "100002", m.id, &["123456"]).await;
    append(
        s,
        "100001",
        Topic::Funds,
        &[
            entry("capture", 100, "2024-04-01", 1),
            entry("capture", 200, "2024-04-01", 2),
            entry("capture", 400, "2024-04-03", 3),
        ],
    )
    .await;
    append(
        s,
        "100001",
        Topic::Fees,
        &[entry("capture-fee", -3, "2024-04-01", 1)],
    )
    .await;
    append(
        s,
        "100002",
        Topic::Funds,
        &[entry("capture", 999, "2024-04-01", 4)],
    )
    .await;
    let access = owner_access(s, "100001").await;
    let other = owner_access(s, "100002").await;
    let p = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;
    let april_2 = GrantScope {
        from: Some(day("2024-04-02")),
        to: Some(day("2024-04-02")),
        ..GrantScope::EVERYTHING
    };
    must(
        s.create_grant(&by(), p.id, &lid("100001"), &april_2).await,
        "grant",
    );
    let partner = Principal::Accounting {
        key_id: 1,
        partner_id: p.id,
    };
    let scoped = match decide(&partner, Some(&facts_of(s, "100001").await)) {
        Decision::Allow(a) => a,
        other => panic!("the partner must read ledger 100001, got {other:?}"),
    };

    // Act
    let mut funds = vec![];
    for date in [
        "2024-03-31",
        "2024-04-01",
        "2024-04-02",
        "2024-04-03",
        "2024-04-04",
    ] {
        funds.push(must(
            balance_before(s, &access, Topic::Funds, date).await,
            "funds balance",
        ));
    }
    let fees = [
        must(
            balance_before(s, &access, Topic::Fees, "2024-04-01").await,
            "fees",
        ),
        must(
            balance_before(s, &access, Topic::Fees, "2024-04-02").await,
            "fees",
        ),
    ];
    let other_ledger = must(
        balance_before(s, &other, Topic::Funds, "2024-04-02").await,
        "other",
    );
    let in_scope = must(
        balance_before(s, &scoped, Topic::Funds, "2024-04-02").await,
        "in scope",
    );
    let out_of_scope = balance_before(s, &scoped, Topic::Funds, "2024-04-04").await;

    // Assert
    assert_eq!(funds, [0, 0, 300, 300, 700]);
    assert_eq!(fees, [0, -3]);
    assert_eq!(other_ledger, 999, "each ledger has its own balances");
    assert_eq!(in_scope, 300);
    assert!(
        matches!(out_of_scope, Err(StoreError::Invalid(_))),
        "a date outside the grant's period tells nothing: {out_of_scope:?}"
    );
}

async fn balance_before(
    s: &dyn Store,
    access: &LedgerAccess,
    topic: Topic,
    date: &str,
) -> Result<i64> {
    s.balance_before_date(access, topic, day(date)).await
}
