//! [`Error`]: why workeros could not be built or started, from whichever part failed.

use workeros_core::ErrorCode;

/// Why [`Builder::build`](crate::Builder::build) or [`Workeros::start`](crate::Workeros::start)
/// failed: the error of the part that failed, which names the object and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store: the database, its schema, the migrations.
    #[error(transparent)]
    Store(#[from] workeros_store::StoreError),
    /// Identity: its configuration or its schema.
    #[cfg(feature = "auth")]
    #[cfg_attr(docsrs, doc(cfg(feature = "auth")))]
    #[error(transparent)]
    Auth(#[from] workeros_auth::AuthError),
    /// The event engines: their schema or their start.
    #[cfg(feature = "events")]
    #[cfg_attr(docsrs, doc(cfg(feature = "events")))]
    #[error(transparent)]
    Events(#[from] workeros_events::EventsError),
}

impl Error {
    /// The shared error code of the part that failed.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Store(e) => e.code(),
            #[cfg(feature = "auth")]
            Error::Auth(e) => e.code(),
            #[cfg(feature = "events")]
            Error::Events(e) => e.code(),
        }
    }
}
