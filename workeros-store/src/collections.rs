//! The lifecycle of collections: managed ones created with their table, changed additively,
//! fields dropped explicitly; delete (drop for managed, archive then purge for adopted) and
//! restore. Every change is one transaction: the metadata, the DDL, the seeded permissions and the
//! activity row commit together or not at all.

use crate::catalog::{
    CollectionInfo, CollectionStatus, info_of, load_active, load_in, not_found, require_admin,
    select_collections, slug_is,
};
use crate::ddl::{
    create_table, ddl_error, field_column, managed_table, unique_index, unique_index_name,
};
use crate::journal::record_activity;
use crate::permissions::{forget_field, seed_owner_permissions};
use crate::schema::{COLLECTION_ADOPTIONS, COLLECTIONS, ITEM_OWNERSHIP, PERMISSIONS, REVISIONS};
use crate::value::{bool_value, json_value, now, ts_value, uuid_value};
use crate::{Store, StoreError, Tx};
use sea_query::{Alias, Expr, ExprTrait, Index, Query, Table};
use serde::{Deserialize, Serialize};
use workeros_core::{Field, FieldName, FieldType, Slug, Subject, roles};

/// Most collections one tenant holds (managed and adopted, archived included): in org mode
/// anyone who signs up administers a tenant, and each collection is a table.
pub const MAX_COLLECTIONS: usize = 200;

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

/// Checks user fields: names valid and not reserved, no duplicates, relations with a target. A
/// managed collection's names are lowercase and name no column; an adopted one's fields each sit
/// on their own column and are never `unique` (the table keeps its own constraints).
pub(crate) fn check_fields(fields: &[Field], adopted: bool) -> Result<(), StoreError> {
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

impl Store {
    /// Ends a collection change: its activity row, the collection as it now is, the commit, and
    /// the tenant's cached read views forgotten.
    pub(crate) async fn commit_change(
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
        if load_in(&mut tx, tenant, slug).await?.is_some() {
            return Err(StoreError::Conflict {
                message: format!("collection `{slug}` already exists"),
                field: Some("slug".into()),
            });
        }
        let held = tx
            .fetch_all(
                Query::select()
                    .expr(Expr::col(Alias::new("slug")).count())
                    .from(tx.table(COLLECTIONS))
                    .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant)),
            )
            .await?;
        let held = crate::value::first_i64(&held)?
            .first()
            .copied()
            .unwrap_or(0);
        if usize::try_from(held).unwrap_or(usize::MAX) >= MAX_COLLECTIONS {
            return Err(StoreError::validation(
                format!("a tenant has at most {MAX_COLLECTIONS} collections: delete one first"),
                Some("slug"),
            ));
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
        tx.ddl(&create_table(
            self.db().names(),
            &table,
            new.owner_scoped,
            &new.fields,
        ))
        .await
        .map_err(|e| ddl_error(e, slug))?;
        for f in new.fields.iter().filter(|f| f.unique) {
            tx.ddl(&unique_index(self.db().names(), &table, f.name.as_str()))
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
                    "adopting an existing table needs workeros-adopt: install it with `store.set_adopter(Adopt::new(store.clone()).adopter())`",
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
            .fetch_all(&select_collections(self.db().names(), subject.tenant_id()))
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
                select_collections(self.db().names(), subject.tenant_id()).and_where(slug_is(slug)),
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
                    .table(info.table(self.db().names()))
                    .add_column(field_column(f, d)),
            )
            .await
            .map_err(|e| ddl_error(e, slug))?;
            if f.unique {
                tx.ddl(&unique_index(
                    self.db().names(),
                    &info.physical_table,
                    f.name.as_str(),
                ))
                .await
                .map_err(|e| ddl_error(e, slug))?;
            }
        }
        update_fields(&mut tx, tenant, slug, &all).await?;
        self.commit_change(tx, subject, "collection.update", slug, None)
            .await
    }

    /// Drops a field of a managed collection (`DELETE /api/collections/:slug/fields/:field`):
    /// the column (and its unique index) go, its values leave the revisions, and the removal is
    /// recorded in activity.
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
                    .name(unique_index_name(
                        self.db().names(),
                        &info.physical_table,
                        field,
                    ))
                    .table(info.table(self.db().names())),
            )
            .await
            .map_err(|e| ddl_error(e, slug))?;
        }
        tx.ddl(
            Table::alter()
                .table(info.table(self.db().names()))
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
        forget_field(&mut tx, tenant, slug, field).await?;
        crate::journal::forget_field_history(&mut tx, tenant, slug, field).await?;
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
                        .table(self.db().table(COLLECTIONS))
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
                            .from_table(self.db().table(COLLECTION_ADOPTIONS))
                            .and_where(
                                Expr::col(Alias::new("collection_id")).in_subquery(
                                    Query::select()
                                        .column(Alias::new("id"))
                                        .from(self.db().table(COLLECTIONS))
                                        .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                                        .and_where(Expr::col(Alias::new("slug")).eq(slug))
                                        .to_owned(),
                                ),
                            ),
                    )
                    .await?;
                } else {
                    tx.ddl(Table::drop().table(info.table(self.db().names())))
                        .await
                        .map_err(|e| ddl_error(e, slug))?;
                }
                for table in [COLLECTIONS, PERMISSIONS, REVISIONS, ITEM_OWNERSHIP] {
                    let column = if table == COLLECTIONS {
                        "slug"
                    } else {
                        "collection"
                    };
                    tx.execute(
                        Query::delete()
                            .from_table(self.db().table(table))
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
                        .from(self.db().table(PERMISSIONS))
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
                .table(self.db().table(COLLECTIONS))
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
pub(crate) async fn insert_collection(
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
            .into_table(tx.table(COLLECTIONS))
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
            .table(tx.table(COLLECTIONS))
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
pub(crate) async fn check_relation_target(
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
