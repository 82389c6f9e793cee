//! Grants of ledgers to accounting partners.

use super::helpers::*;

pub async fn grants_are_made_only_to_approved_accounting_partners(s: &dyn Store) {
    // Arrange
    one_ledger(s, "100001").await;
    let applied = add_partner(s, "Applied Accounting", PartnerKind::Accounting).await;
    let rejected = add_partner(s, "Rejected Accounting", PartnerKind::Accounting).await;
    must(
        s.set_partner_state(&by(), rejected.id, PartnerState::Rejected)
            .await,
        "reject",
    );
    let suspended = add_approved(s, "Suspended Accounting", PartnerKind::Accounting).await;
    must(
        s.set_partner_state(&by(), suspended.id, PartnerState::Suspended)
            .await,
        "suspend",
    );
    let integration = add_approved(s, "Approved Integration", PartnerKind::Integration).await;
    let management = add_approved(s, "Approved Management", PartnerKind::Management).await;
    let approved = add_approved(s, "Approved Accounting", PartnerKind::Accounting).await;

    // Act
    let refused = [
        (
            "an applied accounting partner",
            s.create_grant(&by(), applied.id, &lid("100001"), &GrantScope::EVERYTHING)
                .await,
        ),
        (
            "a rejected accounting partner",
            s.create_grant(&by(), rejected.id, &lid("100001"), &GrantScope::EVERYTHING)
                .await,
        ),
        (
            "a suspended accounting partner",
            s.create_grant(&by(), suspended.id, &lid("100001"), &GrantScope::EVERYTHING)
                .await,
        ),
        (
            "an approved integration partner",
            s.create_grant(
                &by(),
                integration.id,
                &lid("100001"),
                &GrantScope::EVERYTHING,
            )
            .await,
        ),
        (
            "an approved management partner",
            s.create_grant(
                &by(),
                management.id,
                &lid("100001"),
                &GrantScope::EVERYTHING,
            )
            .await,
        ),
    ];
    let made = must(
        s.create_grant(
            &Actor::new("merchant-user@acme.test"),
            approved.id,
            &lid("100001"),
            &GrantScope::EVERYTHING,
        )
        .await,
        "grant",
    );

    // Assert
    for (who, r) in refused {
        assert_error(r, Expect::Invalid, &format!("a grant to {who}"));
    }
    let expected = Grant {
        partner_id: approved.id,
        ledger_id: lid("100001"),
        created_at: contract_now(),
        created_by: "merchant-user@acme.test".into(),
        scope: GrantScope::EVERYTHING,
    };
    assert_eq!(made, expected);
    assert_eq!(
        must(s.grants(None, None).await, "all grants"),
        vec![expected]
    );
}

pub async fn a_grant_made_twice_is_a_conflict(s: &dyn Store) {
    // Arrange
    one_ledger(s, "100001").await;
    let p = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;
    let first = grant(s, p.id, "100001").await;

    // Act
    let again = s
        .create_grant(
            &Actor::new("someone-else"),
            p.id,
            &lid("100001"),
            &GrantScope::EVERYTHING,
        )
        .await;

    // Assert
    assert_error(again, Expect::Conflict, "the same grant twice");
    assert_eq!(must(s.grants(None, None).await, "all grants"), vec![first]);
}

pub async fn a_grant_on_an_unknown_ledger_or_for_an_unknown_partner_is_not_found(s: &dyn Store) {
    // Arrange
    one_ledger(s, "100001").await;
    let p = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;

    // Act
    let unknown_ledger = s
        .create_grant(&by(), p.id, &lid("100002"), &GrantScope::EVERYTHING)
        .await;
    let unknown_partner = s
        .create_grant(&by(), p.id + 1000, &lid("100001"), &GrantScope::EVERYTHING)
        .await;

    // Assert
    assert_error(
        unknown_ledger,
        Expect::NotFound,
        "a grant on unknown ledger 100002",
    );
    assert_error(
        unknown_partner,
        Expect::NotFound,
        "a grant to an unknown partner",
    );
    assert_eq!(must(s.grants(None, None).await, "all grants"), vec![]);
}

pub async fn removing_a_grant_returns_true_once_then_false(s: &dyn Store) {
    // Arrange
    one_ledger(s, "100001").await;
    let p = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;
    let q = add_approved(s, "Regnskap Two", PartnerKind::Accounting).await;
    grant(s, p.id, "100001").await;
    let kept = grant(s, q.id, "100001").await;

    // Act
    let first = must(
        s.remove_grant(&by(), p.id, &lid("100001")).await,
        "remove grant",
    );
    let second = must(
        s.remove_grant(&by(), p.id, &lid("100001")).await,
        "remove it again",
    );
    let never = must(
        s.remove_grant(&by(), p.id, &lid("100002")).await,
        "remove a grant never made",
    );

    // Assert
    assert!(
        first,
        "removing a standing grant must report that it was there"
    );
    assert!(
        !second,
        "removing a removed grant must report that nothing was there"
    );
    assert!(
        !never,
        "removing a grant on an unknown ledger must report that nothing was there"
    );
    assert_eq!(must(s.grants(None, None).await, "all grants"), vec![kept]);
    assert_eq!(granted_ids(&facts_of(s, "100001").await), vec![q.id]);
}

pub async fn grants_are_listed_by_partner_by_ledger_or_both(s: &dyn Store) {
    // Arrange
    let (_a, _b) = listing_world(s).await;
    let p = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;
    let q = add_approved(s, "Regnskap Two", PartnerKind::Accounting).await;
    let idle = add_approved(s, "Regnskap Idle", PartnerKind::Accounting).await;
    grant(s, p.id, "100002").await;
    grant(s, q.id, "100001").await;
    grant(s, p.id, "100001").await;
    grant(s, p.id, "200001").await;
    let pairs = |gs: Vec<Grant>| -> Vec<(RowId, String)> {
        let mut v: Vec<(RowId, String)> = gs
            .into_iter()
            .map(|g| (g.partner_id, g.ledger_id.to_string()))
            .collect();
        v.sort();
        v
    };
    let pair = |p: RowId, l: &str| (p, l.to_owned());

    // Act
    let all = pairs(must(s.grants(None, None).await, "all grants"));
    let of_p = pairs(must(s.grants(Some(p.id), None).await, "grants of p"));
    let on_100001 = pairs(must(
        s.grants(None, Some(&lid("100001"))).await,
        "grants on 100001",
    ));
    let both = pairs(must(
        s.grants(Some(q.id), Some(&lid("100001"))).await,
        "q on 100001",
    ));
    let none_both = pairs(must(
        s.grants(Some(q.id), Some(&lid("100002"))).await,
        "q on 100002",
    ));
    let of_idle = pairs(must(s.grants(Some(idle.id), None).await, "grants of idle"));
    let on_100003 = pairs(must(
        s.grants(None, Some(&lid("100003"))).await,
        "grants on 100003",
    ));

    // Assert
    let mut expected_all = vec![
        pair(p.id, "100001"),
        pair(p.id, "100002"),
        pair(p.id, "200001"),
        pair(q.id, "100001"),
    ];
    expected_all.sort();
    assert_eq!(all, expected_all);
    assert_eq!(
        of_p,
        vec![
            pair(p.id, "100001"),
            pair(p.id, "100002"),
            pair(p.id, "200001")
        ]
    );
    let mut expected_on = vec![pair(p.id, "100001"), pair(q.id, "100001")];
    expected_on.sort();
    assert_eq!(on_100001, expected_on);
    assert_eq!(both, vec![pair(q.id, "100001")]);
    assert_eq!(none_both, vec![]);
    assert_eq!(of_idle, vec![]);
    assert_eq!(on_100003, vec![]);
}

/// A scope with an expiry `minutes` from [`contract_now`] (negative: in the past), February
/// 2024 only, funds only, no personal data.
fn narrow(minutes: i64) -> GrantScope {
    GrantScope {
        expires_at: Some(contract_now() + jiff::SignedDuration::from_mins(minutes)),
        from: Some(day("2024-02-01")),
        to: Some(day("2024-02-29")),
        topics: Topics {
            funds: true,
            fees: false,
        },
        personal_data: false,
    }
}

pub async fn a_grants_scope_is_stored_read_back_and_changed(s: &dyn Store) {
    // Arrange
    one_ledger(s, "100001").await;
    let p = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;
    let scope = narrow(60);

    // Act
    let made = must(
        s.create_grant(&by(), p.id, &lid("100001"), &scope).await,
        "grant with a scope",
    );
    let wider = GrantScope {
        expires_at: None,
        to: None,
        topics: Topics::BOTH,
        ..scope
    };
    let changed = must(
        s.set_grant_scope(&by(), p.id, &lid("100001"), &wider).await,
        "change the scope",
    );
    let missing = s.set_grant_scope(&by(), p.id, &lid("100002"), &wider).await;

    // Assert
    assert_eq!(made.scope, scope, "the scope as made");
    assert_eq!(changed.scope, wider, "the scope as changed");
    assert_eq!(
        changed.created_at, made.created_at,
        "a change of scope keeps the grant's creation"
    );
    assert_eq!(
        must(s.grants(Some(p.id), None).await, "grants"),
        vec![changed],
        "the grant reads back with its changed scope"
    );
    assert_eq!(
        facts_of(s, "100001").await.grants,
        vec![StandingGrant {
            partner_id: p.id,
            scope: wider
        }],
        "the policy's facts carry the scope"
    );
    assert_error(missing, Expect::NotFound, "a change of a grant never made");
    let audit = must(s.audit_log(10).await, "audit log");
    assert!(
        audit
            .iter()
            .any(|r| r.action == "grant.scope" && r.detail.contains("2024-02-01 on")),
        "a change of scope is audited with the new scope: {audit:?}"
    );
}

pub async fn a_scope_that_breaks_a_rule_is_invalid_naming_the_field_and_not_written(s: &dyn Store) {
    // Arrange
    one_ledger(s, "100001").await;
    let p = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;
    let no_topic = GrantScope {
        topics: Topics {
            funds: false,
            fees: false,
        },
        ..GrantScope::EVERYTHING
    };
    let backwards = GrantScope {
        from: Some(day("2024-03-01")),
        to: Some(day("2024-02-01")),
        ..GrantScope::EVERYTHING
    };

    // Act
    let made = [
        s.create_grant(&by(), p.id, &lid("100001"), &no_topic).await,
        s.create_grant(&by(), p.id, &lid("100001"), &backwards)
            .await,
    ];
    grant(s, p.id, "100001").await;
    let changed = [
        s.set_grant_scope(&by(), p.id, &lid("100001"), &no_topic)
            .await,
        s.set_grant_scope(&by(), p.id, &lid("100001"), &backwards)
            .await,
    ];

    // Assert
    for (r, field) in made.into_iter().zip(["topics", "from"]) {
        match r {
            Err(StoreError::Invalid(m)) => assert!(m.starts_with(field), "{m}"),
            other => panic!("a grant with a bad {field}: expected Invalid, got {other:?}"),
        }
    }
    for (r, field) in changed.into_iter().zip(["topics", "from"]) {
        match r {
            Err(StoreError::Invalid(m)) => assert!(m.starts_with(field), "{m}"),
            other => panic!("a change to a bad {field}: expected Invalid, got {other:?}"),
        }
    }
    let grants = must(s.grants(None, None).await, "grants");
    assert_eq!(grants.len(), 1);
    assert_eq!(
        grants[0].scope,
        GrantScope::EVERYTHING,
        "refused changes change nothing"
    );
}

/// The ledgers a partner's listing scope returns that the policy opens for its keys.
async fn listed_for(s: &dyn Store, p: &Principal, filter: Option<&str>) -> Vec<String> {
    let Some(scope) = ledgerport_core::access::list_scope(p) else {
        return vec![];
    };
    let filter = filter.map(handle);
    let page = must(
        s.ledgers_in_scope(&scope, filter.as_ref(), None, 100).await,
        "ledgers in scope",
    );
    page.into_iter()
        .filter_map(|g| g.open(p).ok())
        .map(|(a, _)| a.ledger_id().to_string())
        .collect()
}

/// The ledgers of `ids` the policy lets `p` read, each read alone.
async fn readable_for(s: &dyn Store, p: &Principal, ids: &[&str]) -> Vec<String> {
    let mut out = vec![];
    for id in ids {
        let ledger = must(s.ledger(&lid(id)).await, "read ledger");
        if let Ok((a, _)) = ledgerport_core::access::open(p, ledger) {
            out.push(a.ledger_id().to_string());
        }
    }
    out
}

pub async fn an_expired_grant_is_left_out_of_listings_and_reads_alike(s: &dyn Store) {
    // Arrange: three ledgers granted to one partner: expired a minute ago, expiring at this
    // very instant (so expired), expiring in a minute.
    listing_world(s).await;
    let p = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;
    for (ledger, minutes) in [("100001", -1), ("100002", 0), ("100003", 1)] {
        let scope = GrantScope {
            expires_at: Some(contract_now() + jiff::SignedDuration::from_mins(minutes)),
            ..GrantScope::EVERYTHING
        };
        must(
            s.create_grant(&by(), p.id, &lid(ledger), &scope).await,
            "grant",
        );
    }
    let keys = Principal::Accounting {
        key_id: 1,
        partner_id: p.id,
    };
    let all = ["100001", "100002", "100003", "200001"];

    // Act
    let listed = listed_for(s, &keys, None).await;
    let read = readable_for(s, &keys, &all).await;
    let by_handle = listed_for(s, &keys, Some("api:123455")).await;
    let raw = scope_ids(s, &ListScope::GrantedTo(p.id), None, None, 100).await;
    must(
        s.set_grant_scope(
            &by(),
            p.id,
            &lid("100001"),
            &GrantScope {
                expires_at: Some(contract_now() + jiff::SignedDuration::from_hours(24)),
                ..GrantScope::EVERYTHING
            },
        )
        .await,
        "extend the expired grant",
    );
    let extended = listed_for(s, &keys, None).await;

    // Assert
    assert_eq!(listed, vec!["100003"], "only the standing grant is listed");
    assert_eq!(read, listed, "the listing is exactly what the keys read");
    assert_eq!(
        raw,
        vec!["100003"],
        "the store's listing query itself leaves expired grants out"
    );
    assert!(
        by_handle.is_empty(),
        "an expired grant is not found by its handle either"
    );
    assert_eq!(
        extended,
        vec!["100001", "100003"],
        "an expired grant given a later expiry stands again"
    );
    assert_eq!(
        readable_for(s, &keys, &all).await,
        extended,
        "and is read again"
    );
    assert_eq!(
        must(s.grants(Some(p.id), None).await, "grants").len(),
        3,
        "expired grants stay on record (the merchant sees them)"
    );
}

pub async fn a_partners_feed_holds_only_the_dates_of_its_grants_period(s: &dyn Store) {
    // Arrange: entries on 31 January, 1, 15 and 29 February and 1 March.
    one_ledger(s, "100001").await;
    let dates = [
        "2024-01-31",
        "2024-02-01",
        "2024-02-15",
        "2024-02-29",
        "2024-03-01",
    ];
    let entries: Vec<NewEntry> = dates
        .iter()
        .enumerate()
        .map(|(i, d)| entry("capture", 100, d, i as u32))
        .collect();
    let written = append(s, "100001", Topic::Funds, &entries).await;
    let p = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;
    must(
        s.create_grant(&by(), p.id, &lid("100001"), &narrow(60))
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
    let feed = must(
        s.feed_page(&access, Topic::Funds, 0, 100).await,
        "the partner's feed",
    );
    let after_first = must(
        s.feed_page(&access, Topic::Funds, feed[0].seq, 100).await,
        "the feed after its first entry",
    );
    let outside = must(
        s.date_page(&access, Topic::Funds, day("2024-03-01"), 0, 100)
            .await,
        "a date outside the period",
    );
    let inside = must(
        s.date_page(&access, Topic::Funds, day("2024-02-15"), 0, 100)
            .await,
        "a date inside the period",
    );

    // Assert
    assert_eq!(
        feed,
        written[1..4].to_vec(),
        "the feed holds the period's entries with the ledger's own positions and balances"
    );
    assert_eq!(after_first, written[2..4].to_vec());
    assert!(outside.is_empty(), "{outside:?}");
    assert_eq!(inside, written[2..3].to_vec());
    assert_eq!(
        whole_feed(s, "100001", Topic::Funds).await,
        written,
        "the owner still reads every entry"
    );
}
