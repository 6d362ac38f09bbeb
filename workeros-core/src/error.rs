//! The shared error vocabulary.

use serde::{Deserialize, Serialize};

/// The kind of every error that workeros reports, shared by all crates and mapped to one HTTP
/// status each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// Input that is well-formed but not acceptable (422).
    Validation,
    /// Input that could not be understood (400).
    BadRequest,
    /// No credentials, or credentials that are invalid (401).
    Unauthorized,
    /// The subject may not do this (403).
    Forbidden,
    /// Nothing there, or nothing the subject may see (404).
    NotFound,
    /// The change conflicts with existing state, such as a unique value (409).
    Conflict,
    /// Too many requests (429).
    RateLimited,
    /// A fault on our side; details go to the log, never to the client (500).
    Internal,
}

impl ErrorCode {
    /// The HTTP status code for this kind.
    pub const fn http_status(self) -> u16 {
        match self {
            Self::Validation => 422,
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::RateLimited => 429,
            Self::Internal => 500,
        }
    }

    /// The wire spelling, as in `{"error":{"code":"VALIDATION"}}`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Validation => "VALIDATION",
            Self::BadRequest => "BAD_REQUEST",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::Conflict => "CONFLICT",
            Self::RateLimited => "RATE_LIMITED",
            Self::Internal => "INTERNAL",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The HTTP error body: `{"error":{"code":"VALIDATION","message":"...","field":"...","at":"...","help":"..."}}`
/// (`field`, `at` and `help` only when known). Every crate answers with this shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorPayload,
}

/// The inside of an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorPayload {
    /// The kind.
    pub code: ErrorCode,
    /// A lowercase, user-facing message with user input in backticks. Never internals.
    pub message: String,
    /// The field the error is about, when there is one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub field: Option<String>,
    /// Where in the input the error is, when the input has places: `line:column` in a filter's
    /// text form, a JSON pointer (`/_and/0/status/_eq`) in its JSON form.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub at: Option<String>,
    /// What to do about it, when there is more to say than the message.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub help: Option<String>,
}

impl ErrorBody {
    /// A body for `code` with `message` and no field.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            error: ErrorPayload {
                code,
                message: message.into(),
                field: None,
                at: None,
                help: None,
            },
        }
    }

    /// The same body naming `field`.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.error.field = Some(field.into());
        self
    }

    /// The same body placing the error `at` a place in the input.
    pub fn with_at(mut self, at: impl Into<String>) -> Self {
        self.error.at = Some(at.into());
        self
    }

    /// The same body with `help`.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.error.help = Some(help.into());
        self
    }
}

/// Errors of this crate: values that fail validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// A collection slug that does not match `^[a-z][a-z0-9_]{0,47}$`.
    #[error("invalid collection slug `{0}`: use 1 to 48 of a-z, 0-9 and _, starting with a letter")]
    InvalidSlug(String),
    /// A field name that does not match `^[A-Za-z_][A-Za-z0-9_]{0,62}$`.
    #[error(
        "invalid field name `{0}`: use 1 to 63 of A-Z, a-z, 0-9 and _, not starting with a digit"
    )]
    InvalidFieldName(String),
    /// A field name that is reserved for a system column.
    #[error("field name `{0}` is reserved for a system field; choose another name")]
    ReservedFieldName(String),
    /// An unknown field type name.
    #[error(
        "unknown field type `{0}`: expected one of text, longtext, integer, number, boolean, json, timestamp, uuid, relation, relation_many"
    )]
    UnknownFieldType(String),
    /// An adapter (event sink, email sender) failed.
    #[error("{0}")]
    Adapter(String),
}

impl CoreError {
    /// The shared code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Adapter(_) => ErrorCode::Internal,
            _ => ErrorCode::Validation,
        }
    }
}
