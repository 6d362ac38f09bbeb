//! workeros-adopt: wrap tables that already exist as collections, without one DDL statement
//! against them.
//!
//! The three steps of the wizard: [`Adopt::tables`] (`GET /api/admin/adopt/tables`),
//! [`Adopt::inspect`] (`POST /api/admin/adopt/inspect`) over introspection of PostgreSQL (scoped
//! to `current_schema()`) and SQLite behind one trait ([`introspect::Introspector`]) with the type
//! mapping, key rules, reserved names and alias suggestions of [`types`]; and [`Adopt::create`],
//! which the store's `POST /api/collections` takes for `adopted: true` once the host installs
//! [`Adopt::adopter`] with [`Store::set_adopter`]. Items on adopted collections then go through
//! the store's pipeline: the key is the table's primary key, `createdAt`/`updatedAt`/`ownerId`
//! may be aliases of the table's own columns, ownership lives in a column or in
//! `item_ownership`, and `DELETE /api/collections/:slug` archives (then purges the metadata)
//! without touching the table.
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
//! use workeros_core::{Subject, User, roles};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let db = workeros_store::Db::connect("sqlite://legacy.db").await?;
//! workeros_store::migrate(&db).await?;
//! let store = workeros_store::Store::new(db);
//! let adopt = Adopt::new(store.clone());
//! store.set_adopter(adopt.adopter()); // `POST /api/collections` takes `adopted: true`
//! let admin = Subject::user(User::new("ann").with_roles([roles::ADMIN]));
//! for t in adopt.tables(&admin).await? {
//!     let report = adopt.inspect(&admin, &t.name).await?;
//!     println!("{}: adoptable {} {:?}", report.table, report.adoptable, report.reason);
//! }
//! let req: workeros_adopt::AdoptRequest = serde_json::from_value(serde_json::json!({
//!     "adopted": true,
//!     "physicalTable": "legacy_orders",
//!     "slug": "orders",
//!     "ownerScoped": true,
//!     "createdAtColumn": "inserted_at",
//!     "ownerIdColumn": "user_id",
//!     "fields": [{"name": "total", "type": "number"}]
//! }))?;
//! let orders = adopt.create(&admin, req).await?;
//! assert!(orders.adopted);
//! # Ok(()) }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod create;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod http;
mod inspect;
pub mod introspect;
pub mod types;

pub use create::AdoptRequest;
pub use inspect::{
    AliasSuggestions, ColumnReport, ForeignKeyReport, Inspection, TableEntry, TargetCollection,
};

use workeros_core::{ErrorBody, ErrorCode, Subject};
use workeros_store::Store;

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

impl From<AdoptError> for workeros_store::StoreError {
    /// The store's form of an adopt error (the adopted branch of `POST /api/collections` answers
    /// through the store's router).
    fn from(e: AdoptError) -> Self {
        use workeros_store::StoreError as S;
        match e {
            AdoptError::Validation(m) => S::validation(m, None),
            AdoptError::NotFound(m) => S::NotFound(m),
            AdoptError::Unauthorized => S::Forbidden(AdoptError::Unauthorized.to_string()),
            AdoptError::Forbidden(m) => S::Forbidden(m),
            AdoptError::Store(e) => e,
        }
    }
}

/// Refuses anyone but an admin of the default tenant: adopted tables have no tenant column, so
/// adopting one is a deployment-level decision.
pub(crate) fn require_deployment_admin(subject: &Subject) -> Result<(), AdoptError> {
    if subject.is_anonymous() {
        return Err(AdoptError::Unauthorized);
    }
    if !subject.is_admin() {
        return Err(AdoptError::Forbidden(
            "only an admin may adopt tables".into(),
        ));
    }
    if subject.tenant_id() != workeros_core::DEFAULT_TENANT {
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
    hidden: std::sync::Arc<[String]>,
}

/// What the store calls for `POST /api/collections` with `adopted: true`.
struct Hook {
    hidden: std::sync::Arc<[String]>,
}

#[async_trait::async_trait]
impl workeros_store::Adopter for Hook {
    async fn adopt(
        &self,
        store: &Store,
        subject: &Subject,
        body: serde_json::Value,
    ) -> Result<workeros_store::CollectionInfo, workeros_store::StoreError> {
        let req: AdoptRequest = serde_json::from_value(body).map_err(|e| {
            workeros_store::StoreError::validation(
                format!("the request body is not valid: {e}"),
                None,
            )
        })?;
        create::adopt(store, subject, &self.hidden, req).await
    }
}

impl Adopt {
    /// The wizard over `store`'s database. For the store's `POST /api/collections` to take
    /// `adopted: true`, install its [`adopter`](Self::adopter) in the store:
    /// `store.set_adopter(adopt.adopter())`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            hidden: Vec::new().into(),
        }
    }

    /// What the store calls for `POST /api/collections` with `adopted: true`, for
    /// [`Store::set_adopter`]: step 3 of the wizard, with this wizard's hidden tables.
    pub fn adopter(&self) -> std::sync::Arc<dyn workeros_store::Adopter> {
        std::sync::Arc::new(Hook {
            hidden: self.hidden.clone(),
        })
    }

    /// The same, never offering `tables` (the host's own bookkeeping tables, say). Install its
    /// [`adopter`](Self::adopter) (again) for the store's route to hide them too.
    pub fn with_hidden_tables<I, S>(self, tables: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut hidden = self.hidden.to_vec();
        hidden.extend(tables.into_iter().map(Into::into));
        Self {
            store: self.store,
            hidden: hidden.into(),
        }
    }

    /// Step 3: adopts a table as a collection (the adopted branch of `POST /api/collections`):
    /// checked against the table (columns exist, types fit the fields and alias roles, the key
    /// is its single-column primary key, not adopted already), then recorded with no DDL.
    pub async fn create(
        &self,
        subject: &Subject,
        req: AdoptRequest,
    ) -> Result<workeros_store::CollectionInfo, AdoptError> {
        Ok(create::adopt(&self.store, subject, &self.hidden, req).await?)
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
