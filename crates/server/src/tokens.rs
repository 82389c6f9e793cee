//! Access tokens: RFC 9068 JWTs signed with Ed25519.
//!
//! Signing keys live in the store, so every server process on one database signs and verifies
//! with the same set. The newest active key signs; retired keys still verify (and stay in the
//! JWKS) until every token they signed has expired. A token naming a key this process has not seen
//! makes it reload the set, which is how a key created by another process becomes known; such
//! reloads happen at most once per [`MISS_RELOAD_INTERVAL`], so tokens with made-up key ids
//! cost a map lookup, not a database read and a write lock each.
//! Expiry is checked against the injected clock, not the system's, so tests can expire tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signer, SigningKey};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use ledgerport_core::clock::Clock;
use ledgerport_core::entry::wire_time;
use ledgerport_core::world::{ApiKey, KeyKind};
use ledgerport_store::{Actor, SigningKeyRecord, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

pub const TOKEN_TYPE: &str = "at+jwt";

/// The shortest time between two reloads of the key set caused by unknown key ids. A key made
/// by another process is picked up within this long of its first token arriving (the regular
/// reload, every minute, picks it up anyway).
pub const MISS_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// The claims Ledgerport puts in a token and requires back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    /// The client id.
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    pub client_id: String,
    /// Key type of the principal (`sales-unit`, `accounting`, …).
    pub key_type: String,
    /// Row id of the key the token was issued from.
    pub key_id: i64,
    /// The key's generation when issued; a regenerated secret raises it and kills the token.
    pub generation: i64,
}

struct KeyEntry {
    kid: String,
    /// The private key, parsed once when the set is loaded: `jsonwebtoken::encode` would parse
    /// the PKCS#8 document and derive the public key again on every token.
    signing: SigningKey,
    /// The token header `{"typ":"at+jwt","alg":"EdDSA","kid":…}`, base64url-encoded: the same
    /// for every token this key signs.
    header_b64: String,
    decoding: DecodingKey,
    public_raw: Vec<u8>,
    retired_at: Option<i64>,
    created_at: i64,
}

#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, Arc<KeyEntry>>,
    /// The newest active key.
    signer: Option<Arc<KeyEntry>>,
}

pub struct TokenService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    issuer: String,
    audience: String,
    /// The longest token lifetime configured, for how long a retired key must keep verifying.
    max_lifetime_secs: i64,
    keys: RwLock<KeySet>,
    /// When an unknown key id last made this process reload (by the injected clock).
    last_miss_reload: Mutex<Option<jiff::Timestamp>>,
    /// How many times the key set was read from the store.
    reloads: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing: {0}")]
    Signing(String),
}

fn unix(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>()
        .map(|t| t.as_second())
        .unwrap_or(0)
}

/// The base64url header of the tokens signed by key `kid`, serialised as `jsonwebtoken` does.
fn header_b64(kid: &str) -> Result<String, TokenError> {
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some(TOKEN_TYPE.into());
    header.kid = Some(kid.to_owned());
    let json = serde_json::to_vec(&header).map_err(|e| TokenError::Signing(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

/// A compact JWS: `header.claims.signature`, each part base64url; byte for byte what
/// `jsonwebtoken::encode` makes (Ed25519 signatures are deterministic).
fn sign_compact(header_b64: &str, key: &SigningKey, claims: &Claims) -> Result<String, TokenError> {
    let json = serde_json::to_vec(claims).map_err(|e| TokenError::Signing(e.to_string()))?;
    let mut token = String::with_capacity(header_b64.len() + json.len() * 4 / 3 + 92);
    token.push_str(header_b64);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&json, &mut token);
    let signature = key.sign(token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut token);
    Ok(token)
}

/// Makes a new Ed25519 signing key record.
pub fn new_signing_key(now: jiff::Timestamp) -> Result<SigningKeyRecord, TokenError> {
    let sk = SigningKey::generate(&mut rand::rngs::OsRng);
    let der = sk
        .to_pkcs8_der()
        .map_err(|e| TokenError::Signing(e.to_string()))?;
    let public_raw = sk.verifying_key().to_bytes().to_vec();
    Ok(SigningKeyRecord {
        kid: uuid::Uuid::new_v4().simple().to_string(),
        private_der: der.as_bytes().to_vec(),
        public_raw,
        created_at: wire_time(now),
        retired_at: None,
    })
}

impl TokenService {
    /// Loads the signing keys, creating the first one if the store has none active.
    pub async fn load(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        issuer: String,
        audience: String,
        max_lifetime_secs: i64,
    ) -> Result<Self, TokenError> {
        let svc = TokenService {
            store,
            clock,
            issuer,
            audience,
            max_lifetime_secs,
            keys: RwLock::new(KeySet::default()),
            last_miss_reload: Mutex::new(None),
            reloads: AtomicU64::new(0),
        };
        svc.reload().await?;
        let has_signer = svc.keys.read().map(|k| k.signer.is_some()).unwrap_or(false);
        if !has_signer {
            let rec = new_signing_key(svc.clock.now())?;
            svc.store
                .add_signing_key(&Actor::new("server:startup"), rec)
                .await?;
            svc.reload().await?;
        }
        Ok(svc)
    }

    /// Reads the key set from the store again.
    pub async fn reload(&self) -> Result<(), TokenError> {
        self.reloads.fetch_add(1, Ordering::Relaxed);
        let records = self.store.signing_keys().await?;
        let mut set = KeySet::default();
        for r in records {
            let x = URL_SAFE_NO_PAD.encode(&r.public_raw);
            let decoding = DecodingKey::from_ed_components(&x)
                .map_err(|e| TokenError::Signing(e.to_string()))?;
            let signing = SigningKey::from_pkcs8_der(&r.private_der)
                .map_err(|e| TokenError::Signing(format!("signing key {}: {e}", r.kid)))?;
            let entry = Arc::new(KeyEntry {
                header_b64: header_b64(&r.kid)?,
                signing,
                kid: r.kid.clone(),
                decoding,
                public_raw: r.public_raw.clone(),
                retired_at: r.retired_at.as_deref().map(unix),
                created_at: unix(&r.created_at),
            });
            if entry.retired_at.is_none()
                && set
                    .signer
                    .as_ref()
                    .is_none_or(|s| s.created_at <= entry.created_at)
            {
                set.signer = Some(entry.clone());
            }
            set.by_kid.insert(r.kid, entry);
        }
        *self
            .keys
            .write()
            .map_err(|_| TokenError::Signing("key set lock poisoned".into()))? = set;
        Ok(())
    }

    /// How many times the key set has been read from the store since start.
    pub fn reload_count(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Whether an unknown key id may make this process reload now; if so, the time is taken
    /// at once, so concurrent misses do not all reload.
    fn may_reload_for_miss(&self) -> bool {
        let mut last = self
            .last_miss_reload
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let now = self.clock.now();
        let interval = jiff::SignedDuration::try_from(MISS_RELOAD_INTERVAL)
            .unwrap_or(jiff::SignedDuration::ZERO);
        // A clock that went back allows a reload rather than blocking them until it catches up.
        if last.is_some_and(|t| t <= now && now.duration_since(t) < interval) {
            return false;
        }
        *last = Some(now);
        true
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Issues a token for `key` valid for `lifetime_secs` from now.
    pub fn issue(&self, key: &ApiKey, lifetime_secs: i64) -> Result<(String, Claims), TokenError> {
        let signer = self
            .keys
            .read()
            .map_err(|_| TokenError::Signing("key set lock poisoned".into()))?
            .signer
            .clone()
            .ok_or_else(|| TokenError::Signing("no active signing key".into()))?;
        let now = self.clock.now().as_second();
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: key.client_id.clone(),
            aud: self.audience.clone(),
            iat: now,
            nbf: now,
            exp: now + lifetime_secs,
            jti: uuid::Uuid::new_v4().to_string(),
            client_id: key.client_id.clone(),
            key_type: key.kind.as_str().to_owned(),
            key_id: key.id,
            generation: key.generation,
        };
        let token = sign_compact(&signer.header_b64, &signer.signing, &claims)?;
        Ok((token, claims))
    }

    fn lookup(&self, kid: &str) -> Option<Arc<KeyEntry>> {
        self.keys.read().ok()?.by_kid.get(kid).cloned()
    }

    /// Checks signature, algorithm, type, issuer, audience and times. `None` for any failure: the
    /// client gets one answer whatever was wrong.
    pub async fn verify(&self, token: &str) -> Option<Claims> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(TOKEN_TYPE) {
            return None;
        }
        let kid = header.kid?;
        let entry = match self.lookup(&kid) {
            Some(e) => e,
            None => {
                // Perhaps another process made a key since this one loaded the set.
                if !self.may_reload_for_miss() {
                    return None;
                }
                if let Err(e) = self.reload().await {
                    tracing::warn!(error = %e, "reloading signing keys failed");
                }
                self.lookup(&kid)?
            }
        };
        let now = self.clock.now().as_second();
        if entry
            .retired_at
            .is_some_and(|r| r + self.max_lifetime_secs < now)
        {
            return None;
        }
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_audience(&[&self.audience]);
        v.set_issuer(&[&self.issuer]);
        v.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        // Times are checked below against the injected clock.
        v.validate_exp = false;
        v.validate_nbf = false;
        let data = jsonwebtoken::decode::<Claims>(token, &entry.decoding, &v).ok()?;
        let c = data.claims;
        if c.exp <= now || c.nbf > now || KeyKind::parse("key_type", &c.key_type).is_err() {
            return None;
        }
        Some(c)
    }

    /// The public keys as a JWK set: every key that may still have live tokens.
    pub fn jwks(&self) -> serde_json::Value {
        let now = self.clock.now().as_second();
        let Ok(set) = self.keys.read() else {
            return serde_json::json!({"keys": []});
        };
        let mut entries: Vec<&Arc<KeyEntry>> = set
            .by_kid
            .values()
            .filter(|e| {
                e.retired_at
                    .is_none_or(|r| r + self.max_lifetime_secs >= now)
            })
            .collect();
        entries.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.kid.cmp(&b.kid)));
        let keys: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA",
                    "kid": e.kid, "x": URL_SAFE_NO_PAD.encode(&e.public_raw),
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_byte_for_byte_what_jsonwebtoken_signs_and_verify_with_it() {
        let rec = new_signing_key(jiff::Timestamp::UNIX_EPOCH).expect("key");
        let claims = Claims {
            iss: "https://ledgerport.example".into(),
            sub: "client-1".into(),
            aud: "ledgerport".into(),
            iat: 1_700_000_000,
            nbf: 1_700_000_000,
            exp: 1_700_003_600,
            jti: "a4c1e7f0-0000-4000-8000-000000000001".into(),
            client_id: "client-1".into(),
            key_type: "accounting".into(),
            key_id: 42,
            generation: 3,
        };
        let signing = SigningKey::from_pkcs8_der(&rec.private_der).expect("der");
        let ours =
            sign_compact(&header_b64(&rec.kid).expect("header"), &signing, &claims).expect("sign");

        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(TOKEN_TYPE.into());
        header.kid = Some(rec.kid.clone());
        let theirs = jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_ed_der(&rec.private_der),
        )
        .expect("jsonwebtoken");
        assert_eq!(ours, theirs);

        let decoding =
            DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(&rec.public_raw)).expect("pk");
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_audience(&["ledgerport"]);
        v.validate_exp = false;
        let back = jsonwebtoken::decode::<Claims>(&ours, &decoding, &v).expect("verifies");
        assert_eq!(back.claims, claims);
        assert_eq!(back.header.kid.as_deref(), Some(rec.kid.as_str()));
    }
}
