//! Reading the catalogs: tables, columns, primary keys and foreign keys, on PostgreSQL (scoped to
//! the host schema) and SQLite, behind one trait. Every catalog query binds the table name;
//! names come back exactly as the database has them.

use crate::AdoptError;
use async_trait::async_trait;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
use sqlx::Row;
use workeros_store::{Db, DbPool};

/// What kind of relation a catalog entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    /// A base table.
    Table,
    /// A view (or materialized view).
    View,
    /// A partitioned table (PostgreSQL).
    Partitioned,
    /// A foreign or virtual table.
    Foreign,
}

/// A relation as the catalog lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTable {
    /// Its name, verbatim.
    pub name: String,
    /// Its kind.
    pub kind: TableKind,
}

/// A column as the catalog lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawColumn {
    /// Its name, verbatim.
    pub name: String,
    /// Its declared type (PostgreSQL's `format_type`, SQLite's declared type).
    pub declared: String,
    /// Whether it accepts NULL.
    pub nullable: bool,
    /// Whether it has a default (so an insert may omit it).
    pub has_default: bool,
}

/// A foreign key constraint, its columns in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawForeignKey {
    /// The constraint's name (SQLite: its id).
    pub name: String,
    /// The referencing columns, in constraint order.
    pub columns: Vec<String>,
    /// The referenced table.
    pub references_table: String,
    /// The referenced columns, in constraint order.
    pub references_columns: Vec<String>,
}

/// Reads one database's catalog.
#[async_trait]
pub trait Introspector: Send + Sync {
    /// Every relation of the host's schema (PostgreSQL), partitions excluded.
    async fn tables(&self) -> Result<Vec<RawTable>, AdoptError>;
    /// The columns of `table`, in order; empty when there is no such table.
    async fn columns(&self, table: &str) -> Result<Vec<RawColumn>, AdoptError>;
    /// The primary key columns of `table`, in key order; empty when it has none.
    async fn primary_key(&self, table: &str) -> Result<Vec<String>, AdoptError>;
    /// The foreign keys of `table`.
    async fn foreign_keys(&self, table: &str) -> Result<Vec<RawForeignKey>, AdoptError>;
}

/// The introspector of `db`'s dialect, over the host's tables (on PostgreSQL its host schema,
/// [`Names::host_schema`](workeros_store::Names::host_schema)).
pub fn introspector(db: &Db) -> Box<dyn Introspector> {
    match db.pool() {
        #[cfg(feature = "postgres")]
        DbPool::Postgres(pool) => Box::new(Postgres {
            pool: pool.clone(),
            schema: db.names().host_schema().unwrap_or("public").to_owned(),
        }),
        #[cfg(feature = "sqlite")]
        DbPool::Sqlite(pool) => Box::new(Sqlite(pool.clone())),
        #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
        DbPool::NoDriver(n) => n.absurd(),
    }
}

#[cfg(any(feature = "postgres", feature = "sqlite"))]
fn db_err(e: sqlx::Error) -> AdoptError {
    AdoptError::Store(workeros_store::StoreError::from(e))
}

/// PostgreSQL, through `pg_catalog`: the tables of one schema (the host's).
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
#[derive(Debug, Clone)]
pub struct Postgres {
    /// The pool.
    pub pool: sqlx::PgPool,
    /// The schema whose tables are offered (the host schema of the store's database).
    pub schema: String,
}

#[cfg(feature = "postgres")]
#[async_trait]
impl Introspector for Postgres {
    async fn tables(&self) -> Result<Vec<RawTable>, AdoptError> {
        let rows = sqlx::query(
            "SELECT c.relname::text, c.relkind::text FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'v', 'm', 'p', 'f') \
             AND NOT c.relispartition ORDER BY c.relname",
        )
        .bind(&self.schema)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get(1).map_err(db_err)?;
                Ok(RawTable {
                    name: r.try_get(0).map_err(db_err)?,
                    kind: match kind.as_str() {
                        "r" => TableKind::Table,
                        "v" | "m" => TableKind::View,
                        "p" => TableKind::Partitioned,
                        _ => TableKind::Foreign,
                    },
                })
            })
            .collect()
    }

    async fn columns(&self, table: &str) -> Result<Vec<RawColumn>, AdoptError> {
        let rows = sqlx::query(
            "SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), \
             NOT a.attnotnull, (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''), \
             t.typtype::text, t.typcategory::text \
             FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
             WHERE n.nspname = $2 AND c.relname = $1 \
             AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        )
        .bind(table)
        .bind(&self.schema)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let declared: String = r.try_get(1).map_err(db_err)?;
                let typtype: String = r.try_get(4).map_err(db_err)?;
                let category: String = r.try_get(5).map_err(db_err)?;
                // Domains and enums print as their own names; arrays end in `[]` already.
                let declared = match (typtype.as_str(), category.as_str()) {
                    ("d", _) => format!("domain {declared}"),
                    ("e", _) => format!("enum {declared}"),
                    (_, "A") if !declared.ends_with("[]") => format!("{declared}[]"),
                    _ => declared,
                };
                Ok(RawColumn {
                    name: r.try_get(0).map_err(db_err)?,
                    declared,
                    nullable: r.try_get(2).map_err(db_err)?,
                    has_default: r.try_get(3).map_err(db_err)?,
                })
            })
            .collect()
    }

    async fn primary_key(&self, table: &str) -> Result<Vec<String>, AdoptError> {
        let rows = sqlx::query(
            "SELECT a.attname::text FROM pg_catalog.pg_constraint con \
             JOIN pg_catalog.pg_class c ON c.oid = con.conrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord) \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
             WHERE con.contype = 'p' AND n.nspname = $2 AND c.relname = $1 \
             ORDER BY k.ord",
        )
        .bind(table)
        .bind(&self.schema)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(|r| r.try_get(0).map_err(db_err)).collect()
    }

    async fn foreign_keys(&self, table: &str) -> Result<Vec<RawForeignKey>, AdoptError> {
        let rows = sqlx::query(
            "SELECT con.conname::text, a.attname::text, fc.relname::text, fa.attname::text \
             FROM pg_catalog.pg_constraint con \
             JOIN pg_catalog.pg_class c ON c.oid = con.conrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_catalog.pg_class fc ON fc.oid = con.confrelid \
             JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace \
             CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY \
               AS k(attnum, fattnum, ord) \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
             JOIN pg_catalog.pg_attribute fa ON fa.attrelid = fc.oid AND fa.attnum = k.fattnum \
             WHERE con.contype = 'f' AND n.nspname = $2 AND c.relname = $1 \
             AND fn.nspname = $2 \
             ORDER BY con.conname, k.ord",
        )
        .bind(table)
        .bind(&self.schema)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let mut out: Vec<RawForeignKey> = Vec::new();
        for r in &rows {
            let name: String = r.try_get(0).map_err(db_err)?;
            let column: String = r.try_get(1).map_err(db_err)?;
            let target: String = r.try_get(2).map_err(db_err)?;
            let target_column: String = r.try_get(3).map_err(db_err)?;
            match out.last_mut() {
                Some(fk) if fk.name == name => {
                    fk.columns.push(column);
                    fk.references_columns.push(target_column);
                }
                _ => out.push(RawForeignKey {
                    name,
                    columns: vec![column],
                    references_table: target,
                    references_columns: vec![target_column],
                }),
            }
        }
        Ok(out)
    }
}

/// SQLite, through `sqlite_schema` and the table-valued pragmas.
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
#[derive(Debug, Clone)]
pub struct Sqlite(pub sqlx::SqlitePool);

#[cfg(feature = "sqlite")]
#[async_trait]
impl Introspector for Sqlite {
    async fn tables(&self) -> Result<Vec<RawTable>, AdoptError> {
        let rows = sqlx::query(
            "SELECT name, type, coalesce(sql, '') FROM sqlite_schema \
             WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
             ORDER BY name",
        )
        .fetch_all(&self.0)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get(1).map_err(db_err)?;
                let sql: String = r.try_get(2).map_err(db_err)?;
                Ok(RawTable {
                    name: r.try_get(0).map_err(db_err)?,
                    kind: if kind == "view" {
                        TableKind::View
                    } else if sql
                        .trim_start()
                        .get(..20)
                        .is_some_and(|s| s.eq_ignore_ascii_case("create virtual table"))
                    {
                        TableKind::Foreign
                    } else {
                        TableKind::Table
                    },
                })
            })
            .collect()
    }

    async fn columns(&self, table: &str) -> Result<Vec<RawColumn>, AdoptError> {
        let rows = sqlx::query(
            "SELECT name, type, \"notnull\", dflt_value IS NOT NULL, pk \
             FROM pragma_table_info(?1) ORDER BY cid",
        )
        .bind(table)
        .fetch_all(&self.0)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let notnull: i64 = r.try_get(2).map_err(db_err)?;
                let pk: i64 = r.try_get(4).map_err(db_err)?;
                let declared: String = r.try_get(1).map_err(db_err)?;
                Ok(RawColumn {
                    name: r.try_get(0).map_err(db_err)?,
                    // An INTEGER PRIMARY KEY is the rowid: SQLite assigns it.
                    has_default: r.try_get::<bool, _>(3).map_err(db_err)?
                        || (pk == 1 && declared.eq_ignore_ascii_case("integer")),
                    nullable: notnull == 0 && pk == 0,
                    declared,
                })
            })
            .collect()
    }

    async fn primary_key(&self, table: &str) -> Result<Vec<String>, AdoptError> {
        let rows = sqlx::query("SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk")
            .bind(table)
            .fetch_all(&self.0)
            .await
            .map_err(db_err)?;
        rows.iter().map(|r| r.try_get(0).map_err(db_err)).collect()
    }

    async fn foreign_keys(&self, table: &str) -> Result<Vec<RawForeignKey>, AdoptError> {
        let rows = sqlx::query(
            "SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1) \
             ORDER BY id, seq",
        )
        .bind(table)
        .fetch_all(&self.0)
        .await
        .map_err(db_err)?;
        let mut out: Vec<(i64, RawForeignKey)> = Vec::new();
        let mut unresolved: Vec<usize> = Vec::new();
        for r in &rows {
            let id: i64 = r.try_get(0).map_err(db_err)?;
            let target: String = r.try_get(1).map_err(db_err)?;
            let from: String = r.try_get(2).map_err(db_err)?;
            let to: Option<String> = r.try_get(3).map_err(db_err)?;
            let pos = match out.iter().position(|(i, _)| *i == id) {
                Some(p) => p,
                None => {
                    out.push((
                        id,
                        RawForeignKey {
                            name: id.to_string(),
                            columns: Vec::new(),
                            references_table: target,
                            references_columns: Vec::new(),
                        },
                    ));
                    out.len() - 1
                }
            };
            if let Some((_, fk)) = out.get_mut(pos) {
                fk.columns.push(from);
                match to {
                    Some(t) => fk.references_columns.push(t),
                    None => {
                        if !unresolved.contains(&pos) {
                            unresolved.push(pos);
                        }
                    }
                }
            }
        }
        // A NULL `to` means the parent's primary key.
        for pos in unresolved {
            if let Some((_, fk)) = out.get_mut(pos) {
                let pk = self.primary_key(&fk.references_table).await?;
                fk.references_columns = pk;
            }
        }
        Ok(out.into_iter().map(|(_, fk)| fk).collect())
    }
}
