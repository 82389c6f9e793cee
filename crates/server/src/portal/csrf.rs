//! CSRF tokens: one random token per session, carried back by every form as `csrf` and compared
//! in constant time. Before sign-in (the sign-in and application forms) the token lives in its own
//! `SameSite=Strict` cookie and the form must repeat it (double submit).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use subtle::ConstantTimeEq;

/// 256 random bits, URL-safe.
pub fn new_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// Whether a form's token is the expected one; an empty expected token never matches.
pub fn matches(expected: &str, presented: Option<&str>) -> bool {
    match presented {
        Some(p) if !expected.is_empty() => bool::from(expected.as_bytes().ct_eq(p.as_bytes())),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_nonempty_token_matches() {
        let t = new_token();
        assert!(matches(&t, Some(&t)));
        assert!(!matches(&t, Some("x")));
        assert!(!matches(&t, None));
        assert!(!matches("", Some("")));
        assert_ne!(new_token(), t);
    }
}
