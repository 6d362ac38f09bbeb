//! The store's error type, mapped to the shared [`ErrorCode`].

use workeros_core::{CoreError, ErrorBody, ErrorCode};

/// Everything that can go wrong in the store. The `Display` text is safe to show a client: it never
/// holds SQL, driver messages or other internals (those go to the log through [`tracing`]).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Input that is well-formed but not acceptable (a bad value, a rule that fails, a dangling
    /// relation).
    #[error("{message}")]
    Validation {
        /// The message, lowercase, user input in backticks.
        message: String,
        /// The field it is about, when there is one.
        field: Option<String>,
    },
    /// Input that could not be understood.
    #[error("{0}")]
    BadRequest(String),
    /// The subject may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Nothing there, or nothing the subject may see.
    #[error("{0}")]
    NotFound(String),
    /// The change conflicts with existing state (a unique value, an existing slug).
    #[error("{message}")]
    Conflict {
        /// The message.
        message: String,
        /// The field it is about, when known.
        field: Option<String>,
    },
    /// A validation error from the DSL (a filter, rule or preset that does not parse or check).
    #[error(transparent)]
    Dsl(#[from] workeros_dsl::DslError),
    /// A value that failed core validation (a slug, a field name, a field type).
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The database failed in a way the client cannot fix; the details were logged.
    #[error("the database could not complete the request")]
    Database(#[source] sqlx::Error),
    /// The configuration is unusable (a bad database URL, a folder that cannot be created).
    #[error("{0}")]
    Config(String),
    /// The database schema is missing, behind or ahead of this build, or a migration could not
    /// make an object: found at start-up, the message names the object, the versions and what
    /// to do (over HTTP only a generic message is shown).
    #[error("{0}")]
    Schema(String),
    /// A fault of ours (a statement that could not be built); the details were logged.
    #[error("the request could not be completed")]
    Internal,
}

impl StoreError {
    /// A validation error about `field`.
    pub fn validation(message: impl Into<String>, field: Option<&str>) -> Self {
        Self::Validation {
            message: message.into(),
            field: field.map(str::to_owned),
        }
    }

    /// An internal fault: logs `e`, reports nothing of it.
    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Self::Internal
    }

    /// The shared code of this error (and so its HTTP status).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Validation { .. } => ErrorCode::Validation,
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict { .. } => ErrorCode::Conflict,
            Self::Dsl(e) => e.code(),
            Self::Core(e) => e.code(),
            Self::Database(_) | Self::Config(_) | Self::Schema(_) | Self::Internal => {
                ErrorCode::Internal
            }
        }
    }

    /// The field the error is about, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Validation { field, .. } | Self::Conflict { field, .. } => field.as_deref(),
            Self::Dsl(e) => e.field(),
            _ => None,
        }
    }

    /// The HTTP error body for this error (a DSL error's place and help included as `at` and
    /// `help`).
    pub fn body(&self) -> ErrorBody {
        if let Self::Dsl(e) = self {
            return e.body();
        }
        if let Self::Schema(_) = self {
            // Table and schema names are for the operator's log, not for clients.
            return ErrorBody::new(
                self.code(),
                "the database schema does not fit this build; see the server log",
            );
        }
        let body = ErrorBody::new(self.code(), self.to_string());
        match self.field() {
            Some(f) => body.with_field(f),
            None => body,
        }
    }
}

/// What a database error means for the client, by SQLSTATE (PostgreSQL) or extended result code
/// (SQLite).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DbFault {
    /// A unique or exclusion constraint (PostgreSQL `23505`/`23P01`, SQLite `2067`/`1555`/`2579`).
    Unique,
    /// A foreign key (PostgreSQL `23503`, SQLite `787`).
    ForeignKey,
    /// A not-null or check constraint, or a value the column's type cannot hold (PostgreSQL
    /// `23502`/`23514`, `22001` too long, `22003` out of range, `22P02`/`22007`/`22008` bad text
    /// for the type, `P0001` a trigger's exception; SQLite `1299`/`275`/`3091`, `1811` a trigger's
    /// `RAISE`, `20` a type mismatch). Adopted tables have their own constraints and triggers.
    Constraint,
    /// Anything else.
    Other,
}

pub(crate) fn classify(e: &sqlx::Error) -> DbFault {
    let Some(db) = e.as_database_error() else {
        return DbFault::Other;
    };
    match db.code().as_deref() {
        Some("23505" | "23P01" | "2067" | "1555" | "2579") => DbFault::Unique,
        Some("23503" | "787") => DbFault::ForeignKey,
        Some(
            "23502" | "23514" | "22001" | "22003" | "22P02" | "22007" | "22008" | "P0001" | "1299"
            | "275" | "3091" | "1811" | "20",
        ) => DbFault::Constraint,
        _ => DbFault::Other,
    }
}

impl From<sqlx::Error> for StoreError {
    /// Classifies a database error: constraint violations become client errors with a safe
    /// message; anything else is logged and reported as internal.
    fn from(e: sqlx::Error) -> Self {
        match classify(&e) {
            DbFault::Unique => Self::Conflict {
                message: "a row with the same unique value already exists".into(),
                field: None,
            },
            DbFault::ForeignKey => {
                Self::validation("a related row does not exist or is still referenced", None)
            }
            DbFault::Constraint => Self::validation(
                "a value is missing, invalid or does not fit its column",
                None,
            ),
            DbFault::Other => {
                tracing::error!(error = %e, "database error");
                Self::Database(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internals_stay_out_of_messages() {
        let e = StoreError::from(sqlx::Error::Protocol("secret detail SELECT 1".into()));
        assert_eq!(e.code(), ErrorCode::Internal);
        assert!(!e.to_string().contains("secret"));
        assert!(!e.to_string().contains("SELECT"));
        let body = StoreError::validation("bad `x`", Some("x")).body();
        assert_eq!(body.error.code, ErrorCode::Validation);
        assert_eq!(body.error.field.as_deref(), Some("x"));
    }
}
