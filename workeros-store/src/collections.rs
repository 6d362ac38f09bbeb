//! Collections: metadata rows in `collections` over physical tables, with additive DDL for managed
//! ones. Every change is one transaction: the metadata, the DDL, the seeded permissions and the
//! activity row commit together or not at all.

use crate::migrate::{ColumnKind, col};
use crate::value::{RowRef, bool_value, json_value, now, rfc3339, ts_value, uuid_value};
use crate::{Store, StoreError, Tx};
use sea_query::{Alias, ColumnDef, Expr, ExprTrait, Index, Query, Table};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use workeros_core::{Action, Field, FieldName, FieldType, Slug, Subject};
use workeros_dsl::Dialect;

/// The tenant of single-tenant hosts (a subject without a tenant).
pub const DEFAULT_TENANT: &str = "00000000-0000-0000-0000-000000000000";

/// The tenant a subject acts in.
pub(crate) fn tenant_of(subject: &Subject) -> &str {
    subject.tenant.as_deref().unwrap_or(DEFAULT_TENANT)
}

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
    if subject.has_role("admin") {
        Ok(())
    } else {
        Err(StoreError::Forbidden(
            "only an admin may manage collections and permissions".into(),
        ))
    }
}

/// Checks user fields: names valid and not reserved, no duplicates, relations with a target.
fn check_fields(fields: &[Field]) -> Result<(), StoreError> {
    let mut seen: Vec<&str> = Vec::new();
    for f in fields {
        let name = f.name.as_str();
        FieldName::new_user(name)?;
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
        if f.column.is_some() {
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

fn info_of(r: RowRef<'_>) -> Result<CollectionInfo, StoreError> {
    let missing = || StoreError::internal("a collections row lacks a required column");
    let fields: Vec<Field> = serde_json::from_value(r.json("fields")?.ok_or_else(missing)?)
        .map_err(StoreError::internal)?;
    let status = match r.text("status")?.as_deref() {
        Some("archived") => CollectionStatus::Archived,
        _ => CollectionStatus::Active,
    };
    Ok(CollectionInfo {
        slug: Slug::new(r.text("slug")?.ok_or_else(missing)?)?,
        physical_table: r.text("physical_table")?.ok_or_else(missing)?,
        adopted: r.boolean("adopted")?.unwrap_or(false),
        owner_scoped: r.boolean("owner_scoped")?.unwrap_or(false),
        fields,
        status,
        archived_at: r.ts("archived_at")?.map(rfc3339),
        created_at: r.ts("created_at")?.map(rfc3339).unwrap_or_default(),
        updated_at: r.ts("updated_at")?.map(rfc3339).unwrap_or_default(),
    })
}

fn select_collections(tenant: &str) -> sea_query::SelectStatement {
    Query::select()
        .columns(COLUMNS.map(Alias::new))
        .from(Alias::new("collections"))
        .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
        .order_by(Alias::new("slug"), sea_query::Order::Asc)
        .to_owned()
}

/// Reads one collection's metadata in a transaction (archived ones included).
pub(crate) async fn load_in(
    tx: &mut Tx,
    tenant: &str,
    slug: &str,
) -> Result<Option<CollectionInfo>, StoreError> {
    let rows = tx
        .fetch_all(select_collections(tenant).and_where(Expr::col(Alias::new("slug")).eq(slug)))
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
                Expr::val(tenant_of(subject)),
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
        let tenant = tenant_of(subject);
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
        check_fields(&new.fields)?;
        let tenant = tenant_of(subject);
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
            check_relation_target(&mut tx, tenant, f, slug).await?;
        }
        let t = ts_value(now(), d);
        let fields = serde_json::to_value(&new.fields).map_err(StoreError::internal)?;
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
                    Expr::val(uuid_value(uuid::Uuid::now_v7(), d)),
                    Expr::val(tenant),
                    Expr::val(slug),
                    Expr::val(table.as_str()),
                    Expr::val(bool_value(false, d)),
                    Expr::val(bool_value(new.owner_scoped, d)),
                    Expr::val(json_value(Some(&fields), d)),
                    Expr::val(CollectionStatus::Active.as_str()),
                    Expr::val(t.clone()),
                    Expr::val(t),
                ])
                .map_err(StoreError::internal)?,
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
            let owner = serde_json::json!({"owner_id": {"_eq": "$user.id"}});
            for action in [Action::Create, Action::Read, Action::Update, Action::Delete] {
                insert_permission(&mut tx, tenant, "authenticated", slug, action, Some(&owner))
                    .await?;
            }
        }
        self.commit_change(tx, subject, "collection.create", slug, None)
            .await
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
            .fetch_all(&select_collections(tenant_of(subject)))
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
            .fetch_all(
                select_collections(tenant_of(subject))
                    .and_where(Expr::col(Alias::new("slug")).eq(slug)),
            )
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
        let tenant = tenant_of(subject);
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
        check_fields(&all)?;
        if added.is_empty() {
            return Ok(info);
        }
        for f in &added {
            check_relation_target(&mut tx, tenant, f, slug).await?;
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
        let tenant = tenant_of(subject);
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
    /// metadata, its permissions and revisions; an adopted one is archived, its table untouched.
    pub async fn delete_collection(&self, subject: &Subject, slug: &str) -> Result<(), StoreError> {
        require_admin(subject)?;
        let tenant = tenant_of(subject);
        let mut tx = self.db().begin().await?;
        let d = tx.dialect();
        let info = load_active(&mut tx, tenant, slug).await?;
        if info.adopted {
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
        } else {
            tx.ddl(Table::drop().table(Alias::new(info.physical_table.as_str())))
                .await
                .map_err(|e| ddl_error(e, slug))?;
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
            record_activity(&mut tx, subject, "collection.delete", Some(slug), None).await?;
        }
        tx.commit().await?;
        self.forget(tenant_of(subject));
        Ok(())
    }

    /// Restores an archived collection (`POST /api/collections/:slug/restore`), losslessly.
    pub async fn restore_collection(
        &self,
        subject: &Subject,
        slug: &str,
    ) -> Result<CollectionInfo, StoreError> {
        require_admin(subject)?;
        let tenant = tenant_of(subject);
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
/// itself, for self-references).
async fn check_relation_target(
    tx: &mut Tx,
    tenant: &str,
    f: &Field,
    own: &str,
) -> Result<(), StoreError> {
    let Some(to) = &f.to else { return Ok(()) };
    if to.as_str() == own {
        return Ok(());
    }
    match load_in(tx, tenant, to.as_str()).await? {
        Some(t) if t.status == CollectionStatus::Active => Ok(()),
        _ => Err(StoreError::validation(
            format!(
                "relation field `{}` points to `{}`, which is not a collection",
                f.name.as_str(),
                to.as_str()
            ),
            Some(f.name.as_str()),
        )),
    }
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
