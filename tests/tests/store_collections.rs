//! The collections lifecycle through the store's API, on SQLite and PostgreSQL: create, add a
//! field, drop a field, delete, archive and restore; failed DDL leaves nothing half-made.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use sea_query::{Alias, Expr, ExprTrait, Query, Table};
use serde_json::json;
use workeros_core::{ErrorCode, Subject, User};
use workeros_store::{
    AdoptedCollection, CollectionPatch, CollectionStatus, Db, DbPool, Deleted, NewCollection,
    Store, StoreError, migrate,
};
use workeros_tests::fixtures::admin;
use workeros_tests::stores::{TestDb, dbs, system_table};

fn new(v: serde_json::Value) -> NewCollection {
    serde_json::from_value(v).unwrap()
}

async fn store_on(t: &TestDb) -> Store {
    migrate(&t.db).await.unwrap();
    Store::new(t.db.clone())
}

/// How many rows `table` has where `column = value` (or in all, without a condition).
async fn rows(db: &Db, table: &str, cond: Option<(&str, &str)>) -> usize {
    let mut q = Query::select();
    q.expr(Expr::cust("1")).from(db.table(system_table(table)));
    if let Some((c, v)) = cond {
        q.and_where(Expr::col(Alias::new(c)).eq(v));
    }
    db.fetch_all(&q).await.unwrap().len()
}

/// Whether host table `table` (an adopted one) has `column`, from the catalog.
async fn host_has_column(db: &Db, table: &str, column: &str) -> bool {
    match db.pool() {
        DbPool::Sqlite(p) => sqlx::query("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")
            .bind(table)
            .bind(column)
            .fetch_optional(p)
            .await
            .unwrap()
            .is_some(),
        DbPool::Postgres(p) => sqlx::query(
            "SELECT 1 FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2",
        )
        .bind(table)
        .bind(column)
        .fetch_optional(p)
        .await
        .unwrap()
        .is_some(),
    }
}

/// Whether workeros's table `table` (a managed collection's) has `column`, from the catalog (not
/// by selecting it: SQLite reads an unknown double-quoted identifier as a string literal).
async fn has_column(db: &Db, table: &str, column: &str) -> bool {
    let names = db.names();
    match db.pool() {
        DbPool::Sqlite(p) => sqlx::query("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")
            .bind(names.collection_physical(table))
            .bind(column)
            .fetch_optional(p)
            .await
            .unwrap()
            .is_some(),
        DbPool::Postgres(p) => sqlx::query(
            "SELECT 1 FROM information_schema.columns \
             WHERE table_schema = $3 AND table_name = $1 AND column_name = $2",
        )
        .bind(table)
        .bind(column)
        .bind(names.namespace().as_str())
        .fetch_optional(p)
        .await
        .unwrap()
        .is_some(),
    }
}

fn code(e: &StoreError) -> ErrorCode {
    e.code()
}

#[tokio::test]
async fn create_add_drop_delete() {
    for t in dbs().await {
        let name = t.name();
        let store = store_on(&t).await;
        let db = &t.db;
        let info = store
            .create_collection(
                &admin(),
                new(json!({
                    "slug": "posts",
                    "ownerScoped": true,
                    "fields": [
                        {"name": "title", "type": "text", "required": true},
                        {"name": "sku", "type": "text", "unique": true},
                        {"name": "views", "type": "integer"}
                    ]
                })),
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let table = info.physical_table.clone();
        assert!(table.starts_with("c_000000000000_posts"), "{name}: {table}");
        assert_eq!(info.status, CollectionStatus::Active);
        for c in [
            "id",
            "tenant_id",
            "created_at",
            "updated_at",
            "owner_id",
            "title",
            "sku",
            "views",
        ] {
            assert!(has_column(db, &table, c).await, "{name}: column {c}");
        }
        assert_eq!(
            rows(db, "permissions", Some(("collection", "posts"))).await,
            4,
            "{name}"
        );
        assert_eq!(
            rows(db, "activity", Some(("action", "collection.create"))).await,
            1,
            "{name}"
        );

        // Twice is a conflict; a non-admin is refused.
        let again = store
            .create_collection(&admin(), new(json!({"slug": "posts"})))
            .await
            .unwrap_err();
        assert_eq!(code(&again), ErrorCode::Conflict, "{name}");
        let user = Subject::user(User::new("u1"));
        let denied = store
            .create_collection(&user, new(json!({"slug": "other"})))
            .await
            .unwrap_err();
        assert_eq!(code(&denied), ErrorCode::Forbidden, "{name}");

        // Additive apply: a new field is added, an identical one is left alone, a changed one is
        // refused.
        let patch: CollectionPatch = serde_json::from_value(json!({"fields": [
            {"name": "title", "type": "text", "required": true},
            {"name": "body", "type": "longtext"}
        ]}))
        .unwrap();
        let info = store
            .apply_collection(&admin(), "posts", patch)
            .await
            .unwrap();
        assert_eq!(info.fields.len(), 4, "{name}");
        assert!(has_column(db, &table, "body").await, "{name}");
        let changed: CollectionPatch =
            serde_json::from_value(json!({"fields": [{"name": "views", "type": "text"}]})).unwrap();
        let e = store
            .apply_collection(&admin(), "posts", changed)
            .await
            .unwrap_err();
        assert_eq!(code(&e), ErrorCode::Validation, "{name}");

        // Dropping fields, a unique one included.
        for field in ["sku", "body"] {
            let info = store.drop_field(&admin(), "posts", field).await.unwrap();
            assert!(
                info.fields.iter().all(|f| f.name.as_str() != field),
                "{name}"
            );
            assert!(
                !has_column(db, &table, field).await,
                "{name}: {field} still there"
            );
        }
        assert_eq!(
            rows(db, "activity", Some(("action", "collection.drop_field"))).await,
            2,
            "{name}"
        );
        let e = store
            .drop_field(&admin(), "posts", "nope")
            .await
            .unwrap_err();
        assert_eq!(code(&e), ErrorCode::NotFound, "{name}");

        // Delete: the table, the metadata and the permissions go.
        store.delete_collection(&admin(), "posts").await.unwrap();
        assert!(
            !has_column(db, &table, "id").await,
            "{name}: table still there"
        );
        assert_eq!(
            rows(db, "collections", Some(("slug", "posts"))).await,
            0,
            "{name}"
        );
        assert_eq!(
            rows(db, "permissions", Some(("collection", "posts"))).await,
            0,
            "{name}"
        );
        let e = store
            .get_collection(&admin(), "posts", true)
            .await
            .unwrap_err();
        assert_eq!(code(&e), ErrorCode::NotFound, "{name}");
        t.close().await;
    }
}

#[tokio::test]
async fn failed_ddl_leaves_nothing_half_made() {
    for t in dbs().await {
        let name = t.name();
        let store = store_on(&t).await;
        // A table already holds the name the collection's table would get: its CREATE TABLE
        // fails after the metadata row was written.
        let mut tx = t.db.begin().await.unwrap();
        tx.ddl(
            Table::create()
                .table(t.db.names().collection_table("c_000000000000_clash"))
                .col(sea_query::ColumnDef::new(Alias::new("x")).integer()),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let e = store
            .create_collection(
                &admin(),
                new(json!({"slug": "clash", "ownerScoped": true,
                           "fields": [{"name": "a", "type": "text"}]})),
            )
            .await
            .unwrap_err();
        assert_eq!(code(&e), ErrorCode::Conflict, "{name}: {e:?}");
        assert!(
            !e.to_string().contains("CREATE"),
            "{name}: internals in `{e}`"
        );
        assert_eq!(rows(&t.db, "collections", None).await, 0, "{name}");
        assert_eq!(rows(&t.db, "permissions", None).await, 0, "{name}");
        assert_eq!(rows(&t.db, "activity", None).await, 0, "{name}");
        // The clashing table is untouched.
        assert!(
            has_column(&t.db, "c_000000000000_clash", "x").await,
            "{name}"
        );
        t.close().await;
    }
}

#[tokio::test]
async fn invalid_definitions_are_refused() {
    for t in dbs().await {
        let name = t.name();
        let store = store_on(&t).await;
        for (body, what) in [
            (
                json!({"slug": "a", "fields": [{"name": "owner_id", "type": "text"}]}),
                "reserved",
            ),
            (
                json!({"slug": "a", "fields": [{"name": "x", "type": "text"}, {"name": "x", "type": "integer"}]}),
                "twice",
            ),
            (
                json!({"slug": "a", "fields": [{"name": "r", "type": "relation"}]}),
                "no target",
            ),
            (
                json!({"slug": "a", "fields": [{"name": "r", "type": "relation", "to": "ghosts"}]}),
                "unknown target",
            ),
            (
                json!({"slug": "a", "fields": [{"name": "j", "type": "json", "unique": true}]}),
                "unique json",
            ),
            (json!({"slug": "a", "adopted": true}), "adopted"),
        ] {
            let e = store
                .create_collection(&admin(), new(body))
                .await
                .unwrap_err();
            assert_eq!(code(&e), ErrorCode::Validation, "{name}: {what}: {e:?}");
        }
        // Hostile slugs and field names never get as far as SQL.
        for slug in ["Posts", "a;drop", "a\"b", "ü", "_x", &"a".repeat(49)] {
            assert!(
                serde_json::from_value::<NewCollection>(json!({"slug": slug})).is_err(),
                "{name}: slug {slug:?}"
            );
        }
        let e = store
            .create_collection(
                &admin(),
                new(json!({"slug": "a", "fields": [{"name": "Title", "type": "text"}]})),
            )
            .await
            .unwrap_err();
        assert_eq!(code(&e), ErrorCode::Validation, "{name}: {e:?}");
        for field in ["a b", "x'--", "1a", "é", &"a".repeat(64)] {
            assert!(
                serde_json::from_value::<NewCollection>(
                    json!({"slug": "a", "fields": [{"name": field, "type": "text"}]})
                )
                .is_err(),
                "{name}: field {field:?}"
            );
        }
        assert_eq!(rows(&t.db, "collections", None).await, 0, "{name}");
        // A relation to an existing collection is fine.
        store
            .create_collection(&admin(), new(json!({"slug": "authors"})))
            .await
            .unwrap();
        store
            .create_collection(
                &admin(),
                new(json!({"slug": "books", "fields": [{"name": "author", "type": "relation", "to": "authors"}]})),
            )
            .await
            .unwrap();
        t.close().await;
    }
}

#[tokio::test]
async fn adopted_collections_archive_and_restore() {
    for t in dbs().await {
        let name = t.name();
        let store = store_on(&t).await;
        // An existing table, and its metadata as workeros-adopt writes it.
        let mut tx = t.db.begin().await.unwrap();
        tx.ddl(
            Table::create().table(Alias::new("legacy_orders")).col(
                sea_query::ColumnDef::new(Alias::new("id"))
                    .integer()
                    .primary_key(),
            ),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let adopted: AdoptedCollection = serde_json::from_value(json!({
            "slug": "orders",
            "physicalTable": "legacy_orders",
            "ownerScoped": false,
            "fields": [],
            "adoption": {"pkColumn": "id", "pkType": "integer"}
        }))
        .unwrap();
        store.create_adopted(&admin(), adopted).await.unwrap();
        assert_eq!(
            store.delete_collection(&admin(), "orders").await.unwrap(),
            Deleted::Archived,
            "{name}"
        );
        assert!(
            host_has_column(&t.db, "legacy_orders", "id").await,
            "{name}: table touched"
        );
        let e = store
            .get_collection(&admin(), "orders", false)
            .await
            .unwrap_err();
        assert_eq!(code(&e), ErrorCode::NotFound, "{name}");
        let archived = store
            .get_collection(&admin(), "orders", true)
            .await
            .unwrap();
        assert_eq!(archived.status, CollectionStatus::Archived, "{name}");
        assert!(archived.archived_at.is_some(), "{name}");
        assert!(
            store
                .list_collections(&admin(), false)
                .await
                .unwrap()
                .is_empty(),
            "{name}"
        );
        assert_eq!(
            store.list_collections(&admin(), true).await.unwrap().len(),
            1,
            "{name}"
        );
        let back = store.restore_collection(&admin(), "orders").await.unwrap();
        assert_eq!(back.status, CollectionStatus::Active, "{name}");
        assert_eq!(back.physical_table, "legacy_orders", "{name}");
        assert_eq!(back.archived_at, None, "{name}");
        let e = store
            .restore_collection(&admin(), "orders")
            .await
            .unwrap_err();
        assert_eq!(code(&e), ErrorCode::Conflict, "{name}");
        // Deleting twice: archived, then its metadata purged; the table stays.
        store.delete_collection(&admin(), "orders").await.unwrap();
        assert_eq!(
            store.delete_collection(&admin(), "orders").await.unwrap(),
            Deleted::Purged,
            "{name}"
        );
        assert!(
            host_has_column(&t.db, "legacy_orders", "id").await,
            "{name}"
        );
        assert_eq!(rows(&t.db, "collections", None).await, 0, "{name}");
        assert_eq!(rows(&t.db, "collection_adoptions", None).await, 0, "{name}");
        t.close().await;
    }
}
