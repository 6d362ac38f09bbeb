//! Realtime tickets: a short-lived, HMAC-SHA256-signed statement of who may open the realtime
//! stream, so that a browser `EventSource` (which cannot send headers) never puts a session
//! token in a URL.
//!
//! A ticket is `<payload>.<tag>`, both URL-safe base64: the payload is JSON with the purpose
//! (`realtime`), the user id, email, tenant, roles and the expiry (Unix seconds); the tag is the
//! HMAC-SHA256 of the payload text, checked in constant time before the payload is read.
//!
//! A ticket opens one stream: its random nonce is remembered until the ticket expires, and a
//! second use is refused (a ticket copied from a log, a proxy or a browser history opens
//! nothing). The memory is this process's: on `n` instances a ticket opens at most `n` streams
//! within its minute. A client asks for a new ticket for every connection.

use crate::AuthError;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use workeros_core::{Subject, User};

/// The purpose every realtime ticket carries; a ticket for anything else is refused.
const PURPOSE: &str = "realtime";

/// The longest ticket accepted.
const MAX_TICKET_LEN: usize = 8 * 1024;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    p: String,
    u: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    e: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t: Option<String>,
    r: Vec<String>,
    x: i64,
    /// A random nonce: what makes the ticket single-use.
    #[serde(default)]
    n: String,
}

/// The most tickets remembered as used at once; past it (after the expired ones are
/// forgotten), tickets are refused until some expire.
const MAX_USED: usize = 100_000;

/// Issues and checks tickets with one key.
#[derive(Clone)]
pub(crate) struct Tickets {
    key: Vec<u8>,
    /// Nonces of tickets used, with their expiry (Unix seconds).
    used: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, i64>>>,
}

impl std::fmt::Debug for Tickets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tickets { key: <redacted> }")
    }
}

impl Tickets {
    pub(crate) fn new(key: Vec<u8>) -> Self {
        Self {
            key,
            used: std::sync::Arc::default(),
        }
    }

    /// Records `nonce` as used until `expires`; false when it was used already (or the memory
    /// is full of unexpired tickets).
    fn first_use(&self, nonce: &str, expires: i64, now: i64) -> bool {
        let Ok(mut used) = self.used.lock() else {
            return false;
        };
        if used.len() >= MAX_USED {
            used.retain(|_, x| *x > now);
            if used.len() >= MAX_USED {
                return false;
            }
        }
        if used.contains_key(nonce) {
            return false;
        }
        used.insert(nonce.to_owned(), expires);
        true
    }

    fn mac(&self) -> Result<Hmac<Sha256>, AuthError> {
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).map_err(AuthError::internal)
    }

    /// A ticket for `subject`, valid until `expires` (Unix seconds).
    pub(crate) fn issue(&self, subject: &Subject, expires: i64) -> Result<String, AuthError> {
        let user = subject.user.as_ref().ok_or(AuthError::Unauthorized)?;
        let claims = Claims {
            p: PURPOSE.into(),
            u: user.id.clone(),
            e: user.email.clone(),
            t: subject.tenant.clone(),
            r: user.roles.clone(),
            x: expires,
            n: URL_SAFE_NO_PAD.encode(crate::tokens::random_bytes(16)),
        };
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).map_err(AuthError::internal)?);
        let mut mac = self.mac()?;
        mac.update(payload.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        Ok(format!("{payload}.{tag}"))
    }

    /// The subject of `ticket` at `now` (Unix seconds): `Unauthorized` unless the tag is right,
    /// the purpose is realtime and it has not expired.
    pub(crate) fn verify(&self, ticket: &str, now: i64) -> Result<Subject, AuthError> {
        if ticket.len() > MAX_TICKET_LEN {
            return Err(AuthError::Unauthorized);
        }
        let (payload, tag) = ticket.split_once('.').ok_or(AuthError::Unauthorized)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| AuthError::Unauthorized)?;
        let mut mac = self.mac()?;
        mac.update(payload.as_bytes());
        // Constant time: `verify_slice` compares the whole tag whatever its first difference.
        mac.verify_slice(&tag)
            .map_err(|_| AuthError::Unauthorized)?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(AuthError::Unauthorized)?;
        if claims.p != PURPOSE || now >= claims.x || claims.n.is_empty() {
            return Err(AuthError::Unauthorized);
        }
        if !self.first_use(&claims.n, claims.x, now) {
            return Err(AuthError::Unauthorized);
        }
        let mut user = User::new(claims.u).with_roles(claims.r);
        user.email = claims.e;
        Ok(Subject {
            user: Some(user),
            tenant: claims.t,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use workeros_core::roles;

    fn subject() -> Subject {
        Subject::user(
            User::new("u1")
                .with_email("a@x.io")
                .with_roles([roles::ADMIN]),
        )
        .with_tenant("t1")
    }

    #[test]
    fn round_trip_expiry_and_tampering() {
        let t = Tickets::new(b"0123456789abcdef0123456789abcdef".to_vec());
        let ticket = t.issue(&subject(), 1_000).unwrap();
        let back = t.verify(&ticket, 999).unwrap();
        assert_eq!(back.user.as_ref().unwrap().id, "u1");
        assert!(t.verify(&ticket, 999).is_err(), "a ticket opens one stream");
        let ticket = t.issue(&subject(), 1_000).unwrap();
        assert_eq!(back.tenant.as_deref(), Some("t1"));
        assert!(back.is_admin());
        assert!(t.verify(&ticket, 1_000).is_err(), "expired at its instant");
        // Another key.
        let other = Tickets::new(b"another key another key another k".to_vec());
        assert!(other.verify(&ticket, 0).is_err());
        // A changed payload (other roles) with the old tag.
        let (_, tag) = ticket.split_once('.').unwrap();
        let claims = format!(
            r#"{{"p":"realtime","u":"u2","r":["{}"],"x":9999}}"#,
            roles::ADMIN
        );
        let forged = URL_SAFE_NO_PAD.encode(claims.as_bytes());
        assert!(t.verify(&format!("{forged}.{tag}"), 0).is_err());
        // Garbage.
        for bad in ["", ".", "a.b", "no-dot", &"x".repeat(9000)] {
            assert!(t.verify(bad, 0).is_err(), "{bad}");
        }
        // Another purpose, correctly signed, is refused.
        let other_purpose = URL_SAFE_NO_PAD.encode(br#"{"p":"download","u":"u1","r":[],"x":9999}"#);
        let mut mac = t.mac().unwrap();
        mac.update(other_purpose.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        assert!(t.verify(&format!("{other_purpose}.{tag}"), 0).is_err());
        // Anonymous subjects get no ticket.
        assert!(t.issue(&Subject::anonymous(), 1_000).is_err());
    }
}
