//! The server's own keys and secrets, and the leases that coordinate server processes.

use super::helpers::*;

pub async fn signing_keys_are_added_listed_oldest_first_and_retired_once(s: &dyn Store) {
    // Arrange
    let newer = signing_key("kid-newer", "2024-03-01T00:00:00.000000Z", 2);
    let older = signing_key("kid-older", "2024-01-01T00:00:00.000000Z", 1);

    // Act
    must(
        s.add_signing_key(&by(), newer.clone()).await,
        "add newer key",
    );
    must(
        s.add_signing_key(&by(), older.clone()).await,
        "add older key",
    );
    let listed = must(s.signing_keys().await, "list signing keys");
    let duplicate = s
        .add_signing_key(
            &by(),
            signing_key("kid-older", "2024-05-01T00:00:00.000000Z", 3),
        )
        .await;
    must(
        s.retire_signing_key(&by(), "kid-older").await,
        "retire older key",
    );
    let after_retire = must(s.signing_keys().await, "list signing keys");
    let again = s.retire_signing_key(&by(), "kid-older").await;
    let unknown = s.retire_signing_key(&by(), "kid-unknown").await;

    // Assert
    assert_eq!(listed, vec![older.clone(), newer.clone()]);
    assert_error(
        duplicate,
        Expect::Conflict,
        "a second signing key kid-older",
    );
    assert_eq!(
        after_retire,
        vec![
            SigningKeyRecord {
                retired_at: Some(CONTRACT_NOW.into()),
                ..older
            },
            newer.clone()
        ]
    );
    assert_error(again, Expect::NotFound, "retiring a retired key");
    assert_error(unknown, Expect::NotFound, "retiring an unknown key");
    assert_eq!(
        must(s.signing_keys().await, "list signing keys")[1],
        newer,
        "the other key stays active"
    );
}

pub async fn a_lease_is_held_by_one_holder_until_it_lapses(s: &dyn Store) {
    // Arrange
    let t = |secs: i64| Timestamp::from_second(1_700_000_000 + secs).expect("a valid time");

    // Act
    let a_takes = must(s.take_lease("closing", "a", t(0), t(30)).await, "a takes");
    let b_while_held = must(s.take_lease("closing", "b", t(10), t(40)).await, "b tries");
    let a_renews = must(s.take_lease("closing", "a", t(20), t(50)).await, "a renews");
    let b_before_lapse = must(s.take_lease("closing", "b", t(49), t(79)).await, "b tries");
    let other_name = must(s.take_lease("other", "b", t(49), t(79)).await, "b, other");
    let b_after_lapse = must(s.take_lease("closing", "b", t(50), t(80)).await, "b takes");
    let a_after_losing = must(s.take_lease("closing", "a", t(51), t(81)).await, "a tries");

    // Assert
    assert!(a_takes, "a free lease is taken");
    assert!(!b_while_held, "a held lease is refused to another holder");
    assert!(a_renews, "the holder renews its own lease");
    assert!(!b_before_lapse, "the renewal counts, not the first expiry");
    assert!(other_name, "leases of other names are separate");
    assert!(b_after_lapse, "a lapsed lease is taken by another holder");
    assert!(
        !a_after_losing,
        "the former holder is refused once another holds it"
    );
}

pub async fn server_secret_keeps_the_first_value_it_stored(s: &dyn Store) {
    // Arrange
    let first = [0u8, 255, 1, 0, 42];

    // Act
    let stored = must(s.server_secret("cursor-mac", &first).await, "first call");
    let again = must(
        s.server_secret("cursor-mac", b"a different candidate")
            .await,
        "second call",
    );
    let other = must(
        s.server_secret("other-secret", b"other").await,
        "another name",
    );
    let third = must(
        s.server_secret("cursor-mac", b"yet another").await,
        "third call",
    );

    // Assert
    assert_eq!(stored, first.to_vec());
    assert_eq!(
        again,
        first.to_vec(),
        "the second caller must get the first stored value"
    );
    assert_eq!(other, b"other".to_vec());
    assert_eq!(third, first.to_vec());
}
