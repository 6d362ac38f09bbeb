//! Items and the permission pipeline: every read and write of a collection's rows passes the
//! subject's permissions, compiled to SQL for reads and matched in memory on written rows.

use crate::collections::{CollectionInfo, load_active, record_activity};
use crate::permissions::{FieldList, schema_of};
use crate::value::{RowRef, now};
use crate::{Store, StoreError, Tx};
use sea_query::{Alias, Expr, ExprTrait, Order, Query, SimpleExpr};
use serde_json::{Map, Value as Json};
use time::OffsetDateTime;
use workeros_core::instant::rfc3339;
use workeros_core::{Action, FieldType, Subject, roles};
use workeros_dsl::{BoundFilter, CheckedFilter, Dialect, Schema, Tri};

/// Most rows one list returns.
pub const MAX_LIMIT: u64 = 1_000;
/// Rows a list returns when no limit is given.
pub const DEFAULT_LIMIT: u64 = 100;

/// A list request (`GET /api/items/:slug`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    /// The client's filter: a JSON-form object, or a string in the text or JSON form.
    pub filter: Option<Json>,
    /// Sort keys: a field (logical or wire name), descending when `desc`.
    pub sort: Vec<SortKey>,
    /// At most this many rows (default 100, at most 1,000).
    pub limit: Option<u64>,
    /// Rows to skip.
    pub offset: Option<u64>,
    /// The fields to return (`None`: every readable field).
    pub fields: Option<Vec<String>>,
    /// Whether to count every matching row (`meta=count`).
    pub count: bool,
}

/// One sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// The field, by logical or wire name.
    pub field: String,
    /// Descending.
    pub desc: bool,
}

impl SortKey {
    /// Parses `-created_at,title`.
    pub fn parse_list(s: &str) -> Vec<SortKey> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match p.strip_prefix('-') {
                Some(f) => SortKey {
                    field: f.to_owned(),
                    desc: true,
                },
                None => SortKey {
                    field: p.trim_start_matches('+').to_owned(),
                    desc: false,
                },
            })
            .collect()
    }
}

/// A page of items.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemsPage {
    /// The rows, in their wire form.
    pub data: Vec<Map<String, Json>>,
    /// How many rows match in all, when counted.
    pub count: Option<u64>,
}

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

/// What reads of one collection need, loaded once and shared: the metadata, the columns and the
/// read rules (see [`Store::read_view`]).
#[derive(Debug)]
pub(crate) struct ReadView {
    pub(crate) info: CollectionInfo,
    pub(crate) cols: Vec<Col>,
    pub(crate) rules: Vec<Rule>,
    pub(crate) loaded: std::time::Instant,
    /// Process-unique: a new view (after a change, or the cache TTL) has a new serial.
    pub(crate) serial: u64,
}

static NEXT_VIEW: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

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
fn key_col(cols: &[Col]) -> Result<&Col, StoreError> {
    cols.iter()
        .find(|c| c.role == Role::Key)
        .ok_or_else(|| StoreError::internal("a collection without a key column"))
}

/// The SQL an item's column is read with. Managed tables hold the store's own storage types and
/// are read as they are; an adopted table's columns are cast to the type the field decodes from
/// (an `int4` read as `bigint`, a `numeric` as a double, a `timestamp` as `timestamptz`), and
/// an owner kept in `item_ownership` is a correlated subquery.
fn read_expr(info: &CollectionInfo, c: &Col, d: Dialect) -> SimpleExpr {
    let table = || Alias::new(info.physical_table.as_str());
    let col = Expr::col((table(), Alias::new(c.column.as_str())));
    if !info.adopted {
        return col;
    }
    if c.role == Role::OwnerSide
        && let Some(o) = crate::permissions::owner_lookup(info)
    {
        return o.subquery();
    }
    let cast = match (d, c.ty) {
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
fn select_of(info: &CollectionInfo, cols: &[Col], d: Dialect) -> sea_query::SelectStatement {
    let mut q = Query::select();
    for c in cols {
        q.expr(read_expr(info, c, d));
    }
    q.from(Alias::new(info.physical_table.as_str()));
    q
}

/// Rows of the subject's tenant: managed tables hold every tenant's rows; an adopted table has
/// no tenant column (only the default tenant adopts).
fn tenant_scope(info: &CollectionInfo, tenant: &str) -> Option<SimpleExpr> {
    (!info.adopted).then(|| Expr::col(Alias::new("tenant_id")).eq(tenant))
}

/// An item key from a URL or a body: its bound value, and its wire form.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    value: sea_query::Value,
    wire: Json,
}

impl Key {
    /// Parses `id` as a key of type `t` (`None`: not a key of that type, so no such item).
    fn parse(id: &str, t: FieldType, d: Dialect) -> Option<Key> {
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

    fn uuid(u: uuid::Uuid, d: Dialect) -> Key {
        Key {
            value: crate::value::uuid_value(u, d),
            wire: Json::String(u.hyphenated().to_string()),
        }
    }

    /// The key as item ids are recorded (activity, revisions, events): its text.
    fn text(&self) -> String {
        match &self.wire {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    /// `key column = this key`.
    fn condition(&self, cols: &[Col]) -> Result<SimpleExpr, StoreError> {
        Ok(Expr::col(Alias::new(key_col(cols)?.column.as_str())).eq(self.value.clone()))
    }
}

/// The canonical text of item key `id` as activity and revisions record it (`None`: not a key of
/// the collection's key type).
pub(crate) fn item_text(info: &CollectionInfo, id: &str, d: Dialect) -> Option<String> {
    Key::parse(id, info.key_type(), d).map(|k| k.text())
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
fn decode_row(
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

/// One permission as a request uses it: the bound filter (`None`: every row) and the fields.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub(crate) filter: Option<BoundFilter>,
    pub(crate) fields: FieldList,
    pub(crate) validation: Option<BoundFilter>,
    pub(crate) presets: Option<Map<String, Json>>,
}

impl Grant {
    /// Whether the permission's filter is TRUE for a row in its wire form.
    pub(crate) fn matches(&self, row: &Map<String, Json>) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(row))
    }
}

/// What the subject may do with one action on one collection.
#[derive(Debug, Clone)]
pub(crate) enum Access {
    /// An admin: every row, every field.
    All,
    /// The grants of the subject's roles (never empty).
    Grants(Vec<Grant>),
}

/// The roles a subject's permissions are looked up by.
pub(crate) fn roles_of(subject: &Subject) -> Vec<String> {
    match &subject.user {
        None => vec![roles::PUBLIC.into()],
        Some(u) => {
            let mut r = u.roles.clone();
            r.push(roles::AUTHENTICATED.into());
            r
        }
    }
}

/// One permission row, parsed and checked once (it does not depend on the subject).
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) role: String,
    pub(crate) filter: Option<CheckedFilter>,
    validation: Option<CheckedFilter>,
    fields: FieldList,
    presets: Option<Map<String, Json>>,
    /// The row it was read from, as text: equal sources, equal rules.
    source: String,
}

/// The permission rows of `action` on a collection, for every role, parsed. A rule that no longer
/// checks against the collection (a field it names was dropped) grants nothing.
pub(crate) async fn load_rules(
    tx: &mut Tx,
    tenant: &str,
    info: &CollectionInfo,
    action: Action,
) -> Result<Vec<Rule>, StoreError> {
    let rows = tx
        .fetch_all(
            Query::select()
                .columns(
                    ["id", "role", "filter", "fields", "validation", "presets"].map(Alias::new),
                )
                .from(Alias::new("permissions"))
                .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                .and_where(Expr::col(Alias::new("collection")).eq(info.slug.as_str()))
                .and_where(Expr::col(Alias::new("action")).eq(action.as_str()))
                .order_by(Alias::new("id"), Order::Asc),
        )
        .await?;
    let schema = schema_of(info, None)?;
    let mut rules = Vec::new();
    for r in rows.iter() {
        match rule_of(r, &schema) {
            Ok(rule) => rules.push(rule),
            Err(e) => tracing::warn!(
                collection = info.slug.as_str(),
                error = %e,
                "a permission no longer checks against its collection; it grants nothing"
            ),
        }
    }
    Ok(rules)
}

fn rule_of(r: RowRef<'_>, schema: &Schema) -> Result<Rule, StoreError> {
    let check = |v: Option<Json>| -> Result<Option<CheckedFilter>, StoreError> {
        v.map(|v| workeros_dsl::check_json(&v, schema).map_err(StoreError::from))
            .transpose()
    };
    let (fields, presets) = crate::permissions::fields_and_presets(r)?;
    let role = r.text("role")?.unwrap_or_default();
    let (filter, validation) = (r.json("filter")?, r.json("validation")?);
    let source = format!(
        "{:?}",
        (
            r.uuid_text("id")?,
            &role,
            &filter,
            &validation,
            &fields,
            &presets
        )
    );
    Ok(Rule {
        role,
        filter: check(filter)?,
        validation: check(validation)?,
        fields,
        presets,
        source,
    })
}

/// The subject's access from a collection's rules: admin all; else the rules of its roles, bound
/// to it (none: 403).
pub(crate) fn access_from(
    subject: &Subject,
    rules: &[Rule],
    info: &CollectionInfo,
    action: Action,
    at: OffsetDateTime,
) -> Result<Access, StoreError> {
    if subject.is_admin() {
        return Ok(Access::All);
    }
    let roles = roles_of(subject);
    let grants: Vec<Grant> = rules
        .iter()
        .filter(|r| roles.contains(&r.role))
        .map(|r| Grant {
            filter: r.filter.as_ref().map(|c| c.bind(subject, at)),
            fields: r.fields.clone(),
            validation: r.validation.as_ref().map(|c| c.bind(subject, at)),
            presets: r.presets.clone(),
        })
        .collect();
    if grants.is_empty() {
        return Err(StoreError::Forbidden(format!(
            "you may not {} items of `{}`",
            action.as_str(),
            info.slug.as_str()
        )));
    }
    Ok(Access::Grants(grants))
}

/// Loads the subject's permissions for `action` in a transaction (none at all: 403).
pub(crate) async fn access(
    tx: &mut Tx,
    subject: &Subject,
    info: &CollectionInfo,
    action: Action,
    at: OffsetDateTime,
) -> Result<Access, StoreError> {
    if subject.is_admin() {
        return Ok(Access::All);
    }
    let rules = load_rules(tx, subject.tenant_id(), info, action).await?;
    access_from(subject, &rules, info, action, at)
}

impl Access {
    /// Whether a user field may be read in some row (some grant names it): it may be asked for
    /// in `fields`, and is masked per row.
    fn may_read(&self, field: &str) -> bool {
        match self {
            Access::All => true,
            Access::Grants(g) => g.iter().any(|g| g.fields.allows(field)),
        }
    }

    /// Whether a user field may be filtered or sorted on: every grant that can select a row names
    /// it. A field readable only in some rows would otherwise rank and count the rows where it is
    /// hidden (a filter oracle).
    pub(crate) fn may_filter(&self, field: &str) -> bool {
        match self {
            Access::All => true,
            Access::Grants(g) => g
                .iter()
                .filter(|g| {
                    g.filter.as_ref().is_none_or(|f| {
                        f.constant() != Some(Tri::False) && f.constant() != Some(Tri::Unknown)
                    })
                })
                .all(|g| g.fields.allows(field)),
        }
    }

    /// Whether some grant's filter is TRUE for `row` (all access: always).
    pub(crate) fn matches_any(&self, row: &Map<String, Json>) -> bool {
        match self {
            Access::All => true,
            Access::Grants(g) => g.iter().any(|g| g.matches(row)),
        }
    }

    /// Whether the subject may see column `c` of `row` (its current wire form): system columns
    /// always, user fields when a grant that matches the row names them.
    pub(crate) fn allows_for(&self, row: &Map<String, Json>, c: &Col) -> bool {
        match self {
            Access::All => true,
            Access::Grants(g) => {
                c.is_system() || g.iter().any(|g| g.matches(row) && g.fields.allows(&c.name))
            }
        }
    }

    /// The SQL condition of the grants: their filters OR-ed (`None`: every row).
    fn condition(&self, d: Dialect) -> Result<Option<SimpleExpr>, StoreError> {
        let Access::Grants(grants) = self else {
            return Ok(None);
        };
        let mut any: Option<SimpleExpr> = None;
        for g in grants {
            let Some(f) = &g.filter else {
                return Ok(None);
            };
            let e = match f.constant() {
                Some(Tri::True) => return Ok(None),
                Some(_) => Expr::cust("1 = 0"),
                None => f.compile(d)?.into_expr(),
            };
            any = Some(match any {
                None => e,
                Some(prev) => prev.or(e),
            });
        }
        Ok(any)
    }

    /// The row as the subject may see it: fields no matching grant names are null.
    pub(crate) fn mask(&self, cols: &[Col], mut row: Map<String, Json>) -> Map<String, Json> {
        let Access::Grants(grants) = self else {
            return row;
        };
        // Every grant allows every field: nothing to mask (the common case, decided without
        // matching the row).
        if grants.iter().all(|g| g.fields == FieldList::All)
            || grants
                .iter()
                .any(|g| g.fields == FieldList::All && g.matches(&row))
        {
            return row;
        }
        let matching: Vec<&Grant> = grants.iter().filter(|g| g.matches(&row)).collect();
        for c in cols.iter().filter(|c| !c.is_system()) {
            if !matching.iter().any(|g| g.fields.allows(&c.name))
                && let Some(v) = row.get_mut(&c.key)
            {
                *v = Json::Null;
            }
        }
        row
    }
}

/// The client's filter, checked against what the subject may read.
pub(crate) fn client_filter(
    q: &Option<Json>,
    schema: &Schema,
) -> Result<Option<CheckedFilter>, StoreError> {
    Ok(match q {
        None => None,
        Some(Json::String(s)) if s.trim().is_empty() => None,
        Some(Json::String(s)) => Some(workeros_dsl::parse_any(s)?.check(schema)?),
        Some(v @ Json::Object(_)) => Some(workeros_dsl::check_json(v, schema)?),
        Some(_) => {
            return Err(StoreError::BadRequest(
                "`filter` must be a filter object or a filter in the text form".into(),
            ));
        }
    })
}

/// The column a sort key or `fields` entry names (logical or wire name).
fn find_col<'c>(cols: &'c [Col], name: &str) -> Option<&'c Col> {
    cols.iter().find(|c| c.name == name || c.key == name)
}

impl Store {
    /// The read view of a collection: from the cache when it is fresh, else loaded (and cached).
    /// Changes through this store clear it at once; changes by another process are seen within
    /// the cache TTL.
    pub(crate) async fn read_view(
        &self,
        tenant: &str,
        slug: &str,
    ) -> Result<std::sync::Arc<ReadView>, StoreError> {
        let key = (tenant.to_owned(), slug.to_owned());
        if let Some(v) = self.cached(&key) {
            return Ok(v);
        }
        let generation = self.generation();
        let mut tx = self.db().begin_read().await?;
        let info = load_active(&mut tx, tenant, slug).await?;
        let rules = load_rules(&mut tx, tenant, &info, Action::Read).await?;
        tx.commit().await?;
        // The same metadata and rules as the view before: the same serial (realtime keeps its
        // subscribers' bound permissions while the serial stays).
        let serial = match self.previous_view(&key) {
            Some(p)
                if p.info == info
                    && p.rules.len() == rules.len()
                    && p.rules
                        .iter()
                        .zip(&rules)
                        .all(|(a, b)| a.source == b.source) =>
            {
                p.serial
            }
            _ => NEXT_VIEW.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        };
        let view = std::sync::Arc::new(ReadView {
            cols: columns(&info),
            info,
            rules,
            loaded: std::time::Instant::now(),
            serial,
        });
        // A change committed while this view loaded may not be in it: use it, do not keep it.
        if self.generation() == generation {
            self.cache_view(key, view.clone());
        }
        Ok(view)
    }

    /// Lists items (`GET /api/items/:slug`): the subject's read permissions OR-ed next to the
    /// client's filter in SQL, fields masked per row, filter and sort on unreadable fields refused.
    pub async fn list_items(
        &self,
        subject: &Subject,
        slug: &str,
        q: &ListQuery,
    ) -> Result<ItemsPage, StoreError> {
        let d = self.db().dialect();
        let tenant = subject.tenant_id();
        let view = self.read_view(tenant, slug).await?;
        let info = &view.info;
        let at = now();
        let access = access_from(subject, &view.rules, info, Action::Read, at)?;
        let cols = &view.cols;
        let readable = |f: &str| access.may_filter(f);
        let schema = schema_of(info, Some(&readable))?;
        let client = client_filter(&q.filter, &schema)?;
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
        if q.offset.is_some_and(|o| i64::try_from(o).is_err()) {
            return Err(StoreError::validation(
                "`offset` is too large",
                Some("offset"),
            ));
        }
        if limit > MAX_LIMIT {
            return Err(StoreError::validation(
                format!("`limit` is at most {MAX_LIMIT}"),
                Some("limit"),
            ));
        }
        let fields: Option<Vec<&Col>> = match &q.fields {
            None => None,
            Some(list) if list.iter().any(|f| f == "*") => None,
            Some(list) => Some(
                list.iter()
                    .map(|f| {
                        let c = find_col(cols, f).ok_or_else(|| {
                            StoreError::validation(
                                format!("unknown field `{f}` in `fields`"),
                                Some(f),
                            )
                        })?;
                        if !c.is_system() && !access.may_read(&c.name) {
                            return Err(StoreError::Forbidden(format!(
                                "you may not read field `{f}`"
                            )));
                        }
                        Ok(c)
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        let mut where_: Vec<SimpleExpr> = tenant_scope(info, tenant).into_iter().collect();
        if let Some(c) = &client {
            let b = c.bind(subject, at);
            match b.constant() {
                Some(Tri::True) => {}
                Some(_) => where_.push(Expr::cust("1 = 0")),
                None => where_.push(b.compile(d)?.into_expr()),
            }
        }
        if let Some(cond) = access.condition(d)? {
            where_.push(cond);
        }
        let mut select = select_of(info, cols, d);
        for w in &where_ {
            select.and_where(w.clone());
        }
        for k in &q.sort {
            let c = find_col(cols, &k.field).ok_or_else(|| {
                StoreError::validation(
                    format!("unknown field `{}` in `sort`", k.field),
                    Some(&k.field),
                )
            })?;
            if !c.is_system() && !access.may_filter(&c.name) {
                return Err(StoreError::Forbidden(format!(
                    "you may not sort on field `{}`",
                    k.field
                )));
            }
            // Nulls sort as the smallest value on both databases (PostgreSQL's default puts
            // them last).
            let (order, nulls) = if k.desc {
                (Order::Desc, sea_query::NullOrdering::Last)
            } else {
                (Order::Asc, sea_query::NullOrdering::First)
            };
            if c.role == Role::OwnerSide {
                // Not a column of the table: the owner as the row reads it.
                select.order_by_expr_with_nulls(read_expr(info, c, d), order, nulls);
            } else {
                select.order_by_with_nulls(Alias::new(c.column.as_str()), order, nulls);
            }
        }
        select.order_by(Alias::new(key_col(cols)?.column.as_str()), Order::Asc);
        let rows = self
            .db()
            .fetch_page(&select, limit, q.offset.unwrap_or(0))
            .await?;
        let mut data = Vec::with_capacity(rows.len());
        for r in rows.iter() {
            let row = access.mask(cols, decode_row(info, r, cols)?);
            data.push(project(row, fields.as_deref()));
        }
        let count = if q.count {
            let mut c = Query::select();
            c.expr(Expr::cust("COUNT(*)"))
                .from(Alias::new(info.physical_table.as_str()));
            for w in where_ {
                c.and_where(w);
            }
            let n = crate::value::first_i64(&self.db().fetch_all(&c).await?)?;
            Some(u64::try_from(n.first().copied().unwrap_or(0)).unwrap_or(0))
        } else {
            None
        };
        Ok(ItemsPage { data, count })
    }

    /// One item (`GET /api/items/:slug/:id`, `id` the value of the collection's key): 404 when it
    /// does not exist or the subject may not read it (the same answer).
    pub async fn get_item(
        &self,
        subject: &Subject,
        slug: &str,
        id: &str,
        fields: Option<Vec<String>>,
    ) -> Result<Map<String, Json>, StoreError> {
        let view = self.read_view(subject.tenant_id(), slug).await?;
        let info = &view.info;
        let key = Key::parse(id, info.key_type(), self.db().dialect())
            .ok_or_else(|| item_not_found(slug, id))?;
        let mut filter = Map::new();
        // A text key that starts with `$` would read as a variable: `$$` keeps it literal.
        let literal = match &key.wire {
            Json::String(t) if t.starts_with('$') => Json::String(format!("${t}")),
            other => other.clone(),
        };
        filter.insert(
            info.key_field().to_owned(),
            serde_json::json!({ "_eq": literal }),
        );
        let q = ListQuery {
            filter: Some(Json::Object(filter)),
            limit: Some(1),
            fields,
            ..ListQuery::default()
        };
        let page = self.list_items(subject, slug, &q).await?;
        page.data
            .into_iter()
            .next()
            .ok_or_else(|| item_not_found(slug, id))
    }
}

fn project(row: Map<String, Json>, fields: Option<&[&Col]>) -> Map<String, Json> {
    let Some(fields) = fields else { return row };
    let mut out = Map::new();
    let mut row = row;
    for c in fields {
        if let Some(v) = row.remove(&c.key) {
            out.insert(c.key.clone(), v);
        }
    }
    out
}

pub(crate) fn item_not_found(slug: &str, id: &str) -> StoreError {
    StoreError::NotFound(format!("item `{id}` not found in `{slug}`"))
}

/// A value converted for a column: the bound value and its wire form (what reading it back gives).
struct Converted {
    value: sea_query::Value,
    wire: Json,
}

/// Converts a client value for a user field; 422 when it does not fit the field's type.
fn convert(c: &Col, t: FieldType, v: &Json, d: Dialect) -> Result<Converted, StoreError> {
    use sea_query::Value as V;
    let bad = |what: &str| {
        StoreError::validation(format!("field `{}` takes {what}", c.key), Some(&c.key))
    };
    let text = |s: &str, max: Option<usize>| -> Result<Converted, StoreError> {
        if s.contains('\0') {
            return Err(bad("text without NUL characters"));
        }
        if let Some(m) = max
            && s.chars().count() > m
        {
            return Err(bad("text of at most 255 characters"));
        }
        Ok(Converted {
            value: V::String(Some(s.to_owned())),
            wire: Json::String(s.to_owned()),
        })
    };
    if v.is_null() {
        let value = match (t, d) {
            (FieldType::Integer, _) => V::BigInt(None),
            (FieldType::Number, _) => V::Double(None),
            (FieldType::Boolean, Dialect::Postgres) => V::Bool(None),
            (FieldType::Boolean, Dialect::Sqlite) => V::BigInt(None),
            (FieldType::Json | FieldType::RelationMany, Dialect::Postgres) => V::Json(None),
            (FieldType::Timestamp, Dialect::Postgres) => V::TimeDateTimeWithTimeZone(None),
            (FieldType::Uuid | FieldType::Relation, Dialect::Postgres) => V::Uuid(None),
            _ => V::String(None),
        };
        return Ok(Converted {
            value,
            wire: Json::Null,
        });
    }
    match t {
        FieldType::Text => text(v.as_str().ok_or_else(|| bad("text"))?, Some(255)),
        FieldType::Longtext => text(v.as_str().ok_or_else(|| bad("text"))?, None),
        FieldType::Integer => {
            let i = v.as_i64().ok_or_else(|| bad("a 64-bit integer"))?;
            Ok(Converted {
                value: V::BigInt(Some(i)),
                wire: Json::from(i),
            })
        }
        FieldType::Number => {
            let x = v
                .as_f64()
                .filter(|x| x.is_finite())
                .ok_or_else(|| bad("a number"))?;
            Ok(Converted {
                value: V::Double(Some(x)),
                wire: serde_json::Number::from_f64(x).map_or(Json::Null, Json::Number),
            })
        }
        FieldType::Boolean => {
            let b = v.as_bool().ok_or_else(|| bad("true or false"))?;
            Ok(Converted {
                value: crate::value::bool_value(b, d),
                wire: Json::Bool(b),
            })
        }
        FieldType::Json if has_nul(v) => Err(bad("JSON without NUL characters")),
        FieldType::Json => Ok(Converted {
            value: crate::value::json_value(Some(v), d),
            wire: v.clone(),
        }),
        FieldType::RelationMany => {
            let items = v.as_array().ok_or_else(|| bad("an array of ids"))?;
            let mut ids = Vec::with_capacity(items.len());
            for i in items {
                let u = i
                    .as_str()
                    .and_then(|s| uuid::Uuid::try_parse(s).ok())
                    .ok_or_else(|| bad("an array of ids"))?;
                ids.push(Json::String(u.hyphenated().to_string()));
            }
            let wire = Json::Array(ids);
            Ok(Converted {
                value: crate::value::json_value(Some(&wire), d),
                wire,
            })
        }
        FieldType::Timestamp => {
            let m = v
                .as_str()
                .and_then(workeros_dsl::parse_timestamp)
                .ok_or_else(|| bad("an RFC 3339 timestamp"))?;
            let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(m) * 1000)
                .map_err(|_| bad("an RFC 3339 timestamp"))?;
            Ok(Converted {
                value: crate::value::ts_value(t, d),
                wire: Json::String(rfc3339(t)),
            })
        }
        FieldType::Uuid | FieldType::Relation => {
            let u = v
                .as_str()
                .and_then(|s| uuid::Uuid::try_parse(s).ok())
                .ok_or_else(|| bad("a uuid"))?;
            Ok(Converted {
                value: crate::value::uuid_value(u, d),
                wire: Json::String(u.hyphenated().to_string()),
            })
        }
    }
}

/// Whether a JSON value holds NUL in a string or a key (PostgreSQL's `jsonb` refuses it).
fn has_nul(v: &Json) -> bool {
    match v {
        Json::String(s) => s.contains('\0'),
        Json::Array(a) => a.iter().any(has_nul),
        Json::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// The wire key of a body key (logical or wire name of a column).
fn body_col<'c>(cols: &'c [Col], key: &str) -> Result<&'c Col, StoreError> {
    let c = find_col(cols, key)
        .ok_or_else(|| StoreError::validation(format!("unknown field `{key}`"), Some(key)))?;
    if c.role == Role::Key && c.name != "id" {
        return Err(StoreError::validation(
            format!("primary key `{key}` cannot be changed"),
            Some(key),
        ));
    }
    if c.is_system() {
        return Err(StoreError::Forbidden(format!(
            "field `{key}` is set by the server and cannot be written"
        )));
    }
    Ok(c)
}

/// A grant's presets as client-style values (variables resolved).
fn presets_of(g: &Grant, subject: &Subject, at: OffsetDateTime) -> Map<String, Json> {
    let mut out = Map::new();
    for (k, v) in g.presets.iter().flatten() {
        let v = match v {
            Json::String(s) if s.starts_with('$') => {
                workeros_dsl::variable_value(s, subject, at).unwrap_or_else(|| v.clone())
            }
            other => other.clone(),
        };
        out.insert(k.clone(), v);
    }
    out
}

/// The first grant that accepts a write: the body's fields are in its allow-list, and the row
/// built with its presets matches its filter and passes its validation rule. `build` makes the
/// row (and its column values) from a grant's presets.
#[allow(clippy::too_many_arguments)]
fn first_accepting<'g>(
    grants: impl Iterator<Item = &'g Grant>,
    body: &Map<String, Json>,
    cols: &[Col],
    subject: &Subject,
    at: OffsetDateTime,
    slug: &str,
    action: Action,
    build: impl Fn(&Map<String, Json>) -> Result<(Sets, Map<String, Json>), StoreError>,
) -> Result<(Sets, Map<String, Json>), StoreError> {
    let (mut fields_failed, mut validation_failed) = (false, false);
    let mut build_error = None;
    for g in grants {
        if !body
            .keys()
            .all(|k| find_col(cols, k).is_some_and(|c| g.fields.allows(&c.name)))
        {
            fields_failed = true;
            continue;
        }
        // A row this grant cannot build (a required field its presets do not fill, a preset that
        // no longer fits) fails this grant only; another may accept the write.
        let (sets, row) = match build(&presets_of(g, subject, at)) {
            Ok(built) => built,
            Err(e) => {
                build_error.get_or_insert(e);
                continue;
            }
        };
        // For an update this is the changed row: it must stay in the grant's scope.
        if !g.matches(&row) {
            continue;
        }
        if g.validation.as_ref().is_some_and(|v| !v.matches(&row)) {
            validation_failed = true;
            continue;
        }
        return Ok((sets, row));
    }
    match build_error {
        Some(e) if !validation_failed => Err(e),
        _ => Err(refusal(fields_failed, validation_failed, slug, action)),
    }
}

/// Why a grant refused a write, worst first: the error to report when none accepts.
fn refusal(fields: bool, validation: bool, slug: &str, action: Action) -> StoreError {
    if validation {
        StoreError::validation(
            "the item does not pass the collection's validation rule",
            None,
        )
    } else if fields {
        StoreError::Forbidden(format!(
            "you may not write some of these fields of `{slug}`"
        ))
    } else {
        StoreError::Forbidden(format!(
            "you may not {} this item of `{slug}`",
            action.as_str()
        ))
    }
}

/// The values a write sets, converted: wire key → (column, converted value).
type Sets = Vec<(String, String, Converted)>;

/// Converts `body` (client keys) plus `presets` (over them) into column values.
fn sets_of(
    cols: &[Col],
    body: &Map<String, Json>,
    presets: &Map<String, Json>,
    d: Dialect,
) -> Result<Sets, StoreError> {
    let mut out: Sets = Vec::new();
    for (k, v) in body.iter().chain(presets.iter()) {
        let c = body_col(cols, k)?;
        let conv = convert(c, c.ty, v, d)?;
        match out.iter_mut().find(|(key, _, _)| *key == c.key) {
            Some(slot) => slot.2 = conv,
            None => out.push((c.key.clone(), c.column.clone(), conv)),
        }
    }
    Ok(out)
}

impl Store {
    /// Checks that every relation value of `sets` names an existing item of its target collection
    /// in the same tenant (422 otherwise). Values were converted to the target's key type.
    async fn check_relations(
        &self,
        tx: &mut Tx,
        tenant: &str,
        info: &CollectionInfo,
        sets: &Sets,
    ) -> Result<(), StoreError> {
        let d = tx.dialect();
        for f in &info.fields {
            let Some(to) = &f.to else { continue };
            let Some((_, _, conv)) = sets.iter().find(|(k, _, _)| k == f.name.as_str()) else {
                continue;
            };
            let keys: Vec<sea_query::Value> = match &conv.wire {
                Json::Null => continue,
                Json::Array(a) => a
                    .iter()
                    .filter_map(Json::as_str)
                    .filter_map(|s| uuid::Uuid::try_parse(s).ok())
                    .map(|u| crate::value::uuid_value(u, d))
                    .collect(),
                _ => vec![conv.value.clone()],
            };
            if keys.is_empty() {
                continue;
            }
            let target = if to.as_str() == info.slug.as_str() {
                Some(info.clone())
            } else {
                crate::collections::load_in(tx, tenant, to.as_str())
                    .await?
                    .filter(|t| t.status == crate::CollectionStatus::Active)
            };
            let Some(target) = target else {
                return Err(dangling(f.name.as_str(), to.as_str()));
            };
            for key in keys {
                let mut q = Query::select();
                q.expr(Expr::cust("1"))
                    .from(Alias::new(target.physical_table.as_str()))
                    .and_where(Expr::col(Alias::new(target.key_field())).eq(key));
                if let Some(t) = tenant_scope(&target, tenant) {
                    q.and_where(t);
                }
                if tx.fetch_all(&q).await?.is_empty() {
                    return Err(dangling(f.name.as_str(), to.as_str()));
                }
            }
        }
        Ok(())
    }
}

fn dangling(field: &str, to: &str) -> StoreError {
    StoreError::validation(
        format!("field `{field}` names an item of `{to}` that does not exist"),
        Some(field),
    )
}

/// A revision row: the item after the change and what changed.
async fn record_revision(
    tx: &mut Tx,
    subject: &Subject,
    activity: uuid::Uuid,
    slug: &str,
    item: &str,
    data: Option<&Json>,
    delta: Option<&Json>,
) -> Result<(), StoreError> {
    use crate::value::{json_value, ts_value, uuid_value};
    let d = tx.dialect();
    tx.execute(
        Query::insert()
            .into_table(Alias::new("revisions"))
            .columns(
                [
                    "id",
                    "tenant_id",
                    "activity_id",
                    "collection",
                    "item_id",
                    "data",
                    "delta",
                    "created_at",
                ]
                .map(Alias::new),
            )
            .values([
                Expr::val(uuid_value(uuid::Uuid::now_v7(), d)),
                Expr::val(subject.tenant_id()),
                Expr::val(uuid_value(activity, d)),
                Expr::val(slug),
                Expr::val(item),
                Expr::val(json_value(data, d)),
                Expr::val(json_value(delta, d)),
                Expr::val(ts_value(now(), d)),
            ])
            .map_err(StoreError::internal)?,
    )
    .await?;
    Ok(())
}

/// The body of a create: one object or an array of them.
#[derive(Debug, Clone, PartialEq)]
pub enum NewItems {
    /// One item.
    One(Map<String, Json>),
    /// Several items, written in one transaction (all or none).
    Many(Vec<Map<String, Json>>),
}

impl NewItems {
    /// From a request body.
    pub fn from_json(v: Json) -> Result<Self, StoreError> {
        match v {
            Json::Object(m) => Ok(NewItems::One(m)),
            Json::Array(items) => items
                .into_iter()
                .map(|i| match i {
                    Json::Object(m) => Ok(m),
                    _ => Err(StoreError::BadRequest(
                        "every item must be an object".into(),
                    )),
                })
                .collect::<Result<_, _>>()
                .map(NewItems::Many),
            _ => Err(StoreError::BadRequest(
                "the body must be an item object or an array of them".into(),
            )),
        }
    }
}

/// What a write returns: the item(s) as the subject may read them.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    /// One item.
    One(Map<String, Json>),
    /// Several.
    Many(Vec<Map<String, Json>>),
}

impl Store {
    /// Creates items (`POST /api/items/:slug`). For a subject that is not admin, some create
    /// permission must accept each item: its fields, its presets (written over client input), its
    /// filter and validation rule, checked in memory on the row as it will be stored. `owner_id`
    /// and `tenant_id` come from the subject; relations must name existing items. On an adopted
    /// table the body carries the primary key unless it is a uuid `id` (then generated when
    /// absent), and the row is read back after the insert (the table's defaults included).
    pub async fn create_items(
        &self,
        subject: &Subject,
        slug: &str,
        items: NewItems,
    ) -> Result<Written, StoreError> {
        let (many, bodies) = match items {
            NewItems::One(m) => (false, vec![m]),
            NewItems::Many(v) => (true, v),
        };
        if bodies.len() > MAX_LIMIT as usize {
            return Err(StoreError::validation(
                format!("at most {MAX_LIMIT} items per request"),
                None,
            ));
        }
        let tenant = subject.tenant_id();
        let mut tx = self.db().begin().await?;
        let d = tx.dialect();
        let info = load_active(&mut tx, tenant, slug).await?;
        let at = now();
        let access_c = access(&mut tx, subject, &info, Action::Create, at).await?;
        let cols = columns(&info);
        let key_c = key_col(&cols)?.clone();
        let mut rows = Vec::with_capacity(bodies.len());
        let mut events = Vec::with_capacity(bodies.len());
        for mut body in bodies {
            let key = new_key(&info, &key_c, &mut body, d)?;
            let (sets, row) =
                self.accept_create(subject, &info, &cols, &access_c, &body, &key, at, d)?;
            self.check_relations(&mut tx, tenant, &info, &sets).await?;
            let mut names: Vec<Alias> = Vec::new();
            let mut values: Vec<SimpleExpr> = Vec::new();
            for c in &cols {
                let v = match c.role {
                    Role::Key => key.value.clone(),
                    Role::CreatedAt | Role::UpdatedAt => instant_value(c.ty, at, d),
                    Role::Owner => owner_value(c, subject, d)?,
                    Role::OwnerSide | Role::Field => continue,
                };
                names.push(Alias::new(c.column.as_str()));
                values.push(Expr::val(v));
            }
            if !info.adopted {
                names.push(Alias::new("tenant_id"));
                values.push(Expr::val(tenant));
            }
            for (_, column, conv) in &sets {
                names.push(Alias::new(column.as_str()));
                values.push(Expr::val(conv.value.clone()));
            }
            let mut insert = Query::insert();
            insert
                .into_table(Alias::new(info.physical_table.as_str()))
                .columns(names);
            insert.values(values).map_err(StoreError::internal)?;
            tx.execute(&insert).await?;
            let item = key.text();
            if cols.iter().any(|c| c.role == Role::OwnerSide)
                && let Some(u) = &subject.user
            {
                set_side_owner(&mut tx, &info, &item, Some(&u.id)).await?;
            }
            // An adopted table may fill columns itself (defaults, triggers): what it stored is
            // the row, and what the permission accepted must still hold for it.
            let row = if info.adopted {
                let stored = row_by_key(&mut tx, &info, &cols, tenant, &key, false)
                    .await?
                    .ok_or_else(|| StoreError::internal("an inserted row is not there"))?;
                let accepted = match &access_c {
                    Access::All => true,
                    Access::Grants(g) => {
                        g.iter().any(|g| g.matches(&stored))
                            && sql_matches(&mut tx, &info, &cols, &key, Some(&access_c)).await?
                    }
                };
                if !accepted {
                    return Err(StoreError::Forbidden(format!(
                        "you may not create this item of `{slug}`"
                    )));
                }
                stored
            } else {
                row
            };
            let activity =
                record_activity(&mut tx, subject, "item.create", Some(slug), Some(&item)).await?;
            let data = Json::Object(row.clone());
            record_revision(
                &mut tx,
                subject,
                activity,
                slug,
                &item,
                Some(&data),
                Some(&data),
            )
            .await?;
            let event = crate::outbox::record(
                &mut tx,
                subject,
                slug,
                workeros_core::EventAction::Create,
                item,
                Some(data),
                None,
                at,
            )
            .await?;
            events.push(event);
            rows.push(row);
        }
        let read = match access(&mut tx, subject, &info, Action::Read, at).await {
            Ok(a) => Some(a),
            Err(StoreError::Forbidden(_)) => None,
            Err(e) => return Err(e),
        };
        tx.commit().await?;
        self.deliver(&events).await;
        let shown: Vec<_> = rows
            .into_iter()
            .map(|r| visible(read.as_ref(), &cols, r))
            .collect();
        Ok(if many {
            Written::Many(shown)
        } else {
            Written::One(shown.into_iter().next().unwrap_or_default())
        })
    }

    /// Finds a create grant that accepts `body`; returns the column values and the stored row.
    #[allow(clippy::too_many_arguments)]
    fn accept_create(
        &self,
        subject: &Subject,
        info: &CollectionInfo,
        cols: &[Col],
        access: &Access,
        body: &Map<String, Json>,
        key: &Key,
        at: OffsetDateTime,
        d: Dialect,
    ) -> Result<(Sets, Map<String, Json>), StoreError> {
        // Unknown and system keys are refused whoever asks.
        for k in body.keys() {
            body_col(cols, k)?;
        }
        let build = |presets: &Map<String, Json>| -> Result<(Sets, Map<String, Json>), StoreError> {
            let sets = sets_of(cols, body, presets, d)?;
            let mut row = Map::new();
            for c in cols {
                let v = match c.role {
                    Role::Key => key.wire.clone(),
                    Role::CreatedAt | Role::UpdatedAt => instant_wire(c.ty, at),
                    Role::Owner | Role::OwnerSide => subject
                        .user
                        .as_ref()
                        .map_or(Json::Null, |u| Json::String(u.id.clone())),
                    Role::Field => sets
                        .iter()
                        .find(|(k, _, _)| *k == c.key)
                        .map_or(Json::Null, |(_, _, conv)| conv.wire.clone()),
                };
                row.insert(c.key.clone(), v);
            }
            for f in info.fields.iter().filter(|f| f.required) {
                if row.get(f.name.as_str()).is_none_or(Json::is_null) {
                    return Err(StoreError::validation(
                        format!("field `{}` is required", f.name.as_str()),
                        Some(f.name.as_str()),
                    ));
                }
            }
            Ok((sets, row))
        };
        let grants = match access {
            Access::All => return build(&Map::new()),
            Access::Grants(g) => g,
        };
        first_accepting(
            grants.iter(),
            body,
            cols,
            subject,
            at,
            info.slug.as_str(),
            Action::Create,
            build,
        )
    }
}

/// The key of a new item: a fresh UUIDv7 for managed collections; for an adopted table the
/// body's primary key (taken out of the body), generated only for a uuid `id` left out.
fn new_key(
    info: &CollectionInfo,
    key_c: &Col,
    body: &mut Map<String, Json>,
    d: Dialect,
) -> Result<Key, StoreError> {
    if !info.adopted {
        return Ok(Key::uuid(uuid::Uuid::now_v7(), d));
    }
    let given = body.remove(&key_c.key).filter(|v| !v.is_null());
    match given {
        Some(v) => {
            let c = convert(key_c, key_c.ty, &v, d)?;
            Ok(Key {
                value: c.value,
                wire: c.wire,
            })
        }
        None if key_c.name == "id" && key_c.ty == FieldType::Uuid => {
            Ok(Key::uuid(uuid::Uuid::now_v7(), d))
        }
        None => Err(StoreError::validation(
            format!("primary key `{}` is required in the body", key_c.key),
            Some(&key_c.key),
        )),
    }
}

/// `at` in the storage of an instant column: a timestamp, or Unix milliseconds for an adopted
/// integer column.
fn instant_value(t: FieldType, at: OffsetDateTime, d: Dialect) -> sea_query::Value {
    match t {
        FieldType::Integer => sea_query::Value::BigInt(Some(unix_ms(at))),
        _ => crate::value::ts_value(at, d),
    }
}

/// `at` as an instant column reads back.
fn instant_wire(t: FieldType, at: OffsetDateTime) -> Json {
    match t {
        FieldType::Integer => Json::from(unix_ms(at)),
        _ => Json::String(rfc3339(at)),
    }
}

fn unix_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The subject's id as the owner column stores it (a uuid column needs a uuid user id).
fn owner_value(c: &Col, subject: &Subject, d: Dialect) -> Result<sea_query::Value, StoreError> {
    let id = subject.user.as_ref().map(|u| u.id.as_str());
    match (c.ty, id) {
        (FieldType::Uuid, None) => Ok(crate::value::uuid_null(d)),
        (FieldType::Uuid, Some(id)) => uuid::Uuid::try_parse(id)
            .map(|u| crate::value::uuid_value(u, d))
            .map_err(|_| {
                StoreError::validation(
                    format!(
                        "the owner column `{}` holds uuids; this user's id is not one",
                        c.column
                    ),
                    Some("ownerId"),
                )
            }),
        (_, id) => Ok(sea_query::Value::String(id.map(str::to_owned))),
    }
}

/// Records (or with `None` forgets) the owner of an adopted item in `item_ownership`.
async fn set_side_owner(
    tx: &mut Tx,
    info: &CollectionInfo,
    item: &str,
    owner: Option<&str>,
) -> Result<(), StoreError> {
    let scope = |q: &mut sea_query::DeleteStatement| {
        q.from_table(Alias::new("item_ownership"))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(workeros_core::DEFAULT_TENANT))
            .and_where(Expr::col(Alias::new("collection")).eq(info.slug.as_str()))
            .and_where(Expr::col(Alias::new("item_id")).eq(item));
    };
    let mut del = Query::delete();
    scope(&mut del);
    tx.execute(&del).await?;
    if let Some(owner) = owner {
        tx.execute(
            Query::insert()
                .into_table(Alias::new("item_ownership"))
                .columns(["tenant_id", "collection", "item_id", "owner_id"].map(Alias::new))
                .values([
                    Expr::val(workeros_core::DEFAULT_TENANT),
                    Expr::val(info.slug.as_str()),
                    Expr::val(item),
                    Expr::val(owner),
                ])
                .map_err(StoreError::internal)?,
        )
        .await?;
    }
    Ok(())
}

/// A written row as the subject may read it: masked by its read grants, or only its key when it
/// may not read the row.
fn visible(read: Option<&Access>, cols: &[Col], row: Map<String, Json>) -> Map<String, Json> {
    match read {
        Some(Access::All) => row,
        Some(a @ Access::Grants(g)) if g.iter().any(|g| g.matches(&row)) => a.mask(cols, row),
        _ => {
            let mut m = Map::new();
            if let Some(k) = cols.iter().find(|c| c.role == Role::Key)
                && let Some(id) = row.get(&k.key)
            {
                m.insert(k.key.clone(), id.clone());
            }
            m
        }
    }
}

/// For an adopted table: whether the row keyed `key` matches `access`'s grants in SQL (on the
/// stored values). Managed tables hold only values their fields decode, where the matcher and
/// SQL agree, so for them (and for all access) this is `true` without a query.
async fn sql_matches(
    tx: &mut Tx,
    info: &CollectionInfo,
    cols: &[Col],
    key: &Key,
    access: Option<&Access>,
) -> Result<bool, StoreError> {
    let Some(access) = access else {
        return Ok(false);
    };
    if !info.adopted {
        return Ok(true);
    }
    let Some(cond) = access.condition(tx.dialect())? else {
        return Ok(true);
    };
    let mut q = Query::select();
    q.expr(Expr::cust("1"))
        .from(Alias::new(info.physical_table.as_str()))
        .and_where(key.condition(cols)?)
        .and_where(cond);
    Ok(!tx.fetch_all(&q).await?.is_empty())
}

/// Reads one row in its wire form (locked on PostgreSQL when `lock`); `None` when missing.
pub(crate) async fn row_by_key(
    tx: &mut Tx,
    info: &CollectionInfo,
    cols: &[Col],
    tenant: &str,
    key: &Key,
    lock: bool,
) -> Result<Option<Map<String, Json>>, StoreError> {
    let d = tx.dialect();
    let mut q = select_of(info, cols, d);
    q.and_where(key.condition(cols)?);
    if let Some(t) = tenant_scope(info, tenant) {
        q.and_where(t);
    }
    if lock && d == Dialect::Postgres {
        q.lock_exclusive();
    }
    let rows = tx.fetch_all(&q).await?;
    rows.iter()
        .next()
        .map(|r| decode_row(info, r, cols))
        .transpose()
}

impl Store {
    /// The row an update or delete acts on: 404 when it is missing or the subject may not read it
    /// (the same answer), 403 when it may read it but no `action` permission matches it.
    #[allow(clippy::too_many_arguments)]
    async fn target(
        &self,
        tx: &mut Tx,
        subject: &Subject,
        info: &CollectionInfo,
        cols: &[Col],
        id: &str,
        action: Action,
        at: OffsetDateTime,
    ) -> Result<(Key, Map<String, Json>, Access, Option<Access>), StoreError> {
        let slug = info.slug.as_str();
        let key = Key::parse(id, info.key_type(), tx.dialect())
            .ok_or_else(|| item_not_found(slug, id))?;
        let tenant = subject.tenant_id();
        let row = row_by_key(tx, info, cols, tenant, &key, true)
            .await?
            .ok_or_else(|| item_not_found(slug, id))?;
        let read = match access(tx, subject, info, Action::Read, at).await {
            Ok(a) => Some(a),
            Err(StoreError::Forbidden(_)) => None,
            Err(e) => return Err(e),
        };
        let readable = match &read {
            Some(Access::All) => true,
            Some(Access::Grants(g)) => g.iter().any(|g| g.matches(&row)),
            None => false,
        };
        // An adopted table's row may hold what its fields do not decode (read as null): the
        // grants must also hold in SQL, on the stored values, as they do for lists.
        if !readable || !sql_matches(tx, info, cols, &key, read.as_ref()).await? {
            return Err(item_not_found(slug, id));
        }
        let act = access(tx, subject, info, action, at).await?;
        let acts = match &act {
            Access::All => true,
            Access::Grants(g) => g.iter().any(|g| g.matches(&row)),
        };
        if !acts || !sql_matches(tx, info, cols, &key, Some(&act)).await? {
            return Err(StoreError::Forbidden(format!(
                "you may not {} this item of `{slug}`",
                action.as_str()
            )));
        }
        Ok((key, row, act, read))
    }

    /// Updates an item (`PATCH /api/items/:slug/:id`). The row must be readable (else 404) and
    /// match an update permission (else 403); the changed row must still match that permission's
    /// filter (no moving a row out of the subject's scope) and pass its validation rule.
    pub async fn update_item(
        &self,
        subject: &Subject,
        slug: &str,
        id: &str,
        patch: Map<String, Json>,
    ) -> Result<Map<String, Json>, StoreError> {
        let tenant = subject.tenant_id();
        let mut tx = self.db().begin().await?;
        let d = tx.dialect();
        let info = load_active(&mut tx, tenant, slug).await?;
        let at = now();
        let cols = columns(&info);
        let (key, old, act, read) = self
            .target(&mut tx, subject, &info, &cols, id, Action::Update, at)
            .await?;
        let updated = cols.iter().find(|c| c.role == Role::UpdatedAt);
        for k in patch.keys() {
            body_col(&cols, k)?;
        }
        let apply = |presets: &Map<String, Json>| -> Result<(Sets, Map<String, Json>), StoreError> {
            let sets = sets_of(&cols, &patch, presets, d)?;
            let mut row = old.clone();
            for (key, _, conv) in &sets {
                row.insert(key.clone(), conv.wire.clone());
            }
            if let Some(c) = updated {
                row.insert(c.key.clone(), instant_wire(c.ty, at));
            }
            for f in info.fields.iter().filter(|f| f.required) {
                if row.get(f.name.as_str()).is_none_or(Json::is_null) {
                    return Err(StoreError::validation(
                        format!("field `{}` is required", f.name.as_str()),
                        Some(f.name.as_str()),
                    ));
                }
            }
            Ok((sets, row))
        };
        let (sets, new) = match &act {
            Access::All => apply(&Map::new())?,
            Access::Grants(grants) => first_accepting(
                grants.iter().filter(|g| g.matches(&old)),
                &patch,
                &cols,
                subject,
                at,
                slug,
                Action::Update,
                apply,
            )?,
        };
        self.check_relations(&mut tx, tenant, &info, &sets).await?;
        let mut update = Query::update();
        update.table(Alias::new(info.physical_table.as_str()));
        if let Some(c) = updated {
            update.value(Alias::new(c.column.as_str()), instant_value(c.ty, at, d));
        }
        for (_, column, conv) in &sets {
            update.value(Alias::new(column.as_str()), conv.value.clone());
        }
        update.and_where(key.condition(&cols)?);
        if let Some(t) = tenant_scope(&info, tenant) {
            update.and_where(t);
        }
        let item = key.text();
        let new = if sets.is_empty() && updated.is_none() {
            new
        } else {
            tx.execute(&update).await?;
            if info.adopted {
                row_by_key(&mut tx, &info, &cols, tenant, &key, false)
                    .await?
                    .ok_or_else(|| StoreError::internal("an updated row is not there"))?
            } else {
                new
            }
        };
        let activity =
            record_activity(&mut tx, subject, "item.update", Some(slug), Some(&item)).await?;
        let delta: Map<String, Json> = sets
            .iter()
            .map(|(k, _, conv)| (k.clone(), conv.wire.clone()))
            .collect();
        let data = Json::Object(new.clone());
        record_revision(
            &mut tx,
            subject,
            activity,
            slug,
            &item,
            Some(&data),
            Some(&Json::Object(delta)),
        )
        .await?;
        let event = crate::outbox::record(
            &mut tx,
            subject,
            slug,
            workeros_core::EventAction::Update,
            item,
            Some(data),
            Some(Json::Object(old)),
            at,
        )
        .await?;
        tx.commit().await?;
        self.deliver(std::slice::from_ref(&event)).await;
        Ok(visible(read.as_ref(), &cols, new))
    }

    /// Deletes an item (`DELETE /api/items/:slug/:id`): 404 when missing or unreadable, 403 when
    /// readable but no delete permission matches it.
    pub async fn delete_item(
        &self,
        subject: &Subject,
        slug: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        let tenant = subject.tenant_id();
        let mut tx = self.db().begin().await?;
        let info = load_active(&mut tx, tenant, slug).await?;
        let at = now();
        let cols = columns(&info);
        let (key, old, _, _) = self
            .target(&mut tx, subject, &info, &cols, id, Action::Delete, at)
            .await?;
        let mut delete = Query::delete();
        delete
            .from_table(Alias::new(info.physical_table.as_str()))
            .and_where(key.condition(&cols)?);
        if let Some(t) = tenant_scope(&info, tenant) {
            delete.and_where(t);
        }
        tx.execute(&delete).await?;
        let item = key.text();
        if cols.iter().any(|c| c.role == Role::OwnerSide) {
            set_side_owner(&mut tx, &info, &item, None).await?;
        }
        record_activity(&mut tx, subject, "item.delete", Some(slug), Some(&item)).await?;
        let event = crate::outbox::record(
            &mut tx,
            subject,
            slug,
            workeros_core::EventAction::Delete,
            item,
            None,
            Some(Json::Object(old)),
            at,
        )
        .await?;
        tx.commit().await?;
        self.deliver(std::slice::from_ref(&event)).await;
        Ok(())
    }
}
