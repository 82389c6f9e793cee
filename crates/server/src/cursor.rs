//! Opaque, tamper-proof cursors.
//!
//! A cursor is the position (last sequence number or ledger id) plus what it is bound to (kind,
//! ledger, topic, date or filter), followed by a truncated HMAC-SHA256 under a key every server
//! process shares through the store. It is base64url without padding, so it survives being pasted
//! into a query string unencoded. The encoding is deterministic: the same position always gives
//! the same text (the feed hands back the same cursor at its end). Cursors do not expire.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use ledgerport_core::ids::{LedgerDate, LedgerId, Topic};
use sha2::Sha256;
use subtle::ConstantTimeEq;

const VERSION: u8 = 1;
const MAC_LEN: usize = 16;

/// What a cursor is bound to, besides its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding<'a> {
    Feed {
        ledger: &'a LedgerId,
        topic: Topic,
    },
    Date {
        ledger: &'a LedgerId,
        topic: Topic,
        date: LedgerDate,
    },
    /// The ledger listing, with its `settlesForRecipientHandles` filter ("" for none).
    Ledgers {
        filter: &'a str,
    },
    /// The listing of an accounting partner's grants (`/ledgerport/v1/grants`).
    Grants,
}

#[derive(Clone)]
pub struct CursorCodec {
    key: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct CursorError;

impl CursorCodec {
    pub fn new(key: Vec<u8>) -> Self {
        CursorCodec { key }
    }

    fn binding_bytes(b: &Binding<'_>, out: &mut Vec<u8>) {
        let push_str = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(&(s.len() as u16).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        };
        match b {
            Binding::Feed { ledger, topic } => {
                out.push(0);
                out.push(topic.code());
                push_str(out, ledger.as_str());
            }
            Binding::Date {
                ledger,
                topic,
                date,
            } => {
                out.push(1);
                out.push(topic.code());
                push_str(out, ledger.as_str());
                out.extend_from_slice(&date.to_days().to_be_bytes());
            }
            Binding::Ledgers { filter } => {
                out.push(2);
                push_str(out, filter);
            }
            Binding::Grants => out.push(3),
        }
    }

    fn mac(&self, data: &[u8]) -> [u8; MAC_LEN] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut m =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        m.update(data);
        let full = m.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    /// Encodes a position that is bound to `binding`. The binding is signed but not carried: the
    /// request that presents the cursor must supply the same binding to decode it.
    pub fn encode(&self, binding: &Binding<'_>, position: &[u8]) -> String {
        let mut signed = vec![VERSION];
        Self::binding_bytes(binding, &mut signed);
        signed.extend_from_slice(position);
        let mac = self.mac(&signed);
        let mut wire = Vec::with_capacity(1 + position.len() + MAC_LEN);
        wire.push(VERSION);
        wire.extend_from_slice(position);
        wire.extend_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(wire)
    }

    /// Returns the position if the cursor is intact and was made for `binding`.
    pub fn decode(&self, binding: &Binding<'_>, cursor: &str) -> Result<Vec<u8>, CursorError> {
        if cursor.len() > 512 {
            return Err(CursorError);
        }
        let wire = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| CursorError)?;
        if wire.len() < 1 + MAC_LEN || wire[0] != VERSION {
            return Err(CursorError);
        }
        let (body, mac) = wire.split_at(wire.len() - MAC_LEN);
        let position = &body[1..];
        let mut signed = vec![VERSION];
        Self::binding_bytes(binding, &mut signed);
        signed.extend_from_slice(position);
        if bool::from(self.mac(&signed).ct_eq(mac)) {
            Ok(position.to_vec())
        } else {
            Err(CursorError)
        }
    }

    pub fn encode_seq(&self, binding: &Binding<'_>, seq: i64) -> String {
        self.encode(binding, &seq.to_be_bytes())
    }

    pub fn decode_seq(&self, binding: &Binding<'_>, cursor: &str) -> Result<i64, CursorError> {
        let p = self.decode(binding, cursor)?;
        let bytes: [u8; 8] = p.try_into().map_err(|_| CursorError)?;
        let seq = i64::from_be_bytes(bytes);
        if seq < 0 { Err(CursorError) } else { Ok(seq) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lid(s: &str) -> LedgerId {
        LedgerId::parse("l", s).expect("id")
    }

    #[test]
    fn a_cursor_decodes_only_for_its_own_binding() {
        let c = CursorCodec::new(b"k".to_vec());
        let (a, b) = (lid("100"), lid("200"));
        let feed_a = Binding::Feed {
            ledger: &a,
            topic: Topic::Funds,
        };
        let cur = c.encode_seq(&feed_a, 42);
        assert_eq!(c.decode_seq(&feed_a, &cur), Ok(42));
        assert_eq!(
            c.decode_seq(
                &Binding::Feed {
                    ledger: &b,
                    topic: Topic::Funds
                },
                &cur
            ),
            Err(CursorError)
        );
        assert_eq!(
            c.decode_seq(
                &Binding::Feed {
                    ledger: &a,
                    topic: Topic::Fees
                },
                &cur
            ),
            Err(CursorError)
        );
        let date = LedgerDate::parse("d", "2024-01-01").expect("date");
        assert_eq!(
            c.decode_seq(
                &Binding::Date {
                    ledger: &a,
                    topic: Topic::Funds,
                    date
                },
                &cur
            ),
            Err(CursorError)
        );
    }

    #[test]
    fn any_change_to_a_cursor_is_detected() {
        let c = CursorCodec::new(b"k".to_vec());
        let a = lid("100");
        let bind = Binding::Feed {
            ledger: &a,
            topic: Topic::Funds,
        };
        let cur = c.encode_seq(&bind, 7);
        let bytes = cur.as_bytes();
        for i in 0..bytes.len() {
            for replacement in [b'A', b'_', b'-', b'z'] {
                if bytes[i] == replacement {
                    continue;
                }
                let mut t = bytes.to_vec();
                t[i] = replacement;
                let t = String::from_utf8(t).expect("ascii");
                // A change in the last character may only touch the padding bits of base64.
                if let Ok(v) = c.decode_seq(&bind, &t) {
                    assert_eq!(v, 7, "tampered cursor {t} decoded to another position");
                }
            }
        }
        assert_eq!(
            CursorCodec::new(b"other".to_vec()).decode_seq(&bind, &cur),
            Err(CursorError)
        );
    }

    #[test]
    fn cursors_are_url_safe_and_deterministic() {
        let c = CursorCodec::new(b"k".to_vec());
        let a = lid("302321");
        let bind = Binding::Feed {
            ledger: &a,
            topic: Topic::Fees,
        };
        for seq in [0, 1, 255, 1 << 40] {
            let cur = c.encode_seq(&bind, seq);
            assert!(!cur.contains(['+', '/', '=']), "{cur}");
            assert_eq!(cur, c.encode_seq(&bind, seq));
        }
    }
}
