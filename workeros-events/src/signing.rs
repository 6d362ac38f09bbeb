//! [Standard Webhooks](https://www.standardwebhooks.com/) signatures: `whsec_` secrets, the
//! `webhook-id` / `webhook-timestamp` / `webhook-signature` headers, signing on the sender's side
//! and verification on a receiver's (with several secrets during a rotation).
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the signature is HMAC-SHA256
//! with the base64-decoded secret, sent as `v1,<base64>`, several separated by spaces.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The prefix of a secret's text form.
pub const SECRET_PREFIX: &str = "whsec_";
/// The signature scheme this module signs with (`v1`: HMAC-SHA256).
pub const VERSION: &str = "v1";
/// How far a receiver accepts a timestamp from its own clock, either way (the specification's
/// default: five minutes).
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;
/// Shortest secret key accepted, in bytes (the specification asks for 24 to 64).
pub const MIN_SECRET_BYTES: usize = 24;
/// Longest secret key accepted, in bytes.
pub const MAX_SECRET_BYTES: usize = 64;

/// Why a secret or a signed message was refused. Messages are lowercase and safe to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The secret is not `whsec_` followed by base64 of 24 to 64 bytes.
    #[error("a webhook secret is `whsec_` followed by base64 of 24 to 64 bytes")]
    BadSecret,
    /// A required header is missing or empty.
    #[error("the `{0}` header is missing")]
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not an integer number of seconds.
    #[error("the `webhook-timestamp` header is not a number of seconds")]
    BadTimestamp,
    /// The timestamp is further from now than the tolerance (a replay or a skewed clock).
    #[error("the message timestamp is outside the tolerance: check the clocks")]
    StaleTimestamp,
    /// No `v1` signature in the header matches.
    #[error("no signature matches")]
    NoMatch,
}

/// A webhook secret: the key bytes behind `whsec_<base64>`, with its HMAC keyed once.
#[derive(Clone)]
pub struct Secret {
    key: Vec<u8>,
    mac: Hmac<Sha256>,
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Secret {}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Parses `whsec_<base64>` (the prefix may be left out, as the specification allows).
    pub fn parse(s: &str) -> Result<Self, SignatureError> {
        let b64 = s.strip_prefix(SECRET_PREFIX).unwrap_or(s);
        let key = STANDARD
            .decode(b64)
            .map_err(|_| SignatureError::BadSecret)?;
        Self::from_bytes(key)
    }

    /// A secret with these key bytes (24 to 64 of them).
    pub fn from_bytes(key: Vec<u8>) -> Result<Self, SignatureError> {
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            return Err(SignatureError::BadSecret);
        }
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key)
            .map_err(|_| SignatureError::BadSecret)?;
        Ok(Self { key, mac })
    }

    /// The text form, `whsec_<base64>`: what the receiver configures. Show it once.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(itoa::Buffer::new().format(timestamp).as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` value for a message: `v1,<base64 HMAC-SHA256>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(id, timestamp, body).finalize().into_bytes();
        format!("{VERSION},{}", STANDARD.encode(tag))
    }

    /// Whether `signature` (one base64 tag) is this secret's tag of the message, compared in
    /// constant time.
    fn verifies(&self, id: &str, timestamp: i64, body: &[u8], signature: &[u8]) -> bool {
        self.mac(id, timestamp, body)
            .verify_slice(signature)
            .is_ok()
    }
}

/// The headers of a signed message, as a receiver got them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedHeaders<'a> {
    /// `webhook-id`: the message id, the same on every retry (receivers deduplicate by it).
    pub id: &'a str,
    /// `webhook-timestamp`: seconds since the Unix epoch, as text.
    pub timestamp: &'a str,
    /// `webhook-signature`: one or more `v1,<base64>` separated by spaces.
    pub signature: &'a str,
}

/// Verifies a received message against any of `secrets` (several during a rotation): the
/// timestamp within `tolerance_secs` of `now` (Unix seconds), and some `v1` signature in the
/// header matching. This is the receiver-side helper; a host receiving workeros webhooks calls it
/// with the raw body bytes.
pub fn verify(
    secrets: &[Secret],
    headers: SignedHeaders<'_>,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    if headers.id.is_empty() {
        return Err(SignatureError::MissingHeader("webhook-id"));
    }
    if headers.timestamp.is_empty() {
        return Err(SignatureError::MissingHeader("webhook-timestamp"));
    }
    if headers.signature.trim().is_empty() {
        return Err(SignatureError::MissingHeader("webhook-signature"));
    }
    let timestamp: i64 = headers
        .timestamp
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    if now.abs_diff(timestamp) > tolerance_secs.unsigned_abs() {
        return Err(SignatureError::StaleTimestamp);
    }
    for part in headers.signature.split(' ').filter(|p| !p.is_empty()) {
        let Some((version, b64)) = part.split_once(',') else {
            continue;
        };
        if version != VERSION {
            continue;
        }
        let Ok(tag) = STANDARD.decode(b64) else {
            continue;
        };
        if secrets
            .iter()
            .any(|s| s.verifies(headers.id, timestamp, body, &tag))
        {
            return Ok(());
        }
    }
    Err(SignatureError::NoMatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The specification's published example (standard-webhooks, `spec/standard-webhooks.md`).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn secret() -> Secret {
        Secret::parse(SECRET).unwrap_or_else(|e| panic!("{e}"))
    }

    fn headers(signature: &str) -> SignedHeaders<'_> {
        SignedHeaders {
            id: ID,
            timestamp: "1614265330",
            signature,
        }
    }

    #[test]
    fn the_published_vector() {
        assert_eq!(secret().sign(ID, TS, BODY), SIG);
        assert_eq!(secret().expose(), SECRET);
        let ok = verify(&[secret()], headers(SIG), BODY, TS, DEFAULT_TOLERANCE_SECS);
        assert_eq!(ok, Ok(()));
    }

    #[test]
    fn negative_vectors_fail() {
        let s = [secret()];
        let v = |sig: &str, body: &[u8], now: i64| verify(&s, headers(sig), body, now, 300);
        let truncated = &SIG[..SIG.len() - 4];
        let wrong_version = SIG.replacen("v1,", "v2,", 1);
        for (sig, body, now, want) in [
            (
                "",
                BODY,
                TS,
                SignatureError::MissingHeader("webhook-signature"),
            ),
            (truncated, BODY, TS, SignatureError::NoMatch),
            (wrong_version.as_str(), BODY, TS, SignatureError::NoMatch),
            ("v1,", BODY, TS, SignatureError::NoMatch),
            ("v1,%%%", BODY, TS, SignatureError::NoMatch),
            (SIG, b"{\"test\": 2432232315}", TS, SignatureError::NoMatch),
            (SIG, BODY, TS + 301, SignatureError::StaleTimestamp),
            (SIG, BODY, TS - 301, SignatureError::StaleTimestamp),
        ] {
            assert_eq!(v(sig, body, now), Err(want), "{sig:?}");
        }
        let mut h = headers(SIG);
        h.timestamp = "16142653x0";
        assert_eq!(
            verify(&s, h, BODY, TS, 300),
            Err(SignatureError::BadTimestamp)
        );
        h.timestamp = "";
        assert_eq!(
            verify(&s, h, BODY, TS, 300),
            Err(SignatureError::MissingHeader("webhook-timestamp"))
        );
        let mut h = headers(SIG);
        h.id = "msg_other";
        assert_eq!(verify(&s, h, BODY, TS, 300), Err(SignatureError::NoMatch));
    }

    #[test]
    fn rotation_and_several_signatures() {
        let old = secret();
        let new = Secret::from_bytes(vec![7; 32]).unwrap_or_else(|e| panic!("{e}"));
        // The sender signs with both during a rotation; a receiver knowing either accepts.
        let both = format!("{} {}", new.sign(ID, TS, BODY), old.sign(ID, TS, BODY));
        for known in [vec![old.clone()], vec![new.clone()], vec![new, old]] {
            assert_eq!(verify(&known, headers(&both), BODY, TS, 300), Ok(()));
        }
        let stranger = Secret::from_bytes(vec![9; 24]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            verify(&[stranger], headers(&both), BODY, TS, 300),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn secrets_are_checked() {
        assert_eq!(Secret::parse("whsec_"), Err(SignatureError::BadSecret));
        assert_eq!(
            Secret::parse("whsec_c2hvcnQ="),
            Err(SignatureError::BadSecret)
        );
        assert_eq!(
            Secret::parse("whsec_not base64!"),
            Err(SignatureError::BadSecret)
        );
        assert!(Secret::parse(&SECRET["whsec_".len()..]).is_ok());
        assert_eq!(format!("{:?}", secret()), "Secret(..)");
    }
}
