//! workeros-store: runtime-defined collections over PostgreSQL or SQLite, the items API and its
//! permission pipeline.
//!
//! What is here:
//!
//! - [`Db`], a sqlx pool for PostgreSQL or SQLite (opened from a URL or the host's own) that
//!   knows its dialect and its [`Names`] (WAL, foreign keys and a busy timeout on SQLite), with
//!   transactions ([`Tx`]);
//! - a [`Namespace`] for everything workeros creates: a PostgreSQL schema (`workeros` by default)
//!   or, on SQLite, a table-name prefix (`workeros_`), so a host's own tables — `users`, `events`,
//!   `collections`, … — are never touched and can be adopted;
//! - [`migrate`], which creates or upgrades the store's system tables (`collections`,
//!   `permissions`, `activity`, `revisions`, `item_ownership`, `events`,
//!   `collection_adoptions`, `outbox_cursors`: the [`SCHEMA`] component) in the namespace,
//!   idempotent and safe when several processes start at once; for a host whose own migration
//!   tool owns DDL, [`migrate::export`] writes each version as SQL and [`migrate::check`] says at
//!   start-up, changing nothing, whether the schema is current (naming what is missing);
//! - [`Store`]: the collections lifecycle (managed tables created with their metadata in one
//!   transaction, additive `apply_collection`, explicit `drop_field`, delete — drop for managed,
//!   archive then purge for adopted — and restore, owner permissions seeded; adopted collections
//!   recorded by [`Store::create_adopted`], reached from `POST /api/collections` through an
//!   installed [`Adopter`]), the permissions API (every DSL
//!   part checked when saved), the items API and its permission pipeline (`list_items`,
//!   `get_item`, `create_items`, `update_item`, `delete_item`) with activity, revisions and the
//!   event outbox handed to registered [`EventSink`]s after commit, and
//!   the activity and revisions queries;
//! - [`StoreError`], mapped to the shared [`ErrorCode`](workeros_core::ErrorCode), with database
//!   errors classified (unique → conflict, foreign key and not-null → validation) and internals
//!   kept out of messages;
//! - [`http::router`] (feature `axum`, on by default), taking the
//!   [`Subject`](workeros_core::Subject) from a request extension.
//!
//! | feature | default | what it turns on |
//! |---|---|---|
//! | `axum` | yes | the `http` module |
//! | `postgres` | yes | the PostgreSQL driver, TLS through rustls ([`Db::from_pg_pool`]) |
//! | `sqlite` | yes | the SQLite driver, SQLite bundled ([`Db::from_sqlite_pool`]) |
//!
//! A SQLite-only host (`default-features = false, features = ["axum", "sqlite"]`) compiles no
//! PostgreSQL driver, and the reverse; a URL of a driver left out is a clear start-up error.
//!
//! ```no_run
//! use workeros_store::{Db, Namespace};
//! # async fn demo() -> Result<(), workeros_store::StoreError> {
//! let db = Db::connect("sqlite://./.data/workeros.sqlite").await?;
//! workeros_store::migrate(&db).await?; // a second call applies nothing
//! assert!(workeros_store::migrate(&db).await?.is_empty());
//! // SQLite: the prefix; PostgreSQL: the schema
//! assert_eq!(db.names().shown(workeros_store::SCHEMA.table("events").unwrap()), "workeros_events");
//!
//! // In a host's PostgreSQL database, everything of workeros in schema `cms`:
//! let pg = Db::connect_in("postgres://app@db/shop", Namespace::new("cms")?).await?;
//! workeros_store::migrate(&pg).await?;
//! # Ok(())
//! # }
//! ```
//!
//! It depends on `workeros-core` and `workeros-dsl` only.

#![cfg_attr(docsrs, feature(doc_cfg))]
// Without a driver (`--no-default-features`) the crate compiles for checking only: no `Db` can
// exist, so what would use the statements and rows is unused.
#![cfg_attr(
    not(any(feature = "postgres", feature = "sqlite")),
    allow(unused_variables, unused_imports, dead_code)
)]

mod access;
mod activity;
mod adoption;
mod catalog;
mod collections;
mod columns;
mod convert;
mod db;
mod ddl;
mod error;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod http;
mod items;
mod journal;
pub mod migrate;
mod names;
mod notices;
mod outbox;
mod permissions;
#[cfg(feature = "postgres")]
mod pg_tx;
mod query;
mod schema;
mod statements;
mod value;
mod views;
pub mod workers;
#[cfg(feature = "sqlite")]
mod writer;
mod writes;

/// Storage conventions, for crates that own tables: bound values (instants as `timestamptz` /
/// fixed-width text, uuids as `uuid` / hyphenated text, booleans as `boolean` / 0 or 1, JSON as
/// `jsonb` / text) and [`RowRef`](values::RowRef), which reads them back.
pub mod values {
    pub use crate::value::{
        Column, RowRef, bool_value, json_value, now, ts_null, ts_value, uuid_null, uuid_value,
    };
    #[doc(hidden)]
    pub use crate::value::{PgColumn, SqliteColumn};
}

pub use access::{AccessKey, ReadAccess, ReadRules};
pub use activity::{ActivityEntry, ActivityQuery, MAX_ACTIVITY_LIMIT, Revision};
pub use adoption::{AdoptedCollection, Adopter, already_adopted};
pub use catalog::{
    Adoption, AliasColumn, AliasRole, CollectionInfo, CollectionStatus, is_key_type,
};
pub use collections::{CollectionPatch, Deleted, MAX_COLLECTIONS, NewCollection};
#[doc(hidden)]
#[cfg(not(any(feature = "postgres", feature = "sqlite")))]
pub use db::SqlxBinder;
pub use db::{Db, DbPool, GroupCommits, NoDriver, Rows, Tx, Write};
pub use ddl::storage_type;
pub use error::StoreError;
pub use items::{DEFAULT_LIMIT, ItemsPage, ListQuery, MAX_LIMIT, MAX_SORT_KEYS, SortKey};
pub use names::{Names, Namespace, SystemTable};
pub use notices::{Listener, Notices};
pub use outbox::{OutboxClaim, OutboxConfig, event_depth, register_consumer, with_event_depth};
pub use permissions::{FieldList, PermissionInfo, PermissionInput};
pub use schema::{SCHEMA, migrate};
pub use writes::{NewItems, Written};

use std::sync::{Arc, RwLock};
use workeros_core::{Event, EventSink};

/// The store: collections, permissions and items over one [`Db`]. Cloning is cheap and shares
/// everything. Every method takes the [`Subject`](workeros_core::Subject) who asks.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    sinks: RwLock<Vec<Arc<dyn EventSink>>>,
    views: RwLock<std::collections::HashMap<(String, String), Arc<access::ReadView>>>,
    ttl: std::time::Duration,
    /// Bumped by every change to collections or permissions through this store.
    generation: std::sync::atomic::AtomicU64,
    /// What `POST /api/collections` with `adopted: true` goes to.
    adopter: RwLock<Option<Arc<dyn Adopter>>>,
    /// Hears the changes of every store over the same [`Db`] ([`views::VIEWS_TOPIC`]); kept
    /// here because the registry holds it weakly.
    _views_listener: notices::Listener,
}

/// How long a collection's metadata and read rules are reused before they are read again (changes
/// through the same [`Store`] apply at once; this bounds how long another process's change takes).
pub const DEFAULT_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("db", &self.inner.db)
            .field("sinks", &self.inner.sinks.read().map_or(0, |s| s.len()))
            .finish()
    }
}

impl Store {
    /// A store over `db` (run [`migrate`] first).
    pub fn new(db: Db) -> Self {
        Self::with_cache_ttl(db, DEFAULT_CACHE_TTL)
    }

    /// A store whose read cache keeps collection metadata and read rules for `ttl` (zero: read
    /// them on every request). Several processes sharing a database see each other's permission
    /// and collection changes within `ttl`.
    pub fn with_cache_ttl(db: Db, ttl: std::time::Duration) -> Self {
        let inner = Arc::new_cyclic(|me: &std::sync::Weak<Inner>| {
            let me = me.clone();
            let listener: notices::Listener = Arc::new(move |tenant: &str| {
                if let Some(inner) = me.upgrade() {
                    inner.forget_views(tenant);
                }
            });
            db.notices().subscribe(views::VIEWS_TOPIC, &listener);
            Inner {
                db,
                sinks: RwLock::new(Vec::new()),
                views: RwLock::new(std::collections::HashMap::new()),
                ttl,
                generation: std::sync::atomic::AtomicU64::new(0),
                adopter: RwLock::new(None),
                _views_listener: listener,
            }
        });
        Self { inner }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// Registers a sink: every committed write's events go to it, in commit order.
    pub fn add_sink(&self, sink: Arc<dyn EventSink>) {
        if let Ok(mut s) = self.inner.sinks.write() {
            s.push(sink);
        }
    }

    /// Hands committed events to every sink. A failing sink is logged; the write stands (the
    /// events stay in the outbox for consumers that read it).
    pub(crate) async fn deliver(&self, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        let sinks: Vec<Arc<dyn EventSink>> = self
            .inner
            .sinks
            .read()
            .map(|s| s.clone())
            .unwrap_or_default();
        for sink in sinks {
            if let Err(e) = sink.deliver(events).await {
                tracing::error!(error = %e, "an event sink failed");
            }
        }
    }
}
