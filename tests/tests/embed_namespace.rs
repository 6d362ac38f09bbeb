//! workeros in a database that already holds the host's tables — named `users`, `sessions`,
//! `events`, `roles`, `activity`, `permissions`, `collections`, `webhooks`, `flows`, like
//! workeros's own — creates nothing outside its namespace, leaves the host's tables exactly as
//! they were, offers them in the adopt wizard and adopts them; and two namespaces in one
//! database are two deployments that know nothing of each other. On SQLite and PostgreSQL.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use axum::http::StatusCode;
use serde_json::{Value, json};
use workeros_auth::{Auth, AuthConfig, Signup};
use workeros_store::{Db, DbPool, Namespace, Store};
use workeros_tests::adopt::{exec, texts};
use workeros_tests::fixtures::admin;
use workeros_tests::http::call;
use workeros_tests::stores::{TestDb, dbs, shared};

/// The host's tables: workeros's names, the host's own shapes and rows.
const HOST_TABLES: [&str; 10] = [
    "users",
    "sessions",
    "events",
    "roles",
    "activity",
    "permissions",
    "collections",
    "webhooks",
    "flows",
    "orders",
];

async fn host_schema(db: &Db) {
    let pg = matches!(db.pool(), DbPool::Postgres(_));
    let serial = if pg { "serial" } else { "INTEGER" };
    exec(
        db,
        &format!(
            "CREATE TABLE users (id {serial} PRIMARY KEY, name text NOT NULL, email text);
             CREATE TABLE sessions (sid text PRIMARY KEY, data text NOT NULL);
             CREATE TABLE events (id integer PRIMARY KEY, kind text NOT NULL, at text);
             CREATE TABLE roles (name text PRIMARY KEY, rank integer);
             CREATE TABLE activity (id integer PRIMARY KEY, what text);
             CREATE TABLE permissions (id integer PRIMARY KEY, who text, what text);
             CREATE TABLE collections (id integer PRIMARY KEY, title text);
             CREATE TABLE webhooks (id integer PRIMARY KEY, url text);
             CREATE TABLE flows (id integer PRIMARY KEY, name text);
             CREATE TABLE orders (id integer PRIMARY KEY, user_id integer NOT NULL REFERENCES users(id), total integer NOT NULL);
             CREATE INDEX orders_user ON orders (user_id);
             INSERT INTO users (name, email) VALUES ('ann', 'ann@host.test'), ('bob', NULL);
             INSERT INTO sessions VALUES ('s1', 'host session');
             INSERT INTO events VALUES (1, 'host.started', '2020-01-01');
             INSERT INTO roles VALUES ('host-admin', 1);
             INSERT INTO activity VALUES (1, 'host did a thing');
             INSERT INTO permissions VALUES (1, 'ann', 'everything');
             INSERT INTO collections VALUES (1, 'stamps');
             INSERT INTO webhooks VALUES (1, 'https://host.test/hook');
             INSERT INTO flows VALUES (1, 'host flow');
             INSERT INTO orders VALUES (1, 1, 42), (2, 2, 7);"
        ),
    )
    .await;
}

/// What the database holds outside workeros's namespace: every relation, column, index and
/// constraint by name and definition (PostgreSQL: every schema but the namespace and the
/// system's; SQLite: `sqlite_schema` minus workeros's prefixed objects and SQLite's own
/// `sqlite_sequence`).
async fn outside(db: &Db) -> Vec<Vec<Option<String>>> {
    let ns = db.names().namespace().to_string();
    let sql = match db.pool() {
        // `sqlite_sequence` is SQLite's own bookkeeping of AUTOINCREMENT keys (the outbox's
        // `seq` must never be reused), made by SQLite the first time any table needs it.
        DbPool::Sqlite(_) => format!(
            "SELECT type, name, tbl_name, sql FROM sqlite_schema \
             WHERE name <> 'sqlite_sequence' AND name NOT LIKE '{ns}\\_%' ESCAPE '\\' \
               AND name NOT LIKE 'sqlite\\_autoindex\\_{ns}\\_%' ESCAPE '\\' \
             ORDER BY type, name"
        ),
        // Other tests run beside this one, each in schemas of its own (`wtest_…`): what is
        // compared is the host schema, `public`, and which other schemas exist.
        DbPool::Postgres(_) => {
            let host = db.names().host_schema().unwrap_or("public").to_owned();
            let watched = format!("n.nspname IN ('{host}', 'public')");
            format!(
                "SELECT 'relation', n.nspname::text, c.relname::text, c.relkind::text \
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {watched} \
                 UNION ALL \
                 SELECT 'column', n.nspname::text, c.relname::text || '.' || a.attname::text, \
                        format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull::text \
                   FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
                   JOIN pg_namespace n ON n.oid = c.relnamespace \
                  WHERE {watched} AND a.attnum > 0 AND NOT a.attisdropped \
                 UNION ALL \
                 SELECT 'constraint', n.nspname::text, c.conname::text, pg_get_constraintdef(c.oid) \
                   FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE {watched} \
                 UNION ALL \
                 SELECT 'function', n.nspname::text, p.proname::text, '' \
                   FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {watched} \
                 UNION ALL \
                 SELECT 'trigger', n.nspname::text, t.tgname::text, '' \
                   FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
                   JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {watched} \
                 UNION ALL \
                 SELECT 'schema', n.nspname::text, '', '' FROM pg_namespace n \
                  WHERE n.nspname NOT LIKE 'wtest\\_%' AND n.nspname NOT LIKE 'pg\\_%' \
                    AND n.nspname <> '{ns}' \
                 ORDER BY 1, 2, 3, 4"
            )
        }
    };
    texts(db, &sql).await
}

/// Every row of every host table, as text.
async fn host_rows(db: &Db) -> Vec<(String, Vec<Vec<Option<String>>>)> {
    let mut out = Vec::new();
    let pg = matches!(db.pool(), DbPool::Postgres(_));
    for t in HOST_TABLES {
        // Each row as text: PostgreSQL's record text, SQLite's columns.
        let sql = if pg {
            format!("SELECT r::text FROM {t} r ORDER BY 1")
        } else {
            format!("SELECT * FROM {t} ORDER BY 1")
        };
        out.push((t.to_owned(), texts(db, &sql).await));
    }
    out
}

async fn ok(app: &axum::Router, method: &str, uri: &str, body: Option<Value>) -> Value {
    let a = admin();
    let (s, v) = call(app, Some(&a), method, uri, body).await;
    assert!(s.is_success(), "{method} {uri}: {s} {v}");
    v
}

#[tokio::test]
async fn the_hosts_tables_stay_its_own_and_can_be_adopted() {
    for t in dbs().await {
        let name = t.name();
        let db = &t.db;
        host_schema(db).await;
        let (before, rows_before) = (outside(db).await, host_rows(db).await);

        // Everything workeros has, migrated and used.
        workeros_store::migrate(db).await.unwrap();
        workeros_auth::migrate(db).await.unwrap();
        workeros_events::migrate(db).await.unwrap();
        let auth = Auth::new(db.clone(), AuthConfig::default()).unwrap();
        let (user, _) = auth
            .signup(&Signup {
                email: "ann@host.test".into(),
                password: "correct horse battery".into(),
                ..Signup::default()
            })
            .await
            .unwrap();
        assert_eq!(user.email, "ann@host.test", "{name}");
        let store = Store::new(db.clone());
        let adopt = workeros_adopt::Adopt::new(store.clone());
        store.set_adopter(adopt.adopter());
        let app = workeros_store::http::router(store.clone())
            .merge(workeros_adopt::http::router(adopt.clone()));
        ok(
            &app,
            "POST",
            "/api/collections",
            Some(json!({"slug": "notes", "ownerScoped": true, "fields": [{"name": "body", "type": "text"}]})),
        )
        .await;
        ok(
            &app,
            "POST",
            "/api/items/notes",
            Some(json!({"body": "hi"})),
        )
        .await;

        // Nothing outside the namespace changed; the host's rows are as they were.
        assert_eq!(
            outside(db).await,
            before,
            "{name}: workeros made or changed something outside its namespace"
        );
        assert_eq!(host_rows(db).await, rows_before, "{name}");

        // The wizard offers every host table, workeros's names included, and nothing of its own.
        let v = ok(&app, "GET", "/api/admin/adopt/tables", None).await;
        let mut offered: Vec<String> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect();
        offered.sort();
        let mut expected: Vec<String> = HOST_TABLES.iter().map(|s| (*s).to_owned()).collect();
        expected.sort();
        assert_eq!(offered, expected, "{name}");

        // The host's `users` and `orders` are adopted and read through the items API.
        ok(
            &app,
            "POST",
            "/api/collections",
            Some(json!({"adopted": true, "physicalTable": "users", "slug": "host_users",
                "fields": [{"name": "name", "type": "text"}, {"name": "email", "type": "longtext"}]})),
        )
        .await;
        ok(
            &app,
            "POST",
            "/api/collections",
            Some(
                json!({"adopted": true, "physicalTable": "orders", "slug": "orders",
                "fields": [{"name": "user_id", "type": "relation", "to": "host_users"},
                           {"name": "total", "type": "integer"}]}),
            ),
        )
        .await;
        let v = ok(&app, "GET", "/api/items/host_users?sort=id", None).await;
        assert_eq!(v["data"][0]["name"], "ann", "{name}: {v}");
        assert_eq!(v["data"][1]["email"], Value::Null, "{name}: {v}");
        let v = ok(
            &app,
            "GET",
            "/api/items/orders?sort=id&filter[total][_gt]=10",
            None,
        )
        .await;
        assert_eq!(v["data"].as_array().unwrap().len(), 1, "{name}: {v}");
        assert_eq!(v["data"][0]["user_id"], 1, "{name}: {v}");
        let (s, v) = call(
            &app,
            Some(&admin()),
            "POST",
            "/api/items/orders",
            Some(json!({"id": 3, "user_id": 99, "total": 1})),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {v}");
        // workeros's writes to adopted tables are the only change to the host's tables.
        ok(
            &app,
            "POST",
            "/api/items/orders",
            Some(json!({"id": 3, "user_id": 2, "total": 5})),
        )
        .await;
        let orders = texts(db, "SELECT CAST(id AS TEXT) FROM orders ORDER BY id").await;
        assert_eq!(orders.len(), 3, "{name}");
        t.close().await;
    }
}

/// Two namespaces in one database: each migrates, signs up its own first admin, and sees only
/// its own collections and items.
#[tokio::test]
async fn two_namespaces_are_two_deployments() {
    for group in shared(2).await {
        let mut it = group.into_iter();
        let (one, two) = (it.next().unwrap(), it.next().unwrap());
        let name = one.name();
        let a = in_namespace(&one, "deploy_a").await;
        let b = in_namespace(&two, "deploy_b").await;
        for db in [&a, &b] {
            workeros_store::migrate(db).await.unwrap();
            workeros_auth::migrate(db).await.unwrap();
            workeros_events::migrate(db).await.unwrap();
            // The first user of each deployment is its admin.
            let auth = Auth::new(db.clone(), AuthConfig::default()).unwrap();
            let (user, _) = auth
                .signup(&Signup {
                    email: "first@example.com".into(),
                    password: "correct horse battery".into(),
                    ..Signup::default()
                })
                .await
                .unwrap();
            assert_eq!(user.roles, [workeros_core::roles::ADMIN], "{name}");
        }
        let (sa, sb) = (Store::new(a.clone()), Store::new(b.clone()));
        let (app_a, app_b) = (
            workeros_store::http::router(sa),
            workeros_store::http::router(sb),
        );
        ok(
            &app_a,
            "POST",
            "/api/collections",
            Some(json!({"slug": "notes", "fields": [{"name": "body", "type": "text"}]})),
        )
        .await;
        ok(
            &app_b,
            "POST",
            "/api/collections",
            Some(json!({"slug": "notes", "fields": [{"name": "title", "type": "integer"}]})),
        )
        .await;
        ok(
            &app_a,
            "POST",
            "/api/items/notes",
            Some(json!({"body": "in a"})),
        )
        .await;
        let v = ok(&app_b, "GET", "/api/items/notes?meta=count", None).await;
        assert_eq!(v["meta"]["count"], 0, "{name}: {v}");
        let v = ok(&app_a, "GET", "/api/items/notes?meta=count", None).await;
        assert_eq!(v["meta"]["count"], 1, "{name}: {v}");
        let (s, _) = call(
            &app_b,
            Some(&admin()),
            "POST",
            "/api/items/notes",
            Some(json!({"body": "a's field"})),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        drop((a, b));
        two.close().await;
        one.close().await;
    }
}

/// `t`'s database with workeros in namespace `ns` (beside the test's own, so the test's cleanup
/// removes it too).
async fn in_namespace(t: &TestDb, ns: &str) -> Db {
    let ns = match t.db.pool() {
        DbPool::Postgres(_) => format!("{}_{ns}", t.db.names().host_schema().unwrap()),
        DbPool::Sqlite(_) => ns.to_owned(),
    };
    let ns = Namespace::new(ns).unwrap();
    match t.db.pool() {
        DbPool::Postgres(p) => Db::from_pg_pool(p.clone(), ns).await.unwrap(),
        DbPool::Sqlite(p) => Db::from_sqlite_pool(p.clone(), ns).await.unwrap(),
    }
}
