//! Secrets: random tokens from the operating system's generator, and the SHA-256 digests that
//! are all the database ever holds of them.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Bytes of randomness in a session token, API key or one-time token (256 bits).
pub(crate) const TOKEN_BYTES: usize = 32;

/// The prefix of every API key.
pub const API_KEY_PREFIX: &str = "pak_";

/// Characters of an API key kept for display (`pak_` and 8 more).
pub(crate) const DISPLAY_PREFIX_LEN: usize = 12;

/// The longest token accepted from a client: anything longer is not ours and is refused before
/// hashing.
pub(crate) const MAX_PRESENTED_LEN: usize = 256;

/// `n` random bytes from the OS generator.
pub(crate) fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    OsRng.fill_bytes(&mut b);
    b
}

/// A fresh random token: 256 bits, URL-safe base64 (43 characters).
pub(crate) fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(TOKEN_BYTES))
}

/// A fresh API key: `pak_` and a random token.
pub(crate) fn random_api_key() -> String {
    format!("{API_KEY_PREFIX}{}", random_token())
}

/// The stored form of a token: its SHA-256, lowercase hex. Lookups go by this digest, so a
/// database read never sees the token and the comparison is the index's, on a value an
/// attacker cannot steer.
pub(crate) fn digest(token: &str) -> String {
    use std::fmt::Write as _;
    let d = Sha256::digest(token.as_bytes());
    let mut s = String::with_capacity(64);
    for b in d.iter() {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Whether `token` is shaped like one of ours (length, alphabet), checked before any lookup.
pub(crate) fn plausible(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_PRESENTED_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_digested() {
        let a = random_token();
        let b = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(plausible(&a));
        let k = random_api_key();
        assert!(k.starts_with("pak_") && k.len() == 47 && plausible(&k));
        assert_eq!(digest(&a).len(), 64);
        assert_eq!(digest(&a), digest(&a));
        assert_ne!(digest(&a), digest(&b));
        assert!(!plausible(""));
        assert!(!plausible("a b"));
        assert!(!plausible(&"a".repeat(257)));
    }
}
