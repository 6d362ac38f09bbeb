//! What a filter is checked against: the fields of a collection as one subject sees them.

use crate::ast::Ident;
use crate::error::DslError;
use serde_json::{Map, Value as Json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use workeros_core::FieldType;

/// The value type of a field as the DSL sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// Text (`text`, `longtext`).
    Text,
    /// 64-bit integers.
    Integer,
    /// Doubles.
    Number,
    /// Booleans.
    Boolean,
    /// Any JSON (`json`, `relation_many`): null and empty checks only.
    Json,
    /// Instants with microsecond precision.
    Timestamp,
    /// UUIDs (`uuid`, and `relation` to a collection keyed by uuid).
    Uuid,
}

impl ValueKind {
    /// Every kind.
    pub const ALL: [ValueKind; 7] = [
        ValueKind::Text,
        ValueKind::Integer,
        ValueKind::Number,
        ValueKind::Boolean,
        ValueKind::Json,
        ValueKind::Timestamp,
        ValueKind::Uuid,
    ];
}

impl From<FieldType> for ValueKind {
    /// The kind of a field type. A `relation` is taken as keyed by uuid (the key type of managed
    /// collections); a host whose relation targets another key type sets the kind itself.
    fn from(t: FieldType) -> Self {
        match t {
            FieldType::Text | FieldType::Longtext => ValueKind::Text,
            FieldType::Integer => ValueKind::Integer,
            FieldType::Number => ValueKind::Number,
            FieldType::Boolean => ValueKind::Boolean,
            FieldType::Json | FieldType::RelationMany => ValueKind::Json,
            FieldType::Timestamp => ValueKind::Timestamp,
            FieldType::Uuid | FieldType::Relation => ValueKind::Uuid,
        }
    }
}

/// Where a field's value lives in SQL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// A column of the collection's table, by physical name (trusted: validated by whoever built
    /// the schema). It is written unqualified unless `table` is set.
    Column {
        /// The table to qualify the column with, if any.
        table: Option<String>,
        /// The physical column.
        column: String,
    },
    /// The owner of an adopted row, kept in a side table (`item_ownership`): the field compiles to
    /// a correlated scalar subquery, so null semantics stay exact (no row → null).
    Owner(OwnerLookup),
}

/// How to find the owner of a row of an adopted collection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OwnerLookup {
    /// The side table, usually `item_ownership`.
    pub table: String,
    /// The side table's schema (`None`: the table's name alone).
    pub table_schema: Option<String>,
    /// Its column naming the collection.
    pub collection_column: String,
    /// Its column holding the item's primary key as text.
    pub item_column: String,
    /// Its column holding the owner.
    pub owner_column: String,
    /// The collection slug to match (bound as a value).
    pub collection: String,
    /// An extra `(column, value)` the side-table row must have (the tenant; bound as a value),
    /// so the lookup is one row and can use the side table's key.
    pub scope: Option<(String, String)>,
    /// The table (or alias) of the outer query.
    pub outer_table: String,
    /// The primary key column of the outer table.
    pub outer_pk: String,
}

/// The alias of an owner lookup's side table inside its subquery.
const SIDE_ALIAS: &str = "workeros_owner";

impl OwnerLookup {
    /// The correlated subquery that reads the owner of the outer row (null when none is
    /// recorded), with the collection and scope values bound. Reads of an adopted collection
    /// select this; filters compile to the same statement.
    pub fn subquery(&self) -> sea_query::Expr {
        let scope = self
            .scope
            .as_ref()
            .map(|(_, v)| sea_query::Expr::val(v.as_str()));
        self.subquery_with(scope, sea_query::Expr::val(self.collection.as_str()))
    }

    /// [`subquery`](Self::subquery) with the scope and collection values given (the compiler
    /// passes its own, recorded in the order they appear).
    pub(crate) fn subquery_with(
        &self,
        scope: Option<sea_query::Expr>,
        collection: sea_query::Expr,
    ) -> sea_query::Expr {
        use sea_query::{Alias, Expr, ExprTrait, Query, SubQueryStatement, TableRef};
        // The side table under its own alias, so its columns never resolve to an outer table
        // of the same name.
        let alias = || Alias::new(SIDE_ALIAS);
        let side = |c: &str| Expr::col((alias(), Alias::new(c)));
        let outer_pk = Expr::col((Alias::new(&self.outer_table), Alias::new(&self.outer_pk)))
            .cast_as(Alias::new("TEXT"));
        let table: TableRef = match &self.table_schema {
            Some(schema) => (Alias::new(schema), Alias::new(&self.table)).into(),
            None => Alias::new(&self.table).into(),
        };
        let mut sub = Query::select();
        sub.expr(side(&self.owner_column)).from_as(table, alias());
        if let (Some((column, _)), Some(v)) = (&self.scope, scope) {
            sub.and_where(side(column).eq(v));
        }
        sub.and_where(side(&self.collection_column).eq(collection))
            .and_where(side(&self.item_column).eq(outer_pk));
        Expr::SubQuery(None, Box::new(SubQueryStatement::SelectStatement(sub)))
    }
}

/// One field as the DSL sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldSpec {
    /// The field's position in its schema (set when added), for indexed rows.
    pub(crate) slot: usize,
    pub(crate) name: Ident,
    pub(crate) kind: ValueKind,
    pub(crate) source: Source,
    pub(crate) key: Arc<str>,
    pub(crate) readable: bool,
}

impl FieldSpec {
    /// A readable field stored in the column `name` and found in rows under the key `name`.
    pub fn new(name: &str, kind: ValueKind) -> Result<Self, DslError> {
        let name = Ident::new(name)?;
        Ok(Self {
            slot: 0,
            source: Source::Column {
                table: None,
                column: name.as_str().to_owned(),
            },
            key: name.as_str().into(),
            name,
            kind,
            readable: true,
        })
    }

    /// The same field stored in physical column `column`.
    pub fn column(mut self, column: impl Into<String>) -> Self {
        self.source = Source::Column {
            table: None,
            column: column.into(),
        };
        self
    }

    /// The same field with its value in SQL found through `source`.
    pub fn source(mut self, source: Source) -> Self {
        self.source = source;
        self
    }

    /// The same field found in matcher rows under `key` (the wire name, such as `createdAt`).
    pub fn key(mut self, key: impl AsRef<str>) -> Self {
        self.key = key.as_ref().into();
        self
    }

    /// The same field, readable or not by the subject. Filtering on an unreadable field is refused.
    pub fn readable(mut self, readable: bool) -> Self {
        self.readable = readable;
        self
    }

    /// The logical name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The kind.
    pub fn kind(&self) -> ValueKind {
        self.kind
    }

    /// Where the value lives in SQL.
    pub fn sql_source(&self) -> &Source {
        &self.source
    }

    /// The key in matcher rows.
    pub fn row_key(&self) -> &str {
        &self.key
    }

    /// Whether the subject may read (and so filter on) it.
    pub fn is_readable(&self) -> bool {
        self.readable
    }
}

/// The fields a filter may name, with aliases (`created_at` and `createdAt` naming one field).
#[derive(Debug, Clone)]
pub struct Schema {
    /// Identifies this schema's field layout (clones share it; any change makes a new one).
    pub(crate) id: u64,
    fields: Vec<Arc<FieldSpec>>,
    names: rustc_hash::FxHashMap<Box<str>, usize>,
}

static NEXT_SCHEMA: AtomicU64 = AtomicU64::new(1);

fn next_id() -> u64 {
    NEXT_SCHEMA.fetch_add(1, Ordering::Relaxed)
}

impl Default for Schema {
    fn default() -> Self {
        Self {
            id: next_id(),
            fields: Vec::new(),
            names: rustc_hash::FxHashMap::default(),
        }
    }
}

/// A row resolved against a schema once (one decoded cell per field: text borrowed, numbers,
/// instants and uuids parsed), so that many filters checked against the same schema can be
/// matched against it without looking keys up or parsing again: what the realtime hub does with
/// one event and many subscribers. Filters checked against another schema still match it, by key.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    pub(crate) map: &'a Map<String, Json>,
    pub(crate) schema: u64,
    pub(crate) cells: Vec<crate::matcher::Cell<'a>>,
}

pub(crate) static NULL: Json = Json::Null;

impl Schema {
    /// An empty schema.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resolves `map` (a row in its wire form) against this schema; see [`Row`].
    pub fn row<'a>(&self, map: &'a Map<String, Json>) -> Row<'a> {
        Row {
            map,
            schema: self.id,
            cells: self
                .fields
                .iter()
                .map(|f| crate::matcher::cell(f.kind, map.get(&*f.key).unwrap_or(&NULL)))
                .collect(),
        }
    }

    /// Adds a field; its name must be new.
    pub fn add(&mut self, mut spec: FieldSpec) -> Result<&mut Self, DslError> {
        let name = spec.name.as_str();
        if self.names.contains_key(name) {
            return Err(DslError::new(
                crate::ErrorKind::UnknownField,
                format!("field `{name}` is defined twice"),
                crate::Loc::None,
            ));
        }
        self.names.insert(name.into(), self.fields.len());
        spec.slot = self.fields.len();
        self.fields.push(Arc::new(spec));
        self.id = next_id();
        Ok(self)
    }

    /// Adds `alias` as another name of the existing field `target`.
    pub fn alias(&mut self, alias: &str, target: &str) -> Result<&mut Self, DslError> {
        let alias_ident = Ident::new(alias)?;
        let Some(&idx) = self.names.get(target) else {
            return Err(DslError::new(
                crate::ErrorKind::UnknownField,
                format!("alias `{alias}` names unknown field `{target}`"),
                crate::Loc::None,
            ));
        };
        if self.names.contains_key(alias) {
            return Err(DslError::new(
                crate::ErrorKind::UnknownField,
                format!("field `{alias}` is defined twice"),
                crate::Loc::None,
            ));
        }
        self.names.insert(alias_ident.as_str().into(), idx);
        self.id = next_id();
        Ok(self)
    }

    /// A schema of readable plain columns, from `(name, kind)` pairs.
    pub fn of<'a>(
        fields: impl IntoIterator<Item = (&'a str, ValueKind)>,
    ) -> Result<Self, DslError> {
        let mut s = Self::new();
        for (name, kind) in fields {
            s.add(FieldSpec::new(name, kind)?)?;
        }
        Ok(s)
    }

    /// The field named (or aliased) `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<FieldSpec>> {
        self.names.get(name).and_then(|&i| self.fields.get(i))
    }

    /// The fields, without aliases.
    pub fn fields(&self) -> impl Iterator<Item = &FieldSpec> {
        self.fields.iter().map(|f| &**f)
    }
}
