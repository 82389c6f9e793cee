//! API keys: lookup by client id and subscription key, secrets, revocation.

use super::helpers::*;

async fn two_units(s: &dyn Store) -> Merchant {
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    add_api_unit(s, m.id, "123455", "ACME Oslo").await;
    add_api_unit(s, m.id, "123456", "ACME Bergen").await;
    m
}

pub async fn a_sales_unit_key_is_found_by_client_id_and_by_either_subscription_key(s: &dyn Store) {
    // Arrange
    two_units(s).await;

    // Act
    let k = must(
        s.create_key(&by(), unit_key("123455", 7)).await,
        "create key",
    );
    let other = must(
        s.create_key(&by(), unit_key("123456", 8)).await,
        "create other key",
    );

    // Assert
    assert_eq!(
        k,
        ApiKey {
            id: k.id,
            kind: KeyKind::SalesUnit,
            owner: KeyOwner::SalesUnit(msn("123455")),
            client_id: "client-123455".into(),
            secret_hash: [7; 32],
            generation: 1,
            subscription_keys: Some(["sub-primary-123455".into(), "sub-secondary-123455".into()]),
            revoked: false,
            created_at: contract_now(),
        }
    );
    assert_ne!(k.id, other.id);
    assert_eq!(must(s.key(k.id).await, "key by id"), Some(k.clone()));
    assert_eq!(
        must(s.key_by_client_id("client-123455").await, "by client id"),
        Some(k.clone())
    );
    assert_eq!(
        must(s.key_by_client_id("client-123456").await, "by client id"),
        Some(other.clone())
    );
    assert_eq!(
        must(
            s.key_by_subscription_key("sub-primary-123455").await,
            "by 1st sub key"
        ),
        Some(k.clone())
    );
    assert_eq!(
        must(
            s.key_by_subscription_key("sub-secondary-123455").await,
            "by 2nd sub key"
        ),
        Some(k.clone())
    );
    assert_eq!(
        must(
            s.key_by_subscription_key("sub-secondary-123456").await,
            "by 2nd sub key"
        ),
        Some(other.clone())
    );
    assert_eq!(
        must(
            s.key_by_client_id("client-999999").await,
            "unknown client id"
        ),
        None
    );
    assert_eq!(
        must(
            s.key_by_subscription_key("sub-unknown").await,
            "unknown sub key"
        ),
        None
    );
    assert_eq!(
        must(
            s.key_by_subscription_key("client-123455").await,
            "a client id is no sub key"
        ),
        None
    );
    assert_eq!(
        must(s.key(k.id.max(other.id) + 1000).await, "unknown key id"),
        None
    );
    assert_eq!(must(s.keys().await, "list keys"), vec![k, other]);
}

pub async fn partner_and_merchant_keys_keep_their_owner_and_have_no_subscription_keys(
    s: &dyn Store,
) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    let p = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;

    // Act
    let acc = must(
        s.create_key(
            &by(),
            NewKey {
                kind: KeyKind::Accounting,
                owner: KeyOwner::Partner(p.id),
                client_id: "acc-1".into(),
                secret_hash: [1; 32],
                subscription_keys: None,
            },
        )
        .await,
        "create accounting key",
    );
    let ml = must(
        s.create_key(
            &by(),
            NewKey {
                kind: KeyKind::MerchantLevel,
                owner: KeyOwner::Merchant(m.id),
                client_id: "ml-1".into(),
                secret_hash: [2; 32],
                subscription_keys: None,
            },
        )
        .await,
        "create merchant-level key",
    );

    // Assert
    assert_eq!(
        (acc.kind, acc.owner, acc.subscription_keys.clone()),
        (KeyKind::Accounting, KeyOwner::Partner(p.id), None)
    );
    assert_eq!(
        (ml.kind, ml.owner, ml.subscription_keys.clone()),
        (KeyKind::MerchantLevel, KeyOwner::Merchant(m.id), None)
    );
    assert_eq!(
        (acc.generation, acc.revoked, acc.secret_hash),
        (1, false, [1; 32])
    );
    assert_eq!(
        must(s.key_by_client_id("acc-1").await, "by client id"),
        Some(acc.clone())
    );
    assert_eq!(
        must(s.key_by_client_id("ml-1").await, "by client id"),
        Some(ml.clone())
    );
    assert_eq!(must(s.keys().await, "list keys"), vec![acc, ml]);
}

/// What token issuance reads: the key and, for a partner's key, the partner's state as it is
/// now (a suspended partner's keys stop getting tokens at once).
pub async fn a_key_is_read_with_its_partners_current_state(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    let p = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;
    let new_key = |kind, owner, client_id: &str| NewKey {
        kind,
        owner,
        client_id: client_id.into(),
        secret_hash: [7; 32],
        subscription_keys: None,
    };
    let acc = must(
        s.create_key(
            &by(),
            new_key(KeyKind::Accounting, KeyOwner::Partner(p.id), "acc-1"),
        )
        .await,
        "create accounting key",
    );
    let ml = must(
        s.create_key(
            &by(),
            new_key(KeyKind::MerchantLevel, KeyOwner::Merchant(m.id), "ml-1"),
        )
        .await,
        "create merchant-level key",
    );

    // Act / Assert
    assert_eq!(
        must(s.key_with_partner_state("acc-1").await, "partner key"),
        Some((acc.clone(), Some(PartnerState::Approved)))
    );
    assert_eq!(
        must(s.key_with_partner_state("ml-1").await, "merchant key"),
        Some((ml, None))
    );
    assert_eq!(
        must(s.key_with_partner_state("nobody").await, "unknown"),
        None
    );
    must(
        s.set_partner_state(&by(), p.id, PartnerState::Suspended)
            .await,
        "suspend",
    );
    let revoked = must(s.revoke_key(&by(), acc.id).await, "revoke");
    assert_eq!(
        must(s.key_with_partner_state("acc-1").await, "after suspension"),
        Some((revoked, Some(PartnerState::Suspended)))
    );
}

pub async fn replacing_a_secret_raises_the_generation_and_changes_the_hash(s: &dyn Store) {
    // Arrange
    two_units(s).await;
    let k = must(
        s.create_key(&by(), unit_key("123455", 7)).await,
        "create key",
    );
    let other = must(
        s.create_key(&by(), unit_key("123456", 8)).await,
        "create other key",
    );

    // Act
    let once = must(
        s.replace_secret(&by(), k.id, [9; 32]).await,
        "replace secret",
    );
    let twice = must(
        s.replace_secret(&by(), k.id, [10; 32]).await,
        "replace secret again",
    );
    let unknown = s
        .replace_secret(&by(), k.id.max(other.id) + 1000, [11; 32])
        .await;

    // Assert
    assert_eq!(
        once,
        ApiKey {
            secret_hash: [9; 32],
            generation: 2,
            ..k.clone()
        }
    );
    assert_eq!(
        twice,
        ApiKey {
            secret_hash: [10; 32],
            generation: 3,
            ..k.clone()
        }
    );
    assert_eq!(
        must(s.key_by_client_id("client-123455").await, "by client id"),
        Some(twice)
    );
    assert_eq!(
        must(s.key(other.id).await, "the other key"),
        Some(other),
        "only the one key changes"
    );
    assert_error(
        unknown,
        Expect::NotFound,
        "replacing the secret of an unknown key",
    );
}

pub async fn a_revoked_key_is_still_found_marked_revoked_and_its_secret_cannot_be_replaced(
    s: &dyn Store,
) {
    // Arrange
    two_units(s).await;
    let k = must(
        s.create_key(&by(), unit_key("123455", 7)).await,
        "create key",
    );
    let other = must(
        s.create_key(&by(), unit_key("123456", 8)).await,
        "create other key",
    );

    // Act
    let revoked = must(s.revoke_key(&by(), k.id).await, "revoke");
    let replace = s.replace_secret(&by(), k.id, [9; 32]).await;
    let unknown = s.revoke_key(&by(), k.id.max(other.id) + 1000).await;

    // Assert
    let expected = ApiKey {
        revoked: true,
        ..k.clone()
    };
    assert_eq!(revoked, expected);
    assert_eq!(must(s.key(k.id).await, "by id"), Some(expected.clone()));
    assert_eq!(
        must(s.key_by_client_id("client-123455").await, "by client id"),
        Some(expected.clone())
    );
    assert_eq!(
        must(
            s.key_by_subscription_key("sub-secondary-123455").await,
            "by sub key"
        ),
        Some(expected.clone())
    );
    assert_error(
        replace,
        Expect::NotFound,
        "replacing the secret of a revoked key",
    );
    assert_eq!(
        must(s.key(k.id).await, "by id"),
        Some(expected),
        "the refused replacement changed nothing"
    );
    assert_eq!(must(s.key(other.id).await, "the other key"), Some(other));
    assert_error(unknown, Expect::NotFound, "revoking an unknown key");
}

pub async fn client_ids_and_subscription_keys_identify_one_key_only(s: &dyn Store) {
    // Arrange
    two_units(s).await;
    let k = must(
        s.create_key(&by(), unit_key("123455", 7)).await,
        "create key",
    );
    let with = |client: &str, a: &str, b: &str| NewKey {
        client_id: client.into(),
        subscription_keys: Some([a.into(), b.into()]),
        ..unit_key("123456", 8)
    };

    // Act
    let same_client = s
        .create_key(&by(), with("client-123455", "sub-x1", "sub-x2"))
        .await;
    let same_first = s
        .create_key(&by(), with("client-b", "sub-primary-123455", "sub-x2"))
        .await;
    let same_second = s
        .create_key(&by(), with("client-c", "sub-x1", "sub-secondary-123455"))
        .await;
    let crossed = s
        .create_key(&by(), with("client-d", "sub-secondary-123455", "sub-x2"))
        .await;
    let crossed_back = s
        .create_key(&by(), with("client-e", "sub-x1", "sub-primary-123455"))
        .await;

    // Assert
    assert_error(
        same_client,
        Expect::Conflict,
        "a second key with client id client-123455",
    );
    assert_error(
        same_first,
        Expect::Conflict,
        "a second key with the same first subscription key",
    );
    assert_error(
        same_second,
        Expect::Conflict,
        "a second key with the same second subscription key",
    );
    assert_error(
        crossed,
        Expect::Conflict,
        "a new first subscription key equal to another key's second",
    );
    assert_error(
        crossed_back,
        Expect::Conflict,
        "a new second subscription key equal to another key's first",
    );
    assert_eq!(must(s.keys().await, "list keys"), vec![k.clone()]);
    assert_eq!(
        must(
            s.key_by_subscription_key("sub-primary-123455").await,
            "by sub key"
        ),
        Some(k.clone())
    );
    assert_eq!(
        must(
            s.key_by_subscription_key("sub-secondary-123455").await,
            "by sub key"
        ),
        Some(k)
    );
    assert_eq!(
        must(
            s.key_by_subscription_key("sub-x1").await,
            "refused keys' sub key"
        ),
        None
    );
}
