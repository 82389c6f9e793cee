//! Credentials: how keys are made, shown once, stored as hashes and checked.
//!
//! Secrets are 256 random bits with a recognisable prefix (so a leaked one is easy to find in
//! logs or repositories). They are high-entropy, so a single SHA-256 is the right hash: a password
//! hash would cap token issuance at tens per second for no gain.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ledgerport_core::world::{ApiKey, KeyKind, KeyOwner, PartnerKind, PartnerState, SalesUnitKind};
use ledgerport_store::{Actor, NewKey, Store, StoreError};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

pub const SECRET_PREFIX: &str = "lpsec_";

/// A secret as issued: shown to its owner once, never stored, never logged.
pub struct IssuedSecret(String);

impl IssuedSecret {
    /// The plain secret, for the one time it is shown.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for IssuedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IssuedSecret(<redacted>)")
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

pub fn new_client_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn new_secret() -> IssuedSecret {
    IssuedSecret(format!(
        "{SECRET_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    ))
}

/// A subscription key: 32 lowercase hex digits, as the API gateway issues them.
pub fn new_subscription_key() -> String {
    random_bytes::<16>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Constant-time comparison of a presented secret with a stored hash.
pub fn secret_matches(presented: &str, stored: &[u8; 32]) -> bool {
    bool::from(hash_secret(presented).ct_eq(stored))
}

/// Checks a presented secret against the key found by client id, or against a dummy hash when
/// there is none, so both failures cost the same: one SHA-256 and one constant-time comparison.
/// Revoked keys are refused like a wrong secret.
pub fn check_secret(key: Option<ApiKey>, secret: &str) -> Option<ApiKey> {
    const DUMMY: [u8; 32] = [0x5a; 32];
    let stored = key.as_ref().map(|k| k.secret_hash).unwrap_or(DUMMY);
    let ok = secret_matches(secret, &stored);
    key.filter(|k| ok && !k.revoked)
}

/// The state of the partner behind a partner's key, read afresh; None for other keys (and for a
/// partner that is gone). What [`ledgerport_core::access::authenticate`] needs besides the key.
pub async fn partner_state(
    store: &dyn Store,
    key: &ApiKey,
) -> Result<Option<PartnerState>, StoreError> {
    match key.owner {
        KeyOwner::Partner(p) => Ok(store.partner(p).await?.map(|p| p.state)),
        KeyOwner::SalesUnit(_) | KeyOwner::Merchant(_) | KeyOwner::Operator => Ok(None),
    }
}

/// What is wrong with an `Authorization: Basic` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BasicAuthError {
    /// No `Authorization` header.
    Missing,
    /// Not `Basic base64(client_id:client_secret)` with both parts non-empty.
    Malformed,
}

/// Parses `Authorization: Basic base64(client_id:client_secret)` (the scheme in any case).
pub fn basic_credentials(
    headers: &axum::http::HeaderMap,
) -> Result<(String, String), BasicAuthError> {
    use base64::engine::general_purpose::STANDARD;
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or(BasicAuthError::Missing)?
        .to_str()
        .map_err(|_| BasicAuthError::Malformed)?;
    let (scheme, rest) = value.split_once(' ').ok_or(BasicAuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(BasicAuthError::Malformed);
    }
    let decoded = STANDARD
        .decode(rest.trim())
        .map_err(|_| BasicAuthError::Malformed)?;
    let text = String::from_utf8(decoded).map_err(|_| BasicAuthError::Malformed)?;
    let (id, secret) = text.split_once(':').ok_or(BasicAuthError::Malformed)?;
    if id.is_empty() || secret.is_empty() {
        return Err(BasicAuthError::Malformed);
    }
    Ok((id.to_owned(), secret.to_owned()))
}

/// Why keys could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("{0}")]
    NotAllowed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Issues new keys of `kind` for `owner`, after checking that such an owner may hold them:
/// sales-unit keys only for api units (vm-number units have none), accounting keys only for
/// approved accounting partners, service keys only for the operator, and so on.
pub async fn issue_keys(
    store: &dyn Store,
    by: &Actor,
    kind: KeyKind,
    owner: KeyOwner,
) -> Result<(ApiKey, IssuedSecret), IssueError> {
    match (kind, owner) {
        (KeyKind::SalesUnit, KeyOwner::SalesUnit(msn)) => {
            let unit = store
                .sales_unit(msn)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("sales unit {msn}")))?;
            if unit.kind != SalesUnitKind::Api {
                return Err(IssueError::NotAllowed(format!(
                    "sales unit {msn} is a vm-number unit and has no API keys"
                )));
            }
        }
        (KeyKind::Service, KeyOwner::Operator) => {}
        (KeyKind::MerchantLevel, KeyOwner::Merchant(m)) => {
            store
                .merchant(m)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("merchant {m}")))?;
        }
        (
            KeyKind::Accounting | KeyKind::Integration | KeyKind::Management,
            KeyOwner::Partner(p),
        ) => {
            let partner = store
                .partner(p)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("partner {p}")))?;
            let wanted = match kind {
                KeyKind::Accounting => PartnerKind::Accounting,
                KeyKind::Integration => PartnerKind::Integration,
                _ => PartnerKind::Management,
            };
            if partner.kind != wanted {
                return Err(IssueError::NotAllowed(format!(
                    "partner {p} is a {} partner and cannot hold {} keys",
                    partner.kind.as_str(),
                    kind.as_str()
                )));
            }
            if partner.state != PartnerState::Approved {
                return Err(IssueError::NotAllowed(format!(
                    "partner {p} is {}, not approved",
                    partner.state.as_str()
                )));
            }
        }
        _ => {
            return Err(IssueError::NotAllowed(format!(
                "{} keys cannot belong to {owner:?}",
                kind.as_str()
            )));
        }
    }
    let secret = new_secret();
    let subscription_keys = kind
        .uses_standard_token_endpoint()
        .then(|| [new_subscription_key(), new_subscription_key()]);
    let key = store
        .create_key(
            by,
            NewKey {
                kind,
                owner,
                client_id: new_client_id(),
                secret_hash: hash_secret(secret.reveal()),
                subscription_keys,
            },
        )
        .await?;
    Ok((key, secret))
}

/// Replaces a key's secret; the old secret and every token issued from it stop working at once.
pub async fn regenerate_secret(
    store: &dyn Store,
    by: &Actor,
    key_id: i64,
) -> Result<(ApiKey, IssuedSecret), StoreError> {
    let secret = new_secret();
    let key = store
        .replace_secret(by, key_id, hash_secret(secret.reveal()))
        .await?;
    Ok((key, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_checked_by_hash() {
        let a = new_secret();
        let b = new_secret();
        assert!(a.reveal().starts_with(SECRET_PREFIX));
        assert_ne!(a.reveal(), b.reveal());
        let h = hash_secret(a.reveal());
        assert!(secret_matches(a.reveal(), &h));
        assert!(!secret_matches(b.reveal(), &h));
        assert_eq!(format!("{a:?}"), "IssuedSecret(<redacted>)");
    }

    fn basic(value: &str) -> Result<(String, String), BasicAuthError> {
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            axum::http::header::AUTHORIZATION,
            value.parse().expect("header value"),
        );
        basic_credentials(&h)
    }

    #[test]
    fn basic_credentials_are_base64_of_id_colon_secret_with_both_parts_present() {
        // "id:se:cret" -> the secret may contain colons.
        assert_eq!(
            basic("Basic aWQ6c2U6Y3JldA=="),
            Ok(("id".into(), "se:cret".into()))
        );
        assert_eq!(
            basic("basic aWQ6c2U6Y3JldA=="),
            Ok(("id".into(), "se:cret".into()))
        );
        assert_eq!(
            basic_credentials(&axum::http::HeaderMap::new()),
            Err(BasicAuthError::Missing)
        );
        for bad in [
            "Bearer aWQ6c2VjcmV0",
            "Basic",
            "Basic !!!",
            "Basic aWQ=",         // "id": no colon
            "Basic OnNlY3JldA==", // ":secret": no id
            "Basic aWQ6",         // "id:": no secret
        ] {
            assert_eq!(basic(bad), Err(BasicAuthError::Malformed), "{bad}");
        }
    }

    #[test]
    fn a_secret_passes_only_for_its_own_unrevoked_key() {
        let secret = new_secret();
        let key = ApiKey {
            id: 7,
            kind: KeyKind::Service,
            owner: KeyOwner::Operator,
            client_id: "c".into(),
            secret_hash: hash_secret(secret.reveal()),
            generation: 1,
            subscription_keys: None,
            revoked: false,
            created_at: jiff::Timestamp::UNIX_EPOCH,
        };
        assert_eq!(
            check_secret(Some(key.clone()), secret.reveal()),
            Some(key.clone())
        );
        assert_eq!(check_secret(Some(key.clone()), "lpsec_wrong"), None);
        assert_eq!(check_secret(None, secret.reveal()), None);
        let revoked = ApiKey {
            revoked: true,
            ..key
        };
        assert_eq!(check_secret(Some(revoked), secret.reveal()), None);
    }

    #[test]
    fn subscription_keys_are_32_hex_digits() {
        let k = new_subscription_key();
        assert_eq!(k.len(), 32);
        assert!(k.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
