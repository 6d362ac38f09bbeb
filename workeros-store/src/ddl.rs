//! The physical side of managed collections: table and index names, storage types, the DDL that
//! creates and changes their tables, and the list of the store's own tables.

use crate::StoreError;
use crate::migrate::{ColumnKind, col};
use crate::names::Names;
use sea_query::{Alias, ColumnDef, Index, Table};
use sha2::{Digest, Sha256};
use workeros_core::{Field, FieldType, Slug};
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

/// The physical table of a managed collection: `c_<tenantPrefix12>_<slug>` (at most 63 bytes).
pub(crate) fn managed_table(tenant: &str, slug: &Slug) -> String {
    format!("c_{}_{}", tenant_prefix(tenant), slug.as_str())
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

pub(crate) fn field_column(f: &Field, d: Dialect) -> ColumnDef {
    let mut c = ColumnDef::new(Alias::new(f.name.as_str()));
    c.custom(Alias::new(storage_type(f.field_type, d)));
    c
}

/// The name of the unique index of `table.field`: short and deterministic whatever the lengths
/// (in the namespace: SQLite's index names are global to the database).
pub(crate) fn unique_index_name(names: &Names, table: &str, field: &str) -> String {
    let h = Sha256::digest(format!("{table}.{field}").as_bytes());
    let hex: String = h.iter().take(8).map(|b| format!("{b:02x}")).collect();
    names.index(&format!("uq_{hex}"))
}

/// The unique index of `field` of managed table `table`.
pub(crate) fn unique_index(
    names: &Names,
    table: &str,
    field: &str,
) -> sea_query::IndexCreateStatement {
    Index::create()
        .name(unique_index_name(names, table, field))
        .table(names.collection_table(table))
        .col(Alias::new(field))
        .unique()
        .to_owned()
}

/// The `CREATE TABLE` of a managed collection, in workeros's namespace.
pub(crate) fn create_table(
    names: &Names,
    table: &str,
    owner_scoped: bool,
    fields: &[Field],
) -> sea_query::TableCreateStatement {
    let d = names.dialect();
    let mut t = Table::create();
    t.table(names.collection_table(table))
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

/// A failed DDL statement: the transaction rolls back, nothing is half-made.
pub(crate) fn ddl_error(e: StoreError, slug: &str) -> StoreError {
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
        let pg = Names::new(Dialect::Postgres, Default::default(), None);
        let lite = Names::new(Dialect::Sqlite, Default::default(), None);
        assert_eq!(unique_index_name(&pg, &t, "x").len(), 19);
        assert_eq!(
            unique_index_name(&lite, &t, "x"),
            format!("workeros_{}", unique_index_name(&pg, &t, "x"))
        );
    }
}
