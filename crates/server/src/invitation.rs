//! Signed invitation links: an accounting partner's proposal of a scope, which it sends to a
//! merchant as a link; the merchant's signed-in user opens it and grants access (possibly
//! narrowed) or declines ([`crate::portal::invitations`]).
//!
//! Nothing is stored when a link is made: the link is the invitation. It carries its own id (16
//! random bytes, so each merchant answers it once: the store keeps the id with the answer), the
//! partner, the proposed scope and the link's expiry, as JSON in base64url, followed by an
//! HMAC-SHA256 under a key every server process shares through the store (as cursors are,
//! [`crate::cursor`]). A link whose text was changed in any way fails the MAC; one past its
//! expiry is refused naming the expiry, so the merchant knows to ask for a new one.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp};
use ledgerport_core::entry::wire_time;
use ledgerport_core::ids::LedgerDate;
use ledgerport_core::world::{GrantScope, RowId, Topics};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How long an invitation link may be answered after the partner made it.
pub const INVITATION_LIFETIME: SignedDuration = SignedDuration::from_hours(30 * 24);

/// The version prefix of the link's text; a new format gets a new one.
const VERSION: &str = "i1";
/// The longest link text accepted, far above what a real one needs.
const MAX_LEN: usize = 2048;

/// What an invitation link says, once its MAC and expiry have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// The link's own id: 32 hex digits.
    pub id: String,
    pub partner: RowId,
    /// The scope the partner proposes.
    pub scope: GrantScope,
    /// After this the link is refused.
    pub expires_at: Timestamp,
}

/// Why a link is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvitationError {
    /// Not a link this server made, or changed since.
    #[error("the invitation link is damaged or was changed")]
    Damaged,
    /// Intact, but past its expiry (the partner's id, to name it).
    #[error("the invitation link expired at {at}")]
    Expired { at: Timestamp, partner: RowId },
}

/// The link's payload as JSON: short names, dates and times in their wire forms.
#[derive(Serialize, Deserialize)]
struct Wire {
    /// Id.
    i: String,
    /// Partner.
    p: RowId,
    /// The link's expiry.
    x: String,
    /// The proposed grant's expiry.
    e: Option<String>,
    /// Ledger dates from, to.
    f: Option<String>,
    t: Option<String>,
    /// Topics: funds, fees.
    tf: bool,
    tg: bool,
    /// Personal data.
    pd: bool,
}

/// Makes and checks invitation links under one key.
#[derive(Clone)]
pub struct InvitationCodec {
    key: Vec<u8>,
}

impl InvitationCodec {
    pub fn new(key: Vec<u8>) -> Self {
        InvitationCodec { key }
    }

    fn mac(&self, data: &[u8]) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut m =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        m.update(VERSION.as_bytes());
        m.update(b".");
        m.update(data);
        m.finalize().into_bytes().into()
    }

    /// A new invitation of `partner` proposing `scope`, made at `now`: its link text (URL-safe)
    /// and what it says.
    pub fn make(&self, partner: RowId, scope: GrantScope, now: Timestamp) -> (String, Invitation) {
        let mut id = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
        let invitation = Invitation {
            id: id.iter().map(|b| format!("{b:02x}")).collect(),
            partner,
            scope,
            expires_at: now
                .checked_add(INVITATION_LIFETIME)
                .unwrap_or(Timestamp::MAX),
        };
        (self.encode(&invitation), invitation)
    }

    /// The link text of `inv`.
    pub fn encode(&self, inv: &Invitation) -> String {
        let wire = Wire {
            i: inv.id.clone(),
            p: inv.partner,
            x: wire_time(inv.expires_at),
            e: inv.scope.expires_at.map(wire_time),
            f: inv.scope.from.map(|d| d.to_string()),
            t: inv.scope.to.map(|d| d.to_string()),
            tf: inv.scope.topics.funds,
            tg: inv.scope.topics.fees,
            pd: inv.scope.personal_data,
        };
        // A struct of strings, numbers and booleans always serialises.
        let json = serde_json::to_vec(&wire).unwrap_or_default();
        let body = URL_SAFE_NO_PAD.encode(json);
        let mac = URL_SAFE_NO_PAD.encode(self.mac(body.as_bytes()));
        format!("{VERSION}.{body}.{mac}")
    }

    /// What link text `text` says, if this server made it unchanged and it has not expired at
    /// `now`.
    pub fn open(&self, text: &str, now: Timestamp) -> Result<Invitation, InvitationError> {
        let text = text.trim();
        if text.len() > MAX_LEN {
            return Err(InvitationError::Damaged);
        }
        let mut parts = text.split('.');
        let (Some(VERSION), Some(body), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(InvitationError::Damaged);
        };
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| InvitationError::Damaged)?;
        if !bool::from(self.mac(body.as_bytes()).as_slice().ct_eq(&mac)) {
            return Err(InvitationError::Damaged);
        }
        // From here on the payload is the server's own; a payload that does not read is still
        // refused rather than trusted.
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| InvitationError::Damaged)?;
        let w: Wire = serde_json::from_slice(&json).map_err(|_| InvitationError::Damaged)?;
        let time = |s: &str| s.parse::<Timestamp>().map_err(|_| InvitationError::Damaged);
        let date = |s: &Option<String>| {
            s.as_deref()
                .map(|d| LedgerDate::parse("date", d))
                .transpose()
                .map_err(|_| InvitationError::Damaged)
        };
        let expires_at = time(&w.x)?;
        if now >= expires_at {
            return Err(InvitationError::Expired {
                at: expires_at,
                partner: w.p,
            });
        }
        let scope = GrantScope {
            expires_at: w.e.as_deref().map(time).transpose()?,
            from: date(&w.f)?,
            to: date(&w.t)?,
            topics: Topics {
                funds: w.tf,
                fees: w.tg,
            },
            personal_data: w.pd,
        };
        scope.check().map_err(|_| InvitationError::Damaged)?;
        if w.i.len() != 32 || !w.i.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(InvitationError::Damaged);
        }
        Ok(Invitation {
            id: w.i,
            partner: w.p,
            scope,
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    fn scope() -> GrantScope {
        GrantScope {
            expires_at: Some(at("2024-06-01T00:00:00Z")),
            from: Some(LedgerDate::parse("from", "2024-04-01").expect("date")),
            to: None,
            topics: Topics {
                funds: true,
                fees: false,
            },
            personal_data: false,
        }
    }

    #[test]
    fn a_link_opens_to_what_was_made_until_it_expires() {
        let codec = InvitationCodec::new(b"key".to_vec());
        let now = at("2024-04-05T12:00:00Z");
        let (text, made) = codec.make(7, scope(), now);
        assert!(
            text.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "{text}"
        );
        assert_eq!(codec.open(&text, now), Ok(made.clone()));
        assert_eq!(made.expires_at, now + INVITATION_LIFETIME);
        let last = made.expires_at - SignedDuration::from_micros(1);
        assert!(codec.open(&text, last).is_ok());
        assert_eq!(
            codec.open(&text, made.expires_at),
            Err(InvitationError::Expired {
                at: made.expires_at,
                partner: 7
            })
        );
        let (other, again) = codec.make(7, scope(), now);
        assert_ne!(made.id, again.id, "each link has its own id");
        assert_ne!(text, other);
    }

    #[test]
    fn a_changed_link_or_another_servers_is_damaged() {
        let codec = InvitationCodec::new(b"key".to_vec());
        let now = at("2024-04-05T12:00:00Z");
        let (text, _) = codec.make(7, scope(), now);
        // Every single character changed, and the payload swapped for a wider one signed by no
        // one.
        for i in 0..text.len() {
            let mut b = text.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(b).expect("ascii");
            if changed != text {
                assert_eq!(
                    codec.open(&changed, now),
                    Err(InvitationError::Damaged),
                    "{changed}"
                );
            }
        }
        let parts: Vec<&str> = text.split('.').collect();
        let wider = InvitationCodec::new(b"other key".to_vec()).encode(&Invitation {
            id: "0".repeat(32),
            partner: 7,
            scope: GrantScope::EVERYTHING,
            expires_at: at("2030-01-01T00:00:00Z"),
        });
        let wider_body = wider.split('.').nth(1).expect("body");
        let forged = format!("{}.{}.{}", parts[0], wider_body, parts[2]);
        assert_eq!(codec.open(&forged, now), Err(InvitationError::Damaged));
        assert_eq!(codec.open(&wider, now), Err(InvitationError::Damaged));
        assert_eq!(codec.open("", now), Err(InvitationError::Damaged));
        assert_eq!(
            codec.open(&"a".repeat(5000), now),
            Err(InvitationError::Damaged)
        );
    }
}
