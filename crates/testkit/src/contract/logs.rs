//! The access and audit logs, readiness and pool statistics.

use super::helpers::*;

pub async fn access_log_lists_requests_newest_first_and_filters_by_ledger_partner_and_owner(
    s: &dyn Store,
) {
    // Arrange
    let (a, b) = listing_world(s).await;
    let p = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;
    let q = add_approved(s, "Regnskap Two", PartnerKind::Accounting).await;
    let rec = |n: u32, ledger: Option<&str>, partner: Option<RowId>, kind: KeyKind, status: u16| {
        NewAccessRecord {
            request_id: format!("req-{n}"),
            key_id: Some(i64::from(n) + 10),
            key_kind: Some(kind),
            client_id: Some(format!("client-{n}")),
            partner_id: partner,
            merchant_id: if kind == KeyKind::MerchantLevel {
                Some(a.id)
            } else {
                None
            },
            msn: if kind == KeyKind::SalesUnit {
                Some(msn("123455"))
            } else {
                None
            },
            ledger_id: ledger.map(str::to_owned),
            endpoint: match ledger {
                Some(l) => format!("/report/v2/ledgers/{l}/funds/feed"),
                None => "/settlement/v1/ledgers".into(),
            },
            status,
            topic: ledger.map(|_| "funds".to_owned()),
            ledger_date: None,
            feed_after: ledger.map(|_| i64::from(n) * 7),
            personal_data: (n == 1).then(|| "withheld".to_owned()),
            result: if status == 200 { "read" } else { "not found" }.to_owned(),
        }
    };
    let records = vec![
        rec(1, Some("100001"), Some(p.id), KeyKind::Accounting, 200),
        rec(2, Some("200001"), Some(p.id), KeyKind::Accounting, 200),
        rec(3, Some("100002"), None, KeyKind::MerchantLevel, 200),
        rec(4, None, Some(p.id), KeyKind::Accounting, 200),
        rec(5, Some("999999"), Some(p.id), KeyKind::Accounting, 404),
        rec(6, Some("100001"), None, KeyKind::SalesUnit, 200),
        rec(7, Some("100003"), Some(q.id), KeyKind::Accounting, 200),
        NewAccessRecord {
            request_id: "req-8".into(),
            endpoint: "/settlement/v1/ledgers".into(),
            status: 401,
            result: "invalid token".into(),
            ..Default::default()
        },
        NewAccessRecord {
            request_id: "req-9".into(),
            key_id: Some(19),
            key_kind: Some(KeyKind::Accounting),
            client_id: Some("client-9".into()),
            partner_id: Some(q.id),
            ledger_id: Some("100001".into()),
            endpoint: "/report/v2/ledgers/{ledger_id}/{topic}/dates/{ledger_date}".into(),
            status: 403,
            topic: Some("fees".into()),
            ledger_date: Some("2024-04-04".into()),
            personal_data: Some("given".into()),
            result: "refused: topic not in the grant".into(),
            ..Default::default()
        },
    ];
    for r in &records {
        must(s.record_access(r.clone()).await, "record access");
    }
    let log = |ledger: Option<&str>, partner: Option<RowId>, owner: Option<RowId>, limit: u32| {
        let f = AccessLogFilter {
            ledger_id: ledger.map(lid),
            partner_id: partner,
            owner_merchant_id: owner,
            limit,
            ..AccessLogFilter::default()
        };
        async move { must(s.access_log(&f).await, "access log") }
    };
    let numbers = |rs: &[AccessRecord]| -> Vec<String> {
        rs.iter().map(|r| r.rec.request_id.clone()).collect()
    };

    // Act
    let all = log(None, None, None, 100).await;
    let on_100001 = log(Some("100001"), None, None, 100).await;
    let of_p = log(None, Some(p.id), None, 100).await;
    let owned_by_a = log(None, None, Some(a.id), 100).await;
    let owned_by_b = log(None, None, Some(b.id), 100).await;
    let p_on_a = log(None, Some(p.id), Some(a.id), 100).await;
    let newest_two = log(None, None, None, 2).await;

    // Assert
    let mut expected_all: Vec<NewAccessRecord> = records.clone();
    expected_all.reverse();
    assert_eq!(
        all.iter().map(|r| r.rec.clone()).collect::<Vec<_>>(),
        expected_all,
        "every field, newest first"
    );
    assert!(
        all.iter().all(|r| r.at == CONTRACT_NOW),
        "each record carries the store's time"
    );
    assert!(
        all.windows(2).all(|w| w[0].id > w[1].id),
        "ids fall from newest to oldest"
    );
    assert_eq!(numbers(&on_100001), vec!["req-9", "req-6", "req-1"]);
    assert_eq!(numbers(&of_p), vec!["req-5", "req-4", "req-2", "req-1"]);
    assert_eq!(
        numbers(&owned_by_a),
        vec!["req-9", "req-7", "req-6", "req-3", "req-1"]
    );
    assert_eq!(numbers(&owned_by_b), vec!["req-2"]);
    assert_eq!(numbers(&p_on_a), vec!["req-1"]);
    assert_eq!(numbers(&newest_two), vec!["req-9", "req-8"]);
}

/// Three requests on ledger 100001 (one without credentials) and one on 100002, for the filter
/// and pruning tests; all at the store's time, [`CONTRACT_NOW`].
async fn four_requests(s: &dyn Store) -> RowId {
    let (a, _) = listing_world(s).await;
    let rec = |n: u32, ledger: &str, authenticated: bool| NewAccessRecord {
        request_id: format!("req-{n}"),
        key_id: authenticated.then_some(i64::from(n)),
        ledger_id: Some(ledger.to_owned()),
        endpoint: "/report/v2/ledgers/{ledger_id}/{topic}/feed".into(),
        status: if authenticated { 200 } else { 401 },
        ..Default::default()
    };
    for r in [
        rec(1, "100001", true),
        rec(2, "100001", false),
        rec(3, "100002", true),
        rec(4, "100001", true),
    ] {
        must(s.record_access(r).await, "record access");
    }
    a.id
}

/// An instant `micros` microseconds after [`CONTRACT_NOW`], in the log's time format.
fn now_plus(micros: i64) -> String {
    match contract_now().checked_add(jiff::SignedDuration::from_micros(micros)) {
        Ok(t) => ledgerport_core::entry::wire_time(t),
        Err(e) => panic!("a time near now: {e}"),
    }
}

pub async fn access_log_filters_by_credentials_and_time_pages_by_id_and_counts(s: &dyn Store) {
    // Arrange
    let owner = four_requests(s).await;
    let f = |authenticated: Option<bool>, from: Option<String>, until: Option<String>| {
        AccessLogFilter {
            owner_merchant_id: Some(owner),
            authenticated,
            from,
            until,
            limit: 100,
            ..AccessLogFilter::default()
        }
    };
    let ids = |rs: Vec<AccessRecord>| -> Vec<String> {
        rs.into_iter().map(|r| r.rec.request_id).collect()
    };

    // Act
    let with = ids(must(s.access_log(&f(Some(true), None, None)).await, "log"));
    let without = ids(must(s.access_log(&f(Some(false), None, None)).await, "log"));
    let newest = must(
        s.access_log(&AccessLogFilter {
            limit: 2,
            ..f(Some(true), None, None)
        })
        .await,
        "log",
    );
    let next = ids(must(
        s.access_log(&AccessLogFilter {
            before_id: newest.last().map(|r| r.id),
            limit: 2,
            ..f(Some(true), None, None)
        })
        .await,
        "log",
    ));
    let from_now = ids(must(
        s.access_log(&f(None, Some(CONTRACT_NOW.into()), None))
            .await,
        "log",
    ));
    let from_later = ids(must(
        s.access_log(&f(None, Some(now_plus(1)), None)).await,
        "log",
    ));
    let until_now = ids(must(
        s.access_log(&f(None, None, Some(CONTRACT_NOW.into())))
            .await,
        "log",
    ));
    let until_later = ids(must(
        s.access_log(&f(None, None, Some(now_plus(1)))).await,
        "log",
    ));
    let counted_without = must(s.count_access(&f(Some(false), None, None)).await, "count");
    let counted_all = must(
        s.count_access(&AccessLogFilter {
            before_id: Some(1),
            limit: 1,
            ..f(None, None, None)
        })
        .await,
        "count",
    );
    let counted_on_100001 = must(
        s.count_access(&AccessLogFilter {
            ledger_id: Some(lid("100001")),
            ..f(Some(true), None, None)
        })
        .await,
        "count",
    );

    // Assert
    assert_eq!(with, vec!["req-4", "req-3", "req-1"], "with credentials");
    assert_eq!(without, vec!["req-2"], "without credentials");
    assert_eq!(
        newest
            .iter()
            .map(|r| r.rec.request_id.as_str())
            .collect::<Vec<_>>(),
        vec!["req-4", "req-3"]
    );
    assert_eq!(next, vec!["req-1"], "the page before the last id");
    assert_eq!(from_now.len(), 4, "`from` includes its instant");
    assert!(from_later.is_empty(), "`from` after every record");
    assert!(until_now.is_empty(), "`until` excludes its instant");
    assert_eq!(until_later.len(), 4, "`until` after every record");
    assert_eq!(counted_without, 1);
    assert_eq!(counted_all, 4, "the count ignores limit and paging");
    assert_eq!(counted_on_100001, 2);
}

pub async fn pruning_the_access_log_deletes_exactly_the_records_made_before_the_cutoff(
    s: &dyn Store,
) {
    // Arrange
    four_requests(s).await;
    let all = AccessLogFilter {
        limit: 100,
        ..AccessLogFilter::default()
    };

    // Act
    let at_their_time = must(s.prune_access_log(CONTRACT_NOW).await, "prune");
    let kept = must(s.access_log(&all).await, "log").len();
    let just_after = must(s.prune_access_log(&now_plus(1)).await, "prune");
    let left = must(s.access_log(&all).await, "log").len();
    let again = must(s.prune_access_log(&now_plus(1)).await, "prune");

    // Assert
    assert_eq!(at_their_time, 0, "a record made at the cutoff is kept");
    assert_eq!(kept, 4);
    assert_eq!(just_after, 4, "a microsecond later all four are older");
    assert_eq!(left, 0);
    assert_eq!(again, 0, "pruning twice deletes nothing more");
}

pub async fn audit_log_records_every_state_change_with_its_actor_newest_first(s: &dyn Store) {
    // Arrange & Act: each change by its own actor.
    let a = |who: &str| Actor::new(who);
    let m = must(
        s.create_merchant(
            &a("u1"),
            NewMerchant {
                business: org("987654321"),
                name: "ACME".into(),
            },
        )
        .await,
        "merchant",
    );
    let unit = NewSalesUnit {
        msn: msn("123455"),
        merchant_id: m.id,
        name: "ACME Oslo".into(),
        kind: SalesUnitKind::Api,
        country: Country::NO,
        vm_number: None,
    };
    must(s.create_sales_unit(&a("u2"), unit).await, "sales unit");
    must(
        s.create_ledger(&a("u3"), ledger_spec("100001", m.id, &["123455"]))
            .await,
        "ledger",
    );
    let p = must(
        s.create_partner(
            &a("u4"),
            NewPartner {
                name: "Regnskap".into(),
                kind: PartnerKind::Accounting,
                business: None,
                contact_email: "r@r.test".into(),
            },
        )
        .await,
        "partner",
    );
    must(
        s.set_partner_state(&a("u5"), p.id, PartnerState::Approved)
            .await,
        "approve",
    );
    let k = must(s.create_key(&a("u6"), unit_key("123455", 1)).await, "key");
    must(
        s.replace_secret(&a("u7"), k.id, [2; 32]).await,
        "regenerate",
    );
    must(s.revoke_key(&a("u8"), k.id).await, "revoke");
    must(
        s.create_grant(&a("u9"), p.id, &lid("100001"), &GrantScope::EVERYTHING)
            .await,
        "grant",
    );
    must(
        s.remove_grant(&a("u10"), p.id, &lid("100001")).await,
        "remove grant",
    );
    must(
        s.add_signing_key(
            &a("u11"),
            signing_key("kid-1", "2024-01-01T00:00:00.000000Z", 1),
        )
        .await,
        "signing key",
    );
    must(
        s.retire_signing_key(&a("u12"), "kid-1").await,
        "retire signing key",
    );
    let log = must(s.audit_log(100).await, "audit log");
    let newest_three = must(s.audit_log(3).await, "audit log");

    // Assert
    let got: Vec<(&str, &str, &str)> = log
        .iter()
        .map(|r| (r.actor.as_str(), r.action.as_str(), r.subject.as_str()))
        .collect();
    let (pid, kid, lid_) = (
        format!("partner {}", p.id),
        format!("key {}", k.id),
        "ledger 100001".to_owned(),
    );
    let expected: Vec<(&str, &str, &str)> = vec![
        ("u12", "signing-key.retire", "kid-1"),
        ("u11", "signing-key.add", "kid-1"),
        ("u10", "grant.remove", lid_.as_str()),
        ("u9", "grant.create", lid_.as_str()),
        ("u8", "key.revoke", kid.as_str()),
        ("u7", "key.regenerate", kid.as_str()),
        ("u6", "key.issue", kid.as_str()),
        ("u5", "partner.state", pid.as_str()),
        ("u4", "partner.create", pid.as_str()),
        ("u3", "ledger.create", "100001"),
        ("u2", "sales-unit.create", "123455"),
        ("u1", "merchant.create", "business:NO:ORG:987654321"),
    ];
    assert_eq!(got, expected, "(actor, action, subject), newest first");
    let partner_ref = format!("partner {}", p.id);
    assert_eq!(
        log[2].detail, partner_ref,
        "a grant's record names the partner"
    );
    assert_eq!(
        log[3].detail,
        format!(
            "{partner_ref}; expires never; dates every date; topics funds,fees; personal data yes"
        ),
        "a grant's record names the partner and the scope"
    );
    assert_eq!(log[7].detail, "applied -> approved");
    assert!(
        log.iter().all(|r| r.at == CONTRACT_NOW),
        "each record carries the store's time"
    );
    assert!(
        log.windows(2).all(|w| w[0].id > w[1].id),
        "ids fall from newest to oldest"
    );
    assert_eq!(newest_three, log[..3].to_vec());
}

pub async fn refused_changes_leave_no_audit_record(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    add_api_unit(s, m.id, "123455", "ACME Oslo").await;
    add_ledger(s, "100001", m.id, &["123455"]).await;
    let p = add_partner(s, "Regnskap", PartnerKind::Accounting).await;
    let before = must(s.audit_log(100).await, "audit log");
    let x = Actor::new("refused");

    // Act
    let merchant = s
        .create_merchant(
            &x,
            NewMerchant {
                business: org("987654321"),
                name: "Again".into(),
            },
        )
        .await;
    let ledger = s
        .create_ledger(&x, ledger_spec("100002", m.id, &["123455"]))
        .await;
    let state = s.set_partner_state(&x, p.id, PartnerState::Suspended).await;
    let grant_ = s
        .create_grant(&x, p.id, &lid("100001"), &GrantScope::EVERYTHING)
        .await;
    let removed = must(
        s.remove_grant(&x, p.id, &lid("100001")).await,
        "remove a grant never made",
    );
    let retire = s.retire_signing_key(&x, "kid-unknown").await;
    let revoke = s.revoke_key(&x, 1_000_000).await;

    // Assert
    assert_error(merchant, Expect::Conflict, "a duplicate merchant");
    assert_error(
        ledger,
        Expect::Conflict,
        "a ledger for a unit already settling elsewhere",
    );
    assert_error(state, Expect::Invalid, "applied -> suspended");
    assert_error(grant_, Expect::Invalid, "a grant to an applied partner");
    assert!(!removed, "there was no grant to remove");
    assert_error(retire, Expect::NotFound, "retiring an unknown signing key");
    assert_error(revoke, Expect::NotFound, "revoking an unknown key");
    let after = must(s.audit_log(100).await, "audit log");
    assert_eq!(
        after, before,
        "a refused or empty change must not be audited"
    );
    assert!(after.iter().all(|r| r.actor != "refused"));
}

pub async fn ping_succeeds_on_a_working_store(s: &dyn Store) {
    // Act
    let r = s.ping().await;

    // Assert
    must(r, "ping");
}

pub async fn pool_stats_count_no_more_idle_connections_than_open_ones(s: &dyn Store) {
    // Arrange: a query, so a pooled backend has opened a connection.
    must(s.ping().await, "ping");

    // Act
    let stats = s.pool_stats();

    // Assert
    assert!(
        stats.idle <= stats.size,
        "more idle connections than open ones: {stats:?}"
    );
}
