//! Domain events and webhooks: changes write their events in their own transactions, numbered
//! per ledger; endpoints get a delivery of each event they may want; a claimed delivery goes to
//! no other sender until its claim lapses; attempts are logged; giving up disables the endpoint
//! and tells its owner.

use super::helpers::*;
use ledgerport_store::{
    AttemptOutcome, AttemptRecord, DeliveryState, NewWebhookEndpoint, WebhookOwner,
};

fn endpoint(uid: &str, owner: WebhookOwner, types: &[&str]) -> NewWebhookEndpoint {
    NewWebhookEndpoint {
        uid: uid.into(),
        owner,
        url: format!("http://127.0.0.1:9/{uid}"),
        event_types: types.iter().map(|t| (*t).to_owned()).collect(),
        secret: uid.as_bytes().to_vec(),
    }
}

#[track_caller]
fn later(secs: i64) -> Timestamp {
    match contract_now().checked_add(jiff::SignedDuration::from_secs(secs)) {
        Ok(t) => t,
        Err(e) => panic!("contract_now + {secs}s: {e}"),
    }
}

/// Kaffe AS owns ledger 100001 (daily payouts); Regnskap AS (approved) has an endpoint for
/// everything, Kaffe one for date-closed events only. Returns (merchant, partner).
async fn subscribed(s: &dyn Store) -> (Merchant, Partner) {
    let m = add_merchant(s, "987654321", "Kaffe AS").await;
    add_api_unit(s, m.id, "100001", "Shop").await;
    add_ledger(s, "100001", m.id, &["100001"]).await;
    let p = add_approved(s, "Regnskap AS", PartnerKind::Accounting).await;
    must(
        s.create_webhook_endpoint(
            &by(),
            endpoint("ep_partner", WebhookOwner::Partner(p.id), &[]),
        )
        .await,
        "partner endpoint",
    );
    must(
        s.create_webhook_endpoint(
            &by(),
            endpoint(
                "ep_merchant",
                WebhookOwner::Merchant(m.id),
                &["ledger.date.closed"],
            ),
        )
        .await,
        "merchant endpoint",
    );
    (m, p)
}

pub async fn grant_and_partner_changes_write_events_numbered_per_ledger(s: &dyn Store) {
    let (_, p) = subscribed(s).await;
    grant(s, p.id, "100001").await;
    let narrower = GrantScope {
        personal_data: false,
        ..GrantScope::EVERYTHING
    };
    must(
        s.set_grant_scope(&by(), p.id, &lid("100001"), &narrower)
            .await,
        "scope",
    );
    must(s.remove_grant(&by(), p.id, &lid("100001")).await, "remove");
    must(
        s.set_partner_state(&by(), p.id, PartnerState::Suspended)
            .await,
        "suspend",
    );
    let events = must(s.domain_events(None, 0, 100).await, "events");
    let got: Vec<(&str, Option<i64>, Option<RowId>)> = events
        .iter()
        .map(|e| (e.event_type.as_str(), e.ledger_seq, e.partner_id))
        .collect();
    // The approval in `add_approved` came before anything else.
    assert_eq!(
        got,
        vec![
            ("partner.approved", None, Some(p.id)),
            ("grant.created", Some(1), Some(p.id)),
            ("grant.changed", Some(2), Some(p.id)),
            ("grant.removed", Some(3), Some(p.id)),
            ("partner.suspended", None, Some(p.id)),
        ],
        "the events in order"
    );
    let changed: serde_json::Value = must(
        serde_json::from_str(&events[2].data).map_err(|e| StoreError::Invalid(e.to_string())),
        "json",
    );
    assert_eq!(changed["ledgerId"], "100001");
    assert_eq!(changed["ledgerSequence"], 2);
    assert_eq!(changed["scope"]["personalData"], false);
    assert_eq!(changed["previousScope"]["personalData"], true);
    assert_eq!(events[1].created_at, contract_now(), "the store's clock");
    let one_ledger = must(
        s.domain_events(Some(&lid("100001")), 0, 100).await,
        "ledger",
    );
    assert_eq!(one_ledger.len(), 3, "only the ledger's events");
}

pub async fn a_refused_change_writes_no_event(s: &dyn Store) {
    let (_, p) = subscribed(s).await;
    let before = must(s.domain_events(None, 0, 100).await, "events").len();
    let bad = GrantScope {
        from: Some(day("2024-05-01")),
        to: Some(day("2024-04-01")),
        ..GrantScope::EVERYTHING
    };
    assert!(
        s.create_grant(&by(), p.id, &lid("100001"), &bad)
            .await
            .is_err(),
        "a scope ending before it starts is refused"
    );
    assert_eq!(
        must(s.domain_events(None, 0, 100).await, "events").len(),
        before,
        "no event"
    );
}

pub async fn closing_a_date_writes_its_event_and_a_delivery_for_each_endpoint_that_wants_it(
    s: &dyn Store,
) {
    let (_, p) = subscribed(s).await;
    grant(s, p.id, "100001").await;
    let closed = must(
        s.close_due(&lid("100001"), later(3 * 24 * 3600)).await,
        "close",
    );
    assert!(!closed.is_empty(), "a date closed");
    let events = must(
        s.domain_events(Some(&lid("100001")), 0, 100).await,
        "events",
    );
    let closings: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "ledger.date.closed")
        .collect();
    assert_eq!(closings.len(), closed.len(), "one event per closed date");
    for (e, c) in closings.iter().zip(&closed) {
        assert_eq!(e.ledger_date, Some(c.end));
    }
    let seqs: Vec<i64> = events.iter().filter_map(|e| e.ledger_seq).collect();
    assert_eq!(
        seqs,
        (1..=events.len() as i64).collect::<Vec<_>>(),
        "gap-free per ledger"
    );
    // The merchant wants date-closed events only; the partner everything about the ledger.
    let all = must(s.webhook_endpoints(None).await, "endpoints");
    let m_ep = some(all.iter().find(|e| e.uid == "ep_merchant"), "merchant ep");
    let p_ep = some(all.iter().find(|e| e.uid == "ep_partner"), "partner ep");
    let m_del = must(
        s.webhook_deliveries(m_ep.id, None, 100).await,
        "m deliveries",
    );
    let p_del = must(
        s.webhook_deliveries(p_ep.id, None, 100).await,
        "p deliveries",
    );
    assert_eq!(m_del.len(), closed.len(), "the merchant gets the closings");
    assert!(
        m_del
            .iter()
            .all(|d| d.event.event_type == "ledger.date.closed")
    );
    // partner.approved came before the endpoint existed; grant.created and the closings after.
    assert_eq!(
        p_del.len(),
        events.len(),
        "the partner gets every ledger event"
    );
    assert!(p_del.iter().all(|d| d.state == DeliveryState::Pending));
}

pub async fn a_claimed_delivery_goes_to_no_other_sender_until_its_claim_lapses(s: &dyn Store) {
    let (_, p) = subscribed(s).await;
    grant(s, p.id, "100001").await;
    let now = contract_now();
    let a = must(
        s.claim_webhook_deliveries("a", now, later(30), 10).await,
        "claim a",
    );
    assert_eq!(a.len(), 1, "the grant.created delivery");
    assert_eq!(a[0].attempts, 1);
    let id = a[0].message_id();
    assert!(
        must(
            s.claim_webhook_deliveries("b", later(10), later(40), 10)
                .await,
            "b"
        )
        .is_empty(),
        "held by a"
    );
    let b = must(
        s.claim_webhook_deliveries("b", later(30), later(60), 10)
            .await,
        "b after the lapse",
    );
    assert_eq!(b.len(), 1);
    assert_eq!(
        b[0].message_id(),
        id,
        "the same webhook-id on every attempt"
    );
    assert_eq!(b[0].attempts, 2);
    let rec = |outcome| AttemptRecord {
        at: later(31),
        status: Some(200),
        error: None,
        latency_ms: 12,
        outcome,
    };
    assert!(
        !must(
            s.record_webhook_attempt(b[0].id, "a", rec(AttemptOutcome::Delivered))
                .await,
            "a records"
        ),
        "a no longer holds it"
    );
    // Recorded with others in one transaction (as the sender does): held, so written.
    assert_eq!(
        must(
            s.record_webhook_attempts("b", &[(b[0].id, rec(AttemptOutcome::Delivered))])
                .await,
            "b records"
        ),
        vec![true]
    );
    assert_eq!(
        must(
            s.record_webhook_attempts("b", &[(b[0].id, rec(AttemptOutcome::Delivered))])
                .await,
            "b records again"
        ),
        vec![false],
        "recorded once: the delivery is no longer pending"
    );
    let d = some(must(s.webhook_delivery(b[0].id).await, "read"), "delivery");
    assert_eq!(d.state, DeliveryState::Delivered);
    assert_eq!(d.last_status, Some(200));
    assert_eq!(d.last_latency_ms, Some(12));
    assert_eq!(must(s.webhook_attempts(d.id).await, "log").len(), 1);
    assert!(
        must(
            s.claim_webhook_deliveries("c", later(100), later(200), 10)
                .await,
            "c"
        )
        .is_empty(),
        "a delivered delivery is never claimed again"
    );
    // Redelivery makes it due again, with the same id.
    assert!(must(s.redeliver_webhook(&by(), d.id).await, "redeliver"));
    let again = must(
        s.claim_webhook_deliveries("c", later(100), later(200), 10)
            .await,
        "c again",
    );
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message_id(), id);
}

pub async fn a_failed_delivery_waits_and_giving_up_disables_the_endpoint_and_tells_its_owner(
    s: &dyn Store,
) {
    let (_, p) = subscribed(s).await;
    let user = must(
        s.create_portal_user(
            &by(),
            NewPortalUser {
                email: "ola@regnskap.test".into(),
                role: PortalRole::Partner(p.id),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            },
        )
        .await,
        "user",
    );
    grant(s, p.id, "100001").await;
    let d = must(
        s.claim_webhook_deliveries("a", contract_now(), later(30), 10)
            .await,
        "claim",
    )
    .remove(0);
    let failed = AttemptRecord {
        at: later(1),
        status: Some(500),
        error: Some("answered 500".into()),
        latency_ms: 3,
        outcome: AttemptOutcome::RetryAt(later(60)),
    };
    assert!(must(
        s.record_webhook_attempt(d.id, "a", failed).await,
        "fail"
    ));
    assert!(
        must(
            s.claim_webhook_deliveries("b", later(59), later(90), 10)
                .await,
            "early"
        )
        .is_empty(),
        "not before its retry time"
    );
    let d = must(
        s.claim_webhook_deliveries("b", later(60), later(90), 10)
            .await,
        "due",
    )
    .remove(0);
    assert_eq!(d.last_error.as_deref(), Some("answered 500"));
    assert_eq!(d.retry_since, contract_now());
    let gave_up = AttemptRecord {
        at: later(61),
        status: None,
        error: Some("connection refused".into()),
        latency_ms: 1,
        outcome: AttemptOutcome::GiveUp,
    };
    assert!(must(
        s.record_webhook_attempt(d.id, "b", gave_up).await,
        "give up"
    ));
    let ep = some(must(s.webhook_endpoint("ep_partner").await, "ep"), "ep");
    assert!(ep.disabled_at.is_some(), "disabled");
    let told = must(s.notifications(user.id, None, 10).await, "notifications");
    assert!(
        told.iter()
            .any(|n| n.kind == "webhook.disabled" && n.text.contains("ep_partner")),
        "the owner is told: {told:?}"
    );
    assert_eq!(must(s.webhook_attempts(d.id).await, "log").len(), 2);
    // A disabled endpoint gets no new deliveries and nothing is claimed for it.
    must(
        s.close_due(&lid("100001"), later(3 * 24 * 3600)).await,
        "close",
    );
    assert!(
        must(
            s.claim_webhook_deliveries("c", later(90), later(120), 10)
                .await,
            "c"
        )
        .iter()
        .all(|d| d.endpoint_id != ep.id)
    );
    let ep = must(
        s.enable_webhook_endpoint(&by(), "ep_partner").await,
        "enable",
    );
    assert!(ep.disabled_at.is_none());
}

pub async fn endpoints_are_checked_rotated_and_deleted_with_their_log(s: &dyn Store) {
    let (m, _) = subscribed(s).await;
    let mut bad = endpoint("ep_bad", WebhookOwner::Merchant(m.id), &[]);
    bad.url = "ftp://example.com/x".into();
    assert_error(
        s.create_webhook_endpoint(&by(), bad).await,
        Expect::Invalid,
        "a URL that is not http(s)",
    );
    assert_error(
        s.create_webhook_endpoint(
            &by(),
            endpoint("ep_t", WebhookOwner::Merchant(m.id), &["ledger.opened"]),
        )
        .await,
        Expect::Invalid,
        "an unknown event type",
    );
    assert_error(
        s.create_webhook_endpoint(
            &by(),
            endpoint("ep_merchant", WebhookOwner::Merchant(m.id), &[]),
        )
        .await,
        Expect::Conflict,
        "an id used twice",
    );
    let mine = must(
        s.webhook_endpoints(Some(WebhookOwner::Merchant(m.id)))
            .await,
        "mine",
    );
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].event_types, vec!["ledger.date.closed".to_owned()]);
    let rotated = must(
        s.rotate_webhook_secret(&by(), "ep_merchant", b"new".to_vec(), later(3600))
            .await,
        "rotate",
    );
    assert_eq!(rotated.secret, b"new".to_vec());
    assert_eq!(rotated.previous_secret, Some(b"ep_merchant".to_vec()));
    assert_eq!(rotated.previous_secret_until, Some(later(3600)));
    must(
        s.close_due(&lid("100001"), later(3 * 24 * 3600)).await,
        "close",
    );
    assert!(!must(s.webhook_deliveries(rotated.id, None, 10).await, "d").is_empty());
    assert!(must(
        s.delete_webhook_endpoint(&by(), "ep_merchant").await,
        "delete"
    ));
    assert!(!must(
        s.delete_webhook_endpoint(&by(), "ep_merchant").await,
        "again"
    ));
    assert!(must(s.webhook_endpoint("ep_merchant").await, "gone").is_none());
    assert!(must(s.webhook_deliveries(rotated.id, None, 10).await, "d").is_empty());
}
