//! Portal notifications: grant changes tell both sides in their own transaction, the expiry
//! notices are written once each, and a user reads and marks only its own.

use super::helpers::*;

fn user(email: &str, role: PortalRole) -> NewPortalUser {
    NewPortalUser {
        email: email.into(),
        role,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
    }
}

/// `days` after the store's clock.
#[track_caller]
fn days_on(days: i64) -> Timestamp {
    match contract_now().checked_add(jiff::SignedDuration::from_hours(24 * days)) {
        Ok(t) => t,
        Err(e) => panic!("contract_now + {days} days: {e}"),
    }
}

/// Kaffe AS owns ledger 100001 (unit "Shop") and has two portal users; Regnskap AS, approved,
/// has one; another merchant's user and an operator must hear nothing. Returns the user ids
/// (merchant users, partner user, bystander) and the partner.
async fn two_sides(s: &dyn Store) -> ([RowId; 2], RowId, RowId, Partner) {
    let m = add_merchant(s, "987654321", "Kaffe AS").await;
    add_api_unit(s, m.id, "100001", "Shop").await;
    add_ledger(s, "100001", m.id, &["100001"]).await;
    let other = add_merchant(s, "912345678", "Annen AS").await;
    let p = add_approved(s, "Regnskap AS", PartnerKind::Accounting).await;
    let actor = by();
    let mk = |e: &str, r| s.create_portal_user(&actor, user(e, r));
    let m1 = must(
        mk("kari@kaffe.test", PortalRole::Merchant(m.id)).await,
        "m1",
    );
    let m2 = must(mk("per@kaffe.test", PortalRole::Merchant(m.id)).await, "m2");
    let pu = must(
        mk("ola@regnskap.test", PortalRole::Partner(p.id)).await,
        "pu",
    );
    let by = must(
        mk("eva@annen.test", PortalRole::Merchant(other.id)).await,
        "other",
    );
    must(mk("op@ledgerport.test", PortalRole::Operator).await, "op");
    ([m1.id, m2.id], pu.id, by.id, p)
}

async fn texts(s: &dyn Store, user: RowId) -> Vec<(String, String)> {
    must(s.notifications(user, None, 100).await, "notifications")
        .into_iter()
        .map(|n| (n.kind, n.text))
        .collect()
}

async fn mailed_to(s: &dyn Store) -> Vec<(String, String)> {
    let mut m: Vec<(String, String)> = must(s.outbox(false, 100).await, "outbox")
        .into_iter()
        .map(|m| (m.recipient, m.subject))
        .collect();
    m.sort();
    m
}

pub async fn a_grant_created_changed_and_removed_tells_every_user_of_both_sides(s: &dyn Store) {
    // Arrange
    let ([m1, m2], pu, bystander, p) = two_sides(s).await;
    let narrow = GrantScope {
        topics: Topics {
            funds: true,
            fees: false,
        },
        personal_data: false,
        ..GrantScope::EVERYTHING
    };

    // Act
    grant(s, p.id, "100001").await;
    let after_create = mailed_to(s).await;
    must(
        s.set_grant_scope(&by(), p.id, &lid("100001"), &narrow)
            .await,
        "narrow",
    );
    must(
        s.set_grant_scope(&by(), p.id, &lid("100001"), &narrow)
            .await,
        "the same scope again",
    );
    must(s.remove_grant(&by(), p.id, &lid("100001")).await, "remove");
    must(
        s.remove_grant(&by(), p.id, &lid("100001")).await,
        "remove nothing",
    );

    // Assert
    let subject = "Access granted: ledger 100001 (Shop)".to_owned();
    assert_eq!(
        after_create,
        vec![
            ("kari@kaffe.test".into(), subject.clone()),
            ("ola@regnskap.test".into(), subject.clone()),
            ("per@kaffe.test".into(), subject),
        ]
    );
    let merchant_side = vec![
        (
            "grant.removed".to_owned(),
            "The access of Regnskap AS to ledger 100001 (Shop) was removed.".to_owned(),
        ),
        (
            "grant.changed".into(),
            "The access of Regnskap AS to ledger 100001 (Shop) was changed from funds and fees, \
             every ledger date, with personal data, no end date to funds only, every ledger \
             date, without personal data, no end date."
                .into(),
        ),
        (
            "grant.created".into(),
            "Regnskap AS was granted access to ledger 100001 (Shop): funds and fees, every \
             ledger date, with personal data, no end date."
                .into(),
        ),
    ];
    assert_eq!(texts(s, m1).await, merchant_side);
    assert_eq!(texts(s, m2).await, merchant_side);
    let partner_side = texts(s, pu).await;
    assert_eq!(
        partner_side
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>(),
        ["grant.removed", "grant.changed", "grant.created"]
    );
    assert_eq!(
        partner_side[0].1,
        "Kaffe AS removed your access to ledger 100001 (Shop)."
    );
    assert_eq!(texts(s, bystander).await, vec![]);
    assert_eq!(must(s.outbox(false, 100).await, "outbox").len(), 9);
}

pub async fn a_refused_grant_change_tells_nobody(s: &dyn Store) {
    // Arrange
    let ([m1, _], pu, _, p) = two_sides(s).await;
    let applied = add_partner(s, "Applied AS", PartnerKind::Accounting).await;

    // Act
    let unknown_ledger = s
        .create_grant(&by(), p.id, &lid("100099"), &GrantScope::EVERYTHING)
        .await;
    let not_approved = s
        .create_grant(&by(), applied.id, &lid("100001"), &GrantScope::EVERYTHING)
        .await;
    let no_grant = s
        .set_grant_scope(&by(), p.id, &lid("100001"), &GrantScope::EVERYTHING)
        .await;

    // Assert
    assert!(unknown_ledger.is_err(), "a grant of an unknown ledger");
    assert!(not_approved.is_err(), "a grant to an applied partner");
    assert_error(no_grant, Expect::NotFound, "the scope of no grant");
    assert_eq!(texts(s, m1).await, vec![]);
    assert_eq!(texts(s, pu).await, vec![]);
    assert_eq!(mailed_to(s).await, vec![]);
}

pub async fn notifications_come_newest_first_in_pages_and_only_their_user_marks_them_read(
    s: &dyn Store,
) {
    // Arrange
    let ([m1, m2], pu, _, p) = two_sides(s).await;
    grant(s, p.id, "100001").await;
    must(s.remove_grant(&by(), p.id, &lid("100001")).await, "remove");
    grant(s, p.id, "100001").await;

    // Act
    let first = must(s.notifications(m1, None, 2).await, "first page");
    let second = must(s.notifications(m1, Some(first[1].id), 2).await, "second");
    let unread_before = must(s.unread_notifications(m1).await, "unread");
    let by_other = must(s.mark_notification_read(pu, first[0].id).await, "other's");
    let own = must(s.mark_notification_read(m1, first[0].id).await, "own");
    let again = must(s.mark_notification_read(m1, first[0].id).await, "again");
    let unread_after_one = must(s.unread_notifications(m1).await, "unread");
    let all = must(s.mark_all_notifications_read(m1).await, "all");

    // Assert
    assert_eq!(
        first.iter().map(|n| n.kind.as_str()).collect::<Vec<_>>(),
        ["grant.created", "grant.removed"]
    );
    assert!(first[0].id > first[1].id, "newest first");
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].kind, "grant.created");
    assert!(second[0].id < first[1].id);
    assert_eq!(first[0].user_id, m1);
    assert_eq!(first[0].created_at, contract_now());
    assert_eq!(first[0].link.as_deref(), Some("/portal/merchant/partners"));
    assert_eq!(unread_before, 3);
    assert!(!by_other, "a user marks only its own notifications");
    assert!(own);
    assert!(!again, "a read notification is not marked twice");
    assert_eq!(unread_after_one, 2);
    assert_eq!(all, 2);
    assert_eq!(must(s.unread_notifications(m1).await, "unread"), 0);
    let read = must(s.notifications(m1, None, 1).await, "read");
    assert_eq!(read[0].read_at, Some(contract_now()));
    assert_eq!(must(s.unread_notifications(m2).await, "m2 unread"), 3);
    assert_eq!(must(s.unread_notifications(pu).await, "pu unread"), 3);
}

pub async fn expiry_notices_are_written_once_each_however_often_asked(s: &dyn Store) {
    // Arrange
    let ([m1, _], pu, _, p) = two_sides(s).await;
    let ends = |days| GrantScope {
        expires_at: Some(days_on(days)),
        ..GrantScope::EVERYTHING
    };
    must(
        s.create_grant(&by(), p.id, &lid("100001"), &ends(10)).await,
        "grant",
    );
    let mails_before = must(s.outbox(false, 100).await, "outbox").len();

    // Act
    let too_early = must(s.notify_grant_expiries(days_on(2)).await, "day 2");
    let expiring = must(s.notify_grant_expiries(days_on(4)).await, "day 4");
    let expiring_again = must(s.notify_grant_expiries(days_on(5)).await, "day 5");
    let expired = must(s.notify_grant_expiries(days_on(10)).await, "day 10");
    let expired_again = must(s.notify_grant_expiries(days_on(11)).await, "day 11");
    must(
        s.set_grant_scope(&by(), p.id, &lid("100001"), &ends(30))
            .await,
        "extend",
    );
    let new_expiry = must(s.notify_grant_expiries(days_on(25)).await, "day 25");

    // Assert
    assert_eq!(too_early, 0);
    assert_eq!(expiring, 3, "two merchant users and one partner user");
    assert_eq!(expiring_again, 0);
    assert_eq!(expired, 3);
    assert_eq!(expired_again, 0);
    assert_eq!(new_expiry, 3, "a new expiry is told of again");
    let kinds: Vec<String> = texts(s, m1).await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        kinds,
        [
            "grant.expiring",
            "grant.changed",
            "grant.expired",
            "grant.expiring",
            "grant.created"
        ]
    );
    let partner = texts(s, pu).await;
    assert_eq!(
        partner[2].1,
        format!(
            "Your access to ledger 100001 (Shop) of Kaffe AS has expired ({}).",
            ledgerport_core::entry::wire_time(days_on(10))
        )
    );
    assert_eq!(
        partner[3].1,
        format!(
            "Your access to ledger 100001 (Shop) of Kaffe AS expires on {}.",
            ledgerport_core::entry::wire_time(days_on(10))
        )
    );
    assert_eq!(
        must(s.outbox(false, 100).await, "outbox").len(),
        mails_before + 12
    );
}
