//! [`EventsError`], the crate's one error type, mapped to the shared error code and body.

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
    /// The request carries no credentials, and this needs some.
    #[error("sign in first")]
    Anonymous,
    /// The subject may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The webhook, delivery or flow does not exist (for this tenant).
    #[error("{0}")]
    NotFound(String),
    /// The thing is in a state that forbids this now.
    #[error("{0}")]
    Conflict(String),
    /// A field of the input is invalid: the message says which and how to fix it.
    #[error("{message}")]
    Invalid {
        /// The field (as the client named it).
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The process holds as much of this as it is configured for (realtime subscribers, flow
    /// runs at once).
    #[error("{0}")]
    Overloaded(&'static str),
    /// A fault of this process (logged; not shown over HTTP).
    #[error("internal error")]
    Internal(String),
    /// From the store (a collection that does not exist, a filter that does not check, …).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EventsError {
    /// A 422 naming `field`.
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        EventsError::Invalid {
            field,
            message: message.into(),
        }
    }

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
            EventsError::Unauthorized | EventsError::Anonymous => ErrorCode::Unauthorized,
            EventsError::NotFound(_) => ErrorCode::NotFound,
            EventsError::Conflict(_) => ErrorCode::Conflict,
            EventsError::Invalid { .. } => ErrorCode::Validation,
            EventsError::Forbidden(_) => ErrorCode::Forbidden,
            EventsError::Overloaded(_) => ErrorCode::RateLimited,
            EventsError::Internal(_) => ErrorCode::Internal,
            EventsError::Store(e) => e.code(),
        }
    }

    /// The error body sent over HTTP (a store error's own body, which hides internals).
    pub fn body(&self) -> ErrorBody {
        match self {
            EventsError::Store(e) => e.body(),
            EventsError::Invalid { field, message } => {
                ErrorBody::new(ErrorCode::Validation, message.clone()).with_field(*field)
            }
            other => ErrorBody::new(other.code(), other.to_string()),
        }
    }
}
