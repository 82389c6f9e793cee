//! The mail outbox: enqueueing, claiming, marking sent or failed, and what the operator sees.

use super::helpers::*;

fn mail(to: &str) -> NewMail {
    NewMail {
        recipient: to.into(),
        subject: format!("For {to}"),
        body: "Line one.\nLine two.\n".into(),
    }
}

/// `secs` after the store's clock.
#[track_caller]
fn at(secs: i64) -> Timestamp {
    match contract_now().checked_add(jiff::SignedDuration::from_secs(secs)) {
        Ok(t) => t,
        Err(e) => panic!("contract_now + {secs} s: {e}"),
    }
}

pub async fn an_enqueued_mail_is_pending_and_due_at_once(s: &dyn Store) {
    // Act
    let m = must(s.enqueue_mail(mail("kari@example.com")).await, "enqueue");
    let summary = must(s.outbox_summary().await, "summary");
    let pending = must(s.outbox(false, 10).await, "pending");

    // Assert
    assert_eq!(
        m,
        OutboxMail {
            id: m.id,
            recipient: "kari@example.com".into(),
            subject: "For kari@example.com".into(),
            body: "Line one.\nLine two.\n".into(),
            created_at: contract_now(),
            attempts: 0,
            next_attempt_at: contract_now(),
            last_attempt_at: None,
            last_error: None,
            sent_at: None,
            failed_at: None,
            trying_since: contract_now(),
        }
    );
    assert_eq!(pending, vec![m]);
    assert_eq!(
        summary,
        OutboxSummary {
            pending: 1,
            failed: 0,
            oldest: Some(contract_now()),
            last_error: None,
        }
    );
}

pub async fn a_mail_to_no_single_address_or_with_a_broken_subject_is_invalid(s: &dyn Store) {
    // Act
    let two = s.enqueue_mail(mail("a@example.com, b@example.com")).await;
    let none = s.enqueue_mail(mail("nobody")).await;
    let header = s
        .enqueue_mail(NewMail {
            subject: "Hi\r\nBcc: victim@example.com".into(),
            ..mail("kari@example.com")
        })
        .await;

    // Assert
    assert_error(two, Expect::Invalid, "two addresses");
    assert_error(none, Expect::Invalid, "no address");
    assert_error(header, Expect::Invalid, "a line break in the subject");
    assert_eq!(must(s.outbox(true, 10).await, "outbox"), vec![]);
}

pub async fn a_claimed_mail_goes_to_no_other_sender_until_its_claim_lapses(s: &dyn Store) {
    // Arrange
    let first = must(s.enqueue_mail(mail("a@example.com")).await, "first");
    let second = must(s.enqueue_mail(mail("b@example.com")).await, "second");

    // Act
    let a_claims = must(s.claim_mails("a", at(0), at(60), 1).await, "a claims");
    let b_claims = must(s.claim_mails("b", at(1), at(61), 10).await, "b claims");
    let c_before_lapse = must(s.claim_mails("c", at(59), at(119), 10).await, "c");
    let c_after_lapse = must(s.claim_mails("c", at(60), at(120), 10).await, "c");
    let a_marks_lost = must(s.mark_mail_sent(first.id, "a", at(61)).await, "a marks");
    let c_marks = must(s.mark_mail_sent(first.id, "c", at(62)).await, "c marks");
    let c_marks_again = must(s.mark_mail_sent(first.id, "c", at(63)).await, "again");
    let after_sent = must(s.claim_mails("d", at(10_000), at(10_060), 10).await, "d");

    // Assert
    let ids = |v: &[OutboxMail]| v.iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(
        ids(&a_claims),
        vec![first.id],
        "the soonest due, up to the limit"
    );
    assert_eq!(a_claims[0].attempts, 1, "a claim counts an attempt");
    assert_eq!(a_claims[0].last_attempt_at, Some(at(0)));
    assert_eq!(ids(&b_claims), vec![second.id], "not the one a holds");
    assert_eq!(ids(&c_before_lapse), Vec::<RowId>::new(), "both held");
    assert_eq!(ids(&c_after_lapse), vec![first.id], "a's claim lapsed");
    assert_eq!(c_after_lapse[0].attempts, 2);
    assert!(!a_marks_lost, "a no longer holds it");
    assert!(c_marks, "its holder marks it sent");
    assert!(!c_marks_again, "a mail is sent once");
    assert_eq!(
        ids(&after_sent),
        vec![second.id],
        "a sent mail is never claimed again"
    );
    let sent = some(
        must(s.outbox(true, 10).await, "all")
            .into_iter()
            .find(|m| m.id == first.id),
        "the sent mail is kept",
    );
    assert_eq!(sent.sent_at, Some(at(62)));
    assert_eq!(must(s.outbox_summary().await, "summary").pending, 1);
}

pub async fn a_failed_mail_waits_for_its_retry_time_and_shows_its_error(s: &dyn Store) {
    // Arrange
    let m = must(s.enqueue_mail(mail("kari@example.com")).await, "enqueue");
    must(s.claim_mails("a", at(0), at(60), 10).await, "claim");

    // Act
    let marked = must(
        s.mark_mail_failed(m.id, "a", "connection refused", at(300))
            .await,
        "mark failed",
    );
    let wrong_holder = must(
        s.mark_mail_failed(m.id, "b", "other", at(900)).await,
        "not b's",
    );
    let before = must(s.claim_mails("a", at(299), at(359), 10).await, "early");
    let summary = must(s.outbox_summary().await, "summary");
    let due = must(s.claim_mails("b", at(300), at(360), 10).await, "due");

    // Assert
    assert!(marked, "its holder records the failure");
    assert!(!wrong_holder, "only the holder records an attempt");
    assert_eq!(before, vec![], "not before its retry time");
    assert_eq!(
        summary,
        OutboxSummary {
            pending: 1,
            failed: 0,
            oldest: Some(contract_now()),
            last_error: Some("connection refused".into()),
        }
    );
    assert_eq!(due.len(), 1, "claimed once due, by any sender");
    assert_eq!(due[0].attempts, 2);
    assert_eq!(due[0].last_error.as_deref(), Some("connection refused"));
    assert_eq!(due[0].next_attempt_at, at(300));
}

pub async fn retrying_makes_waiting_mails_due_now_but_leaves_claims_alone(s: &dyn Store) {
    // Arrange
    let waiting = must(s.enqueue_mail(mail("a@example.com")).await, "a");
    let other = must(s.enqueue_mail(mail("b@example.com")).await, "b");
    must(s.claim_mails("x", at(0), at(60), 10).await, "claim both");
    must(
        s.mark_mail_failed(waiting.id, "x", "timeout", at(3600))
            .await,
        "fail a",
    );
    must(
        s.mark_mail_failed(other.id, "x", "timeout", at(3600)).await,
        "fail b",
    );
    must(s.claim_mails("y", at(3600), at(3660), 1).await, "y holds a");

    // Act
    let one = must(s.retry_mails(Some(other.id), at(3601)).await, "retry b");
    let all = must(s.retry_mails(None, at(3602)).await, "retry all");
    let by_z = must(s.claim_mails("z", at(3602), at(3662), 10).await, "z");

    // Assert
    assert_eq!(one, 1);
    assert_eq!(all, 2, "every mail not sent");
    let ids: Vec<RowId> = by_z.iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![other.id], "y still holds the other");
}

pub async fn a_mail_given_up_on_is_failed_visibly_and_sent_again_only_when_retried(s: &dyn Store) {
    // Arrange
    let refused = must(s.enqueue_mail(mail("gone@example.com")).await, "refused");
    let fine = must(s.enqueue_mail(mail("kari@example.com")).await, "fine");
    must(s.claim_mails("a", at(0), at(60), 10).await, "claim both");

    // Act
    let wrong_holder = must(
        s.give_up_mail(refused.id, "b", "550 no such user", at(1))
            .await,
        "not b's",
    );
    let gave_up = must(
        s.give_up_mail(refused.id, "a", "refused for good: 550 no such user", at(2))
            .await,
        "give up",
    );
    must(
        s.mark_mail_failed(fine.id, "a", "timeout", at(60)).await,
        "fail",
    );
    let summary = must(s.outbox_summary().await, "summary");
    let much_later = must(
        s.claim_mails("c", at(86_400), at(86_460), 10).await,
        "later",
    );
    let listed = must(s.outbox(false, 10).await, "listed");
    must(s.mark_mail_sent(fine.id, "c", at(86_401)).await, "sent");
    let retried = must(s.retry_mails(Some(refused.id), at(90_000)).await, "retry");
    let again = must(
        s.claim_mails("d", at(90_000), at(90_060), 10).await,
        "again",
    );

    // Assert
    assert!(!wrong_holder, "only the holder gives up");
    assert!(gave_up);
    assert_eq!(
        summary,
        OutboxSummary {
            pending: 1,
            failed: 1,
            oldest: Some(contract_now()),
            last_error: Some("timeout".into()),
        }
    );
    assert_eq!(
        much_later.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![fine.id],
        "a failed mail is never claimed on its own"
    );
    let failed = some(
        listed.iter().find(|m| m.id == refused.id),
        "a failed mail is still listed among those not sent",
    );
    assert_eq!(failed.failed_at, Some(at(2)));
    assert_eq!(
        failed.last_error.as_deref(),
        Some("refused for good: 550 no such user")
    );
    assert_eq!(failed.trying_since, contract_now());
    assert_eq!(retried, 1);
    assert_eq!(again.len(), 1, "retried: claimed at once");
    assert_eq!(again[0].id, refused.id);
    assert_eq!(again[0].failed_at, None);
    assert_eq!(
        again[0].trying_since,
        at(90_000),
        "the give-up time counts anew from the retry"
    );
    assert_eq!(must(s.outbox_summary().await, "summary").failed, 0);
}
