//! The store's system tables and the migrations that make them: [`SCHEMA`].
//!
//! | table | holds |
//! |---|---|
//! | `collections` | every collection: slug, table, fields, managed or adopted, status |
//! | `permissions` | rules per role, collection and action (filter, fields, validation, presets) |
//! | `activity` | who did what to which item, when |
//! | `revisions` | each item's data and delta after a change |
//! | `item_ownership` | the owner of each item of an owner-scoped collection without an owner column |
//! | `events` | the outbox: every committed change, in order (`seq`; on PostgreSQL with `txid`) |
//! | `collection_adoptions` | what an adopted collection knows about its table |
//! | `outbox_cursors` | how far each durable consumer of the outbox has read |

use crate::migrate::{ColumnKind, Component, Migration, NewColumn, col, index};
use crate::names::{Names, SystemTable};
use crate::{Db, StoreError};
use sea_query::{Alias, ColumnDef, Expr, Index, IndexCreateStatement, Table, TableCreateStatement};
use workeros_dsl::Dialect;

/// Every collection.
pub(crate) const COLLECTIONS: SystemTable = SystemTable::new("collections");
/// Permission rules.
pub(crate) const PERMISSIONS: SystemTable = SystemTable::new("permissions");
/// The activity log.
pub(crate) const ACTIVITY: SystemTable = SystemTable::new("activity");
/// Item revisions.
pub(crate) const REVISIONS: SystemTable = SystemTable::new("revisions");
/// Owners of items of owner-scoped collections without an owner column.
pub(crate) const ITEM_OWNERSHIP: SystemTable = SystemTable::new("item_ownership");
/// The event outbox.
pub(crate) const EVENTS: SystemTable = SystemTable::new("events");
/// Adopted collections' table facts.
pub(crate) const COLLECTION_ADOPTIONS: SystemTable = SystemTable::new("collection_adoptions");
/// The outbox consumers' positions.
pub(crate) const OUTBOX_CURSORS: SystemTable = SystemTable::new("outbox_cursors");

/// The store component: its system tables and migrations ([`crate::migrate::run`] applies them,
/// [`crate::migrate::export`] writes them as SQL).
pub const SCHEMA: Component = Component::new(
    "store",
    &[
        COLLECTIONS,
        PERMISSIONS,
        ACTIVITY,
        REVISIONS,
        ITEM_OWNERSHIP,
        EVENTS,
        COLLECTION_ADOPTIONS,
        OUTBOX_CURSORS,
    ],
    &[
        Migration::new(1).tables(store_v1).indexes(store_v1_indexes),
        Migration::new(2).tables(store_v2).indexes(store_v2_indexes),
        Migration::new(3).statements(store_v3_statements),
        Migration::new(4)
            .tables(store_v4)
            .columns(store_v4_columns)
            .indexes(store_v4_indexes),
        Migration::new(5)
            .columns(store_v5_columns)
            .indexes(store_v5_indexes),
    ],
);

/// Creates or upgrades the store's system tables ([`SCHEMA`]: `collections`,
/// `permissions`, `activity`, `revisions`, `item_ownership`, `events`, …) in workeros's namespace
/// (on PostgreSQL its schema first). Idempotent, and safe when several processes start at once;
/// returns the versions it applied (empty when the database was current).
pub async fn migrate(db: &Db) -> Result<Vec<i64>, StoreError> {
    crate::migrate::run(db, &SCHEMA).await
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

/// v4: the outbox's consumers. `outbox_cursors` holds how far each durable consumer (webhook
/// dispatch, flows, event functions) has read; on PostgreSQL every event also records the id of
/// the transaction that wrote it (`txid`), so a consumer reads only events of transactions older
/// than every running one and never skips an event whose transaction commits late.
fn store_v4(names: &Names) -> Vec<TableCreateStatement> {
    let d = names.dialect();
    vec![
        Table::create()
            .table(names.table(OUTBOX_CURSORS))
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

fn store_v4_columns(names: &Names) -> Vec<NewColumn> {
    match names.dialect() {
        Dialect::Postgres => vec![NewColumn {
            table: EVENTS,
            column: col("txid", ColumnKind::BigInt, Dialect::Postgres)
                .not_null()
                .default(Expr::cust("(pg_current_xact_id()::text)::bigint"))
                .to_owned(),
        }],
        Dialect::Sqlite => Vec::new(),
    }
}

/// v5: each outbox event records how many flow runs led to it (`depth`, 0 for a write by a
/// user or host code), so that flows stop chains; and resuming a stream reads one tenant's events
/// of one collection by index, not every tenant's.
fn store_v5_columns(names: &Names) -> Vec<NewColumn> {
    vec![NewColumn {
        table: EVENTS,
        column: col("depth", ColumnKind::BigInt, names.dialect())
            .not_null()
            .default(0)
            .to_owned(),
    }]
}

fn store_v5_indexes(names: &Names) -> Vec<IndexCreateStatement> {
    vec![index(
        names,
        "events_resume",
        EVENTS,
        &["tenant_id", "collection", "seq"],
        false,
    )]
}

fn store_v4_indexes(names: &Names) -> Vec<IndexCreateStatement> {
    match names.dialect() {
        Dialect::Postgres => vec![index(
            names,
            "events_txid_seq",
            EVENTS,
            &["txid", "seq"],
            false,
        )],
        Dialect::Sqlite => Vec::new(),
    }
}

/// v2: one collection per table and tenant (two concurrent adoptions of a table cannot both
/// commit).
fn store_v2_indexes(names: &Names) -> Vec<IndexCreateStatement> {
    vec![index(
        names,
        "collections_tenant_table",
        COLLECTIONS,
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
            .table(names.table(COLLECTION_ADOPTIONS))
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
    let t = |table: SystemTable| {
        let mut t = Table::create();
        t.table(names.table(table)).if_not_exists();
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
        t(COLLECTIONS)
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
        t(PERMISSIONS)
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
        t(ACTIVITY)
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
        t(REVISIONS)
            .col(id())
            .col(tenant())
            .col(col("activity_id", ColumnKind::Uuid, d))
            .col(col("collection", ColumnKind::Text, d).not_null())
            .col(col("item_id", ColumnKind::Text, d).not_null())
            .col(col("data", ColumnKind::Json, d))
            .col(col("delta", ColumnKind::Json, d))
            .col(created())
            .to_owned(),
        t(ITEM_OWNERSHIP)
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
        t(EVENTS)
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

fn store_v1_indexes(names: &Names) -> Vec<IndexCreateStatement> {
    let idx = |name: &str, table: SystemTable, cols: &[&str], unique: bool| {
        index(names, name, table, cols, unique)
    };
    vec![
        idx(
            "collections_tenant_slug",
            COLLECTIONS,
            &["tenant_id", "slug"],
            true,
        ),
        idx(
            "permissions_lookup",
            PERMISSIONS,
            &["tenant_id", "collection", "action"],
            false,
        ),
        idx(
            "activity_tenant_time",
            ACTIVITY,
            &["tenant_id", "created_at"],
            false,
        ),
        idx(
            "revisions_item",
            REVISIONS,
            &["tenant_id", "collection", "item_id"],
            false,
        ),
    ]
}
