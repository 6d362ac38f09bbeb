//! The crate's error type.

use workeros_core::{ErrorBody, ErrorCode};
use workeros_store::StoreError;

/// What can go wrong in realtime, webhooks, flows and event functions.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// The request is malformed (an unknown event type, a bad `Last-Event-ID`).
    #[error("{0}")]
    BadRequest(String),
    /// A realtime ticket is invalid or expired.
    #[error("the realtime ticket is invalid or expired: request a new one")]
    Unauthorized,
    /// The subject may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The process holds as many subscribers as it is configured for.
    #[error("too many realtime subscribers: try again later")]
    Busy,
    /// A fault of this process (logged; not shown over HTTP).
    #[error("internal error")]
    Internal(String),
    /// From the store (a collection that does not exist, a filter that does not check, …).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EventsError {
    /// An internal fault, logged here with its detail.
    pub(crate) fn internal(detail: impl std::fmt::Display) -> Self {
        let detail = detail.to_string();
        tracing::error!(error = %detail, "workeros-events internal error");
        EventsError::Internal(detail)
    }

    /// The shared error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            EventsError::BadRequest(_) => ErrorCode::BadRequest,
            EventsError::Unauthorized => ErrorCode::Unauthorized,
            EventsError::Forbidden(_) => ErrorCode::Forbidden,
            EventsError::Busy => ErrorCode::RateLimited,
            EventsError::Internal(_) => ErrorCode::Internal,
            EventsError::Store(e) => e.code(),
        }
    }

    /// The error body sent over HTTP (a store error's own body, which hides internals).
    pub fn body(&self) -> ErrorBody {
        match self {
            EventsError::Store(e) => e.body(),
            other => ErrorBody::new(other.code(), other.to_string()),
        }
    }
}
