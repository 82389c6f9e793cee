//! On a SQLite file the key reads of the token endpoints and the Report API go around sqlx, on
//! the caller's thread (`sqlite::direct`), with their statements prepared once per connection.
//! Nothing of a key is kept between reads: a key regenerated or revoked, or its partner
//! suspended, through another store handle on the same file (another server process) is what
//! the very next read returns.

use ledgerport_core::clock::ManualClock;
use ledgerport_core::world::{KeyKind, KeyOwner, PartnerKind, PartnerState};
use ledgerport_store::{Actor, NewKey, NewPartner};
use ledgerport_testkit::contract::contract_now;
use ledgerport_testkit::testing::TestFile;
use std::sync::Arc;

fn by() -> Actor {
    Actor::new("operator@ledgerport.test")
}

#[track_caller]
fn must<T, E: std::fmt::Debug>(r: Result<T, E>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: {e:?}"),
    }
}

#[tokio::test]
async fn a_key_changed_through_another_handle_is_read_changed_at_once() {
    // Arrange: two handles on one file; a partner's key and an operator key with subscription
    // keys, each read once through the second handle (its statements prepared and cached).
    let file = TestFile::new();
    let clock = Arc::new(ManualClock::new(contract_now()));
    let writer = must(
        ledgerport_store::open(&file.url(), clock.clone()).await,
        "open",
    );
    let reader = must(ledgerport_store::open(&file.url(), clock).await, "open");
    let partner = must(
        writer
            .create_partner(
                &by(),
                NewPartner {
                    name: "Books AS".into(),
                    kind: PartnerKind::Accounting,
                    business: None,
                    contact_email: "books@partner.test".into(),
                },
            )
            .await,
        "partner",
    );
    must(
        writer
            .set_partner_state(&by(), partner.id, PartnerState::Approved)
            .await,
        "approve",
    );
    let key = must(
        writer
            .create_key(
                &by(),
                NewKey {
                    kind: KeyKind::Accounting,
                    owner: KeyOwner::Partner(partner.id),
                    client_id: "acc-1".into(),
                    secret_hash: [1; 32],
                    subscription_keys: None,
                },
            )
            .await,
        "key",
    );
    let service = must(
        writer
            .create_key(
                &by(),
                NewKey {
                    kind: KeyKind::Service,
                    owner: KeyOwner::Operator,
                    client_id: "svc-1".into(),
                    secret_hash: [3; 32],
                    subscription_keys: Some(["sub-a".into(), "sub-b".into()]),
                },
            )
            .await,
        "service key",
    );
    assert_eq!(
        must(reader.key_with_partner_state("acc-1").await, "read"),
        Some((key.clone(), Some(PartnerState::Approved)))
    );
    assert_eq!(
        must(reader.key_by_subscription_key("sub-b").await, "read"),
        Some(service.clone())
    );
    assert_eq!(
        must(reader.key_by_client_id("svc-1").await, "read"),
        Some(service.clone())
    );

    // Act / Assert: each change, then the next read through the other handle.
    let regenerated = must(writer.replace_secret(&by(), key.id, [2; 32]).await, "regen");
    assert_eq!(
        (regenerated.generation, regenerated.secret_hash),
        (2, [2; 32])
    );
    assert_eq!(
        must(
            reader.key_with_partner_state("acc-1").await,
            "after regeneration"
        ),
        Some((regenerated.clone(), Some(PartnerState::Approved)))
    );
    must(
        writer
            .set_partner_state(&by(), partner.id, PartnerState::Suspended)
            .await,
        "suspend",
    );
    assert_eq!(
        must(
            reader.key_with_partner_state("acc-1").await,
            "after suspension"
        ),
        Some((regenerated, Some(PartnerState::Suspended)))
    );
    let revoked = must(writer.revoke_key(&by(), key.id).await, "revoke");
    assert!(revoked.revoked);
    assert_eq!(
        must(
            reader.key_with_partner_state("acc-1").await,
            "after revocation"
        ),
        Some((revoked, Some(PartnerState::Suspended)))
    );
    let service_regenerated = must(
        writer.replace_secret(&by(), service.id, [4; 32]).await,
        "regen service",
    );
    assert_eq!(
        must(
            reader.key_by_subscription_key("sub-a").await,
            "after regeneration"
        ),
        Some(service_regenerated)
    );
    let service_revoked = must(writer.revoke_key(&by(), service.id).await, "revoke service");
    assert_eq!(
        must(reader.key_by_client_id("svc-1").await, "after revocation"),
        Some(service_revoked.clone())
    );
    assert_eq!(
        must(
            reader.key_by_subscription_key("sub-b").await,
            "after revocation"
        ),
        Some(service_revoked)
    );
}
