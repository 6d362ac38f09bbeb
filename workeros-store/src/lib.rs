//! workeros-store: runtime-defined collections over PostgreSQL or SQLite, the items API and its
//! permission pipeline.
//!
//! **Status: in progress (issue 3).** What is here:
//!
//! - [`Db`], a sqlx pool for PostgreSQL or SQLite that knows its dialect (WAL, foreign keys and a
//!   busy timeout on SQLite), with write transactions ([`Tx`]);
//! - [`migrate`], which creates or upgrades the store's system tables (`collections`,
//!   `permissions`, `activity`, `revisions`, `item_ownership`, `events`), idempotent and safe
//!   when several processes start at once;
//! - [`StoreError`], mapped to the shared [`ErrorCode`](workeros_core::ErrorCode), with database
//!   errors classified (unique → conflict, foreign key and not-null → validation) and internals
//!   kept out of messages.
//!
//! - [`Store`] with the collections lifecycle: managed collections created with their table in one
//!   transaction, additive `apply_collection`, explicit `drop_field`, delete (drop for managed,
//!   archive for adopted), restore, and default permissions for owner-scoped collections.
//!
//! Still to come: the permissions API, the items API and its pipeline, activity and revision
//! queries, the event outbox, and the axum routers.
//!
//! ```no_run
//! # async fn demo() -> Result<(), workeros_store::StoreError> {
//! let db = workeros_store::Db::connect("sqlite://./.data/workeros.sqlite").await?;
//! workeros_store::migrate(&db).await?; // a second call applies nothing
//! assert!(workeros_store::migrate(&db).await?.is_empty());
//! # Ok(())
//! # }
//! ```
//!
//! It depends on `workeros-core` and `workeros-dsl` only.

mod collections;
mod db;
mod error;
#[cfg(feature = "axum")]
pub mod http;
mod migrate;
mod permissions;
mod value;

pub use collections::{
    CollectionInfo, CollectionPatch, CollectionStatus, DEFAULT_TENANT, NewCollection, storage_type,
};
pub use db::{Db, Rows, Tx};
pub use error::StoreError;
pub use migrate::migrate;
pub use permissions::{BUILT_IN_ROLES, FieldList, PermissionInfo, PermissionInput};

use std::sync::Arc;

/// The store: collections, permissions and items over one [`Db`]. Cloning is cheap and shares
/// everything. Every method takes the [`Subject`](workeros_core::Subject) who asks.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
}

impl Store {
    /// A store over `db` (run [`migrate`] first).
    pub fn new(db: Db) -> Self {
        Self {
            inner: Arc::new(Inner { db }),
        }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }
}
