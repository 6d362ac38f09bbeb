//! workeros-adopt: wrap tables that already exist as collections, without one DDL statement
//! against them.
//!
//! **Status: in progress (issue 5).** What is here: introspection of PostgreSQL (scoped to
//! `current_schema()`) and SQLite behind one trait ([`introspect::Introspector`]), the type
//! mapping, primary-key rules, reserved names and alias suggestions of the adopt contract
//! ([`types`]), and the wizard's first two steps: [`Adopt::tables`] and [`Adopt::inspect`]
//! (`GET /api/admin/adopt/tables`, `POST /api/admin/adopt/inspect` in [`http`]). To come: the
//! adopted branch of `POST /api/collections` and items on adopted tables (aliases, ownership side
//! table, relations), archive and restore through the store.
//!
//! Adoption is for the deployment's admins (the default tenant, or the bootstrap token): an
//! adopted table has no tenant column, so an organization's admin in org mode may not adopt.
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `axum` | yes | [`http`]: the wizard's routes |
//!
//! ```no_run
//! use workeros_adopt::Adopt;
//! use workeros_core::{Subject, User};
//! # async fn demo() -> Result<(), workeros_adopt::AdoptError> {
//! let db = workeros_store::Db::connect("sqlite://legacy.db").await?;
//! workeros_store::migrate(&db).await?;
//! let adopt = Adopt::new(workeros_store::Store::new(db));
//! let admin = Subject::user(User::new("admin").with_roles(["admin"]));
//! for t in adopt.tables(&admin).await? {
//!     let report = adopt.inspect(&admin, &t.name).await?;
//!     println!("{}: adoptable {} {:?}", report.table, report.adoptable, report.reason);
//! }
//! # Ok(()) }
//! ```

#[cfg(feature = "axum")]
pub mod http;
mod inspect;
pub mod introspect;
pub mod types;

pub use inspect::{
    AliasSuggestions, ColumnReport, ForeignKeyReport, Inspection, SYSTEM_TABLES, TableEntry,
    TargetCollection, is_managed_table,
};

use workeros_core::{ErrorBody, ErrorCode, Subject};
use workeros_store::{DEFAULT_TENANT, Store};

/// Errors of workeros-adopt. Messages are lowercase and safe to show a client.
#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    /// Input that is not acceptable.
    #[error("{0}")]
    Validation(String),
    /// No such table (or one that workeros owns).
    #[error("{0}")]
    NotFound(String),
    /// Not signed in.
    #[error("sign in as an admin to adopt tables")]
    Unauthorized,
    /// Not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// The store or the database failed.
    #[error(transparent)]
    Store(#[from] workeros_store::StoreError),
}

impl AdoptError {
    /// The shared code of this error (and so its HTTP status).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Validation(_) => ErrorCode::Validation,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::Store(e) => e.code(),
        }
    }

    /// The HTTP error body.
    pub fn body(&self) -> ErrorBody {
        match self {
            Self::Store(e) => e.body(),
            other => ErrorBody::new(other.code(), other.to_string()),
        }
    }
}

/// Refuses anyone but an admin of the default tenant: adopted tables have no tenant column, so
/// adopting one is a deployment-level decision.
pub(crate) fn require_deployment_admin(subject: &Subject) -> Result<(), AdoptError> {
    if subject.is_anonymous() {
        return Err(AdoptError::Unauthorized);
    }
    if !subject.has_role("admin") {
        return Err(AdoptError::Forbidden(
            "only an admin may adopt tables".into(),
        ));
    }
    if subject.tenant.as_deref().unwrap_or(DEFAULT_TENANT) != DEFAULT_TENANT {
        return Err(AdoptError::Forbidden(
            "adopting tables is for the deployment's admins, not an organization's: an adopted table has no tenant column"
                .into(),
        ));
    }
    Ok(())
}

/// The adopt wizard over a [`Store`]. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct Adopt {
    store: Store,
    hidden: Vec<String>,
}

impl Adopt {
    /// The wizard over `store`'s database.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            hidden: Vec::new(),
        }
    }

    /// The same, never offering `tables` (the host's own bookkeeping tables, say).
    pub fn with_hidden_tables<I, S>(mut self, tables: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.hidden.extend(tables.into_iter().map(Into::into));
        self
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Step 1: the tables that could be adopted (see [`TableEntry`]).
    pub async fn tables(&self, subject: &Subject) -> Result<Vec<TableEntry>, AdoptError> {
        inspect::tables(&self.store, subject, &self.hidden).await
    }

    /// Step 2: one table's columns, key, alias suggestions and foreign keys (see [`Inspection`]).
    pub async fn inspect(&self, subject: &Subject, table: &str) -> Result<Inspection, AdoptError> {
        inspect::inspect(&self.store, subject, &self.hidden, table).await
    }
}
