//! Partners' access requests and the merchant's answers.

use super::helpers::*;
use ledgerport_core::world::{AccessRequest, RequestState};
use ledgerport_store::{InvitationAnswer, NewAccessRequest, RequestFilter};

fn proposed() -> GrantScope {
    GrantScope {
        expires_at: Some(ts("2025-01-01T00:00:00Z")),
        from: Some(day("2024-01-01")),
        to: None,
        topics: Topics::BOTH,
        personal_data: true,
    }
}

#[track_caller]
fn ts(s: &str) -> Timestamp {
    match s.parse() {
        Ok(t) => t,
        Err(e) => panic!("test time {s}: {e}"),
    }
}

fn ask(partner: RowId, org_id: &str, units: &[&str]) -> NewAccessRequest {
    NewAccessRequest {
        partner,
        org_id: org_id.into(),
        units: units.iter().map(|u| msn(u)).collect(),
        scope: proposed(),
        message: "We keep your books.".into(),
    }
}

pub async fn an_access_request_is_stored_pending_and_listed_for_its_partner_and_merchant(
    s: &dyn Store,
) {
    // Arrange
    let (a, b) = listing_world(s).await;
    let p = add_approved(s, "Regnskap AS", PartnerKind::Accounting).await;

    // Act
    let r = must(
        s.create_access_request(&by(), ask(p.id, "987654321", &["123456", "123455"]))
            .await,
        "request",
    );
    let other = must(
        s.create_access_request(&by(), ask(p.id, " 912345678 ", &[]))
            .await,
        "request all of b",
    );

    // Assert
    let expected = AccessRequest {
        id: r.id,
        partner_id: p.id,
        org_id: "987654321".into(),
        merchant_id: Some(a.id),
        units: vec![msn("123455"), msn("123456")],
        scope: proposed(),
        message: "We keep your books.".into(),
        state: RequestState::Pending,
        created_at: contract_now(),
        decided_at: None,
        decided_by: None,
        invitation: false,
    };
    assert_eq!(r, expected, "the request as stored");
    assert_eq!(other.merchant_id, Some(b.id));
    assert_eq!(other.org_id, "912345678", "the number is trimmed");
    assert!(other.units.is_empty(), "no units: all of them");
    let mine = must(
        s.access_requests(&RequestFilter {
            partner: Some(p.id),
            merchant: None,
        })
        .await,
        "partner's",
    );
    assert_eq!(
        mine.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![other.id, r.id],
        "newest first"
    );
    let a_sees = must(
        s.access_requests(&RequestFilter {
            partner: None,
            merchant: Some(a.id),
        })
        .await,
        "merchant's",
    );
    assert_eq!(a_sees, vec![expected]);
    assert_eq!(
        must(s.request_ledgers(r.id).await, "ledgers"),
        vec![lid("100001"), lid("100002")],
        "the ledgers settling for the units asked for"
    );
    assert_eq!(
        must(s.request_ledgers(other.id).await, "ledgers"),
        vec![lid("200001")],
        "all of b's ledgers"
    );
}

pub async fn a_request_naming_no_merchant_is_kept_for_the_partner_and_seen_by_no_merchant(
    s: &dyn Store,
) {
    // Arrange
    let (a, _) = listing_world(s).await;
    let p = add_approved(s, "Regnskap AS", PartnerKind::Accounting).await;

    // Act
    let r = must(
        s.create_access_request(&by(), ask(p.id, "999999999", &[]))
            .await,
        "request",
    );

    // Assert
    assert_eq!(r.merchant_id, None);
    assert_eq!(r.state, RequestState::Pending);
    assert!(
        must(
            s.access_requests(&RequestFilter {
                partner: None,
                merchant: Some(a.id)
            })
            .await,
            "a's"
        )
        .is_empty()
    );
    assert_eq!(must(s.request_ledgers(r.id).await, "ledgers"), vec![]);
    assert_error(
        s.approve_access_request(&by(), r.id, &proposed()).await,
        Expect::NotFound,
        "approving a request of no merchant",
    );
    let w = must(s.withdraw_access_request(&by(), r.id).await, "withdraw");
    assert_eq!(w.state, RequestState::Withdrawn);
}

pub async fn only_approved_accounting_partners_may_ask_with_a_valid_scope_and_message(
    s: &dyn Store,
) {
    // Arrange
    listing_world(s).await;
    let applied = add_partner(s, "Applied", PartnerKind::Accounting).await;
    let integration = add_approved(s, "Integration", PartnerKind::Integration).await;
    let p = add_approved(s, "Regnskap AS", PartnerKind::Accounting).await;
    let mut no_topic = ask(p.id, "987654321", &[]);
    no_topic.scope.topics = Topics {
        funds: false,
        fees: false,
    };
    let mut long = ask(p.id, "987654321", &[]);
    long.message = "x".repeat(1001);

    // Act
    let refused = [
        ("an applied partner", ask(applied.id, "987654321", &[])),
        (
            "an integration partner",
            ask(integration.id, "987654321", &[]),
        ),
        ("no topic", no_topic),
        ("a long message", long),
        ("no organisation number", ask(p.id, "  ", &[])),
    ];

    // Assert
    for (what, r) in refused {
        assert_error(
            s.create_access_request(&by(), r).await,
            Expect::Invalid,
            what,
        );
    }
    assert!(
        must(s.access_requests(&RequestFilter::default()).await, "all").is_empty(),
        "nothing written"
    );
}

pub async fn an_approval_grants_the_requested_ledgers_within_the_narrowed_scope_at_once(
    s: &dyn Store,
) {
    // Arrange
    listing_world(s).await;
    let p = add_approved(s, "Regnskap AS", PartnerKind::Accounting).await;
    let r = must(
        s.create_access_request(&by(), ask(p.id, "987654321", &["123456"]))
            .await,
        "request",
    );
    let mut narrowed = proposed();
    narrowed.topics = Topics {
        funds: true,
        fees: false,
    };
    narrowed.personal_data = false;
    let mut wider = narrowed;
    wider.from = Some(day("2023-12-31"));
    let merchant = Actor::new("owner@acme.test");
    let partner_user = must(
        s.create_portal_user(
            &by(),
            NewPortalUser {
                email: "ola@regnskap.test".into(),
                role: PortalRole::Partner(p.id),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            },
        )
        .await,
        "partner user",
    );

    // Act
    let widening = s.approve_access_request(&merchant, r.id, &wider).await;
    let (approved, granted) = must(
        s.approve_access_request(&merchant, r.id, &narrowed).await,
        "approve",
    );
    let again = s.approve_access_request(&merchant, r.id, &narrowed).await;

    // Assert
    match widening {
        Err(StoreError::Invalid(why)) => assert!(why.starts_with("from:"), "{why}"),
        other => panic!("a widening approval: expected Invalid naming from, got {other:?}"),
    }
    assert_eq!(granted, vec![lid("100002")]);
    assert_eq!(approved.state, RequestState::Approved);
    assert_eq!(approved.decided_at, Some(contract_now()));
    assert_eq!(approved.decided_by.as_deref(), Some("owner@acme.test"));
    let grants = must(s.grants(Some(p.id), None).await, "grants");
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].ledger_id, lid("100002"));
    assert_eq!(grants[0].scope, narrowed);
    assert_eq!(grants[0].created_by, "owner@acme.test");
    assert_error(again, Expect::Invalid, "approving twice");
    // The grant an approval makes tells the partner's users as one made in the access form,
    // and the approval itself in words about the request (newest first).
    let told: Vec<String> = must(s.notifications(partner_user.id, None, 10).await, "notices")
        .into_iter()
        .map(|n| n.kind)
        .collect();
    assert_eq!(
        told,
        vec!["request.approved".to_owned(), "grant.created".to_owned()]
    );
}

pub async fn a_declined_or_withdrawn_request_grants_nothing_and_stays_decided(s: &dyn Store) {
    // Arrange
    listing_world(s).await;
    let p = add_approved(s, "Regnskap AS", PartnerKind::Accounting).await;
    let r1 = must(
        s.create_access_request(&by(), ask(p.id, "987654321", &[]))
            .await,
        "request 1",
    );
    let r2 = must(
        s.create_access_request(&by(), ask(p.id, "987654321", &[]))
            .await,
        "request 2",
    );

    // Act
    let declined = must(s.decline_access_request(&by(), r1.id).await, "decline");
    let withdrawn = must(s.withdraw_access_request(&by(), r2.id).await, "withdraw");

    // Assert
    assert_eq!(declined.state, RequestState::Declined);
    assert_eq!(withdrawn.state, RequestState::Withdrawn);
    assert!(must(s.grants(Some(p.id), None).await, "grants").is_empty());
    for id in [r1.id, r2.id] {
        assert_error(
            s.approve_access_request(&by(), id, &proposed()).await,
            Expect::Invalid,
            "approving a decided request",
        );
        assert_error(
            s.withdraw_access_request(&by(), id).await,
            Expect::Invalid,
            "withdrawing a decided request",
        );
    }
    assert!(must(s.grants(Some(p.id), None).await, "grants").is_empty());
    assert_error(
        s.decline_access_request(&by(), 9999).await,
        Expect::NotFound,
        "an unknown request",
    );
}

/// A portal user of `role` with a fixed password hash.
async fn portal_user(s: &dyn Store, email: &str, role: PortalRole) -> RowId {
    must(
        s.create_portal_user(
            &by(),
            NewPortalUser {
                email: email.into(),
                role,
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            },
        )
        .await,
        email,
    )
    .id
}

/// `user`'s notifications, oldest first, as (kind, text).
async fn told(s: &dyn Store, user: RowId) -> Vec<(String, String)> {
    let mut n: Vec<(String, String)> = must(s.notifications(user, None, 100).await, "notices")
        .into_iter()
        .map(|n| (n.kind, n.text))
        .collect();
    n.reverse();
    n
}

/// The subjects of the mails to `to` in the outbox, oldest first.
async fn mailed(s: &dyn Store, to: &str) -> Vec<String> {
    let mut m: Vec<(RowId, String)> = must(s.outbox(true, 1000).await, "outbox")
        .into_iter()
        .filter(|m| m.recipient == to)
        .map(|m| (m.id, m.subject))
        .collect();
    m.sort();
    m.into_iter().map(|(_, s)| s).collect()
}

pub async fn every_request_and_answer_tells_the_other_side_in_portal_and_mail(s: &dyn Store) {
    // Arrange
    let (a, b) = listing_world(s).await;
    let p = add_approved(s, "Regnskap AS", PartnerKind::Accounting).await;
    let kari = portal_user(s, "kari@acme.test", PortalRole::Merchant(a.id)).await;
    let ola = portal_user(s, "ola@regnskap.test", PortalRole::Partner(p.id)).await;
    let bystander = portal_user(s, "eva@bakeriet.test", PortalRole::Merchant(b.id)).await;
    let mut narrowed = proposed();
    narrowed.personal_data = false;

    // Act
    let declined = must(
        s.create_access_request(&by(), ask(p.id, "987654321", &["123455"]))
            .await,
        "ask 1",
    );
    let after_ask = (told(s, kari).await.len(), told(s, ola).await.len());
    must(
        s.decline_access_request(&by(), declined.id).await,
        "decline",
    );
    let withdrawn = must(
        s.create_access_request(&by(), ask(p.id, "987654321", &[]))
            .await,
        "ask 2",
    );
    must(
        s.withdraw_access_request(&by(), withdrawn.id).await,
        "withdraw",
    );
    let approved = must(
        s.create_access_request(&by(), ask(p.id, "987654321", &["123456"]))
            .await,
        "ask 3",
    );
    must(
        s.approve_access_request(&by(), approved.id, &narrowed)
            .await,
        "approve",
    );
    let nowhere = must(
        s.create_access_request(&by(), ask(p.id, "999999999", &[]))
            .await,
        "ask no merchant",
    );
    must(
        s.withdraw_access_request(&by(), nowhere.id).await,
        "withdraw",
    );
    let mut long = ask(p.id, "987654321", &[]);
    long.message = "x".repeat(1001);
    let refused = s.create_access_request(&by(), long).await;

    // Assert
    assert_eq!(
        after_ask,
        (1, 0),
        "a request tells the merchant's users only"
    );
    assert_error(refused, Expect::Invalid, "a refused request");
    let proposal = "funds and fees, ledger dates from 2024-01-01, with personal data, until \
                    2025-01-01T00:00:00.000000Z";
    let merchant_side = told(s, kari).await;
    let kinds: Vec<&str> = merchant_side.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "request.made",
            "request.made",
            "request.withdrawn",
            "request.made",
            "grant.created"
        ],
        "{merchant_side:#?}"
    );
    assert_eq!(
        merchant_side[0].1,
        format!(
            "Regnskap AS asks for access to sales units 123455: {proposal}. Approve, narrow \
             or decline it under Access requests."
        )
    );
    assert_eq!(
        merchant_side[2].1,
        "Regnskap AS withdrew its access request for all sales units."
    );
    let partner_side = told(s, ola).await;
    let kinds: Vec<&str> = partner_side.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        ["request.declined", "grant.created", "request.approved"],
        "{partner_side:#?}"
    );
    assert_eq!(
        partner_side[0].1,
        "ACME Fitness AS declined your access request for sales units 123455. Nothing was \
         granted."
    );
    assert_eq!(
        partner_side[2].1,
        "ACME Fitness AS approved your access request for sales units 123456: 1 ledger(s) \
         granted, funds and fees, ledger dates from 2024-01-01, without personal data, until \
         2025-01-01T00:00:00.000000Z."
    );
    assert_eq!(
        told(s, bystander).await,
        vec![],
        "another merchant hears nothing"
    );
    assert_eq!(
        mailed(s, "kari@acme.test").await,
        [
            "Access request from Regnskap AS",
            "Access request from Regnskap AS",
            "Access request withdrawn by Regnskap AS",
            "Access request from Regnskap AS",
            "Access granted: ledger 100002 (ACME Bergen, Vippsnummer 57860)",
        ]
    );
    assert_eq!(
        mailed(s, "ola@regnskap.test").await,
        [
            "ACME Fitness AS declined your access request",
            "Access granted: ledger 100002 (ACME Bergen, Vippsnummer 57860)",
            "ACME Fitness AS approved your access request",
        ]
    );
}

fn invited(partner: RowId, merchant: RowId, grant: Option<GrantScope>) -> InvitationAnswer {
    InvitationAnswer {
        invitation: "0123456789abcdef0123456789abcdef".into(),
        partner,
        merchant,
        units: vec![msn("123455")],
        proposed: proposed(),
        grant,
    }
}

pub async fn an_invitation_is_answered_once_per_merchant_granting_within_it_and_telling_the_partner(
    s: &dyn Store,
) {
    // Arrange
    let (a, b) = listing_world(s).await;
    let p = add_approved(s, "Regnskap AS", PartnerKind::Accounting).await;
    let ola = portal_user(s, "ola@regnskap.test", PortalRole::Partner(p.id)).await;
    let kari = portal_user(s, "kari@acme.test", PortalRole::Merchant(a.id)).await;
    let mut narrowed = proposed();
    narrowed.topics = Topics {
        funds: true,
        fees: false,
    };
    let mut wider = proposed();
    wider.expires_at = None;
    let merchant = Actor::new("kari@acme.test");

    // Act
    let widening = s
        .answer_invitation(&merchant, invited(p.id, a.id, Some(wider)))
        .await;
    let (granted_request, granted) = must(
        s.answer_invitation(&merchant, invited(p.id, a.id, Some(narrowed)))
            .await,
        "grant",
    );
    let twice = s
        .answer_invitation(&merchant, invited(p.id, a.id, None))
        .await;
    let (declined_request, none) = must(
        s.answer_invitation(&by(), invited(p.id, b.id, None)).await,
        "another merchant declines the same link",
    );

    // Assert
    match widening {
        Err(StoreError::Invalid(why)) => assert!(why.starts_with("expires_at:"), "{why}"),
        other => panic!("a widening answer: expected Invalid naming expires_at, got {other:?}"),
    }
    assert_eq!(granted, vec![lid("100001")]);
    assert_eq!(granted_request.state, RequestState::Approved);
    assert!(granted_request.invitation);
    assert_eq!(granted_request.merchant_id, Some(a.id));
    assert_eq!(granted_request.org_id, "987654321");
    assert_eq!(granted_request.scope, proposed(), "the proposal is kept");
    assert_eq!(
        granted_request.decided_by.as_deref(),
        Some("kari@acme.test")
    );
    let grants = must(s.grants(Some(p.id), None).await, "grants");
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].scope, narrowed);
    match twice {
        Err(StoreError::Conflict(why)) => assert!(why.starts_with("invitation:"), "{why}"),
        other => panic!("a second answer: expected Conflict, got {other:?}"),
    }
    assert_eq!(none, vec![]);
    assert_eq!(declined_request.state, RequestState::Declined);
    assert_eq!(declined_request.merchant_id, Some(b.id));
    let kinds: Vec<String> = told(s, ola).await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        kinds,
        ["grant.created", "request.approved", "request.declined"]
    );
    let texts: Vec<String> = told(s, ola).await.into_iter().map(|(_, t)| t).collect();
    assert!(
        texts[1].starts_with("ACME Fitness AS approved your invitation for sales units 123455"),
        "{texts:#?}"
    );
    assert_eq!(
        texts[2],
        "Bakeriet AS declined your invitation for sales units 123455. Nothing was granted."
    );
    let merchant_side: Vec<String> = told(s, kari).await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        merchant_side,
        ["grant.created"],
        "the merchant answered itself: told only of the grant"
    );
    assert_eq!(
        must(
            s.access_requests(&RequestFilter {
                partner: Some(p.id),
                merchant: None
            })
            .await,
            "the partner's requests"
        )
        .len(),
        2,
        "the refused answers wrote nothing"
    );
}
