//! Shared types of workeros: field types, the collection/field/permission models, [`Subject`],
//! [`Action`], [`Event`], the shared [`ErrorCode`] and the adapter traits ([`EventSink`],
//! [`EmailSender`]) through which lower crates hand work to higher ones.
//!
//! This crate does no I/O and starts no runtime: it is types and validation only, so every other
//! workeros crate (and a host app) can depend on it cheaply.
//!
//! ```
//! use workeros_core::{ErrorCode, FieldName, FieldType, Subject, User};
//!
//! let name = FieldName::new("title")?;
//! assert_eq!(name.as_str(), "title");
//! assert!(FieldName::new("Robert'); DROP TABLE x;--").is_err());
//! assert_eq!("timestamp".parse::<FieldType>()?, FieldType::Timestamp);
//!
//! let alice = Subject::user(User::new("u1").with_roles(["editor"])).with_tenant("t1");
//! assert!(!alice.is_anonymous());
//! assert!(Subject::anonymous().is_anonymous());
//! assert_eq!(ErrorCode::Forbidden.http_status(), 403);
//! # Ok::<(), workeros_core::CoreError>(())
//! ```

mod adapter;
mod error;
mod event;
mod ident;
mod model;
mod subject;

pub use adapter::{Email, EmailSender, EventSink};
pub use error::{CoreError, ErrorBody, ErrorCode, ErrorPayload};
pub use event::{Event, EventAction};
pub use ident::{FieldName, RESERVED_FIELD_NAMES, Slug};
pub use model::{Action, Collection, Field, FieldType, Permission};
pub use subject::{Subject, User};
