//! Access tokens: RFC 9068 JWTs signed with Ed25519.
//!
//! Signing keys live in the store, so every server process on one database signs and verifies
//! with the same set. The newest active key signs; retired keys still verify (and stay in the
//! JWKS) until every token they signed has expired. A token naming a key this process has not seen
//! makes it reload the set, which is how a key created by another process becomes known; such
//! reloads happen at most once per [`MISS_RELOAD_INTERVAL`], so tokens with made-up key ids
//! cost a map lookup, not a database read and a write lock each.
//! Expiry is checked against the injected clock, not the system's, so tests can expire tokens.
//!
//! Private keys are stored encrypted ([`SigningKeyProtection`]): XChaCha20-Poly1305 under a
//! key-encryption key from the configuration, with the key's `kid` as associated data, so a row's
//! bytes cannot be moved to another row. The store only keeps bytes. Retired keys only verify,
//! which needs their public half alone, so their private half is never decrypted: a process needs
//! the key-encryption key of the active keys only, which is what makes replacing that key simple
//! (OPERATIONS.md, "Signing keys at rest").

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
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

mod verified;
use verified::VerifiedTokens;

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
    /// The private key, decrypted and parsed once when the set is loaded (`jsonwebtoken::encode`
    /// would parse the PKCS#8 document and derive the public key again on every token); `None`
    /// for a retired key, which only verifies.
    signing: Option<SigningKey>,
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
    protection: SigningKeyProtection,
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
    /// Tokens whose signature this process checked.
    verified: VerifiedTokens<Arc<Verified>>,
}

/// What is remembered of a token whose signature checked out: its claims and which public key
/// signed it (never the key entry itself, which holds an active key's private half).
struct Verified {
    kid: String,
    public_raw: Vec<u8>,
    claims: Claims,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing: {0}")]
    Signing(String),
    /// A stored private key that the configured key-encryption keys cannot open, or that needs
    /// one when none is configured.
    #[error("{0}")]
    AtRest(String),
}

/// The configuration key that holds the key-encryption key, for messages.
pub const KEK_SETTING: &str = "signing_key_encryption_key";

/// Marks a stored private key as encrypted: `LPK1`, a 24-byte nonce, then the ciphertext and tag.
/// A plaintext PKCS#8 document starts with `0x30` (a DER sequence), so the two never mix up.
const SEALED_MAGIC: &[u8; 4] = b"LPK1";
const NONCE_LEN: usize = 24;

/// A 32-byte key that encrypts signing keys at rest. Its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyEncryptionKey([u8; 32]);

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey(***)")
    }
}

impl KeyEncryptionKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut k);
        KeyEncryptionKey(k)
    }

    /// Parses standard base64 (padded or not; surrounding whitespace ignored) of exactly 32
    /// bytes. The message says what was wrong, never the value.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
            .map_err(|_| "expected 32 bytes in base64, got text that is not base64".to_string())?;
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            format!(
                "expected 32 bytes in base64, got {} bytes (make one with `head -c 32 /dev/urandom | base64`)",
                bytes.len()
            )
        })?;
        Ok(KeyEncryptionKey(key))
    }

    /// The key in standard base64, as [`KeyEncryptionKey::from_base64`] reads it.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&chacha20poly1305::Key::from(self.0))
    }

    /// Encrypts `private_der` for the row `kid`.
    fn seal(&self, kid: &str, private_der: &[u8]) -> Result<Vec<u8>, TokenError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        let sealed = self
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: private_der,
                    aad: kid.as_bytes(),
                },
            )
            .map_err(|_| TokenError::Signing(format!("encrypting signing key {kid}")))?;
        let mut out = Vec::with_capacity(SEALED_MAGIC.len() + NONCE_LEN + sealed.len());
        out.extend_from_slice(SEALED_MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts the stored bytes of row `kid`; `None` if this key did not encrypt them.
    fn open(&self, kid: &str, stored: &[u8]) -> Option<Vec<u8>> {
        let rest = stored.strip_prefix(SEALED_MAGIC.as_slice())?;
        if rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        self.cipher()
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: kid.as_bytes(),
                },
            )
            .ok()
    }
}

/// How signing private keys are kept in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigningKeyProtection {
    /// Encrypted with `current`; keys encrypted with one of `previous` are still read (while the
    /// key-encryption key is being replaced). Plaintext keys left from before are still read too,
    /// and replaced at start ([`TokenService::load`]).
    Encrypted {
        current: KeyEncryptionKey,
        previous: Vec<KeyEncryptionKey>,
    },
    /// Stored in clear: only for throwaway databases (`insecure_plaintext_signing_keys`).
    Plaintext,
}

impl SigningKeyProtection {
    /// Only `current`, nothing previous.
    pub fn encrypted(current: KeyEncryptionKey) -> Self {
        SigningKeyProtection::Encrypted {
            current,
            previous: Vec::new(),
        }
    }

    /// The bytes to store for a new key `kid`.
    pub fn seal(&self, kid: &str, private_der: &[u8]) -> Result<Vec<u8>, TokenError> {
        match self {
            SigningKeyProtection::Encrypted { current, .. } => current.seal(kid, private_der),
            SigningKeyProtection::Plaintext => Ok(private_der.to_vec()),
        }
    }

    /// The PKCS#8 document from the stored bytes of row `kid`.
    pub fn open(&self, kid: &str, stored: &[u8]) -> Result<Vec<u8>, TokenError> {
        if !is_sealed(stored) {
            return Ok(stored.to_vec());
        }
        match self {
            SigningKeyProtection::Encrypted { current, previous } => std::iter::once(current)
                .chain(previous)
                .find_map(|k| k.open(kid, stored))
                .ok_or_else(|| {
                    TokenError::AtRest(format!(
                        "signing key {kid} cannot be decrypted with {KEK_SETTING}{}: it was \
                             encrypted with another key (a wrong or missing key-encryption key in \
                             the configuration?)",
                        if previous.is_empty() {
                            ""
                        } else {
                            " nor with signing_key_encryption_key_previous"
                        }
                    ))
                }),
            SigningKeyProtection::Plaintext => Err(TokenError::AtRest(format!(
                "signing key {kid} is stored encrypted, but no {KEK_SETTING} is configured"
            ))),
        }
    }
}

/// Whether stored private key bytes are encrypted (rather than a plaintext PKCS#8 document).
pub fn is_sealed(stored: &[u8]) -> bool {
    stored.starts_with(SEALED_MAGIC)
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

/// A token id: a random version-4 UUID, from the thread's CSPRNG (seeded and reseeded from the
/// OS) rather than `Uuid::new_v4`, which asks the OS for 16 bytes with a system call per token.
fn new_jti() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

/// Makes a new Ed25519 signing key record, its private key kept as `protection` says.
pub fn new_signing_key(
    now: jiff::Timestamp,
    protection: &SigningKeyProtection,
) -> Result<SigningKeyRecord, TokenError> {
    let sk = SigningKey::generate(&mut rand::rngs::OsRng);
    let der = sk
        .to_pkcs8_der()
        .map_err(|e| TokenError::Signing(e.to_string()))?;
    let public_raw = sk.verifying_key().to_bytes().to_vec();
    let kid = uuid::Uuid::new_v4().simple().to_string();
    Ok(SigningKeyRecord {
        private_der: protection.seal(&kid, der.as_bytes())?,
        kid,
        public_raw,
        created_at: wire_time(now),
        retired_at: None,
    })
}

impl TokenService {
    /// Loads the signing keys, creating the first one if the store has none active. With a
    /// key-encryption key configured, active keys stored in clear (made before keys were
    /// encrypted, or by a process without the key) are replaced: a new encrypted key is added and
    /// they are retired, so they only verify the tokens they signed until those expire.
    pub async fn load(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        protection: SigningKeyProtection,
        issuer: String,
        audience: String,
        max_lifetime_secs: i64,
    ) -> Result<Self, TokenError> {
        let svc = TokenService {
            store,
            protection,
            clock,
            issuer,
            audience,
            max_lifetime_secs,
            keys: RwLock::new(KeySet::default()),
            last_miss_reload: Mutex::new(None),
            reloads: AtomicU64::new(0),
            verified: VerifiedTokens::new(verified::CAPACITY),
        };
        svc.reload().await?;
        let by = Actor::new("server:startup");
        let plaintext: Vec<String> = match svc.protection {
            SigningKeyProtection::Plaintext => Vec::new(),
            SigningKeyProtection::Encrypted { .. } => svc
                .store
                .signing_keys()
                .await?
                .into_iter()
                .filter(|r| r.retired_at.is_none() && !is_sealed(&r.private_der))
                .map(|r| r.kid)
                .collect(),
        };
        let has_signer = svc.keys.read().map(|k| k.signer.is_some()).unwrap_or(false);
        if !has_signer || !plaintext.is_empty() {
            let rec = new_signing_key(svc.clock.now(), &svc.protection)?;
            svc.store.add_signing_key(&by, rec).await?;
            for kid in &plaintext {
                match svc.store.retire_signing_key(&by, kid).await {
                    // Another process starting at the same time retired it first.
                    Ok(()) | Err(StoreError::NotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
                tracing::info!(kid = %kid, "replaced a signing key stored in clear with an encrypted one");
            }
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
            let signing =
                match r.retired_at {
                    Some(_) => None,
                    None => {
                        let der = self.protection.open(&r.kid, &r.private_der)?;
                        Some(SigningKey::from_pkcs8_der(&der).map_err(|e| {
                            TokenError::Signing(format!("signing key {}: {e}", r.kid))
                        })?)
                    }
                };
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
            jti: new_jti(),
            client_id: key.client_id.clone(),
            key_type: key.kind.as_str().to_owned(),
            key_id: key.id,
            generation: key.generation,
        };
        let signing = signer
            .signing
            .as_ref()
            .ok_or_else(|| TokenError::Signing("the signing key is retired".into()))?;
        let token = sign_compact(&signer.header_b64, signing, &claims)?;
        Ok((token, claims))
    }

    fn lookup(&self, kid: &str) -> Option<Arc<KeyEntry>> {
        self.keys.read().ok()?.by_kid.get(kid).cloned()
    }

    /// Checks signature, algorithm, type, issuer, audience and times. `None` for any failure: the
    /// client gets one answer whatever was wrong. A token whose signature this process already
    /// checked skips that check only (see `verified`); the key and the times are checked anew.
    pub async fn verify(&self, token: &str) -> Option<Claims> {
        let now = self.clock.now().as_second();
        if let Some(known) = self.verified.get(token) {
            // The key must still be in the set with the same public half (a reload makes new
            // entries for the same keys; a key could in principle be replaced under its kid).
            let entry = self.lookup(&known.kid)?;
            if entry.public_raw != known.public_raw {
                return None;
            }
            return self.live(&entry, known.claims.clone(), now);
        }
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
        if self.key_expired(&entry, now) {
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
        if KeyKind::parse("key_type", &c.key_type).is_err() {
            return None;
        }
        let c = self.live(&entry, c, now)?;
        let known = Verified {
            kid: entry.kid.clone(),
            public_raw: entry.public_raw.clone(),
            claims: c.clone(),
        };
        self.verified.insert(token, c.exp, now, Arc::new(known));
        Some(c)
    }

    /// Whether a retired key is past the time its last token could still be valid.
    fn key_expired(&self, entry: &KeyEntry, now: i64) -> bool {
        entry
            .retired_at
            .is_some_and(|r| r + self.max_lifetime_secs < now)
    }

    /// The claims of a token with a good signature, if its key and its times allow it now.
    fn live(&self, entry: &KeyEntry, c: Claims, now: i64) -> Option<Claims> {
        if self.key_expired(entry, now) || c.exp <= now || c.nbf > now {
            return None;
        }
        Some(c)
    }

    /// How many tokens this process remembers as verified (for tests).
    pub fn verified_count(&self) -> usize {
        self.verified.len()
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
    fn token_ids_are_random_version_4_uuids() {
        let (a, b) = (new_jti(), new_jti());
        assert_ne!(a, b);
        for id in [a, b] {
            let u = uuid::Uuid::parse_str(&id).expect("a UUID");
            assert_eq!(u.get_version_num(), 4, "{id}");
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122, "{id}");
            assert_eq!(u.hyphenated().to_string(), id);
        }
    }

    #[test]
    fn tokens_are_byte_for_byte_what_jsonwebtoken_signs_and_verify_with_it() {
        let rec = new_signing_key(
            jiff::Timestamp::UNIX_EPOCH,
            &SigningKeyProtection::Plaintext,
        )
        .expect("key");
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

    #[test]
    fn sealed_keys_open_with_their_key_and_row_only() {
        let kek = KeyEncryptionKey::generate();
        let protection = SigningKeyProtection::encrypted(kek.clone());
        let rec = new_signing_key(jiff::Timestamp::UNIX_EPOCH, &protection).expect("key");
        assert!(is_sealed(&rec.private_der));
        let der = protection.open(&rec.kid, &rec.private_der).expect("opens");
        let sk = SigningKey::from_pkcs8_der(&der).expect("pkcs8");
        assert_eq!(sk.verifying_key().to_bytes().to_vec(), rec.public_raw);
        // The stored bytes hold neither the document nor the raw private key.
        assert!(
            !rec.private_der
                .windows(32)
                .any(|w| w == sk.to_bytes().as_slice())
        );
        // Another row's kid, another key, or no key: refused, naming the setting.
        let moved = protection.open("another-kid", &rec.private_der);
        assert!(matches!(moved, Err(TokenError::AtRest(_))));
        let other = SigningKeyProtection::encrypted(KeyEncryptionKey::generate());
        let wrong = other
            .open(&rec.kid, &rec.private_der)
            .expect_err("wrong key")
            .to_string();
        assert!(wrong.contains(KEK_SETTING), "{wrong}");
        let none = SigningKeyProtection::Plaintext
            .open(&rec.kid, &rec.private_der)
            .expect_err("no key")
            .to_string();
        assert!(none.contains(KEK_SETTING), "{none}");
        // A previous key still opens it.
        let rotated = SigningKeyProtection::Encrypted {
            current: KeyEncryptionKey::generate(),
            previous: vec![kek],
        };
        assert_eq!(
            rotated.open(&rec.kid, &rec.private_der).expect("opens"),
            der
        );
    }

    #[test]
    fn key_encryption_keys_are_32_bytes_of_base64() {
        let k = KeyEncryptionKey::generate();
        assert_eq!(
            KeyEncryptionKey::from_base64(&format!("{}\n", k.to_base64())),
            Ok(k)
        );
        assert!(KeyEncryptionKey::from_base64("c2hvcnQ=").is_err());
        assert!(KeyEncryptionKey::from_base64("not base64!").is_err());
        assert_eq!(
            format!("{:?}", KeyEncryptionKey::generate()),
            "KeyEncryptionKey(***)"
        );
    }
}
