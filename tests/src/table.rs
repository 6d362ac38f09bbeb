//! The DSL test table: an `id` and one column of every field type, created with the storage
//! types of `spec/store.md`, filled from wire-form JSON rows.

use crate::Backend;
use sea_query::{Alias, ColumnDef, Expr, Query, Table, Value};
use serde_json::{Map, Value as Json};
use workeros_core::FieldType;
use workeros_core::instant::rfc3339_micros;
use workeros_dsl::{Dialect, Schema, ValueKind, parse_timestamp};

/// The columns: name and field type.
pub const COLUMNS: &[(&str, FieldType)] = &[
    ("t", FieldType::Text),
    ("lt", FieldType::Longtext),
    ("i", FieldType::Integer),
    ("n", FieldType::Number),
    ("b", FieldType::Boolean),
    ("j", FieldType::Json),
    ("ts", FieldType::Timestamp),
    ("u", FieldType::Uuid),
    ("r", FieldType::Relation),
    ("rm", FieldType::RelationMany),
];

/// The table's name in every backend.
pub const TABLE: &str = "dsl_rows";

/// The storage type of a field type (`spec/store.md`): the store's own mapping.
pub fn storage_type(t: FieldType, d: Dialect) -> &'static str {
    workeros_store::storage_type(t, d)
}

/// The field type of column `name`.
pub fn field_type(name: &str) -> Option<FieldType> {
    COLUMNS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The DSL schema of the table.
pub fn schema() -> Schema {
    let mut s = Schema::of(COLUMNS.iter().map(|(n, t)| (*n, ValueKind::from(*t)))).unwrap();
    s.add(workeros_dsl::FieldSpec::new("id", ValueKind::Integer).unwrap())
        .unwrap();
    s
}

/// Creates the table (dropping an older one).
pub async fn create(b: &Backend) {
    b.ddl(
        &Table::drop()
            .table(Alias::new(TABLE))
            .if_exists()
            .to_owned(),
    )
    .await;
    let mut t = Table::create();
    t.table(Alias::new(TABLE)).col(
        ColumnDef::new(Alias::new("id"))
            .custom(Alias::new(if b.dialect() == Dialect::Postgres {
                "bigint"
            } else {
                "INTEGER"
            }))
            .not_null()
            .primary_key(),
    );
    for (name, ft) in COLUMNS {
        let mut col = ColumnDef::new(Alias::new(*name));
        col.custom(Alias::new(storage_type(*ft, b.dialect())));
        // Text columns on PostgreSQL get a linguistic collation (ICU English, where "a" < "B"), as
        // in a database created with a locale: the compiler must not depend on the collation.
        if b.dialect() == Dialect::Postgres && ValueKind::from(*ft) == ValueKind::Text {
            col.extra("COLLATE \"en-x-icu\"");
        }
        t.col(col);
    }
    b.ddl(&t).await;
}

/// The storage value of a wire value `v` of field type `t`.
pub fn cell(t: FieldType, v: &Json, d: Dialect) -> Value {
    let pg = d == Dialect::Postgres;
    let null = v.is_null();
    match ValueKind::from(t) {
        ValueKind::Text => Value::String(v.as_str().map(str::to_owned)),
        ValueKind::Integer => Value::BigInt(v.as_i64()),
        ValueKind::Number => Value::Double(v.as_f64()),
        ValueKind::Boolean if pg => Value::Bool(v.as_bool()),
        ValueKind::Boolean => Value::BigInt(v.as_bool().map(i64::from)),
        // JSON null is stored as SQL NULL; SQLite keeps compact serde_json text.
        ValueKind::Json if pg => Value::Json((!null).then(|| Box::new(v.clone()))),
        ValueKind::Json => Value::String((!null).then(|| v.to_string())),
        ValueKind::Timestamp => {
            let micros = v.as_str().and_then(parse_timestamp);
            if pg {
                Value::TimeDateTimeWithTimeZone(micros.and_then(|m| {
                    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(m) * 1000).ok()
                }))
            } else {
                Value::String(micros.and_then(rfc3339_micros))
            }
        }
        ValueKind::Uuid => {
            let u = v.as_str().and_then(|s| uuid::Uuid::try_parse(s).ok());
            if pg {
                Value::Uuid(u)
            } else {
                Value::String(u.map(|u| u.hyphenated().to_string()))
            }
        }
    }
}

/// Inserts `rows` (wire form, each with an integer `id`), in batches.
pub async fn insert(b: &Backend, rows: &[Map<String, Json>]) {
    for chunk in rows.chunks(50) {
        let mut q = Query::insert();
        q.into_table(Alias::new(TABLE)).columns(
            std::iter::once(Alias::new("id")).chain(COLUMNS.iter().map(|(n, _)| Alias::new(*n))),
        );
        for row in chunk {
            let id = row.get("id").and_then(Json::as_i64).expect("row id");
            let mut vals: Vec<Expr> = vec![Expr::val(id)];
            for (name, ft) in COLUMNS {
                vals.push(Expr::val(cell(
                    *ft,
                    row.get(*name).unwrap_or(&Json::Null),
                    b.dialect(),
                )));
            }
            q.values(vals).unwrap();
        }
        b.exec(&q).await;
    }
}

/// The ids of the rows where `cond` is TRUE, ascending.
pub async fn select_ids(b: &Backend, cond: Expr) -> Result<Vec<i64>, String> {
    let q = Query::select()
        .column(Alias::new("id"))
        .from(Alias::new(TABLE))
        .and_where(cond)
        .order_by(Alias::new("id"), sea_query::Order::Asc)
        .to_owned();
    b.ids(&q).await
}
