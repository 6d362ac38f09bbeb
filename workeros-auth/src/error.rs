//! The error type of workeros-auth.

use workeros_core::{ErrorBody, ErrorCode};

/// Errors of workeros-auth. Messages are lowercase and safe to show a client; internals go to the
/// log.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Input that is not acceptable (a short password, a malformed email, an unknown role).
    #[error("{0}")]
    Validation(String),
    /// Input that could not be understood.
    #[error("{0}")]
    BadRequest(String),
    /// Missing or invalid credentials (the same message whatever was wrong, so that it tells an
    /// attacker nothing).
    #[error("invalid credentials")]
    Unauthorized,
    /// A one-time token (invitation, verification, reset) that is unknown, spent or expired.
    #[error("this link is invalid or has expired; ask for a new one")]
    InvalidToken,
    /// Signed in, but not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    /// Nothing there (or nothing the subject may see).
    #[error("{0}")]
    NotFound(String),
    /// The change conflicts with existing state (an email already in use, the last admin).
    #[error("{0}")]
    Conflict(String),
    /// Too many attempts; try again after `retry_after_secs`.
    #[error("too many attempts; try again in {retry_after_secs} seconds")]
    RateLimited {
        /// Seconds until the next attempt may succeed.
        retry_after_secs: u64,
    },
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
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::Unauthorized | Self::InvalidToken => ErrorCode::Unauthorized,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::Store(e) => e.code(),
            Self::Internal => ErrorCode::Internal,
        }
    }

    /// The HTTP error body.
    pub fn body(&self) -> ErrorBody {
        match self {
            Self::Store(e) => e.body(),
            other => ErrorBody::new(other.code(), other.to_string()),
        }
    }

    /// A fault of ours: logged with its detail, reported as [`AuthError::Internal`].
    pub(crate) fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "workeros-auth internal error");
        Self::Internal
    }

    /// The limiter said no for `retry_after_secs`.
    pub(crate) fn rate_limited(retry_after_secs: u64) -> Self {
        Self::RateLimited { retry_after_secs }
    }

    pub(crate) fn admin_only() -> Self {
        Self::Forbidden("only an admin may do this".into())
    }
}
