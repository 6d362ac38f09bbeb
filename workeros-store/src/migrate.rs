//! Migrations: the store's system tables, and the mechanism other crates use for theirs
//! ([`run`], [`Migration`], [`ColumnKind`], [`col`]).
//!
//! Each workeros crate that owns tables records its applied versions in `workeros_migrations`
//! (`component`, `version`). [`run`] applies the missing versions of one component inside one
//! write transaction that first takes a lock (`pg_advisory_xact_lock` on PostgreSQL; `BEGIN
//! IMMEDIATE` on SQLite), so several processes starting at once apply each version exactly once.

use crate::names::Names;
use crate::{Db, StoreError, Tx};
use sea_query::{Alias, ColumnDef, Expr, ExprTrait, Index, Query, Table, TableCreateStatement};
use workeros_dsl::Dialect;

/// A column kind of a system table, with its storage type per dialect (for crates that own
/// tables: `workeros-auth`, `workeros-events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// A UUID (`uuid` / `TEXT`).
    Uuid,
    /// Text (`text` / `TEXT`).
    Text,
    /// A boolean (`boolean` / `INTEGER` 0 or 1).
    Bool,
    /// JSON (`jsonb` / `TEXT`).
    Json,
    /// An instant (`timestamptz` / fixed-width RFC 3339 `TEXT`).
    Ts,
    /// A 64-bit integer.
    BigInt,
}

impl ColumnKind {
    /// The storage type in `d`.
    pub fn storage(self, d: Dialect) -> &'static str {
        match (d, self) {
            (Dialect::Postgres, ColumnKind::Uuid) => "uuid",
            (Dialect::Postgres, ColumnKind::Text) => "text",
            (Dialect::Postgres, ColumnKind::Bool) => "boolean",
            (Dialect::Postgres, ColumnKind::Json) => "jsonb",
            (Dialect::Postgres, ColumnKind::Ts) => "timestamptz",
            (Dialect::Postgres, ColumnKind::BigInt) => "bigint",
            (Dialect::Sqlite, ColumnKind::Bool | ColumnKind::BigInt) => "INTEGER",
            (Dialect::Sqlite, _) => "TEXT",
        }
    }
}

/// A column of a system table: `name` with the storage type of `kind` in `d`.
pub fn col(name: &str, kind: ColumnKind, d: Dialect) -> ColumnDef {
    let mut c = ColumnDef::new(Alias::new(name));
    c.custom(Alias::new(kind.storage(d)));
    c
}

/// An index `name` of system table `table` on `cols` (`IF NOT EXISTS`), unique or not, in
/// workeros's namespace: what a migration's `indexes` list.
pub fn index(
    names: &Names,
    name: &str,
    table: &str,
    cols: &[&str],
    unique: bool,
) -> sea_query::IndexCreateStatement {
    let mut i = Index::create();
    i.name(names.index(name))
        .table(names.table(table))
        .if_not_exists();
    for c in cols {
        i.col(Alias::new(*c));
    }
    if unique {
        i.unique();
    }
    i.to_owned()
}

/// One migration of a component: the tables and indexes a version creates, named in workeros's
/// namespace ([`Names`]).
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// The version (from 1, increasing).
    pub version: i64,
    /// The tables it creates (`IF NOT EXISTS`), each named with [`Names::table`].
    pub tables: fn(&Names) -> Vec<TableCreateStatement>,
    /// The indexes it creates (`IF NOT EXISTS`), each made with [`index`].
    pub indexes: fn(&Names) -> Vec<sea_query::IndexCreateStatement>,
    /// SQL it runs after them, for what sea-query cannot build (PostgreSQL functions and
    /// triggers): constant text with, at most, the namespace (validated by
    /// [`Namespace::new`](crate::Namespace::new)) in it; never formatted from input.
    pub statements: fn(&Names) -> Vec<String>,
}

/// [`Migration::statements`] of a migration that has none.
pub fn no_statements(_: &Names) -> Vec<String> {
    Vec::new()
}

/// v3: on PostgreSQL, a trigger announces each outbox row's id on the namespace's events channel
/// ([`Names::events_channel`]); the notification is sent at commit, never for a rolled-back
/// write.
fn store_v3_statements(names: &Names) -> Vec<String> {
    match names.dialect() {
        Dialect::Postgres => {
            let schema = names.quoted_schema();
            let channel = names.events_channel();
            vec![
                format!(
                    "CREATE OR REPLACE FUNCTION {schema}.events_notify() RETURNS trigger \
                     LANGUAGE plpgsql AS $$ BEGIN \
                     PERFORM pg_notify('{channel}', NEW.id::text); RETURN NULL; END $$"
                ),
                format!("DROP TRIGGER IF EXISTS events_notify ON {schema}.events"),
                format!(
                    "CREATE TRIGGER events_notify AFTER INSERT ON {schema}.events \
                     FOR EACH ROW EXECUTE FUNCTION {schema}.events_notify()"
                ),
            ]
        }
        Dialect::Sqlite => Vec::new(),
    }
}

fn no_tables(_: &Names) -> Vec<TableCreateStatement> {
    Vec::new()
}

fn no_indexes(_: &Names) -> Vec<sea_query::IndexCreateStatement> {
    Vec::new()
}

/// The lock key the migrations of every component serialise on (PostgreSQL advisory lock).
const MIGRATION_LOCK: i64 = 0x776f_726b_6572_6f73; // "workeros"

/// Applies the missing `migrations` of `component` (a crate that owns tables: `"auth"`,
/// `"events"`), in one transaction behind the same lock as the store's own, so several processes
/// starting at once apply each version exactly once. Returns the versions it applied.
pub async fn run(
    db: &Db,
    component: &str,
    migrations: &[Migration],
) -> Result<Vec<i64>, StoreError> {
    let mut tx = db.begin().await?;
    tx.lock(MIGRATION_LOCK).await?;
    let names = db.names().clone();
    let d = names.dialect();
    if d == Dialect::Postgres {
        // Everything workeros makes lives in its schema.
        tx.fixed(format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            names.quoted_schema()
        ))
        .await?;
    }
    tx.ddl(
        Table::create()
            .table(names.table("migrations"))
            .if_not_exists()
            .col(col("component", ColumnKind::Text, d).not_null())
            .col(col("version", ColumnKind::BigInt, d).not_null())
            .col(col("applied_at", ColumnKind::Ts, d).not_null())
            .primary_key(
                Index::create()
                    .col(Alias::new("component"))
                    .col(Alias::new("version")),
            ),
    )
    .await?;
    let applied = applied_versions(&mut tx, component).await?;
    let mut done = Vec::new();
    for m in migrations {
        if applied.contains(&m.version) {
            continue;
        }
        for t in (m.tables)(&names) {
            tx.ddl(&t).await?;
        }
        for i in (m.indexes)(&names) {
            tx.ddl(&i).await?;
        }
        for sql in (m.statements)(&names) {
            tx.fixed(sql).await?;
        }
        tx.execute(
            Query::insert()
                .into_table(names.table("migrations"))
                .columns([
                    Alias::new("component"),
                    Alias::new("version"),
                    Alias::new("applied_at"),
                ])
                .values([
                    Expr::val(component),
                    Expr::val(m.version),
                    Expr::val(crate::value::now_value(d)),
                ])
                .map_err(StoreError::internal)?,
        )
        .await?;
        done.push(m.version);
    }
    tx.commit().await?;
    if !done.is_empty() {
        tracing::info!(component, versions = ?done, "applied migrations");
    }
    Ok(done)
}

async fn applied_versions(tx: &mut Tx, component: &str) -> Result<Vec<i64>, StoreError> {
    let migrations = tx.table("migrations");
    let rows = tx
        .fetch_all(
            Query::select()
                .column(Alias::new("version"))
                .from(migrations)
                .and_where(Expr::col(Alias::new("component")).eq(component)),
        )
        .await?;
    crate::value::first_i64(&rows)
}

/// The store's migrations.
pub(crate) const STORE: &[Migration] = &[
    Migration {
        version: 1,
        tables: store_v1,
        indexes: store_v1_indexes,
        statements: no_statements,
    },
    Migration {
        version: 2,
        tables: store_v2,
        indexes: store_v2_indexes,
        statements: no_statements,
    },
    Migration {
        version: 3,
        tables: no_tables,
        indexes: no_indexes,
        statements: store_v3_statements,
    },
    Migration {
        version: 4,
        tables: store_v4,
        indexes: no_indexes,
        statements: store_v4_statements,
    },
];

/// v4: the outbox's consumers. `outbox_cursors` holds how far each durable consumer (webhook
/// dispatch, flows, event functions) has read; on PostgreSQL every event also records the id of
/// the transaction that wrote it (`txid`), so a consumer reads only events of transactions older
/// than every running one and never skips an event whose transaction commits late.
fn store_v4(names: &Names) -> Vec<TableCreateStatement> {
    let d = names.dialect();
    vec![
        Table::create()
            .table(names.table("outbox_cursors"))
            .if_not_exists()
            .col(
                col("consumer", ColumnKind::Text, d)
                    .not_null()
                    .primary_key(),
            )
            .col(col("txid", ColumnKind::BigInt, d).not_null())
            .col(col("seq", ColumnKind::BigInt, d).not_null())
            .to_owned(),
    ]
}

fn store_v4_statements(names: &Names) -> Vec<String> {
    match names.dialect() {
        Dialect::Postgres => {
            let schema = names.quoted_schema();
            vec![
                format!(
                    "ALTER TABLE {schema}.events ADD COLUMN IF NOT EXISTS txid bigint NOT NULL \
                     DEFAULT (pg_current_xact_id()::text)::bigint"
                ),
                format!(
                    "CREATE INDEX IF NOT EXISTS events_txid_seq ON {schema}.events (txid, seq)"
                ),
            ]
        }
        Dialect::Sqlite => Vec::new(),
    }
}

/// v2: one collection per table and tenant (two concurrent adoptions of a table cannot both
/// commit).
fn store_v2_indexes(names: &Names) -> Vec<sea_query::IndexCreateStatement> {
    vec![index(
        names,
        "collections_tenant_table",
        "collections",
        &["tenant_id", "physical_table"],
        true,
    )]
}

/// v2: what an adopted collection knows about its table (the key, the alias columns and their
/// types, the key types of its relations), one row per adopted collection.
fn store_v2(names: &Names) -> Vec<TableCreateStatement> {
    let d = names.dialect();
    vec![
        Table::create()
            .table(names.table("collection_adoptions"))
            .if_not_exists()
            .col(
                col("collection_id", ColumnKind::Uuid, d)
                    .not_null()
                    .primary_key(),
            )
            .col(col("pk_column", ColumnKind::Text, d).not_null())
            .col(col("pk_type", ColumnKind::Text, d).not_null())
            .col(col("created_at_column", ColumnKind::Text, d))
            .col(col("created_at_type", ColumnKind::Text, d))
            .col(col("updated_at_column", ColumnKind::Text, d))
            .col(col("updated_at_type", ColumnKind::Text, d))
            .col(col("owner_id_column", ColumnKind::Text, d))
            .col(col("owner_id_type", ColumnKind::Text, d))
            .col(col("relation_keys", ColumnKind::Json, d).not_null())
            .to_owned(),
    ]
}

fn store_v1(names: &Names) -> Vec<TableCreateStatement> {
    let d = names.dialect();
    let t = |name: &str| {
        let mut t = Table::create();
        t.table(names.table(name)).if_not_exists();
        t
    };
    let id = || {
        col("id", ColumnKind::Uuid, d)
            .not_null()
            .primary_key()
            .to_owned()
    };
    let tenant = || col("tenant_id", ColumnKind::Text, d).not_null().to_owned();
    let created = || col("created_at", ColumnKind::Ts, d).not_null().to_owned();
    let updated = || col("updated_at", ColumnKind::Ts, d).not_null().to_owned();
    vec![
        t("collections")
            .col(id())
            .col(tenant())
            .col(col("slug", ColumnKind::Text, d).not_null())
            .col(col("physical_table", ColumnKind::Text, d).not_null())
            .col(col("adopted", ColumnKind::Bool, d).not_null())
            .col(col("owner_scoped", ColumnKind::Bool, d).not_null())
            .col(col("fields", ColumnKind::Json, d).not_null())
            .col(col("status", ColumnKind::Text, d).not_null())
            .col(col("archived_at", ColumnKind::Ts, d))
            .col(created())
            .col(updated())
            .to_owned(),
        t("permissions")
            .col(id())
            .col(tenant())
            .col(col("role", ColumnKind::Text, d).not_null())
            .col(col("collection", ColumnKind::Text, d).not_null())
            .col(col("action", ColumnKind::Text, d).not_null())
            .col(col("filter", ColumnKind::Json, d))
            .col(col("fields", ColumnKind::Json, d))
            .col(col("validation", ColumnKind::Json, d))
            .col(col("presets", ColumnKind::Json, d))
            .col(created())
            .col(updated())
            .to_owned(),
        t("activity")
            .col(id())
            .col(tenant())
            .col(col("actor", ColumnKind::Text, d))
            .col(col("action", ColumnKind::Text, d).not_null())
            .col(col("collection", ColumnKind::Text, d))
            .col(col("item_id", ColumnKind::Text, d))
            .col(col("ip", ColumnKind::Text, d))
            .col(col("user_agent", ColumnKind::Text, d))
            .col(created())
            .to_owned(),
        t("revisions")
            .col(id())
            .col(tenant())
            .col(col("activity_id", ColumnKind::Uuid, d))
            .col(col("collection", ColumnKind::Text, d).not_null())
            .col(col("item_id", ColumnKind::Text, d).not_null())
            .col(col("data", ColumnKind::Json, d))
            .col(col("delta", ColumnKind::Json, d))
            .col(created())
            .to_owned(),
        t("item_ownership")
            .col(tenant())
            .col(col("collection", ColumnKind::Text, d).not_null())
            .col(col("item_id", ColumnKind::Text, d).not_null())
            .col(col("owner_id", ColumnKind::Text, d).not_null())
            .primary_key(
                Index::create()
                    .col(Alias::new("tenant_id"))
                    .col(Alias::new("collection"))
                    .col(Alias::new("item_id")),
            )
            .to_owned(),
        t("events")
            .col(
                ColumnDef::new(Alias::new("seq"))
                    .big_integer()
                    .not_null()
                    .auto_increment()
                    .primary_key(),
            )
            .col(col("id", ColumnKind::Uuid, d).not_null().unique_key())
            .col(tenant())
            .col(col("collection", ColumnKind::Text, d).not_null())
            .col(col("action", ColumnKind::Text, d).not_null())
            .col(col("item_id", ColumnKind::Text, d).not_null())
            .col(col("data", ColumnKind::Json, d))
            .col(col("previous", ColumnKind::Json, d))
            .col(col("actor", ColumnKind::Text, d))
            .col(created())
            .to_owned(),
    ]
}

fn store_v1_indexes(names: &Names) -> Vec<sea_query::IndexCreateStatement> {
    let idx = |name: &str, table: &str, cols: &[&str], unique: bool| {
        index(names, name, table, cols, unique)
    };
    vec![
        idx(
            "collections_tenant_slug",
            "collections",
            &["tenant_id", "slug"],
            true,
        ),
        idx(
            "permissions_lookup",
            "permissions",
            &["tenant_id", "collection", "action"],
            false,
        ),
        idx(
            "activity_tenant_time",
            "activity",
            &["tenant_id", "created_at"],
            false,
        ),
        idx(
            "revisions_item",
            "revisions",
            &["tenant_id", "collection", "item_id"],
            false,
        ),
    ]
}

/// Creates or upgrades the store's system tables (`collections`, `permissions`, `activity`,
/// `revisions`, `item_ownership`, `events`, …) in workeros's namespace (on PostgreSQL its schema
/// first). Idempotent, and safe when several processes start at once; returns the versions it
/// applied (empty when the database was current).
pub async fn migrate(db: &Db) -> Result<Vec<i64>, StoreError> {
    run(db, "store", STORE).await
}
