//! Permission rows: what a role may do with an action on a collection. Every DSL part (filter,
//! validation, presets) is checked against the collection's schema when the permission is saved,
//! so a bad rule is refused then, not when a request hits it. New owner-scoped collections get
//! their owner permissions seeded here.

use crate::catalog::{CollectionInfo, CollectionStatus, load_in, require_admin};
use crate::columns::{columns, schema_of};
use crate::journal::record_activity;
use crate::names::Names;
use crate::schema::PERMISSIONS;
use crate::value::{RowRef, json_value, now, ts_value, uuid_value};
use crate::{Store, StoreError, Tx};
use sea_query::{Alias, Expr, ExprTrait, Query};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value as Json};
use workeros_core::instant::rfc3339;
use workeros_core::{Action, FieldName, FieldType, Subject, roles};
use workeros_dsl::{CheckedFilter, Schema};

/// A permission's field list: every field (`"*"`, the default) or some.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(untagged)]
pub enum FieldList {
    /// Every field.
    #[default]
    #[serde(serialize_with = "star")]
    All,
    /// These fields.
    Some(Vec<FieldName>),
}

fn star<S: serde::Serializer>(s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("*")
}

impl<'de> Deserialize<'de> for FieldList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        let names = match Raw::deserialize(d)? {
            Raw::One(s) if s == "*" => return Ok(FieldList::All),
            Raw::One(s) => vec![s],
            Raw::Many(v) if v.iter().any(|s| s == "*") => return Ok(FieldList::All),
            Raw::Many(v) => v,
        };
        names
            .into_iter()
            .map(|n| FieldName::new(n).map_err(serde::de::Error::custom))
            .collect::<Result<_, _>>()
            .map(FieldList::Some)
    }
}

impl FieldList {
    /// Whether `field` is in the list.
    pub fn allows(&self, field: &str) -> bool {
        match self {
            FieldList::All => true,
            FieldList::Some(v) => v.iter().any(|f| f.as_str() == field),
        }
    }
}

/// A permission as written by an admin (`POST /api/permissions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PermissionInput {
    /// The role (`public`, `authenticated`, or any role name).
    pub role: String,
    /// The collection slug.
    pub collection: String,
    /// The action.
    pub action: Action,
    /// The row filter, in the JSON or text form; absent means every row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Json>,
    /// The fields allowed (`"*"` or a list); absent means every field.
    #[serde(default)]
    pub fields: FieldList,
    /// A rule the written row must satisfy (create and update).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<Json>,
    /// Values written over client input (create and update); variables allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presets: Option<Map<String, Json>>,
}

/// A stored permission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionInfo {
    /// Its id.
    pub id: String,
    /// The role.
    pub role: String,
    /// The collection slug.
    pub collection: String,
    /// The action.
    pub action: Action,
    /// The row filter in the JSON form (`None`: every row).
    pub filter: Option<Json>,
    /// The fields allowed.
    pub fields: FieldList,
    /// The validation rule in the JSON form.
    pub validation: Option<Json>,
    /// The presets.
    pub presets: Option<Map<String, Json>>,
    /// When it was created.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
}

/// A DSL value from a permission (a JSON-form object or a text-form string), checked against
/// `schema`; returns it in the JSON form, the form that is stored.
pub(crate) fn check_rule(
    v: &Json,
    schema: &Schema,
    what: &str,
) -> Result<(Json, CheckedFilter), StoreError> {
    let filter = match v {
        Json::String(s) => workeros_dsl::parse_any(s)?,
        Json::Object(_) => workeros_dsl::from_json(v)?,
        _ => {
            return Err(StoreError::validation(
                format!("`{what}` must be a filter object or a filter in the text form"),
                Some(what),
            ));
        }
    };
    let checked = filter.check(schema)?;
    Ok((filter.to_json(), checked))
}

/// Checks a permission against its collection.
fn check_input(
    p: &PermissionInput,
    info: &CollectionInfo,
    names: &Names,
) -> Result<PermissionParts, StoreError> {
    if p.role.is_empty() || p.role.len() > 64 || p.role.chars().any(char::is_control) {
        return Err(StoreError::validation(
            "`role` must be 1 to 64 printable characters",
            Some("role"),
        ));
    }
    if p.role == roles::ADMIN {
        return Err(StoreError::validation(
            "the `admin` role bypasses every rule and takes no permissions",
            Some("role"),
        ));
    }
    let schema = schema_of(info, names, None)?;
    let filter = p
        .filter
        .as_ref()
        .map(|f| check_rule(f, &schema, "filter"))
        .transpose()?;
    // A permission's filter runs as SQL (reads, and writes to adopted tables), where `matches`
    // (`_regex`) cannot: refuse it now, not per request. Validation rules keep it (they run in
    // memory, once per write).
    if filter.as_ref().is_some_and(|(_, c)| c.uses_regex()) {
        return Err(StoreError::validation(
            "a permission's `filter` cannot use `_regex` (`matches`): it runs as SQL; put the \
             pattern in `validation` (create and update)",
            Some("filter"),
        ));
    }
    let validation = match (&p.validation, p.action) {
        (Some(_), Action::Read | Action::Delete) => {
            return Err(StoreError::validation(
                "`validation` applies to create and update permissions only",
                Some("validation"),
            ));
        }
        (Some(v), _) => Some(check_rule(v, &schema, "validation")?),
        (None, _) => None,
    };
    if let FieldList::Some(list) = &p.fields {
        for f in list {
            let known = columns(info).iter().any(|c| c.name == f.as_str());
            if !known {
                return Err(StoreError::validation(
                    format!("`fields` names unknown field `{}`", f.as_str()),
                    Some("fields"),
                ));
            }
        }
    }
    if let Some(presets) = &p.presets {
        if matches!(p.action, Action::Read | Action::Delete) {
            return Err(StoreError::validation(
                "`presets` apply to create and update permissions only",
                Some("presets"),
            ));
        }
        for (k, v) in presets {
            let Some(field) = info.fields.iter().find(|f| f.name.as_str() == k) else {
                return Err(StoreError::validation(
                    format!("preset for unknown or system field `{k}`"),
                    Some("presets"),
                ));
            };
            check_preset(k, field.field_type, v, &schema)?;
        }
    }
    Ok(PermissionParts {
        filter: filter.map(|f| f.0),
        validation: validation.map(|v| v.0),
    })
}

/// A preset value must fit its field: a literal that coerces, or a variable (checked as
/// `field = value`, which the DSL checks for type). Null clears the field.
fn check_preset(field: &str, t: FieldType, v: &Json, schema: &Schema) -> Result<(), StoreError> {
    if v.is_null() {
        return Ok(());
    }
    if matches!(t, FieldType::Json | FieldType::RelationMany) {
        return Ok(());
    }
    let probe = serde_json::json!({ field: { "_eq": v } });
    workeros_dsl::check_json(&probe, schema)
        .map(|_| ())
        .map_err(|e| {
            StoreError::validation(
                format!(
                    "preset for `{field}` does not fit the field: {}",
                    e.message()
                ),
                Some("presets"),
            )
        })
}

struct PermissionParts {
    filter: Option<Json>,
    validation: Option<Json>,
}

const COLUMNS: [&str; 10] = [
    "id",
    "role",
    "collection",
    "action",
    "filter",
    "fields",
    "validation",
    "presets",
    "created_at",
    "updated_at",
];

/// Takes a dropped field out of a collection's permissions (their `fields` lists and `presets`),
/// in the drop's transaction, so that a field added later under the same name is not granted by
/// old lists. A filter or rule that names the field no longer checks and grants nothing.
pub(crate) async fn forget_field(
    tx: &mut crate::Tx,
    tenant: &str,
    slug: &str,
    field: &str,
) -> Result<(), StoreError> {
    let d = tx.dialect();
    let rows = tx
        .fetch_all(
            Query::select()
                .columns(["id", "fields", "presets"].map(Alias::new))
                .from(tx.table(PERMISSIONS))
                .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                .and_where(Expr::col(Alias::new("collection")).eq(slug)),
        )
        .await?;
    let mut changes = Vec::new();
    for r in rows.iter() {
        let (fields, presets) = fields_and_presets(r)?;
        let fields_changed =
            matches!(&fields, FieldList::Some(v) if v.iter().any(|f| f.as_str() == field));
        let presets_changed = presets.as_ref().is_some_and(|p| p.contains_key(field));
        if !fields_changed && !presets_changed {
            continue;
        }
        let fields = match fields {
            FieldList::Some(v) => {
                FieldList::Some(v.into_iter().filter(|f| f.as_str() != field).collect())
            }
            all => all,
        };
        let presets = presets.map(|mut p| {
            p.remove(field);
            p
        });
        let id = r
            .uuid_text("id")?
            .ok_or_else(|| StoreError::internal("a permission without id"))?;
        changes.push((id, fields, presets));
    }
    for (id, fields, presets) in changes {
        let uid = uuid::Uuid::try_parse(&id).map_err(StoreError::internal)?;
        tx.execute(
            Query::update()
                .table(tx.table(PERMISSIONS))
                .value(
                    Alias::new("fields"),
                    json_value(fields_json(&fields).as_ref(), d),
                )
                .value(
                    Alias::new("presets"),
                    json_value(
                        presets.filter(|p| !p.is_empty()).map(Json::Object).as_ref(),
                        d,
                    ),
                )
                .value(Alias::new("updated_at"), ts_value(now(), d))
                .and_where(Expr::col(Alias::new("id")).eq(uuid_value(uid, d))),
        )
        .await?;
    }
    Ok(())
}

/// The `fields` and `presets` columns of a permissions row.
pub(crate) fn fields_and_presets(
    r: RowRef<'_>,
) -> Result<(FieldList, Option<Map<String, Json>>), StoreError> {
    let fields = match r.json("fields")? {
        Some(v) => serde_json::from_value(v).map_err(StoreError::internal)?,
        None => FieldList::All,
    };
    let presets = match r.json("presets")? {
        Some(Json::Object(m)) => Some(m),
        _ => None,
    };
    Ok((fields, presets))
}

fn info_of(r: RowRef<'_>) -> Result<PermissionInfo, StoreError> {
    let missing = || StoreError::internal("a permissions row lacks a required column");
    let action = match r.text("action")?.as_deref() {
        Some("create") => Action::Create,
        Some("read") => Action::Read,
        Some("update") => Action::Update,
        Some("delete") => Action::Delete,
        _ => return Err(missing()),
    };
    let (fields, presets) = fields_and_presets(r)?;
    Ok(PermissionInfo {
        id: r.uuid_text("id")?.ok_or_else(missing)?,
        role: r.text("role")?.ok_or_else(missing)?,
        collection: r.text("collection")?.ok_or_else(missing)?,
        action,
        filter: r.json("filter")?,
        fields,
        validation: r.json("validation")?,
        presets,
        created_at: r.ts("created_at")?.map(rfc3339).unwrap_or_default(),
        updated_at: r.ts("updated_at")?.map(rfc3339).unwrap_or_default(),
    })
}

fn fields_json(f: &FieldList) -> Option<Json> {
    match f {
        FieldList::All => None,
        FieldList::Some(v) => Some(Json::Array(
            v.iter()
                .map(|f| Json::String(f.as_str().to_owned()))
                .collect(),
        )),
    }
}

/// The active collection a permission names; a missing one is a validation error of the body.
async fn permission_collection(
    tx: &mut crate::Tx,
    tenant: &str,
    slug: &str,
) -> Result<CollectionInfo, StoreError> {
    load_in(tx, tenant, slug)
        .await?
        .filter(|i| i.status == CollectionStatus::Active)
        .ok_or_else(|| {
            StoreError::validation(format!("collection `{slug}` not found"), Some("collection"))
        })
}

fn parse_id(id: &str) -> Result<uuid::Uuid, StoreError> {
    uuid::Uuid::try_parse(id)
        .map_err(|_| StoreError::NotFound(format!("permission `{id}` not found")))
}

impl Store {
    /// Saves a permission (`POST /api/permissions`) after checking every DSL part against the
    /// collection's schema.
    pub async fn create_permission(
        &self,
        subject: &Subject,
        input: PermissionInput,
    ) -> Result<PermissionInfo, StoreError> {
        require_admin(subject)?;
        let tenant = subject.tenant_id();
        let mut tx = self.db().begin().await?;
        let d = tx.dialect();
        let info = permission_collection(&mut tx, tenant, &input.collection).await?;
        let parts = check_input(&input, &info, tx.names())?;
        let id = uuid::Uuid::now_v7();
        let t = ts_value(now(), d);
        tx.execute(
            Query::insert()
                .into_table(self.db().table(PERMISSIONS))
                .columns(
                    [
                        "id",
                        "tenant_id",
                        "role",
                        "collection",
                        "action",
                        "filter",
                        "fields",
                        "validation",
                        "presets",
                        "created_at",
                        "updated_at",
                    ]
                    .map(Alias::new),
                )
                .values([
                    Expr::val(uuid_value(id, d)),
                    Expr::val(tenant),
                    Expr::val(input.role.as_str()),
                    Expr::val(input.collection.as_str()),
                    Expr::val(input.action.as_str()),
                    Expr::val(json_value(parts.filter.as_ref(), d)),
                    Expr::val(json_value(fields_json(&input.fields).as_ref(), d)),
                    Expr::val(json_value(parts.validation.as_ref(), d)),
                    Expr::val(json_value(
                        input.presets.clone().map(Json::Object).as_ref(),
                        d,
                    )),
                    Expr::val(t.clone()),
                    Expr::val(t),
                ])
                .map_err(StoreError::internal)?,
        )
        .await?;
        record_activity(
            &mut tx,
            subject,
            "permission.create",
            Some(&input.collection),
            Some(&id.to_string()),
        )
        .await?;
        tx.commit().await?;
        self.forget(subject.tenant_id());
        self.permission(subject, &id.to_string()).await
    }

    /// The permissions of the subject's tenant (`GET /api/permissions`), of one collection when
    /// given.
    pub async fn list_permissions(
        &self,
        subject: &Subject,
        collection: Option<&str>,
    ) -> Result<Vec<PermissionInfo>, StoreError> {
        require_admin(subject)?;
        let mut q = Query::select();
        q.columns(COLUMNS.map(Alias::new))
            .from(self.db().table(PERMISSIONS))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(subject.tenant_id()))
            .order_by(Alias::new("id"), sea_query::Order::Asc);
        if let Some(c) = collection {
            q.and_where(Expr::col(Alias::new("collection")).eq(c));
        }
        let rows = self.db().fetch_all(&q).await?;
        rows.iter().map(info_of).collect()
    }

    /// One permission (`GET /api/permissions/:id`).
    pub async fn permission(
        &self,
        subject: &Subject,
        id: &str,
    ) -> Result<PermissionInfo, StoreError> {
        require_admin(subject)?;
        let uid = parse_id(id)?;
        let rows = self
            .db()
            .fetch_all(
                Query::select()
                    .columns(COLUMNS.map(Alias::new))
                    .from(self.db().table(PERMISSIONS))
                    .and_where(Expr::col(Alias::new("tenant_id")).eq(subject.tenant_id()))
                    .and_where(
                        Expr::col(Alias::new("id")).eq(uuid_value(uid, self.db().dialect())),
                    ),
            )
            .await?;
        rows.iter()
            .next()
            .map(info_of)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("permission `{id}` not found")))
    }

    /// Replaces a permission (`PATCH /api/permissions/:id`), checked as when created.
    pub async fn update_permission(
        &self,
        subject: &Subject,
        id: &str,
        input: PermissionInput,
    ) -> Result<PermissionInfo, StoreError> {
        require_admin(subject)?;
        let tenant = subject.tenant_id();
        let uid = parse_id(id)?;
        let mut tx = self.db().begin().await?;
        let d = tx.dialect();
        let info = permission_collection(&mut tx, tenant, &input.collection).await?;
        let parts = check_input(&input, &info, tx.names())?;
        let n = tx
            .execute(
                Query::update()
                    .table(self.db().table(PERMISSIONS))
                    .value(Alias::new("role"), input.role.as_str())
                    .value(Alias::new("collection"), input.collection.as_str())
                    .value(Alias::new("action"), input.action.as_str())
                    .value(Alias::new("filter"), json_value(parts.filter.as_ref(), d))
                    .value(
                        Alias::new("fields"),
                        json_value(fields_json(&input.fields).as_ref(), d),
                    )
                    .value(
                        Alias::new("validation"),
                        json_value(parts.validation.as_ref(), d),
                    )
                    .value(
                        Alias::new("presets"),
                        json_value(input.presets.clone().map(Json::Object).as_ref(), d),
                    )
                    .value(Alias::new("updated_at"), ts_value(now(), d))
                    .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                    .and_where(Expr::col(Alias::new("id")).eq(uuid_value(uid, d))),
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("permission `{id}` not found")));
        }
        record_activity(
            &mut tx,
            subject,
            "permission.update",
            Some(&input.collection),
            Some(id),
        )
        .await?;
        tx.commit().await?;
        self.forget(subject.tenant_id());
        self.permission(subject, id).await
    }

    /// Deletes a permission (`DELETE /api/permissions/:id`).
    pub async fn delete_permission(&self, subject: &Subject, id: &str) -> Result<(), StoreError> {
        require_admin(subject)?;
        let uid = parse_id(id)?;
        let mut tx = self.db().begin().await?;
        let d = tx.dialect();
        let n = tx
            .execute(
                Query::delete()
                    .from_table(self.db().table(PERMISSIONS))
                    .and_where(Expr::col(Alias::new("tenant_id")).eq(subject.tenant_id()))
                    .and_where(Expr::col(Alias::new("id")).eq(uuid_value(uid, d))),
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("permission `{id}` not found")));
        }
        record_activity(&mut tx, subject, "permission.delete", None, Some(id)).await?;
        tx.commit().await?;
        self.forget(subject.tenant_id());
        Ok(())
    }
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
            .into_table(tx.table(PERMISSIONS))
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

/// The `authenticated` role's create/read/update/delete permissions with `owner_id = $user.id`.
pub(crate) async fn seed_owner_permissions(
    tx: &mut Tx,
    tenant: &str,
    slug: &str,
) -> Result<(), StoreError> {
    let owner = serde_json::json!({"owner_id": {"_eq": "$user.id"}});
    for action in [Action::Create, Action::Read, Action::Update, Action::Delete] {
        insert_permission(tx, tenant, roles::AUTHENTICATED, slug, action, Some(&owner)).await?;
    }
    Ok(())
}
