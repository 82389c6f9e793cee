//! Portal users, sessions and failed sign-ins.

use super::helpers::*;

fn new_user(email: &str, role: PortalRole) -> NewPortalUser {
    NewPortalUser {
        email: email.into(),
        role,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
    }
}

pub async fn portal_users_are_found_by_id_and_by_email_in_any_case(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME AS").await;
    let p = add_approved(s, "Regnskap AS", PartnerKind::Accounting).await;

    // Act
    let mu = must(
        s.create_portal_user(
            &by(),
            new_user(" Kari@Example.COM ", PortalRole::Merchant(m.id)),
        )
        .await,
        "merchant user",
    );
    let pu = must(
        s.create_portal_user(
            &by(),
            new_user("ola@example.com", PortalRole::Partner(p.id)),
        )
        .await,
        "partner user",
    );
    let ou = must(
        s.create_portal_user(&by(), new_user("ops@example.com", PortalRole::Operator))
            .await,
        "operator user",
    );

    // Assert
    assert_eq!(
        mu.email, "kari@example.com",
        "emails are kept trimmed and lowercased"
    );
    assert_eq!(mu.role, PortalRole::Merchant(m.id));
    assert_eq!(pu.role, PortalRole::Partner(p.id));
    assert_eq!(ou.role, PortalRole::Operator);
    assert_eq!(mu.created_at, contract_now());
    assert_eq!(
        mu.password_hash,
        new_user("x", PortalRole::Operator).password_hash
    );
    assert_eq!(must(s.portal_user(pu.id).await, "by id"), Some(pu.clone()));
    assert_eq!(
        must(s.portal_user_by_email("KARI@example.com").await, "by email"),
        Some(mu.clone())
    );
    assert_eq!(
        must(
            s.portal_user_by_email("nobody@example.com").await,
            "unknown"
        ),
        None
    );
    assert_eq!(must(s.portal_user(9999).await, "unknown id"), None);
    assert_eq!(
        must(s.portal_users().await, "all"),
        vec![mu, pu, ou.clone()]
    );
    let audit = must(s.audit_log(1).await, "audit");
    assert_eq!(audit[0].action, "portal-user.create");
    assert_eq!(audit[0].subject, format!("portal user {}", ou.id));
}

pub async fn a_portal_email_used_twice_is_a_conflict(s: &dyn Store) {
    must(
        s.create_portal_user(&by(), new_user("ops@example.com", PortalRole::Operator))
            .await,
        "first",
    );
    assert_error(
        s.create_portal_user(&by(), new_user("OPS@example.com", PortalRole::Operator))
            .await,
        Expect::Conflict,
        "same email in another case",
    );
}

pub async fn a_portal_user_of_an_unknown_merchant_or_partner_is_not_found(s: &dyn Store) {
    assert_error(
        s.create_portal_user(&by(), new_user("a@example.com", PortalRole::Merchant(4242)))
            .await,
        Expect::NotFound,
        "unknown merchant",
    );
    assert_error(
        s.create_portal_user(&by(), new_user("b@example.com", PortalRole::Partner(4242)))
            .await,
        Expect::NotFound,
        "unknown partner",
    );
    assert_eq!(must(s.portal_users().await, "all"), vec![]);
}

fn application() -> NewPartner {
    NewPartner {
        name: "Tall og Tekst AS".into(),
        kind: PartnerKind::Accounting,
        business: Some(must(
            BusinessId::parse("org", "business:NO:ORG", "923456789").map_err(StoreError::from),
            "org",
        )),
        contact_email: "post@tallogtekst.no".into(),
    }
}

fn confirmation() -> NewMail {
    NewMail {
        recipient: "post@tallogtekst.no".into(),
        subject: "Your application".into(),
        body: "We received it.\n".into(),
    }
}

pub async fn a_partner_application_creates_an_applied_partner_and_its_user_together(s: &dyn Store) {
    // Act
    let (p, u) = must(
        s.apply_as_partner(
            &by(),
            application(),
            "Post@TallOgTekst.no",
            "$argon2id$x",
            &[confirmation()],
        )
        .await,
        "apply",
    );

    // Assert
    assert_eq!(p.state, PartnerState::Applied);
    assert_eq!(p.name, "Tall og Tekst AS");
    assert_eq!(u.role, PortalRole::Partner(p.id));
    assert_eq!(u.email, "post@tallogtekst.no");
    assert_eq!(u.password_hash, "$argon2id$x");
    assert_eq!(must(s.partners().await, "partners"), vec![p]);
    assert_eq!(must(s.portal_users().await, "users"), vec![u]);
    let mails = must(s.outbox(true, 10).await, "outbox");
    let sent: Vec<NewMail> = mails
        .into_iter()
        .map(|m| NewMail {
            recipient: m.recipient,
            subject: m.subject,
            body: m.body,
        })
        .collect();
    assert_eq!(sent, vec![confirmation()], "the mail is written with it");
}

pub async fn a_partner_application_with_a_taken_email_writes_nothing(s: &dyn Store) {
    // Arrange
    must(
        s.create_portal_user(&by(), new_user("post@tallogtekst.no", PortalRole::Operator))
            .await,
        "existing user",
    );
    let audit_before = must(s.audit_log(100).await, "audit");

    // Act
    let r = s
        .apply_as_partner(
            &by(),
            application(),
            "post@tallogtekst.no",
            "$argon2id$x",
            &[confirmation()],
        )
        .await;

    // Assert
    assert_error(r, Expect::Conflict, "email taken");
    assert_eq!(
        must(s.partners().await, "partners"),
        vec![],
        "no partner left behind"
    );
    assert_eq!(must(s.audit_log(100).await, "audit"), audit_before);
    assert_eq!(
        must(s.outbox(true, 10).await, "outbox"),
        vec![],
        "no mail of an application that was not written"
    );
}

pub async fn a_session_is_found_by_its_token_hash_until_it_expires_or_is_deleted(s: &dyn Store) {
    // Arrange
    let u = must(
        s.create_portal_user(&by(), new_user("ops@example.com", PortalRole::Operator))
            .await,
        "user",
    );
    let later = must(
        contract_now()
            .checked_add(jiff::SignedDuration::from_secs(3600))
            .map_err(|e| StoreError::Invalid(e.to_string())),
        "later",
    );
    let earlier = must(
        contract_now()
            .checked_sub(jiff::SignedDuration::from_secs(1))
            .map_err(|e| StoreError::Invalid(e.to_string())),
        "earlier",
    );

    // Act
    must(
        s.create_session(u.id, [1; 32], "csrf-1", later).await,
        "live session",
    );
    must(
        s.create_session(u.id, [2; 32], "csrf-2", earlier).await,
        "expired session",
    );

    // Assert
    let live = some(must(s.session([1; 32]).await, "live"), "live session");
    assert_eq!(
        live,
        PortalSession {
            user_id: u.id,
            csrf_token: "csrf-1".into(),
            created_at: contract_now(),
            expires_at: later,
        }
    );
    assert_eq!(
        must(s.session([2; 32]).await, "expired"),
        None,
        "expired sessions are gone"
    );
    assert_eq!(must(s.session([3; 32]).await, "unknown"), None);
    assert!(must(s.delete_session([1; 32]).await, "sign out"));
    assert_eq!(must(s.session([1; 32]).await, "after sign-out"), None);
    assert!(!must(s.delete_session([1; 32]).await, "twice"));
    assert_error(
        s.create_session(4242, [4; 32], "csrf", later).await,
        Expect::NotFound,
        "session of an unknown user",
    );
}

pub async fn failed_sign_ins_are_counted_per_email_until_cleared(s: &dyn Store) {
    assert_eq!(
        must(s.sign_in_failures("a@example.com").await, "none yet"),
        SignInFailures::default()
    );
    must(s.record_sign_in_failure("a@example.com").await, "first");
    let second = must(s.record_sign_in_failure("A@Example.com").await, "second");
    must(
        s.record_sign_in_failure("b@example.com").await,
        "other email",
    );
    assert_eq!(
        second,
        SignInFailures {
            count: 2,
            last_at: Some(contract_now())
        }
    );
    assert_eq!(
        must(s.sign_in_failures("a@example.com").await, "read").count,
        2
    );
    must(s.clear_sign_in_failures("a@example.com").await, "clear");
    assert_eq!(
        must(s.sign_in_failures("a@example.com").await, "cleared").count,
        0
    );
    assert_eq!(
        must(s.sign_in_failures("b@example.com").await, "untouched").count,
        1
    );
}
