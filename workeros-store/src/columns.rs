//! The one column layout of a collection ([`Col`]: logical name, wire key, physical column, value
//! type, role), from which reads, writes and the DSL schema are all built; item keys; decoding a
//! stored row to its wire form.

use crate::StoreError;
use crate::catalog::CollectionInfo;
use crate::names::Names;
use crate::schema::ITEM_OWNERSHIP;
use crate::value::RowRef;
use sea_query::{Alias, Expr, ExprTrait, Query, SimpleExpr};
use serde_json::{Map, Value as Json};
use workeros_core::FieldType;
use workeros_dsl::{Dialect, FieldSpec, OwnerLookup, Schema, Source, ValueKind};

/// One column of a collection's table as the pipeline sees it.
#[derive(Debug, Clone)]
pub(crate) struct Col {
    /// The logical name (DSL, permissions).
    pub(crate) name: String,
    /// The key on the wire.
    pub(crate) key: String,
    /// The physical column.
    pub(crate) column: String,
    /// The value type: how a cell decodes and a written value converts (a relation to a table
    /// keyed by integers is `integer`).
    pub(crate) ty: FieldType,
    pub(crate) role: Role,
}

/// What a column is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The key (`id`, or an adopted table's primary key).
    Key,
    /// `createdAt` (managed, or an adopted alias column).
    CreatedAt,
    /// `updatedAt` (managed, or an adopted alias column).
    UpdatedAt,
    /// `ownerId` in a column of the table.
    Owner,
    /// `ownerId` of an adopted row, kept in `item_ownership`.
    OwnerSide,
    /// A user field.
    Field,
}

impl Col {
    pub(crate) fn is_system(&self) -> bool {
        self.role != Role::Field
    }

    fn system(name: &str, key: &str, column: &str, ty: FieldType, role: Role) -> Self {
        Col {
            name: name.to_owned(),
            key: key.to_owned(),
            column: column.to_owned(),
            ty,
            role,
        }
    }
}

/// The columns of a collection: system fields first (the key, `createdAt`, `updatedAt`,
/// `ownerId` when there is one), then user fields.
pub(crate) fn columns(info: &CollectionInfo) -> Vec<Col> {
    use FieldType as T;
    let mut out = Vec::new();
    match &info.adoption {
        None => {
            out.push(Col::system("id", "id", "id", T::Uuid, Role::Key));
            out.push(Col::system(
                "created_at",
                "createdAt",
                "created_at",
                T::Timestamp,
                Role::CreatedAt,
            ));
            out.push(Col::system(
                "updated_at",
                "updatedAt",
                "updated_at",
                T::Timestamp,
                Role::UpdatedAt,
            ));
            if info.owner_scoped {
                out.push(Col::system(
                    "owner_id",
                    "ownerId",
                    "owner_id",
                    T::Text,
                    Role::Owner,
                ));
            }
        }
        Some(a) => {
            let pk = a.pk_column.as_str();
            out.push(Col::system(pk, pk, pk, a.pk_type, Role::Key));
            if let Some(c) = &a.created_at {
                out.push(Col::system(
                    "created_at",
                    "createdAt",
                    &c.column,
                    c.field_type,
                    Role::CreatedAt,
                ));
            }
            if let Some(c) = &a.updated_at {
                out.push(Col::system(
                    "updated_at",
                    "updatedAt",
                    &c.column,
                    c.field_type,
                    Role::UpdatedAt,
                ));
            }
            match &a.owner_id {
                Some(c) => out.push(Col::system(
                    "owner_id",
                    "ownerId",
                    &c.column,
                    c.field_type,
                    Role::Owner,
                )),
                None if info.owner_scoped => out.push(Col::system(
                    "owner_id",
                    "ownerId",
                    "owner_id",
                    T::Text,
                    Role::OwnerSide,
                )),
                None => {}
            }
        }
    }
    for f in &info.fields {
        let key_type = info
            .adoption
            .as_ref()
            .and_then(|a| a.relation_keys.get(f.name.as_str()).copied());
        let ty = match (f.field_type, key_type) {
            (T::Relation, Some(k)) if k != T::Uuid => k,
            (t, _) => t,
        };
        out.push(Col {
            name: f.name.as_str().to_owned(),
            key: f.name.as_str().to_owned(),
            column: f.column_name().to_owned(),
            ty,
            role: Role::Field,
        });
    }
    out
}

/// The key column of `cols` (always the first).
pub(crate) fn key_col(cols: &[Col]) -> Result<&Col, StoreError> {
    cols.iter()
        .find(|c| c.role == Role::Key)
        .ok_or_else(|| StoreError::internal("a collection without a key column"))
}

/// The SQL an item's column is read with. Managed tables hold the store's own storage types and
/// are read as they are; an adopted table's columns are cast to the type the field decodes from
/// (an `int4` read as `bigint`, a `numeric` as a double, a `timestamp` as `timestamptz`), and
/// an owner kept in `item_ownership` is a correlated subquery.
pub(crate) fn read_expr(info: &CollectionInfo, c: &Col, names: &Names) -> SimpleExpr {
    let col = Expr::col((info.qualifier(names), Alias::new(c.column.as_str())));
    if !info.adopted {
        return col;
    }
    if c.role == Role::OwnerSide
        && let Some(o) = owner_lookup(info, names)
    {
        return o.subquery();
    }
    let cast = match (names.dialect(), c.ty) {
        (Dialect::Postgres, FieldType::Integer) => "bigint",
        (Dialect::Postgres, FieldType::Number) => "double precision",
        (Dialect::Postgres, FieldType::Text | FieldType::Longtext) => "text",
        (Dialect::Postgres, FieldType::Timestamp) => "timestamptz",
        (Dialect::Sqlite, FieldType::Integer | FieldType::Boolean) => "INTEGER",
        (Dialect::Sqlite, FieldType::Number) => "REAL",
        (Dialect::Sqlite, FieldType::Text | FieldType::Longtext) => "TEXT",
        _ => return col,
    };
    col.cast_as(Alias::new(cast))
}

/// A select of `cols` from the collection's table.
pub(crate) fn select_of(
    info: &CollectionInfo,
    cols: &[Col],
    names: &Names,
) -> sea_query::SelectStatement {
    let mut q = Query::select();
    for c in cols {
        q.expr(read_expr(info, c, names));
    }
    q.from(info.table(names));
    q
}

/// Rows of the subject's tenant: managed tables hold every tenant's rows; an adopted table has
/// no tenant column (only the default tenant adopts).
pub(crate) fn tenant_scope(info: &CollectionInfo, tenant: &str) -> Option<SimpleExpr> {
    (!info.adopted).then(|| Expr::col(Alias::new("tenant_id")).eq(tenant))
}

/// An item key from a URL or a body: its bound value, and its wire form.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    pub(crate) value: sea_query::Value,
    pub(crate) wire: Json,
}

impl Key {
    /// Parses `id` as a key of type `t` (`None`: not a key of that type, so no such item).
    pub(crate) fn parse(id: &str, t: FieldType, d: Dialect) -> Option<Key> {
        match t {
            FieldType::Uuid => uuid::Uuid::try_parse(id).ok().map(|u| Key::uuid(u, d)),
            FieldType::Integer => id.parse::<i64>().ok().map(|i| Key {
                value: sea_query::Value::BigInt(Some(i)),
                wire: Json::from(i),
            }),
            _ if id.is_empty() || id.contains('\0') => None,
            _ => Some(Key {
                value: sea_query::Value::String(Some(id.to_owned())),
                wire: Json::String(id.to_owned()),
            }),
        }
    }

    pub(crate) fn uuid(u: uuid::Uuid, d: Dialect) -> Key {
        Key {
            value: crate::value::uuid_value(u, d),
            wire: Json::String(u.hyphenated().to_string()),
        }
    }

    /// The key as item ids are recorded (activity, revisions, events): its text.
    pub(crate) fn text(&self) -> String {
        match &self.wire {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    /// `key column = this key`.
    pub(crate) fn condition(&self, cols: &[Col]) -> Result<SimpleExpr, StoreError> {
        Ok(Expr::col(Alias::new(key_col(cols)?.column.as_str())).eq(self.value.clone()))
    }
}

/// The canonical text of item key `id` as activity and revisions record it (`None`: not a key of
/// the collection's key type).
pub(crate) fn item_text(info: &CollectionInfo, id: &str, d: Dialect) -> Option<String> {
    Key::parse(id, info.key_type(), d).map(|k| k.text())
}

pub(crate) fn item_not_found(slug: &str, id: &str) -> StoreError {
    StoreError::NotFound(format!("item `{id}` not found in `{slug}`"))
}

/// Decodes one stored cell (column `i` of the select) to its wire value.
fn decode(r: RowRef<'_>, i: usize, c: &Col) -> Result<Json, StoreError> {
    Ok(match c.ty {
        FieldType::Text | FieldType::Longtext => r.text(i)?.map_or(Json::Null, Json::String),
        FieldType::Integer => r.int(i)?.map_or(Json::Null, Json::from),
        FieldType::Number => r
            .float(i)?
            .and_then(serde_json::Number::from_f64)
            .map_or(Json::Null, Json::Number),
        FieldType::Boolean => r.boolean(i)?.map_or(Json::Null, Json::Bool),
        FieldType::Json | FieldType::RelationMany => r.json(i)?.unwrap_or(Json::Null),
        FieldType::Timestamp => r.ts_text(i)?.map_or(Json::Null, Json::String),
        FieldType::Uuid | FieldType::Relation => r.uuid_text(i)?.map_or(Json::Null, Json::String),
    })
}

/// Decodes a row selected with exactly `cols`, in order. An adopted table's cell that does not
/// decode (another application wrote a value its type does not hold) reads as null.
pub(crate) fn decode_row(
    info: &CollectionInfo,
    r: RowRef<'_>,
    cols: &[Col],
) -> Result<Map<String, Json>, StoreError> {
    let mut m = Map::new();
    for (i, c) in cols.iter().enumerate() {
        let v = match decode(r, i, c) {
            Ok(v) => v,
            Err(e) if info.adopted => {
                tracing::warn!(
                    collection = info.slug.as_str(),
                    column = c.column.as_str(),
                    error = %e,
                    "a cell of an adopted table does not decode as its field type; read as null"
                );
                Json::Null
            }
            Err(e) => return Err(e),
        };
        m.insert(c.key.clone(), v);
    }
    Ok(m)
}

/// The column a sort key or `fields` entry names (logical or wire name).
pub(crate) fn find_col<'c>(cols: &'c [Col], name: &str) -> Option<&'c Col> {
    cols.iter().find(|c| c.name == name || c.key == name)
}

/// Where an adopted collection keeps its owners when it has no owner column: `item_ownership`,
/// by collection slug and the key as text (`None` for managed collections).
pub(crate) fn owner_lookup(info: &CollectionInfo, names: &Names) -> Option<OwnerLookup> {
    let a = info.adoption.as_ref()?;
    Some(OwnerLookup {
        table: names.physical(ITEM_OWNERSHIP),
        table_schema: match names.dialect() {
            Dialect::Postgres => Some(names.namespace().as_str().to_owned()),
            Dialect::Sqlite => None,
        },
        collection_column: "collection".into(),
        item_column: "item_id".into(),
        owner_column: "owner_id".into(),
        collection: info.slug.as_str().to_owned(),
        scope: Some(("tenant_id".into(), workeros_core::DEFAULT_TENANT.into())),
        outer_table: info.physical_table.clone(),
        outer_pk: a.pk_column.clone(),
    })
}

/// The DSL schema of a collection: system fields (with their wire spellings as aliases) and user
/// fields, as [`columns`] lays them out. `readable` says which user
/// fields the subject may filter on (`None`: all).
pub(crate) fn schema_of(
    info: &CollectionInfo,
    names: &Names,
    readable: Option<&dyn Fn(&str) -> bool>,
) -> Result<Schema, StoreError> {
    let mut s = Schema::new();
    for c in columns(info) {
        let mut spec = FieldSpec::new(&c.name, ValueKind::from(c.ty))?.key(&c.key);
        spec = match owner_lookup(info, names).filter(|_| c.role == Role::OwnerSide) {
            Some(o) => spec.source(Source::Owner(o)),
            None => spec.column(&c.column),
        };
        if c.role == Role::Field {
            spec = spec.readable(readable.is_none_or(|r| r(&c.name)));
        }
        s.add(spec)?;
        if c.key != c.name {
            s.alias(&c.key, &c.name)?;
        }
    }
    Ok(s)
}
