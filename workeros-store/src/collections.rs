//! Collections: metadata rows in `collections` over physical tables, with additive DDL for managed
//! ones. Every change is one transaction: the metadata, the DDL, the seeded permissions and the
//! activity row commit together or not at all.

use crate::migrate::{ColumnKind, col};
use crate::value::{RowRef, bool_value, json_value, now, ts_value, uuid_value};
use crate::{Store, StoreError, Tx};
use sea_query::{Alias, ColumnDef, Expr, ExprTrait, Index, Query, Table};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use workeros_core::instant::rfc3339;
use workeros_core::{Action, DEFAULT_TENANT, Field, FieldName, FieldType, Slug, Subject, roles};
use workeros_dsl::Dialect;

/// The 12 hex characters that name a tenant's managed tables: the first 12 of a UUID tenant id,
/// or of the SHA-256 of any other id.
pub(crate) fn tenant_prefix(tenant: &str) -> String {
    match uuid::Uuid::try_parse(tenant) {
        Ok(u) => u.simple().to_string().chars().take(12).collect(),
        Err(_) => Sha256::digest(tenant.as_bytes())
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect(),
    }
}

/// The answer to adopting `table` again while collection `slug` wraps it (`CONFLICT`).
pub fn already_adopted(table: &str, slug: &str) -> StoreError {
    StoreError::Conflict {
        message: format!(
            "table `{table}` is already adopted (as `{slug}`); delete that collection (its data stays) to adopt it again"
        ),
        field: Some("physicalTable".into()),
    }
}

/// The store's own tables (never adoptable; `workeros-adopt` also hides other crates' tables).
pub const STORE_TABLES: &[&str] = &[
    "workeros_migrations",
    "collections",
    "permissions",
    "activity",
    "revisions",
    "item_ownership",
    "events",
    "collection_adoptions",
    "outbox_cursors",
];

/// Whether `name` has the shape of a managed collection's table: `c_<12 lowercase hex>_…`.
pub fn is_managed_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() > 15
        && name.starts_with("c_")
        && b.get(2..14).is_some_and(|h| {
            h.iter()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
        })
        && b.get(14) == Some(&b'_')
}

/// The physical table of a managed collection: `c_<tenantPrefix12>_<slug>` (at most 63 bytes).
pub(crate) fn managed_table(tenant: &str, slug: &Slug) -> String {
    format!("c_{}_{}", tenant_prefix(tenant), slug.as_str())
}

/// Whether a collection is in use or archived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectionStatus {
    /// In use.
    Active,
    /// Archived (adopted collections only): hidden unless asked for, restorable.
    Archived,
}

impl CollectionStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Archived => "archived",
        }
    }
}

/// A collection as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectionInfo {
    /// The slug clients use in URLs.
    pub slug: Slug,
    /// The physical table.
    pub physical_table: String,
    /// Whether the table was adopted (no DDL ever runs against it).
    pub adopted: bool,
    /// Whether rows belong to their creator (`owner_id`).
    pub owner_scoped: bool,
    /// The user fields.
    pub fields: Vec<Field>,
    /// In use or archived.
    pub status: CollectionStatus,
    /// When it was archived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<String>,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When its metadata last changed (RFC 3339).
    pub updated_at: String,
    /// For an adopted collection: its key, alias columns and relation key types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adoption: Option<Adoption>,
}

impl CollectionInfo {
    /// The field that keys items (`id` for managed collections, the primary key column for
    /// adopted ones): the `:id` of `/api/items/:slug/:id` and the wire key of the key.
    pub fn key_field(&self) -> &str {
        self.adoption
            .as_ref()
            .map_or("id", |a| a.pk_column.as_str())
    }

    /// The type of the key: `uuid` for managed collections.
    pub fn key_type(&self) -> FieldType {
        self.adoption
            .as_ref()
            .map_or(FieldType::Uuid, |a| a.pk_type)
    }

    /// Whether items carry an owner (`ownerId`): owner-scoped, or adopted with an owner column.
    pub fn has_owner(&self) -> bool {
        self.owner_scoped || self.adoption.as_ref().is_some_and(|a| a.owner_id.is_some())
    }
}

/// A column of an adopted table that plays a system role (`createdAt`, `updatedAt`, `ownerId`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AliasColumn {
    /// The column, exactly as the table has it.
    pub column: String,
    /// Its field type: `timestamp` or `integer` (Unix milliseconds) for the times, `text`,
    /// `longtext` or `uuid` for the owner.
    #[serde(rename = "type")]
    pub field_type: FieldType,
}

/// What an adopted collection knows about its table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Adoption {
    /// The single-column primary key; also its field name (so it is a valid field name).
    pub pk_column: String,
    /// The key's type: `uuid`, `text`, `longtext` or `integer`.
    pub pk_type: FieldType,
    /// The column read as `createdAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<AliasColumn>,
    /// The column read as `updatedAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<AliasColumn>,
    /// The column read as `ownerId`; `None` with `ownerScoped` keeps owners in `item_ownership`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<AliasColumn>,
    /// The key type of each relation field's target (set by the store when the collection is
    /// created).
    #[serde(default)]
    pub relation_keys: std::collections::BTreeMap<String, FieldType>,
}

/// The system role an adopted column can play under its conventional name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasRole {
    /// `createdAt`.
    CreatedAt,
    /// `updatedAt`.
    UpdatedAt,
    /// `ownerId`.
    OwnerId,
}

impl AliasRole {
    /// Every role.
    pub const ALL: [AliasRole; 3] = [Self::CreatedAt, Self::UpdatedAt, Self::OwnerId];

    /// Whether a column of type `t` can play the role: instants are `timestamp` or `integer`
    /// (Unix milliseconds), owners `text`, `longtext` or `uuid`.
    pub fn accepts(self, t: FieldType) -> bool {
        match self {
            Self::CreatedAt | Self::UpdatedAt => {
                matches!(t, FieldType::Timestamp | FieldType::Integer)
            }
            Self::OwnerId => matches!(t, FieldType::Text | FieldType::Longtext | FieldType::Uuid),
        }
    }

    /// The types [`accepts`](Self::accepts) takes, in words.
    pub fn accepted(self) -> &'static str {
        match self {
            Self::CreatedAt | Self::UpdatedAt => "timestamp or integer",
            Self::OwnerId => "text, longtext or uuid",
        }
    }

    /// The request field that sets the alias (`createdAtColumn`…).
    pub fn request_field(self) -> &'static str {
        match self {
            Self::CreatedAt => "createdAtColumn",
            Self::UpdatedAt => "updatedAtColumn",
            Self::OwnerId => "ownerIdColumn",
        }
    }

    /// The reserved column name of the role (`created_at`…).
    pub fn reserved_name(self) -> &'static str {
        match self {
            Self::CreatedAt => "created_at",
            Self::UpdatedAt => "updated_at",
            Self::OwnerId => "owner_id",
        }
    }
}

impl Adoption {
    /// The alias columns with their roles.
    pub fn aliases(&self) -> impl Iterator<Item = (AliasRole, &AliasColumn)> {
        [
            (AliasRole::CreatedAt, self.created_at.as_ref()),
            (AliasRole::UpdatedAt, self.updated_at.as_ref()),
            (AliasRole::OwnerId, self.owner_id.as_ref()),
        ]
        .into_iter()
        .filter_map(|(role, c)| c.map(|c| (role, c)))
    }
}

/// Whether items can be keyed by `t` (`uuid`, `text`, `longtext`, `integer`).
pub fn is_key_type(t: FieldType) -> bool {
    matches!(
        t,
        FieldType::Uuid | FieldType::Text | FieldType::Longtext | FieldType::Integer
    )
}

/// An adopted collection as the store records it: the table's checks (columns exist, types fit,
/// the key is the table's primary key) are the adopter's (`workeros-adopt`); the store checks
/// everything it can without reading the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdoptedCollection {
    /// The slug.
    pub slug: Slug,
    /// The existing table, exactly as the database names it.
    pub physical_table: String,
    /// Whether rows belong to their creator (the `authenticated` role gets owner permissions).
    pub owner_scoped: bool,
    /// The fields, each on a column of the table (`column` when it differs from the name).
    pub fields: Vec<Field>,
    /// The key and alias columns (`relation_keys` is filled by the store).
    pub adoption: Adoption,
}

/// Something that validates and creates adopted collections for `POST /api/collections` with
/// `adopted: true` (`workeros-adopt` installs one with [`Store::set_adopter`]).
#[async_trait::async_trait]
pub trait Adopter: Send + Sync + 'static {
    /// Validates `body` against the table it names and creates the collection (usually with
    /// [`Store::create_adopted`]).
    async fn adopt(
        &self,
        store: &Store,
        subject: &Subject,
        body: serde_json::Value,
    ) -> Result<CollectionInfo, StoreError>;
}

/// What `DELETE /api/collections/:slug` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    /// A managed collection: its table, metadata, permissions and revisions are gone.
    Dropped,
    /// An adopted collection: archived, restorable, its table untouched.
    Archived,
    /// An archived adopted collection: its metadata is gone for good, its table untouched.
    Purged,
}

/// The body of `POST /api/collections` for a managed collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewCollection {
    /// The slug, `^[a-z][a-z0-9_]{0,47}$`.
    pub slug: Slug,
    /// `false` or absent for a managed collection (adopting existing tables is `workeros-adopt`).
    #[serde(default)]
    pub adopted: bool,
    /// Whether rows belong to their creator.
    #[serde(default)]
    pub owner_scoped: bool,
    /// The fields.
    #[serde(default)]
    pub fields: Vec<Field>,
}

/// The body of `PATCH /api/collections/:slug`: fields to add (additive only; a field that exists
/// with the same definition is left alone, one that differs is refused).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CollectionPatch {
    /// Fields the collection should have.
    #[serde(default)]
    pub fields: Vec<Field>,
}

/// Refuses anyone but an admin.
pub(crate) fn require_admin(subject: &Subject) -> Result<(), StoreError> {
    if subject.is_admin() {
        Ok(())
    } else {
        Err(StoreError::Forbidden(
            "only an admin may manage collections and permissions".into(),
        ))
    }
}

/// Checks user fields: names valid and not reserved, no duplicates, relations with a target. A
/// managed collection's names are lowercase and name no column; an adopted one's fields each sit
/// on their own column and are never `unique` (the table keeps its own constraints).
fn check_fields(fields: &[Field], adopted: bool) -> Result<(), StoreError> {
    let mut seen: Vec<&str> = Vec::new();
    let mut columns: Vec<&str> = Vec::new();
    for f in fields {
        let name = f.name.as_str();
        FieldName::new_user(name)?;
        if !adopted && !f.name.is_lowercase() {
            return Err(StoreError::validation(
                format!("field `{name}` of a managed collection must be lowercase (a-z, 0-9, _)"),
                Some(name),
            ));
        }
        if seen.contains(&name) {
            return Err(StoreError::validation(
                format!("field `{name}` is defined twice"),
                Some(name),
            ));
        }
        seen.push(name);
        let is_relation = matches!(f.field_type, FieldType::Relation | FieldType::RelationMany);
        if is_relation && f.to.is_none() {
            return Err(StoreError::validation(
                format!("relation field `{name}` needs `to`: the slug of its target collection"),
                Some(name),
            ));
        }
        if !is_relation && f.to.is_some() {
            return Err(StoreError::validation(
                format!("field `{name}` is not a relation and cannot have `to`"),
                Some(name),
            ));
        }
        if workeros_dsl::Ident::new(name).is_err() {
            return Err(StoreError::validation(
                format!(
                    "`{name}` is a word of the filter language and cannot name a field; name the field otherwise (adopted: set `column`)"
                ),
                Some(name),
            ));
        }
        if adopted {
            let column = f.column_name();
            if column.is_empty() || column.chars().any(char::is_control) {
                return Err(StoreError::validation(
                    format!("field `{name}` names a column workeros cannot handle safely"),
                    Some(name),
                ));
            }
            if columns.contains(&column) {
                return Err(StoreError::validation(
                    format!("column `{column}` is mapped by two fields; pick one"),
                    Some(name),
                ));
            }
            columns.push(column);
            if f.unique {
                return Err(StoreError::validation(
                    format!(
                        "field `{name}` of an adopted collection cannot be `unique`: uniqueness is the table's own constraint"
                    ),
                    Some(name),
                ));
            }
        } else if f.column.is_some() {
            return Err(StoreError::validation(
                format!("field `{name}` of a managed collection cannot name a column"),
                Some(name),
            ));
        }
        if f.unique && matches!(f.field_type, FieldType::Json | FieldType::RelationMany) {
            return Err(StoreError::validation(
                format!("field `{name}` of type {} cannot be unique", f.field_type),
                Some(name),
            ));
        }
    }
    Ok(())
}

/// The storage type of a user field (`spec/store.md`) in `d`. A relation holds the target's key, a
/// uuid for managed targets.
pub fn storage_type(t: FieldType, d: Dialect) -> &'static str {
    match (d, t) {
        (Dialect::Postgres, FieldType::Text) => "varchar(255)",
        (Dialect::Postgres, FieldType::Longtext) => "text",
        (Dialect::Postgres, FieldType::Integer) => "bigint",
        (Dialect::Postgres, FieldType::Number) => "double precision",
        (Dialect::Postgres, FieldType::Boolean) => "boolean",
        (Dialect::Postgres, FieldType::Json | FieldType::RelationMany) => "jsonb",
        (Dialect::Postgres, FieldType::Timestamp) => "timestamptz",
        (Dialect::Postgres, FieldType::Uuid | FieldType::Relation) => "uuid",
        (Dialect::Sqlite, FieldType::Integer | FieldType::Boolean) => "INTEGER",
        (Dialect::Sqlite, FieldType::Number) => "REAL",
        (Dialect::Sqlite, _) => "TEXT",
    }
}

fn field_column(f: &Field, d: Dialect) -> ColumnDef {
    let mut c = ColumnDef::new(Alias::new(f.name.as_str()));
    c.custom(Alias::new(storage_type(f.field_type, d)));
    c
}

/// The name of the unique index of `table.field`: short and deterministic whatever the lengths.
fn unique_index_name(table: &str, field: &str) -> String {
    let h = Sha256::digest(format!("{table}.{field}").as_bytes());
    let hex: String = h.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("uq_{hex}")
}

fn unique_index(table: &str, field: &str) -> sea_query::IndexCreateStatement {
    Index::create()
        .name(unique_index_name(table, field))
        .table(Alias::new(table))
        .col(Alias::new(field))
        .unique()
        .to_owned()
}

/// The `CREATE TABLE` of a managed collection.
fn create_table(
    table: &str,
    owner_scoped: bool,
    fields: &[Field],
    d: Dialect,
) -> sea_query::TableCreateStatement {
    let mut t = Table::create();
    t.table(Alias::new(table))
        .col(col("id", ColumnKind::Uuid, d).not_null().primary_key())
        .col(col("tenant_id", ColumnKind::Text, d).not_null())
        .col(col("created_at", ColumnKind::Ts, d).not_null())
        .col(col("updated_at", ColumnKind::Ts, d).not_null());
    if owner_scoped {
        t.col(col("owner_id", ColumnKind::Text, d));
    }
    for f in fields {
        t.col(field_column(f, d));
    }
    t
}

const COLUMNS: [&str; 11] = [
    "id",
    "slug",
    "physical_table",
    "adopted",
    "owner_scoped",
    "fields",
    "status",
    "archived_at",
    "created_at",
    "updated_at",
    "tenant_id",
];

/// The columns of `collection_adoptions` read with a collection (none share a name with
/// `collections`).
const ADOPTION_COLUMNS: [&str; 9] = [
    "pk_column",
    "pk_type",
    "created_at_column",
    "created_at_type",
    "updated_at_column",
    "updated_at_type",
    "owner_id_column",
    "owner_id_type",
    "relation_keys",
];

fn alias_of(r: RowRef<'_>, column: &str, ty: &str) -> Result<Option<AliasColumn>, StoreError> {
    let (Some(column), Some(ty)) = (r.text(column)?, r.text(ty)?) else {
        return Ok(None);
    };
    Ok(Some(AliasColumn {
        column,
        field_type: ty.parse()?,
    }))
}

fn adoption_of(r: RowRef<'_>) -> Result<Option<Adoption>, StoreError> {
    let (Some(pk_column), Some(pk_type)) = (r.text("pk_column")?, r.text("pk_type")?) else {
        return Ok(None);
    };
    let relation_keys = match r.json("relation_keys")? {
        Some(v) => serde_json::from_value(v).map_err(StoreError::internal)?,
        None => Default::default(),
    };
    Ok(Some(Adoption {
        pk_column,
        pk_type: pk_type.parse()?,
        created_at: alias_of(r, "created_at_column", "created_at_type")?,
        updated_at: alias_of(r, "updated_at_column", "updated_at_type")?,
        owner_id: alias_of(r, "owner_id_column", "owner_id_type")?,
        relation_keys,
    }))
}

fn info_of(r: RowRef<'_>) -> Result<CollectionInfo, StoreError> {
    let missing = || StoreError::internal("a collections row lacks a required column");
    let fields: Vec<Field> = serde_json::from_value(r.json("fields")?.ok_or_else(missing)?)
        .map_err(StoreError::internal)?;
    let status = match r.text("status")?.as_deref() {
        Some("archived") => CollectionStatus::Archived,
        _ => CollectionStatus::Active,
    };
    let adopted = r.boolean("adopted")?.unwrap_or(false);
    let adoption = if adopted { adoption_of(r)? } else { None };
    if adopted && adoption.is_none() {
        return Err(StoreError::internal(
            "an adopted collection lacks its collection_adoptions row",
        ));
    }
    Ok(CollectionInfo {
        slug: Slug::new(r.text("slug")?.ok_or_else(missing)?)?,
        physical_table: r.text("physical_table")?.ok_or_else(missing)?,
        adopted,
        owner_scoped: r.boolean("owner_scoped")?.unwrap_or(false),
        fields,
        status,
        archived_at: r.ts("archived_at")?.map(rfc3339),
        created_at: r.ts("created_at")?.map(rfc3339).unwrap_or_default(),
        updated_at: r.ts("updated_at")?.map(rfc3339).unwrap_or_default(),
        adoption,
    })
}

fn select_collections(tenant: &str) -> sea_query::SelectStatement {
    let c = || Alias::new("collections");
    let a = || Alias::new("collection_adoptions");
    let mut q = Query::select();
    q.columns(COLUMNS.map(|n| (c(), Alias::new(n))))
        .columns(ADOPTION_COLUMNS.map(|n| (a(), Alias::new(n))))
        .from(c())
        .left_join(
            a(),
            Expr::col((a(), Alias::new("collection_id"))).equals((c(), Alias::new("id"))),
        )
        .and_where(Expr::col((c(), Alias::new("tenant_id"))).eq(tenant))
        .order_by((c(), Alias::new("slug")), sea_query::Order::Asc);
    q
}

/// `collections.slug = slug`, for [`select_collections`].
fn slug_is(slug: &str) -> sea_query::SimpleExpr {
    Expr::col((Alias::new("collections"), Alias::new("slug"))).eq(slug)
}

/// Reads one collection's metadata in a transaction (archived ones included).
pub(crate) async fn load_in(
    tx: &mut Tx,
    tenant: &str,
    slug: &str,
) -> Result<Option<CollectionInfo>, StoreError> {
    let rows = tx
        .fetch_all(select_collections(tenant).and_where(slug_is(slug)))
        .await?;
    rows.iter().next().map(info_of).transpose()
}

/// Reads an active collection in a transaction; archived or missing is 404.
pub(crate) async fn load_active(
    tx: &mut Tx,
    tenant: &str,
    slug: &str,
) -> Result<CollectionInfo, StoreError> {
    load_in(tx, tenant, slug)
        .await?
        .filter(|i| i.status == CollectionStatus::Active)
        .ok_or_else(|| not_found(slug))
}

fn not_found(slug: &str) -> StoreError {
    StoreError::NotFound(format!("collection `{slug}` not found"))
}

/// An activity row inside the write's transaction.
pub(crate) async fn record_activity(
    tx: &mut Tx,
    subject: &Subject,
    action: &str,
    collection: Option<&str>,
    item: Option<&str>,
) -> Result<uuid::Uuid, StoreError> {
    let d = tx.dialect();
    let id = uuid::Uuid::now_v7();
    tx.execute(
        Query::insert()
            .into_table(Alias::new("activity"))
            .columns(
                [
                    "id",
                    "tenant_id",
                    "actor",
                    "action",
                    "collection",
                    "item_id",
                    "created_at",
                ]
                .map(Alias::new),
            )
            .values([
                Expr::val(uuid_value(id, d)),
                Expr::val(subject.tenant_id()),
                Expr::val(subject.user.as_ref().map(|u| u.id.clone())),
                Expr::val(action),
                Expr::val(collection.map(str::to_owned)),
                Expr::val(item.map(str::to_owned)),
                Expr::val(ts_value(now(), d)),
            ])
            .map_err(StoreError::internal)?,
    )
    .await?;
    Ok(id)
}

/// Inserts a permission row (seeding and the permissions API share it).
pub(crate) async fn insert_permission(
    tx: &mut Tx,
    tenant: &str,
    role: &str,
    collection: &str,
    action: Action,
    filter: Option<&serde_json::Value>,
) -> Result<(), StoreError> {
    let d = tx.dialect();
    let t = ts_value(now(), d);
    tx.execute(
        Query::insert()
            .into_table(Alias::new("permissions"))
            .columns(
                [
                    "id",
                    "tenant_id",
                    "role",
                    "collection",
                    "action",
                    "filter",
                    "created_at",
                    "updated_at",
                ]
                .map(Alias::new),
            )
            .values([
                Expr::val(uuid_value(uuid::Uuid::now_v7(), d)),
                Expr::val(tenant),
                Expr::val(role),
                Expr::val(collection),
                Expr::val(action.as_str()),
                Expr::val(json_value(filter, d)),
                Expr::val(t.clone()),
                Expr::val(t),
            ])
            .map_err(StoreError::internal)?,
    )
    .await?;
    Ok(())
}

impl Store {
    /// Ends a collection change: its activity row, the collection as it now is, the commit, and
    /// the tenant's cached read views forgotten.
    async fn commit_change(
        &self,
        mut tx: Tx,
        subject: &Subject,
        action: &str,
        slug: &str,
        item: Option<&str>,
    ) -> Result<CollectionInfo, StoreError> {
        let tenant = subject.tenant_id();
        record_activity(&mut tx, subject, action, Some(slug), item).await?;
        let info = load_in(&mut tx, tenant, slug)
            .await?
            .ok_or_else(|| not_found(slug))?;
        tx.commit().await?;
        self.forget(tenant);
        Ok(info)
    }

    /// Creates a managed collection (`POST /api/collections`): the metadata row, the table (`id`
    /// uuid, `tenant_id`, `created_at`, `updated_at`, `owner_id` when owner-scoped, then the
    /// fields), unique indexes, and for an owner-scoped collection the `authenticated` role's
    /// create/read/update/delete permissions with `owner_id = $user.id`, in one transaction.
    pub async fn create_collection(
        &self,
        subject: &Subject,
        new: NewCollection,
    ) -> Result<CollectionInfo, StoreError> {
        require_admin(subject)?;
        if new.adopted {
            return Err(StoreError::validation(
                "adopting an existing table needs workeros-adopt; this endpoint creates managed collections",
                Some("adopted"),
            ));
        }
        check_fields(&new.fields, false)?;
        let tenant = subject.tenant_id();
        let slug = new.slug.as_str();
        let table = managed_table(tenant, &new.slug);
        let mut tx = self.db().begin().await?;
        let d = tx.dialect();
        if load_in(&mut tx, tenant, slug).await?.is_some() {
            return Err(StoreError::Conflict {
                message: format!("collection `{slug}` already exists"),
                field: Some("slug".into()),
            });
        }
        for f in &new.fields {
            check_relation_target(&mut tx, tenant, f, slug, FieldType::Uuid, false).await?;
        }
        insert_collection(
            &mut tx,
            tenant,
            &new.slug,
            &table,
            false,
            new.owner_scoped,
            &new.fields,
        )
        .await?;
        tx.ddl(&create_table(&table, new.owner_scoped, &new.fields, d))
            .await
            .map_err(|e| ddl_error(e, slug))?;
        for f in new.fields.iter().filter(|f| f.unique) {
            tx.ddl(&unique_index(&table, f.name.as_str()))
                .await
                .map_err(|e| ddl_error(e, slug))?;
        }
        if new.owner_scoped {
            seed_owner_permissions(&mut tx, tenant, slug).await?;
        }
        self.commit_change(tx, subject, "collection.create", slug, None)
            .await
    }

    /// Creates a collection from a `POST /api/collections` body: `adopted: true` goes to the
    /// installed [`Adopter`] (422 when there is none), anything else is a [`NewCollection`].
    pub async fn create_collection_json(
        &self,
        subject: &Subject,
        body: serde_json::Value,
    ) -> Result<CollectionInfo, StoreError> {
        if body.get("adopted") == Some(&serde_json::Value::Bool(true)) {
            require_admin(subject)?;
            let adopter = self.adopter().ok_or_else(|| {
                StoreError::validation(
                    "adopting an existing table needs workeros-adopt: install it with `Adopt::new(store)`",
                    Some("adopted"),
                )
            })?;
            return adopter.adopt(self, subject, body).await;
        }
        let new: NewCollection = serde_json::from_value(body).map_err(|e| {
            StoreError::validation(format!("the request body is not valid: {e}"), None)
        })?;
        self.create_collection(subject, new).await
    }

    /// Records an adopted collection (the adopted branch of `POST /api/collections`): the
    /// metadata row and its `collection_adoptions` row, and for an owner-scoped collection the
    /// `authenticated` role's owner permissions, in one transaction, without one DDL statement.
    /// Only the default tenant's admins adopt (an adopted table has no tenant column). The store
    /// checks names, roles and relation targets; that the columns exist with fitting types is
    /// the caller's to check (`workeros-adopt` does).
    pub async fn create_adopted(
        &self,
        subject: &Subject,
        new: AdoptedCollection,
    ) -> Result<CollectionInfo, StoreError> {
        require_admin(subject)?;
        let tenant = subject.tenant_id();
        if tenant != DEFAULT_TENANT {
            return Err(StoreError::Forbidden(
                "only the deployment's admins adopt tables: an adopted table is shared by every organization"
                    .into(),
            ));
        }
        let slug = new.slug.as_str();
        let table = new.physical_table.as_str();
        if STORE_TABLES.contains(&table) || is_managed_name(table) {
            return Err(StoreError::validation(
                format!("table `{table}` belongs to workeros and cannot be adopted"),
                Some("physicalTable"),
            ));
        }
        if table.is_empty() || table.chars().any(char::is_control) {
            return Err(StoreError::validation(
                "`physicalTable` names a table workeros cannot handle safely",
                Some("physicalTable"),
            ));
        }
        check_adoption(&new)?;
        check_fields(&new.fields, true)?;
        let mut tx = self.db().begin().await?;
        let d = tx.dialect();
        let existing = tx
            .fetch_all(
                Query::select()
                    .columns(["slug", "physical_table"].map(Alias::new))
                    .from(Alias::new("collections"))
                    .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                    .and_where(
                        Expr::col(Alias::new("slug"))
                            .eq(slug)
                            .or(Expr::col(Alias::new("physical_table")).eq(table)),
                    ),
            )
            .await?;
        let mut taken_by = None;
        for r in existing.iter() {
            let other = r.text("slug")?.unwrap_or_default();
            if other == slug {
                return Err(StoreError::Conflict {
                    message: format!("collection `{slug}` already exists"),
                    field: Some("slug".into()),
                });
            }
            taken_by = Some(other);
        }
        if let Some(other) = taken_by {
            return Err(already_adopted(table, &other));
        }
        let mut adoption = new.adoption.clone();
        adoption.relation_keys.clear();
        for f in &new.fields {
            if let Some(key) =
                check_relation_target(&mut tx, tenant, f, slug, adoption.pk_type, true).await?
            {
                adoption
                    .relation_keys
                    .insert(f.name.as_str().to_owned(), key);
            }
        }
        let id = insert_collection(
            &mut tx,
            tenant,
            &new.slug,
            table,
            true,
            new.owner_scoped,
            &new.fields,
        )
        .await?;
        let alias = |a: &Option<AliasColumn>| {
            (
                a.as_ref().map(|a| a.column.clone()),
                a.as_ref().map(|a| a.field_type.as_str().to_owned()),
            )
        };
        let (ca, ct) = alias(&adoption.created_at);
        let (ua, ut) = alias(&adoption.updated_at);
        let (oa, ot) = alias(&adoption.owner_id);
        let keys = serde_json::to_value(&adoption.relation_keys).map_err(StoreError::internal)?;
        let mut columns = vec!["collection_id", "pk_column", "pk_type"];
        columns.extend(ADOPTION_COLUMNS.iter().skip(2).copied());
        tx.execute(
            Query::insert()
                .into_table(Alias::new("collection_adoptions"))
                .columns(columns.into_iter().map(Alias::new))
                .values([
                    Expr::val(uuid_value(id, d)),
                    Expr::val(adoption.pk_column.as_str()),
                    Expr::val(adoption.pk_type.as_str()),
                    Expr::val(ca),
                    Expr::val(ct),
                    Expr::val(ua),
                    Expr::val(ut),
                    Expr::val(oa),
                    Expr::val(ot),
                    Expr::val(json_value(Some(&keys), d)),
                ])
                .map_err(StoreError::internal)?,
        )
        .await?;
        if new.owner_scoped {
            seed_owner_permissions(&mut tx, tenant, slug).await?;
        }
        self.commit_change(tx, subject, "collection.adopt", slug, None)
            .await
    }

    /// The adopter installed for `adopted: true` bodies, if any.
    fn adopter(&self) -> Option<std::sync::Arc<dyn Adopter>> {
        self.inner.adopter.read().ok().and_then(|a| a.clone())
    }

    /// Installs the [`Adopter`] that `POST /api/collections` with `adopted: true` uses
    /// (`workeros-adopt` calls this); replaces any earlier one.
    pub fn set_adopter(&self, adopter: std::sync::Arc<dyn Adopter>) {
        if let Ok(mut slot) = self.inner.adopter.write() {
            *slot = Some(adopter);
        }
    }

    /// The collections of the subject's tenant (`GET /api/collections`), archived ones only when
    /// asked for.
    pub async fn list_collections(
        &self,
        subject: &Subject,
        include_archived: bool,
    ) -> Result<Vec<CollectionInfo>, StoreError> {
        require_admin(subject)?;
        let rows = self
            .db()
            .fetch_all(&select_collections(subject.tenant_id()))
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows.iter() {
            let info = info_of(r)?;
            if include_archived || info.status == CollectionStatus::Active {
                out.push(info);
            }
        }
        Ok(out)
    }

    /// One collection (`GET /api/collections/:slug`); an archived one is 404 unless asked for.
    pub async fn get_collection(
        &self,
        subject: &Subject,
        slug: &str,
        include_archived: bool,
    ) -> Result<CollectionInfo, StoreError> {
        require_admin(subject)?;
        let rows = self
            .db()
            .fetch_all(select_collections(subject.tenant_id()).and_where(slug_is(slug)))
            .await?;
        match rows.iter().next().map(info_of).transpose()? {
            Some(info) if include_archived || info.status == CollectionStatus::Active => Ok(info),
            _ => Err(not_found(slug)),
        }
    }

    /// Adds fields (`PATCH /api/collections/:slug`, applyCollection): additive only. A field that
    /// already exists with the same definition is left alone; one that differs is refused, never
    /// altered. Adopted collections get metadata only, never DDL.
    pub async fn apply_collection(
        &self,
        subject: &Subject,
        slug: &str,
        patch: CollectionPatch,
    ) -> Result<CollectionInfo, StoreError> {
        require_admin(subject)?;
        let tenant = subject.tenant_id();
        let mut tx = self.db().begin().await?;
        let d = tx.dialect();
        let info = load_active(&mut tx, tenant, slug).await?;
        if info.adopted {
            return Err(StoreError::validation(
                format!("collection `{slug}` is adopted: its fields change through workeros-adopt"),
                None,
            ));
        }
        let mut added = Vec::new();
        for f in patch.fields {
            match info.fields.iter().find(|e| e.name == f.name) {
                Some(existing) if *existing == f => {}
                Some(_) => {
                    return Err(StoreError::validation(
                        format!(
                            "field `{}` exists with another definition; fields are never altered (drop it and add it again)",
                            f.name.as_str()
                        ),
                        Some(f.name.as_str()),
                    ));
                }
                None => added.push(f),
            }
        }
        let mut all = info.fields.clone();
        all.extend(added.iter().cloned());
        check_fields(&all, false)?;
        if added.is_empty() {
            return Ok(info);
        }
        for f in &added {
            check_relation_target(&mut tx, tenant, f, slug, FieldType::Uuid, false).await?;
            tx.ddl(
                Table::alter()
                    .table(Alias::new(info.physical_table.as_str()))
                    .add_column(field_column(f, d)),
            )
            .await
            .map_err(|e| ddl_error(e, slug))?;
            if f.unique {
                tx.ddl(&unique_index(&info.physical_table, f.name.as_str()))
                    .await
                    .map_err(|e| ddl_error(e, slug))?;
            }
        }
        update_fields(&mut tx, tenant, slug, &all).await?;
        self.commit_change(tx, subject, "collection.update", slug, None)
            .await
    }

    /// Drops a field of a managed collection (`DELETE /api/collections/:slug/fields/:field`):
    /// the column (and its unique index) go, and the removal is recorded in activity.
    pub async fn drop_field(
        &self,
        subject: &Subject,
        slug: &str,
        field: &str,
    ) -> Result<CollectionInfo, StoreError> {
        require_admin(subject)?;
        let tenant = subject.tenant_id();
        let mut tx = self.db().begin().await?;
        let info = load_active(&mut tx, tenant, slug).await?;
        if info.adopted {
            return Err(StoreError::validation(
                format!("collection `{slug}` is adopted: workeros never drops its columns"),
                None,
            ));
        }
        let Some(f) = info.fields.iter().find(|f| f.name.as_str() == field) else {
            return Err(StoreError::NotFound(format!(
                "field `{field}` not found in collection `{slug}`"
            )));
        };
        if f.unique {
            tx.ddl(
                Index::drop()
                    .name(unique_index_name(&info.physical_table, field))
                    .table(Alias::new(info.physical_table.as_str())),
            )
            .await
            .map_err(|e| ddl_error(e, slug))?;
        }
        tx.ddl(
            Table::alter()
                .table(Alias::new(info.physical_table.as_str()))
                .drop_column(Alias::new(field)),
        )
        .await
        .map_err(|e| ddl_error(e, slug))?;
        let rest: Vec<Field> = info
            .fields
            .iter()
            .filter(|f| f.name.as_str() != field)
            .cloned()
            .collect();
        update_fields(&mut tx, tenant, slug, &rest).await?;
        crate::permissions::forget_field(&mut tx, tenant, slug, field).await?;
        self.commit_change(tx, subject, "collection.drop_field", slug, Some(field))
            .await
    }

    /// Deletes a collection (`DELETE /api/collections/:slug`): a managed one loses its table, its
    /// metadata, its permissions and revisions; an adopted one is archived, its table untouched;
    /// an archived one loses its metadata for good (the table still untouched).
    pub async fn delete_collection(
        &self,
        subject: &Subject,
        slug: &str,
    ) -> Result<Deleted, StoreError> {
        require_admin(subject)?;
        let tenant = subject.tenant_id();
        let mut tx = self.db().begin().await?;
        let d = tx.dialect();
        let info = load_in(&mut tx, tenant, slug)
            .await?
            .ok_or_else(|| not_found(slug))?;
        let done = match (info.adopted, info.status) {
            (true, CollectionStatus::Active) => {
                let t = ts_value(now(), d);
                tx.execute(
                    Query::update()
                        .table(Alias::new("collections"))
                        .value(Alias::new("status"), CollectionStatus::Archived.as_str())
                        .value(Alias::new("archived_at"), t.clone())
                        .value(Alias::new("updated_at"), t)
                        .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                        .and_where(Expr::col(Alias::new("slug")).eq(slug)),
                )
                .await?;
                record_activity(&mut tx, subject, "collection.archive", Some(slug), None).await?;
                Deleted::Archived
            }
            (false, CollectionStatus::Archived) => return Err(not_found(slug)),
            (adopted, _) => {
                if adopted {
                    tx.execute(
                        Query::delete()
                            .from_table(Alias::new("collection_adoptions"))
                            .and_where(
                                Expr::col(Alias::new("collection_id")).in_subquery(
                                    Query::select()
                                        .column(Alias::new("id"))
                                        .from(Alias::new("collections"))
                                        .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                                        .and_where(Expr::col(Alias::new("slug")).eq(slug))
                                        .to_owned(),
                                ),
                            ),
                    )
                    .await?;
                } else {
                    tx.ddl(Table::drop().table(Alias::new(info.physical_table.as_str())))
                        .await
                        .map_err(|e| ddl_error(e, slug))?;
                }
                for table in ["collections", "permissions", "revisions", "item_ownership"] {
                    let column = if table == "collections" {
                        "slug"
                    } else {
                        "collection"
                    };
                    tx.execute(
                        Query::delete()
                            .from_table(Alias::new(table))
                            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                            .and_where(Expr::col(Alias::new(column)).eq(slug)),
                    )
                    .await?;
                }
                let (action, done) = if adopted {
                    ("collection.purge", Deleted::Purged)
                } else {
                    ("collection.delete", Deleted::Dropped)
                };
                record_activity(&mut tx, subject, action, Some(slug), None).await?;
                done
            }
        };
        tx.commit().await?;
        self.forget(subject.tenant_id());
        Ok(done)
    }

    /// Restores an archived collection (`POST /api/collections/:slug/restore`), losslessly.
    pub async fn restore_collection(
        &self,
        subject: &Subject,
        slug: &str,
    ) -> Result<CollectionInfo, StoreError> {
        require_admin(subject)?;
        let tenant = subject.tenant_id();
        let mut tx = self.db().begin().await?;
        let d = tx.dialect();
        let info = load_in(&mut tx, tenant, slug)
            .await?
            .ok_or_else(|| not_found(slug))?;
        if info.status != CollectionStatus::Archived {
            return Err(StoreError::Conflict {
                message: format!("collection `{slug}` is not archived"),
                field: None,
            });
        }
        if info.owner_scoped {
            // The owner permissions come back if they were removed while archived.
            let left = tx
                .fetch_all(
                    Query::select()
                        .expr(Expr::cust("1"))
                        .from(Alias::new("permissions"))
                        .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                        .and_where(Expr::col(Alias::new("collection")).eq(slug))
                        .and_where(Expr::col(Alias::new("role")).eq(roles::AUTHENTICATED)),
                )
                .await?;
            if left.is_empty() {
                seed_owner_permissions(&mut tx, tenant, slug).await?;
            }
        }
        tx.execute(
            Query::update()
                .table(Alias::new("collections"))
                .value(Alias::new("status"), CollectionStatus::Active.as_str())
                .value(Alias::new("archived_at"), crate::value::ts_null(d))
                .value(Alias::new("updated_at"), ts_value(now(), d))
                .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                .and_where(Expr::col(Alias::new("slug")).eq(slug)),
        )
        .await?;
        self.commit_change(tx, subject, "collection.restore", slug, None)
            .await
    }
}

/// Inserts a `collections` row; returns its id.
async fn insert_collection(
    tx: &mut Tx,
    tenant: &str,
    slug: &Slug,
    table: &str,
    adopted: bool,
    owner_scoped: bool,
    fields: &[Field],
) -> Result<uuid::Uuid, StoreError> {
    let d = tx.dialect();
    let id = uuid::Uuid::now_v7();
    let t = ts_value(now(), d);
    let fields = serde_json::to_value(fields).map_err(StoreError::internal)?;
    tx.execute(
        Query::insert()
            .into_table(Alias::new("collections"))
            .columns(
                [
                    "id",
                    "tenant_id",
                    "slug",
                    "physical_table",
                    "adopted",
                    "owner_scoped",
                    "fields",
                    "status",
                    "created_at",
                    "updated_at",
                ]
                .map(Alias::new),
            )
            .values([
                Expr::val(uuid_value(id, d)),
                Expr::val(tenant),
                Expr::val(slug.as_str()),
                Expr::val(table),
                Expr::val(bool_value(adopted, d)),
                Expr::val(bool_value(owner_scoped, d)),
                Expr::val(json_value(Some(&fields), d)),
                Expr::val(CollectionStatus::Active.as_str()),
                Expr::val(t.clone()),
                Expr::val(t),
            ])
            .map_err(StoreError::internal)?,
    )
    .await?;
    Ok(id)
}

/// The `authenticated` role's create/read/update/delete permissions with `owner_id = $user.id`.
async fn seed_owner_permissions(tx: &mut Tx, tenant: &str, slug: &str) -> Result<(), StoreError> {
    let owner = serde_json::json!({"owner_id": {"_eq": "$user.id"}});
    for action in [Action::Create, Action::Read, Action::Update, Action::Delete] {
        insert_permission(tx, tenant, roles::AUTHENTICATED, slug, action, Some(&owner)).await?;
    }
    Ok(())
}

/// The store's own checks of an adoption: a key that can name a field and key items, alias
/// columns of fitting types, and no column in two roles.
fn check_adoption(new: &AdoptedCollection) -> Result<(), StoreError> {
    let a = &new.adoption;
    if FieldName::new(a.pk_column.as_str()).is_err() {
        return Err(StoreError::validation(
            format!(
                "primary key column `{}` cannot be a field name (A-Z, a-z, 0-9, _; up to 63): rename it in your migration layer",
                a.pk_column
            ),
            Some("pkColumn"),
        ));
    }
    if !is_key_type(a.pk_type) {
        return Err(StoreError::validation(
            format!(
                "primary key `{}` is {}: workeros keys items by uuid, text or integer",
                a.pk_column, a.pk_type
            ),
            Some("pkColumn"),
        ));
    }
    if workeros_dsl::Ident::new(&a.pk_column).is_err() {
        return Err(StoreError::validation(
            format!(
                "primary key column `{}` is a word of the filter language and cannot name the key",
                a.pk_column
            ),
            Some("pkColumn"),
        ));
    }
    // The names the key and the system fields take on the wire and in filters.
    let mut names = vec![a.pk_column.as_str()];
    names.extend(["createdAt", "updatedAt", "ownerId"]);
    if a.pk_column != "id" {
        names.push("id");
    }
    if let Some(f) = new.fields.iter().find(|f| names.contains(&f.name.as_str())) {
        return Err(StoreError::validation(
            format!(
                "field `{}` would shadow the key or a system field; name it otherwise and set `column`",
                f.name.as_str()
            ),
            Some(f.name.as_str()),
        ));
    }
    let mut taken: Vec<(&str, &str)> = vec![(a.pk_column.as_str(), "pkColumn")];
    for (alias, c) in a.aliases() {
        let role = alias.request_field();
        if !alias.accepts(c.field_type) {
            return Err(StoreError::validation(
                format!(
                    "`{role}` column `{}` is {}; it must be {}",
                    c.column,
                    c.field_type,
                    alias.accepted()
                ),
                Some(role),
            ));
        }
        if let Some((_, other)) = taken.iter().find(|(col, _)| *col == c.column) {
            return Err(StoreError::validation(
                format!(
                    "column `{}` cannot be both `{other}` and `{role}`",
                    c.column
                ),
                Some(role),
            ));
        }
        taken.push((c.column.as_str(), role));
    }
    for f in &new.fields {
        if let Some((_, role)) = taken.iter().find(|(col, _)| *col == f.column_name()) {
            return Err(StoreError::validation(
                format!(
                    "column `{}` is `{role}`; it cannot also be field `{}`",
                    f.column_name(),
                    f.name.as_str()
                ),
                Some(f.name.as_str()),
            ));
        }
    }
    Ok(())
}

async fn update_fields(
    tx: &mut Tx,
    tenant: &str,
    slug: &str,
    fields: &[Field],
) -> Result<(), StoreError> {
    let d = tx.dialect();
    let v = serde_json::to_value(fields).map_err(StoreError::internal)?;
    tx.execute(
        Query::update()
            .table(Alias::new("collections"))
            .value(Alias::new("fields"), json_value(Some(&v), d))
            .value(Alias::new("updated_at"), ts_value(now(), d))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
            .and_where(Expr::col(Alias::new("slug")).eq(slug)),
    )
    .await?;
    Ok(())
}

/// A relation's target must be an active collection of the same tenant (or the collection
/// itself, keyed by `own_key`, for self-references). Returns the target's key type; a managed
/// collection's relations (uuid columns) and every `relation_many` need a target keyed by uuid.
async fn check_relation_target(
    tx: &mut Tx,
    tenant: &str,
    f: &Field,
    own: &str,
    own_key: FieldType,
    adopted: bool,
) -> Result<Option<FieldType>, StoreError> {
    let Some(to) = &f.to else { return Ok(None) };
    let key = if to.as_str() == own {
        own_key
    } else {
        match load_in(tx, tenant, to.as_str()).await? {
            Some(t) if t.status == CollectionStatus::Active => t.key_type(),
            _ => {
                return Err(StoreError::validation(
                    format!(
                        "relation field `{}` points to `{}`, which is not a collection",
                        f.name.as_str(),
                        to.as_str()
                    ),
                    Some(f.name.as_str()),
                ));
            }
        }
    };
    if key != FieldType::Uuid && (!adopted || f.field_type == FieldType::RelationMany) {
        return Err(StoreError::validation(
            format!(
                "relation field `{}` points to `{}`, keyed by {key}: only an adopted collection's `relation` can hold such a key",
                f.name.as_str(),
                to.as_str()
            ),
            Some(f.name.as_str()),
        ));
    }
    Ok(Some(key))
}

/// A failed DDL statement: the transaction rolls back, nothing is half-made.
fn ddl_error(e: StoreError, slug: &str) -> StoreError {
    match e {
        StoreError::Database(inner) => {
            tracing::error!(error = %inner, slug, "collection DDL failed");
            StoreError::Conflict {
                message: format!(
                    "the table of collection `{slug}` could not be changed; nothing was applied"
                ),
                field: None,
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physical_names() {
        let slug = Slug::new("a".repeat(48)).unwrap();
        let t = managed_table("0191f5a2-7c3e-7abc-8def-0123456789ab", &slug);
        assert!(t.starts_with("c_0191f5a27c3e_"));
        assert_eq!(t.len(), 63);
        let other = managed_table("t1", &Slug::new("posts").unwrap());
        assert_eq!(other.len(), "c_".len() + 12 + "_posts".len());
        assert!(
            other
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        );
        assert_eq!(unique_index_name(&t, "x").len(), 19);
    }
}
