//! Bearer tokens whose signature this process has already checked.
//!
//! Every Report API request carries a bearer token, and a client sends the same token for many
//! requests until it expires. Checking its Ed25519 signature every time was about a ninth of the
//! server's CPU on 1000-entry feed pages, for the same answer each time. So a token whose
//! signature checked out is remembered (by its exact bytes) with the key that signed it and its
//! claims; the next request with the same bytes skips the signature only. Everything that can
//! change is still checked on every request: the signing key must still be in the set with the
//! same public key, a retired key only within the longest token lifetime, the token's `exp` and
//! `nbf` against the clock, and (outside this module) the key row's revocation, generation and
//! partner state, read from the store.
//!
//! The map is bounded: when it is full, expired tokens are dropped, and if that frees nothing it
//! is emptied (the next request of each client checks its signature again).

use std::collections::HashMap;
use std::sync::Mutex;

/// At most this many tokens are remembered (a token is about 600 bytes; with its claims, a few
/// megabytes in all).
pub const CAPACITY: usize = 4096;

pub struct VerifiedTokens<V> {
    map: Mutex<HashMap<Box<str>, Remembered<V>>>,
    capacity: usize,
}

struct Remembered<V> {
    /// The token's `exp`, in seconds since the epoch.
    exp: i64,
    value: V,
}

impl<V: Clone> VerifiedTokens<V> {
    pub fn new(capacity: usize) -> Self {
        VerifiedTokens {
            map: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// What was remembered of exactly these token bytes, if anything.
    pub fn get(&self, token: &str) -> Option<V> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(token).map(|r| r.value.clone())
    }

    /// Remembers a token whose signature was checked; `exp` is its expiry and `now` the clock's
    /// second, both for making room.
    pub fn insert(&self, token: &str, exp: i64, now: i64, value: V) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.capacity && !map.contains_key(token) {
            map.retain(|_, r| r.exp > now);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(token.into(), Remembered { exp, value });
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_exact_token_bytes_only() {
        let v = VerifiedTokens::new(8);
        v.insert("a.b.c", 100, 10, 1);
        assert_eq!(v.get("a.b.c"), Some(1));
        assert_eq!(v.get("a.b.d"), None);
        assert_eq!(v.get("a.b.c "), None);
    }

    #[test]
    fn a_full_map_drops_expired_tokens_first_then_everything() {
        let v = VerifiedTokens::new(3);
        v.insert("expired", 5, 1, 1);
        v.insert("live-1", 100, 1, 2);
        v.insert("live-2", 100, 1, 3);
        assert_eq!(v.len(), 3);
        // Full at second 10: the expired one makes room, the live ones stay.
        v.insert("live-3", 100, 10, 4);
        assert_eq!(v.len(), 3);
        assert_eq!(v.get("expired"), None);
        assert_eq!(v.get("live-1"), Some(2));
        assert_eq!(v.get("live-3"), Some(4));
        // Full of live tokens: emptied, then the new one kept; never above the bound.
        v.insert("live-4", 100, 10, 5);
        assert_eq!(v.len(), 1);
        assert_eq!(v.get("live-4"), Some(5));
        // Replacing a remembered token needs no room.
        v.insert("live-4", 200, 10, 6);
        assert_eq!(v.get("live-4"), Some(6));
        assert_eq!(v.len(), 1);
    }
}
