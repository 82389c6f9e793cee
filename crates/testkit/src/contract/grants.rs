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
