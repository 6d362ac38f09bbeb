//! Shared types of workeros: field types, the field model, [`Subject`] with its tenant
//! ([`DEFAULT_TENANT`]) and the built-in [`roles`], [`Action`], [`Event`], the wire format of
//! instants ([`instant`]), the shared [`ErrorCode`] and error body, and the adapter traits
//! ([`EventSink`], [`EmailSender`]) through which lower crates hand work to higher ones. Every
//! word the crates share has its one owner here.
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
//! assert!(!alice.is_admin());
//! assert_eq!(alice.tenant_id(), "t1");
//! assert_eq!(Subject::anonymous().tenant_id(), workeros_core::DEFAULT_TENANT);
//! assert!(Subject::anonymous().is_anonymous());
//! assert_eq!(ErrorCode::Forbidden.http_status(), 403);
//! # Ok::<(), workeros_core::CoreError>(())
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod adapter;
mod error;
mod event;
mod ident;
pub mod instant;
mod model;
pub mod roles;
mod subject;

pub use adapter::{Email, EmailSender, EventSink};
pub use error::{CoreError, ErrorBody, ErrorCode, ErrorPayload};
pub use event::{Event, EventAction};
pub use ident::{FieldName, RESERVED_FIELD_NAMES, Slug};
pub use model::{Action, Field, FieldType};
pub use subject::{ClientAddr, DEFAULT_TENANT, Subject, User};
