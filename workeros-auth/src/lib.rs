//! workeros-auth: identity. It answers "who is asking" with the [`Subject`](workeros_core::Subject)
//! every other workeros crate takes; a host with its own identity system can skip it.
//!
//! **Status: in progress (issue 4).** What is here: [`password`], Argon2id hashing with the OWASP
//! parameters, and [`AuthError`]. To come (see `spec/auth.md`): users (the first becomes
//! `admin`), sessions and API keys stored as hashes, the axum layer producing `Subject`,
//! organizations and invitations, external role sync, realtime tickets.
//!
//! ```
//! use workeros_auth::password::{hash_password, verify_password};
//! let stored = hash_password("correct horse battery")?;
//! assert!(verify_password("correct horse battery", &stored));
//! assert!(!verify_password("wrong", &stored));
//! # Ok::<(), workeros_auth::AuthError>(())
//! ```

pub mod password;

use workeros_core::ErrorCode;

/// Errors of workeros-auth. Messages are safe to show a client.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Input that is not acceptable (a short password, a malformed email).
    #[error("{0}")]
    Validation(String),
    /// Missing or invalid credentials.
    #[error("invalid credentials")]
    Unauthorized,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] workeros_store::StoreError),
    /// A fault of ours; details were logged.
    #[error("the request could not be completed")]
    Internal,
}

impl AuthError {
    /// The shared code of this error (and so its HTTP status).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Validation(_) => ErrorCode::Validation,
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::Store(e) => e.code(),
            Self::Internal => ErrorCode::Internal,
        }
    }
}
