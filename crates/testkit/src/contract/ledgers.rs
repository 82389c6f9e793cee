//! Ledgers: creation, their facts for the access policy, and listing scopes.

use super::helpers::*;

pub async fn a_ledger_with_one_sales_unit_reads_back_exactly_as_created(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    let u = add_api_unit(s, m.id, "123455", "ACME Fitness Oslo").await;
    let spec = NewLedger {
        ledger_id: lid("302321"),
        currency: Currency::NOK,
        payout_account: account(),
        owner_merchant_id: m.id,
        settles_for: vec![msn("123455")],
        time_zone: "Europe/Oslo".into(),
        cutoff: jiff::civil::time(4, 0, 0, 0),
        payout_frequency: PayoutFrequency::Weekly,
        settlement_mode: SettlementMode::Gross,
        fee_plan: FeePlan {
            basis_points: 150,
            fixed_minor: 100,
        },
        page_size: 500,
        created_at: None,
    };

    // Act
    let created = must(s.create_ledger(&by(), spec).await, "create ledger");

    // Assert
    let expected = LedgerView {
        ledger: Ledger {
            ledger_id: lid("302321"),
            currency: Currency::NOK,
            payout_account: account(),
            owner_merchant_id: m.id,
            time_zone: "Europe/Oslo".into(),
            cutoff: jiff::civil::time(4, 0, 0, 0),
            payout_frequency: PayoutFrequency::Weekly,
            settlement_mode: SettlementMode::Gross,
            fee_plan: FeePlan {
                basis_points: 150,
                fixed_minor: 100,
            },
            page_size: 500,
            created_at: contract_now(),
            // The ledger's first date is the one it was created on (cutoff 04:00 Oslo).
            closed_through: ledgerport_core::world::ledger_date_at(
                "Europe/Oslo",
                jiff::civil::time(4, 0, 0, 0),
                contract_now(),
            )
            .date()
            .yesterday()
            .map(ledgerport_core::ids::LedgerDate::from_date)
            .expect("a date"),
            next_payout_number: 2_000_001,
        },
        units: vec![u],
        owner: org("987654321"),
    };
    assert_eq!(created, expected);
    assert_eq!(
        must(operator_view(s, &lid("302321")).await, "read ledger"),
        Some(expected.clone())
    );
    assert_eq!(must(s.ledgers().await, "list ledgers"), vec![expected]);
    assert_eq!(
        must(operator_view(s, &lid("302322")).await, "unknown ledger"),
        None
    );
}

pub async fn a_ledger_settling_for_several_units_lists_them_in_the_given_order(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    let api = add_api_unit(s, m.id, "123455", "ACME Oslo").await;
    let vm = add_vm_unit(s, m.id, "223344", Country::NO, "57860").await;
    let api2 = add_api_unit(s, m.id, "123456", "ACME Bergen").await;

    // Act
    let created = add_ledger(s, "100001", m.id, &["223344", "123456", "123455"]).await;

    // Assert
    assert_eq!(created.units, vec![vm.clone(), api2.clone(), api.clone()]);
    let read = some(
        must(operator_view(s, &lid("100001")).await, "read ledger"),
        "created ledger",
    );
    assert_eq!(read.units, vec![vm, api2, api]);
    assert_eq!(read, created);
    assert_eq!(
        facts_of(s, "100001").await.settles_for,
        vec![
            handle("NO:57860"),
            handle("api:123456"),
            handle("api:123455")
        ]
    );
}

pub async fn a_ledger_for_a_sales_unit_of_another_merchant_is_invalid_and_not_written(
    s: &dyn Store,
) {
    // Arrange
    let a = add_merchant(s, "987654321", "ACME Fitness AS").await;
    let b = add_merchant(s, "912345678", "Bakeriet AS").await;
    add_api_unit(s, a.id, "123455", "ACME Oslo").await;
    add_api_unit(s, b.id, "54321", "Bakeriet").await;

    // Act
    let r = s
        .create_ledger(&by(), ledger_spec("100001", a.id, &["123455", "54321"]))
        .await;

    // Assert
    assert_error(
        r,
        Expect::Invalid,
        "a ledger of A settling for B's unit 54321",
    );
    assert_eq!(
        must(operator_view(s, &lid("100001")).await, "refused ledger"),
        None
    );
    assert_eq!(must(s.ledgers().await, "list ledgers"), vec![]);
    // Neither unit was tied to the refused ledger.
    add_ledger(s, "100002", a.id, &["123455"]).await;
    add_ledger(s, "200001", b.id, &["54321"]).await;
}

pub async fn a_ledger_for_an_unknown_sales_unit_is_not_found_and_not_written(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    add_api_unit(s, m.id, "123455", "ACME Oslo").await;

    // Act
    let r = s
        .create_ledger(&by(), ledger_spec("100001", m.id, &["123455", "999999"]))
        .await;

    // Assert
    assert_error(
        r,
        Expect::NotFound,
        "a ledger settling for unknown unit 999999",
    );
    assert_eq!(
        must(operator_view(s, &lid("100001")).await, "refused ledger"),
        None
    );
    let later = add_ledger(s, "100002", m.id, &["123455"]).await;
    assert_eq!(
        later.units.len(),
        1,
        "unit 123455 must be free after the refused ledger"
    );
}

pub async fn a_sales_unit_settles_on_one_ledger_only(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    add_api_unit(s, m.id, "123455", "ACME Oslo").await;
    add_api_unit(s, m.id, "123456", "ACME Bergen").await;
    let first = add_ledger(s, "100001", m.id, &["123455"]).await;

    // Act
    let r = s
        .create_ledger(&by(), ledger_spec("100002", m.id, &["123456", "123455"]))
        .await;

    // Assert
    assert_error(r, Expect::Conflict, "a second ledger for unit 123455");
    assert_eq!(
        must(operator_view(s, &lid("100002")).await, "refused ledger"),
        None
    );
    assert_eq!(must(s.ledgers().await, "list ledgers"), vec![first]);
    // 123456 was not left behind on the refused ledger.
    let third = add_ledger(s, "100003", m.id, &["123456"]).await;
    assert_eq!(
        third.units.iter().map(|u| u.msn).collect::<Vec<_>>(),
        vec![msn("123456")]
    );
}

pub async fn a_ledger_id_used_twice_is_a_conflict(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    add_api_unit(s, m.id, "123455", "ACME Oslo").await;
    add_api_unit(s, m.id, "123456", "ACME Bergen").await;
    let first = add_ledger(s, "100001", m.id, &["123455"]).await;

    // Act
    let r = s
        .create_ledger(&by(), ledger_spec("100001", m.id, &["123456"]))
        .await;

    // Assert
    assert_error(r, Expect::Conflict, "a second ledger 100001");
    assert_eq!(
        must(operator_view(s, &lid("100001")).await, "first ledger"),
        Some(first)
    );
    add_ledger(s, "100002", m.id, &["123456"]).await;
}

pub async fn a_ledger_without_sales_units_is_invalid(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;

    // Act
    let r = s
        .create_ledger(&by(), ledger_spec("100001", m.id, &[]))
        .await;

    // Assert
    assert_error(r, Expect::Invalid, "a ledger settling for no unit");
    assert_eq!(
        must(operator_view(s, &lid("100001")).await, "refused ledger"),
        None
    );
}

pub async fn a_ledger_created_in_the_past_opens_on_that_date_and_never_in_the_future(
    s: &dyn Store,
) {
    // Arrange: 60 days before the contract's clock, at 10:00 in Oslo; and a minute after it.
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    add_api_unit(s, m.id, "123455", "ACME Fitness Oslo").await;
    add_api_unit(s, m.id, "123456", "ACME Fitness Bergen").await;
    let oslo = jiff::tz::TimeZone::get("Europe/Oslo").expect("zone");
    let opened = oslo
        .to_datetime(contract_now())
        .date()
        .checked_sub(jiff::Span::new().days(60))
        .expect("a date");
    let past = oslo.to_timestamp(opened.at(10, 0, 0, 0)).expect("a time");
    let future = contract_now()
        .checked_add(jiff::SignedDuration::from_mins(1))
        .expect("a time");

    // Act
    let created = must(
        s.create_ledger(
            &by(),
            NewLedger {
                created_at: Some(past),
                ..ledger_spec("100001", m.id, &["123455"])
            },
        )
        .await,
        "create a ledger in the past",
    );
    let refused = s
        .create_ledger(
            &by(),
            NewLedger {
                created_at: Some(future),
                ..ledger_spec("100002", m.id, &["123456"])
            },
        )
        .await;

    // Assert: its first open date is the one it was created on.
    assert_eq!(created.ledger.created_at, past);
    assert_eq!(
        created.ledger.closed_through.date(),
        opened.yesterday().expect("a date")
    );
    assert_error(refused, Expect::Invalid, "a ledger created in the future");
    assert_eq!(
        must(operator_view(s, &lid("100002")).await, "refused ledger"),
        None
    );
}

pub async fn ledger_facts_name_the_owner_the_handles_in_order_and_only_approved_grantees(
    s: &dyn Store,
) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    add_api_unit(s, m.id, "123455", "ACME Oslo").await;
    add_vm_unit(s, m.id, "223344", Country::NO, "57860").await;
    add_ledger(s, "100001", m.id, &["223344", "123455"]).await;
    let p1 = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;
    let p2 = add_approved(s, "Regnskap Two", PartnerKind::Accounting).await;
    let p3 = add_approved(s, "Regnskap Three", PartnerKind::Accounting).await;
    for p in [&p1, &p2, &p3] {
        grant(s, p.id, "100001").await;
    }

    // Act
    must(
        s.set_partner_state(&by(), p2.id, PartnerState::Suspended)
            .await,
        "suspend p2",
    );
    let while_suspended = facts_of(s, "100001").await;
    must(
        s.set_partner_state(&by(), p2.id, PartnerState::Approved)
            .await,
        "reinstate p2",
    );
    let reinstated = facts_of(s, "100001").await;
    assert!(must(
        s.remove_grant(&by(), p1.id, &lid("100001")).await,
        "remove p1's grant"
    ));
    let after_removal = facts_of(s, "100001").await;

    // Assert
    let mut expected = LedgerFacts {
        ledger_id: lid("100001"),
        owner_merchant_id: m.id,
        settles_for: vec![handle("NO:57860"), handle("api:123455")],
        grants: unlimited(&[p1.id, p3.id]),
        as_of: contract_now(),
    };
    assert_eq!(
        while_suspended, expected,
        "a suspended partner's grant must not count"
    );
    expected.grants = unlimited(&[p1.id, p2.id, p3.id]);
    assert_eq!(
        reinstated, expected,
        "a reinstated partner's standing grant counts again"
    );
    expected.grants = unlimited(&[p2.id, p3.id]);
    assert_eq!(after_removal, expected, "a removed grant must not count");
    assert_eq!(
        must(
            operator_facts(s, &lid("100002")).await,
            "facts of an unknown ledger"
        ),
        None
    );
}

/// Grants without limits to these partners, in id order.
fn unlimited(ids: &[RowId]) -> Vec<StandingGrant> {
    let mut v = ids.to_vec();
    v.sort_unstable();
    v.into_iter()
        .map(|partner_id| StandingGrant {
            partner_id,
            scope: GrantScope::EVERYTHING,
        })
        .collect()
}

pub async fn sole_handle_scope_lists_only_ledgers_settling_for_exactly_that_handle(s: &dyn Store) {
    // Arrange
    listing_world(s).await;
    let sole = |h: &str| ListScope::SoleHandle(handle(h));

    // Act
    let single_api = checked_scope(s, &sole("api:123455"), None).await;
    let api_on_multi = checked_scope(s, &sole("api:123456"), None).await;
    let vm_on_multi = checked_scope(s, &sole("NO:57860"), None).await;
    let single_vm = checked_scope(s, &sole("NO:57861"), None).await;
    let other_merchant = checked_scope(s, &sole("api:222222"), None).await;
    let unknown = checked_scope(s, &sole("api:765432"), None).await;

    // Assert
    assert_eq!(single_api, vec!["100001"]);
    assert_eq!(
        api_on_multi,
        Vec::<String>::new(),
        "a multi-unit ledger is not visible through one handle"
    );
    assert_eq!(
        vm_on_multi,
        Vec::<String>::new(),
        "a multi-unit ledger is not visible through one handle"
    );
    assert_eq!(single_vm, vec!["100003"]);
    assert_eq!(other_merchant, vec!["200001"]);
    assert_eq!(unknown, Vec::<String>::new());
}

pub async fn granted_to_scope_lists_the_partners_granted_ledgers_across_merchants(s: &dyn Store) {
    // Arrange
    listing_world(s).await;
    let p = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;
    let q = add_approved(s, "Regnskap Two", PartnerKind::Accounting).await;
    let idle = add_approved(s, "Regnskap Idle", PartnerKind::Accounting).await;
    grant(s, p.id, "200001").await;
    grant(s, p.id, "100002").await;
    grant(s, q.id, "100001").await;
    grant(s, q.id, "100002").await;

    // Act
    let of_p = checked_scope(s, &ListScope::GrantedTo(p.id), None).await;
    let of_q = checked_scope(s, &ListScope::GrantedTo(q.id), None).await;
    let of_idle = checked_scope(s, &ListScope::GrantedTo(idle.id), None).await;
    // Filtered by a handle: the one ledger settling for it, if granted; either of a
    // multi-unit ledger's handles finds it.
    let p_by_vm = checked_scope(s, &ListScope::GrantedTo(p.id), Some("NO:57860")).await;
    let p_by_api = checked_scope(s, &ListScope::GrantedTo(p.id), Some("api:123456")).await;
    let p_by_other = checked_scope(s, &ListScope::GrantedTo(p.id), Some("api:123455")).await;
    let q_by_api = checked_scope(s, &ListScope::GrantedTo(q.id), Some("api:123455")).await;
    assert!(must(
        s.remove_grant(&by(), p.id, &lid("200001")).await,
        "remove p's grant on 200001"
    ));
    let of_p_after_removal = checked_scope(s, &ListScope::GrantedTo(p.id), None).await;

    // Assert
    assert_eq!(of_p, vec!["100002", "200001"]);
    assert_eq!(of_q, vec!["100001", "100002"]);
    assert_eq!(of_idle, Vec::<String>::new());
    assert_eq!(of_p_after_removal, vec!["100002"]);
    assert_eq!(p_by_vm, vec!["100002"]);
    assert_eq!(p_by_api, vec!["100002"]);
    assert_eq!(
        p_by_other,
        Vec::<String>::new(),
        "100001 is not granted to p"
    );
    assert_eq!(q_by_api, vec!["100001"]);
}

pub async fn owned_by_scope_lists_only_that_merchants_ledgers(s: &dyn Store) {
    // Arrange
    let (a, b) = listing_world(s).await;

    // Act
    let of_a = checked_scope(s, &ListScope::OwnedBy(a.id), None).await;
    let of_b = checked_scope(s, &ListScope::OwnedBy(b.id), None).await;
    let of_nobody = checked_scope(s, &ListScope::OwnedBy(a.id.max(b.id) + 1000), None).await;

    // Assert
    assert_eq!(
        of_a,
        vec!["100001", "100002", "100003"],
        "owned ledgers include multi-unit ones"
    );
    assert_eq!(of_b, vec!["200001"]);
    assert_eq!(of_nobody, Vec::<String>::new());
}

pub async fn scope_pages_return_every_ledger_exactly_once_in_ledger_id_order(s: &dyn Store) {
    // Arrange: seven ledgers of A created out of order, interleaved with ledgers of B.
    let a = add_merchant(s, "987654321", "ACME Fitness AS").await;
    let b = add_merchant(s, "912345678", "Bakeriet AS").await;
    let p = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;
    let order = [
        "300005", "300001", "300007", "300003", "300002", "300006", "300004",
    ];
    for (i, id) in order.iter().enumerate() {
        let unit = format!("1{}", &id[1..]);
        add_api_unit(s, a.id, &unit, "ACME").await;
        add_ledger(s, id, a.id, &[unit.as_str()]).await;
        let other = format!("4{i}0000");
        add_api_unit(s, b.id, &other, "Bakeriet").await;
        add_ledger(s, &format!("30000{i}5"), b.id, &[other.as_str()]).await;
        if i % 2 == 0 {
            grant(s, p.id, id).await;
            grant(s, p.id, &format!("30000{i}5")).await;
        }
    }
    let owned = ListScope::OwnedBy(a.id);

    // Act
    let page1 = scope_ids(s, &owned, None, None, 3).await;
    let page2 = scope_ids(s, &owned, None, Some("300003"), 3).await;
    let page3 = scope_ids(s, &owned, None, Some("300006"), 3).await;
    let page4 = scope_ids(s, &owned, None, Some("300007"), 3).await;
    let granted_walk = walk(s, &ListScope::GrantedTo(p.id), 2).await;

    // Assert
    assert_eq!(page1, vec!["300001", "300002", "300003"]);
    assert_eq!(page2, vec!["300004", "300005", "300006"]);
    assert_eq!(page3, vec!["300007"]);
    assert_eq!(page4, Vec::<String>::new());
    // Granted: A's 300005, 300007, 300002, 300004 (i = 0, 2, 4, 6) and B's 3000005 .. 3000065,
    // in numeric order (the 6-digit ids before the 7-digit ones), each once.
    assert_eq!(
        granted_walk,
        vec![
            "300002", "300004", "300005", "300007", "3000005", "3000025", "3000045", "3000065"
        ],
        "walking the granted ledgers two at a time"
    );
}

/// Walks a scope `limit` at a time until a short page; checks no ledger comes twice and the walk
/// is the same sequence as one big page.
async fn walk(s: &dyn Store, scope: &ListScope, limit: u32) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    loop {
        let after = seen.last().cloned();
        let page = scope_ids(s, scope, None, after.as_deref(), limit).await;
        assert!(
            page.len() <= limit as usize,
            "{scope:?}: a page of {} exceeds the limit {limit}",
            page.len()
        );
        for id in &page {
            assert!(
                !seen.contains(id),
                "{scope:?}: ledger {id} came back on a later page"
            );
        }
        let short = page.len() < limit as usize;
        seen.extend(page);
        if short || seen.len() > 1000 {
            break;
        }
    }
    let all_at_once = scope_ids(s, scope, None, None, 1000).await;
    assert_eq!(
        seen, all_at_once,
        "{scope:?}: paging must give the same sequence as one big page"
    );
    seen
}

pub async fn the_handle_filter_keeps_only_ledgers_settling_for_that_handle(s: &dyn Store) {
    // Arrange
    let (a, _b) = listing_world(s).await;
    let p = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;
    for l in ["100001", "100002", "200001"] {
        grant(s, p.id, l).await;
    }
    let owned = ListScope::OwnedBy(a.id);
    let granted = ListScope::GrantedTo(p.id);

    // Act & Assert
    assert_eq!(
        checked_scope(s, &owned, Some("api:123456")).await,
        vec!["100002"]
    );
    assert_eq!(
        checked_scope(s, &owned, Some("NO:57860")).await,
        vec!["100002"]
    );
    assert_eq!(
        checked_scope(s, &owned, Some("api:123455")).await,
        vec!["100001"]
    );
    assert_eq!(
        checked_scope(s, &owned, Some("api:222222")).await,
        Vec::<String>::new(),
        "B's handle under A"
    );
    assert_eq!(
        checked_scope(s, &owned, Some("api:765432")).await,
        Vec::<String>::new(),
        "unknown handle"
    );
    assert_eq!(
        checked_scope(s, &granted, Some("api:222222")).await,
        vec!["200001"]
    );
    assert_eq!(
        checked_scope(s, &granted, Some("NO:57860")).await,
        vec!["100002"]
    );
    assert_eq!(
        checked_scope(s, &granted, Some("NO:57861")).await,
        Vec::<String>::new(),
        "ungranted 100003"
    );
    let sole = ListScope::SoleHandle(handle("api:123455"));
    assert_eq!(
        checked_scope(s, &sole, Some("api:123455")).await,
        vec!["100001"]
    );
    assert_eq!(
        checked_scope(s, &sole, Some("api:123456")).await,
        Vec::<String>::new()
    );
}
