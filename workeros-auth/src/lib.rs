//! workeros-auth: identity. It answers "who is asking" with the [`Subject`](workeros_core::Subject)
//! every other workeros crate takes; a host with its own identity system can skip it.
//!
//! **Status: in progress (issue 4).** What is here: [`password`], Argon2id hashing with the OWASP
//! parameters; [`migrate`] for the auth tables; [`create_user`] (the first user becomes `admin`,
//! emails unique in any case); [`AuthError`]. To come (see `spec/auth.md`): sessions and API keys
//! stored as hashes, the axum layer producing `Subject`, routes, organizations and invitations,
//! external role sync, realtime tickets.
//!
//! ```
//! use workeros_auth::password::{hash_password, verify_password};
//! let stored = hash_password("correct horse battery")?;
//! assert!(verify_password("correct horse battery", &stored));
//! assert!(!verify_password("wrong", &stored));
//! # Ok::<(), workeros_auth::AuthError>(())
//! ```

pub mod password;
pub mod users;

pub use users::{UserInfo, UserStatus, create_user, migrate};

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
    /// The change conflicts with existing state (an email already in use).
    #[error("{0}")]
    Conflict(String),
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
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Store(e) => e.code(),
            Self::Internal => ErrorCode::Internal,
        }
    }
}
