//! Passwords, sessions and the signed-in user.
//!
//! Passwords are Argon2id PHC strings, hashed and checked on the blocking pool (each takes tens of
//! milliseconds of CPU). A session is a random token in an `HttpOnly; SameSite=Strict; Secure`
//! `__Host-` cookie; the store keeps only its SHA-256. Every request loads the session and the user afresh,
//! so a deleted session or a changed user is seen at once.

use super::{PortalError, cookie};
use crate::AppState;
pub use crate::limits::HashPermit;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use ledgerport_core::access::{self, LedgerAccess};
use ledgerport_core::ids::LedgerId;
use ledgerport_core::world::RowId;
use ledgerport_store::{LedgerView, PortalRole, PortalUser};
use sha2::{Digest, Sha256};

/// The `__Host-` prefix makes browsers refuse the cookie unless it is `Secure`, `Path=/` and
/// has no `Domain`: a sibling subdomain or a plain-HTTP page cannot plant or overwrite it.
pub const SESSION_COOKIE: &str = "__Host-lp_session";
/// How long a session lasts from sign-in.
pub const SESSION_LIFETIME: jiff::SignedDuration = jiff::SignedDuration::from_hours(12);
/// Failed sign-ins for one email after which it is locked for [`LOCKOUT`].
pub const MAX_FAILURES: u32 = 5;
pub const LOCKOUT: jiff::SignedDuration = jiff::SignedDuration::from_mins(15);
pub const MIN_PASSWORD_LEN: usize = 12;

/// Hashes a password with Argon2id (default parameters: 19 MiB, 2 passes) off the async threads.
/// For the command line and tests; the server's handlers use [`hash_password_holding`].
pub async fn hash_password(password: String) -> Result<String, String> {
    hash_with(None, password).await
}

/// [`hash_password`] holding one of the server's hashing permits ([`crate::limits::Limits`])
/// until the hash is done. The permit moves into the blocking task: a client that hangs up does
/// not free it while the hash still runs.
pub async fn hash_password_holding(permit: HashPermit, password: String) -> Result<String, String> {
    hash_with(Some(permit), password).await
}

async fn hash_with(permit: Option<HashPermit>, password: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| format!("hashing a password: {e}"))
    })
    .await
    .map_err(|e| format!("hashing a password: {e}"))?
}

/// A valid hash of a password nobody has, so an unknown email costs a sign-in as much as a
/// known one.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$bm90LWEtcmVhbC1zYWx0$2CvkM0Q8b6vj9YJr3oUqUe6zYJ0sQ3G6aQ0m5vQ6mJc";

/// Checks a password against a stored hash (or the dummy one) off the async threads.
pub async fn verify_password(password: String, stored: Option<String>) -> bool {
    verify_with(None, password, stored).await
}

/// [`verify_password`] holding a hashing permit until the check is done (see
/// [`hash_password_holding`]).
pub async fn verify_password_holding(
    permit: HashPermit,
    password: String,
    stored: Option<String>,
) -> bool {
    verify_with(Some(permit), password, stored).await
}

async fn verify_with(permit: Option<HashPermit>, password: String, stored: Option<String>) -> bool {
    let known = stored.is_some();
    let hash = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
    let ok = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        PasswordHash::new(&hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    ok && known
}

pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The signed-in user of this request, loaded from the store on every request.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: PortalUser,
    pub csrf: String,
    pub token_hash: [u8; 32],
    /// The flash message of the previous action, if any (already cleared by the response).
    pub flash: Option<(String, String)>,
    /// How many of the user's notifications are unread, for the nav bar of every page (merchant
    /// and partner users; the operator is not notified).
    pub unread: Option<u64>,
}

impl SignedIn {
    /// The organisation of a merchant user; anyone else is refused.
    pub fn merchant(&self) -> Result<RowId, PortalError> {
        match self.user.role {
            PortalRole::Merchant(m) => Ok(m),
            _ => Err(PortalError::Forbidden),
        }
    }

    pub fn partner(&self) -> Result<RowId, PortalError> {
        match self.user.role {
            PortalRole::Partner(p) => Ok(p),
            _ => Err(PortalError::Forbidden),
        }
    }

    pub fn operator(&self) -> Result<(), PortalError> {
        match self.user.role {
            PortalRole::Operator => Ok(()),
            _ => Err(PortalError::Forbidden),
        }
    }

    /// Who the audit log names for this user's changes.
    pub fn actor(&self) -> ledgerport_store::Actor {
        ledgerport_store::Actor::new(format!(
            "portal:{}:{}",
            self.user.role.as_str(),
            self.user.email
        ))
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = PortalError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PortalError> {
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or(PortalError::NotSignedIn)?;
        let hash = token_hash(&token);
        let session = state
            .store
            .session(hash)
            .await?
            .ok_or(PortalError::NotSignedIn)?;
        let user = state
            .store
            .portal_user(session.user_id)
            .await?
            .ok_or(PortalError::NotSignedIn)?;
        let flash = super::flash_of(&parts.headers);
        let unread = match user.role {
            PortalRole::Merchant(_) | PortalRole::Partner(_) => {
                Some(state.store.unread_notifications(user.id).await?)
            }
            PortalRole::Operator => None,
        };
        Ok(SignedIn {
            user,
            csrf: session.csrf_token,
            token_hash: hash,
            flash,
            unread,
        })
    }
}

impl SignedIn {
    /// The principal this signed-in user reads ledgers as. Only a session makes one: an API
    /// token never becomes a portal or operator principal.
    pub fn principal(&self) -> ledgerport_core::access::Principal {
        use ledgerport_core::access::Principal;
        match self.user.role {
            PortalRole::Merchant(merchant_id) => Principal::PortalMerchant {
                user_id: self.user.id,
                merchant_id,
            },
            PortalRole::Partner(partner_id) => Principal::PortalPartner {
                user_id: self.user.id,
                partner_id,
            },
            PortalRole::Operator => Principal::Operator {
                user_id: Some(self.user.id),
            },
        }
    }

    /// Every ledger this user may read, with the access the policy gave for it: the user's
    /// listing scope, paged in ledger id order, each ledger through the decision. A user whose
    /// principal may never read gets 403.
    pub async fn readable_ledgers(
        &self,
        state: &AppState,
    ) -> Result<Vec<(LedgerAccess, LedgerView)>, PortalError> {
        const PAGE: u32 = 500;
        let principal = self.principal();
        let scope = access::list_scope(&principal).ok_or(PortalError::Forbidden)?;
        let mut readable = vec![];
        let mut after: Option<LedgerId> = None;
        loop {
            let page = state
                .store
                .ledgers_in_scope(&scope, None, after.as_ref(), PAGE)
                .await?;
            let full = page.len() == PAGE as usize;
            for guarded in page {
                let ledger = guarded.facts().ledger_id.clone();
                after = Some(ledger.clone());
                match guarded.open(&principal) {
                    Ok(opened) => readable.push(opened),
                    // A scope may hold ledgers the policy refuses (a partner not approved reads
                    // none of its grants); the policy wins.
                    Err(refusal) => tracing::debug!(%ledger, ?refusal, "in scope but not readable"),
                }
            }
            if !full {
                return Ok(readable);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_is_a_real_argon2id_hash_so_unknown_emails_cost_the_same() {
        let h = PasswordHash::new(DUMMY_HASH).expect("a PHC string");
        assert_eq!(h.algorithm.as_str(), "argon2id");
    }

    #[tokio::test]
    async fn a_password_verifies_against_its_own_hash_only() {
        let h = hash_password("correct horse battery".into())
            .await
            .expect("hash");
        assert!(h.starts_with("$argon2id$v=19$"));
        assert!(verify_password("correct horse battery".into(), Some(h.clone())).await);
        assert!(!verify_password("wrong".into(), Some(h)).await);
        assert!(!verify_password("correct horse battery".into(), None).await);
    }
}
