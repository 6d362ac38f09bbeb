//! The worked examples of the adopt contract on SQLite and PostgreSQL: `legacy_orders` with
//! `inserted_at` and `user_id` aliased (ownership in the row), a table owned through the
//! `item_ownership` side table, owner-scoped permissions enforced for each; the create
//! endpoint's validation; archive, restore and purge; hostile names adopted verbatim; and the
//! proof that no DDL ever runs: the schema is the same before and after the whole cycle.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};
use workeros_core::roles::AUTHENTICATED;
use workeros_core::{Subject, User};
use workeros_store::Db;
use workeros_tests::adopt::{exec, load_chinook, setup, texts};
use workeros_tests::fixtures::{ADMIN_ID, admin, user};
use workeros_tests::http::call;
use workeros_tests::stores::{TestDb, dbs, system_table};

async fn app_on(t: &TestDb) -> Router {
    let adopt = setup(t).await;
    workeros_store::http::router(adopt.store().clone()).merge(workeros_adopt::http::router(adopt))
}

/// The worked example's tables: `legacy_orders` (uuid key, `inserted_at`, `user_id`) and
/// `legacy_notes` (text key, `modified_at`, no owner column). On SQLite `inserted_at` holds Unix
/// milliseconds, as the contract allows.
async fn legacy_tables(db: &Db) {
    let sql = match db.pool() {
        workeros_store::DbPool::Postgres(_) => {
            "CREATE TABLE legacy_orders (id uuid PRIMARY KEY, total numeric(10, 2) NOT NULL, \
             inserted_at timestamptz NOT NULL DEFAULT now(), user_id text NOT NULL);
             CREATE TABLE legacy_notes (sku varchar(40) PRIMARY KEY, body text, \
             modified_at timestamptz)"
        }
        workeros_store::DbPool::Sqlite(_) => {
            "CREATE TABLE legacy_orders (id UUID PRIMARY KEY, total NUMERIC(10, 2) NOT NULL, \
             inserted_at INTEGER NOT NULL, user_id TEXT NOT NULL);
             CREATE TABLE legacy_notes (sku VARCHAR(40) PRIMARY KEY, body TEXT, \
             modified_at DATETIME)"
        }
    };
    exec(db, sql).await;
}

async fn post(app: &Router, who: &Subject, uri: &str, body: Value) -> (StatusCode, Value) {
    call(app, Some(who), "POST", uri, Some(body)).await
}

async fn get(app: &Router, who: &Subject, uri: &str) -> (StatusCode, Value) {
    call(app, Some(who), "GET", uri, None).await
}

fn orders_body() -> Value {
    json!({
        "adopted": true,
        "physicalTable": "legacy_orders",
        "slug": "orders",
        "singular": "Order",
        "plural": "Orders",
        "pkColumn": "id",
        "ownerScoped": true,
        "createdAtColumn": "inserted_at",
        "ownerIdColumn": "user_id",
        "fields": [{"name": "total", "type": "number", "required": true}]
    })
}

#[tokio::test]
async fn legacy_orders_aliases_and_both_ownership_modes() {
    for t in dbs().await {
        let name = t.name();
        let pg = matches!(t.db.pool(), workeros_store::DbPool::Postgres(_));
        legacy_tables(&t.db).await;
        let app = app_on(&t).await;
        let a = admin();
        let (ann, bob) = (user("ann"), user("bob"));

        // Inspect suggests the aliases.
        let (s, v) = post(
            &app,
            &a,
            "/api/admin/adopt/inspect",
            json!({"table": "legacy_orders"}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        assert_eq!(
            v["data"]["aliasSuggestions"],
            json!({"createdAt": "inserted_at", "updatedAt": null, "ownerId": "user_id"}),
            "{name}"
        );
        let inserted_type = v["data"]["columns"][2]["suggestedType"].clone();
        assert_eq!(inserted_type, if pg { "timestamp" } else { "integer" });

        // The create endpoint's validation, each with the offending field named.
        let with = |patch: Value| {
            let mut b = orders_body();
            for (k, v) in patch.as_object().unwrap() {
                b[k] = v.clone();
            }
            b
        };
        for (body, field, status) in [
            (
                with(json!({"createdAtColumn": "total"})),
                "createdAtColumn",
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                with(json!({"ownerIdColumn": "inserted_at"})),
                "ownerIdColumn",
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                with(json!({"fields": [{"name": "inserted_at", "type": inserted_type}]})),
                "inserted_at",
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                with(json!({"fields": [{"name": "nope", "type": "text"}]})),
                "nope",
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                with(json!({"fields": [{"name": "total", "type": "boolean"}]})),
                "total",
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                with(json!({"pkColumn": "total"})),
                "pkColumn",
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                with(json!({"physicalTable": "missing_table"})),
                "physicalTable",
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                with(json!({"physicalTable": "users"})),
                "physicalTable",
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                with(json!({"createdAtColumn": "inserted_at", "hasCreatedAt": true})),
                "createdAtColumn",
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
        ] {
            let (s, v) = post(&app, &a, "/api/collections", body).await;
            assert_eq!(s, status, "{name}: {field}: {v}");
            assert_eq!(v["error"]["field"], field, "{name}: {v}");
        }
        let (s, _) = post(&app, &ann, "/api/collections", orders_body()).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{name}: only admins adopt");

        // Adopt with aliases: ownership in the row (`user_id`).
        let (s, v) = post(&app, &a, "/api/collections", orders_body()).await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        assert_eq!(v["data"]["adoption"]["createdAt"]["column"], "inserted_at");
        assert_eq!(v["data"]["adoption"]["ownerId"]["column"], "user_id");
        let mut again = orders_body();
        again["slug"] = json!("orders2");
        let (s, v) = post(&app, &a, "/api/collections", again).await;
        assert_eq!(s, StatusCode::CONFLICT, "{name}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("already adopted")
        );

        let (s, v) = post(&app, &ann, "/api/items/orders", json!({"total": 10.5})).await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        let ann1 = v["data"]["id"].as_str().unwrap().to_owned();
        assert!(
            uuid::Uuid::try_parse(&ann1).is_ok(),
            "{name}: generated uuid id"
        );
        assert_eq!(v["data"]["ownerId"], "ann");
        assert!(!v["data"]["createdAt"].is_null(), "{name}: {v}");
        assert!(v["data"].get("inserted_at").is_none() && v["data"].get("user_id").is_none());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let (s, v) = post(&app, &ann, "/api/items/orders", json!({"total": 20})).await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        let ann2 = v["data"]["id"].as_str().unwrap().to_owned();
        let (s, v) = post(&app, &bob, "/api/items/orders", json!({"total": 5})).await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        let bob1 = v["data"]["id"].as_str().unwrap().to_owned();
        // The owner is the subject, never the body.
        let (s, v) = post(
            &app,
            &ann,
            "/api/items/orders",
            json!({"total": 1, "ownerId": "bob"}),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{name}: {v}");
        let direct = texts(&t.db, "SELECT user_id FROM legacy_orders ORDER BY user_id").await;
        assert_eq!(
            direct,
            [["ann"], ["ann"], ["bob"]].map(|r| r.map(|s| Some(s.to_owned())).to_vec()),
            "{name}: owners written to the row"
        );
        // Each sees their own, newest first through the alias.
        let (s, v) = get(&app, &ann, "/api/items/orders?sort=-created_at").await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        let ids: Vec<&str> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [ann2.as_str(), ann1.as_str()], "{name}");
        let (_, v) = get(&app, &ann, "/api/items/orders?sort=createdAt").await;
        assert_eq!(
            v["data"][0]["id"],
            ann1.as_str(),
            "{name}: wire name sorts too"
        );
        let (_, v) = get(&app, &bob, "/api/items/orders").await;
        assert_eq!(v["data"].as_array().unwrap().len(), 1, "{name}");
        for method in ["GET", "PATCH", "DELETE"] {
            let body = (method == "PATCH").then(|| json!({"total": 0}));
            let (s, _) = call(
                &app,
                Some(&ann),
                method,
                &format!("/api/items/orders/{bob1}"),
                body,
            )
            .await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{name}: {method} another's order");
        }
        // Filters on the conventional names run on the real columns.
        let (_, v) = get(
            &app,
            &a,
            "/api/items/orders?meta=count&filter=ownerId%20%3D%20%22bob%22",
        )
        .await;
        assert_eq!(v["meta"]["count"], 1, "{name}: {v}");
        // A timestamp alias compares instants; an integer (Unix ms) alias compares integers.
        let since = if pg {
            "%222001-01-01T00%3A00%3A00Z%22"
        } else {
            "978307200000"
        };
        let (_, v) = get(
            &app,
            &a,
            &format!("/api/items/orders?meta=count&filter=created_at%20%3E%20{since}"),
        )
        .await;
        assert_eq!(v["meta"]["count"], 3, "{name}: {v}");
        // Another application's row for ann shows up for her.
        let direct_id = "0b5e8f0e-2f8e-4b8e-9a63-5d2b4f6f1c11";
        let stamp = if pg { "now()" } else { "4102444800000" };
        exec(
            &t.db,
            &format!(
                "INSERT INTO legacy_orders (id, total, inserted_at, user_id) VALUES ('{direct_id}', 99, {stamp}, 'ann')"
            ),
        )
        .await;
        let (_, v) = get(&app, &ann, "/api/items/orders?sort=-created_at").await;
        assert_eq!(v["data"].as_array().unwrap().len(), 3, "{name}: {v}");
        assert_eq!(v["data"][0]["id"], direct_id, "{name}");
        let (s, v) = call(
            &app,
            Some(&ann),
            "PATCH",
            &format!("/api/items/orders/{ann1}"),
            Some(json!({"total": 11})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        assert_eq!(v["data"]["total"], 11.0);

        // The side table: no owner column, owners in `item_ownership`.
        let (s, v) = post(
            &app,
            &a,
            "/api/collections",
            json!({
                "adopted": true,
                "physicalTable": "legacy_notes",
                "slug": "notes",
                "ownerScoped": true,
                "updatedAtColumn": "modified_at",
                "fields": [
                    {"name": "sku", "type": "text"},
                    {"name": "body", "type": "longtext"}
                ]
            }),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        assert_eq!(
            v["data"]["fields"].as_array().unwrap().len(),
            1,
            "{name}: key not a field"
        );
        let (s, v) = post(&app, &ann, "/api/items/notes", json!({"body": "x"})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {v}");
        assert_eq!(
            v["error"]["message"],
            "primary key `sku` is required in the body"
        );
        let (s, v) = post(
            &app,
            &ann,
            "/api/items/notes",
            json!({"sku": "a1", "body": "x"}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        assert_eq!(v["data"]["ownerId"], "ann");
        assert_eq!(v["data"]["sku"], "a1");
        assert!(!v["data"]["updatedAt"].is_null(), "{name}: {v}");
        let (s, _) = post(
            &app,
            &bob,
            "/api/items/notes",
            json!({"sku": "b1", "body": "y"}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, v) = post(
            &app,
            &bob,
            "/api/items/notes",
            json!({"sku": "a1", "body": "dup"}),
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT, "{name}: the table's own key: {v}");
        exec(
            &t.db,
            "INSERT INTO legacy_notes (sku, body) VALUES ('c1', 'another app')",
        )
        .await;
        let (_, v) = get(&app, &ann, "/api/items/notes").await;
        assert_eq!(
            v["data"],
            json!([{"sku": "a1", "updatedAt": v["data"][0]["updatedAt"], "ownerId": "ann", "body": "x"}]),
            "{name}"
        );
        let (_, v) = get(&app, &bob, "/api/items/notes?meta=count").await;
        assert_eq!(v["meta"]["count"], 1, "{name}");
        let (_, v) = get(&app, &a, "/api/items/notes?meta=count").await;
        assert_eq!(
            v["meta"]["count"], 3,
            "{name}: the admin sees the unowned row"
        );
        let (s, _) = get(&app, &ann, "/api/items/notes/b1").await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{name}");
        let (s, v) = call(
            &app,
            Some(&ann),
            "PATCH",
            "/api/items/notes/a1",
            Some(json!({"sku": "z9"})),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {v}");
        let (s, v) = call(
            &app,
            Some(&ann),
            "PATCH",
            "/api/items/notes/a1",
            Some(json!({"body": "x2"})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        assert_eq!(v["data"]["body"], "x2");
        let ownership_sql = format!(
            "SELECT collection, item_id, owner_id FROM {} ORDER BY item_id",
            t.table("item_ownership")
        );
        let ownership = || texts(&t.db, &ownership_sql);
        let row = |c: &str, i: &str, o: &str| vec![Some(c.into()), Some(i.into()), Some(o.into())];
        assert_eq!(
            ownership().await,
            vec![row("notes", "a1", "ann"), row("notes", "b1", "bob")],
            "{name}"
        );
        let (s, _) = call(&app, Some(&ann), "DELETE", "/api/items/notes/a1", None).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert_eq!(ownership().await, vec![row("notes", "b1", "bob")], "{name}");
        let direct = texts(&t.db, "SELECT sku FROM legacy_notes ORDER BY sku").await;
        assert_eq!(
            direct,
            vec![vec![Some("b1".to_owned())], vec![Some("c1".to_owned())]]
        );

        // Archive, restore, purge: the data never moves.
        let (s, v) = call(&app, Some(&a), "DELETE", "/api/collections/orders", None).await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        assert_eq!(v, json!({"ok": true, "archived": true}));
        let (s, v) = get(&app, &ann, "/api/items/orders").await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{name}: {v}");
        let (_, v) = get(&app, &a, "/api/collections").await;
        assert_eq!(
            v["data"].as_array().unwrap().len(),
            1,
            "{name}: archived hidden"
        );
        let (s, _) = get(&app, &a, "/api/collections/orders").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, v) = get(&app, &a, "/api/collections/orders?include_archived=true").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["data"]["status"], "archived");
        let (s, v) = post(&app, &a, "/api/collections/orders/restore", json!({})).await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        let (_, v) = get(&app, &ann, "/api/items/orders").await;
        assert_eq!(
            v["data"].as_array().unwrap().len(),
            3,
            "{name}: back, rules kept"
        );
        let (s, _) = post(&app, &a, "/api/collections/orders/restore", json!({})).await;
        assert_eq!(s, StatusCode::CONFLICT, "{name}: not archived");
        for expected in [
            json!({"ok": true, "archived": true}),
            json!({"ok": true, "purged": true}),
        ] {
            let (s, v) = call(&app, Some(&a), "DELETE", "/api/collections/orders", None).await;
            assert_eq!((s, v), (StatusCode::OK, expected), "{name}");
        }
        let direct = texts(&t.db, "SELECT CAST(COUNT(*) AS TEXT) FROM legacy_orders").await;
        assert_eq!(direct[0][0].as_deref(), Some("4"), "{name}: rows untouched");
        // Purged: the table can be adopted again.
        let (s, v) = post(&app, &a, "/api/collections", orders_body()).await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        t.close().await;
    }
}

#[tokio::test]
async fn hostile_names_are_adopted_verbatim() {
    for t in dbs().await {
        let name = t.name();
        let pg = matches!(t.db.pool(), workeros_store::DbPool::Postgres(_));
        let long = "c".repeat(63);
        let table = r#"Weird "Orders"; --"#;
        exec(
            &t.db,
            &format!(
                r#"CREATE TABLE "Weird ""Orders""; --" ("Key" integer PRIMARY KEY, "Ünïcödé name" text, "semi;colon' --" varchar(20), "{long}" integer)"#
            ),
        )
        .await;
        let app = app_on(&t).await;
        let a = admin();
        let (s, v) = post(
            &app,
            &a,
            "/api/admin/adopt/inspect",
            json!({"table": table}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        assert_eq!(v["data"]["adoptable"], true, "{name}: {v}");
        let names: Vec<&str> = v["data"]["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["Key", "Ünïcödé name", "semi;colon' --", long.as_str()]
        );
        let warned = v["data"]["columns"][1]["warnings"][0].as_str().unwrap();
        assert!(warned.contains("not a field name"), "{name}: {warned}");
        // A field name that is not an identifier is refused, never rewritten.
        let (s, v) = post(
            &app,
            &a,
            "/api/collections",
            json!({"adopted": true, "physicalTable": table, "slug": "weird",
                   "fields": [{"name": "Ünïcödé name", "type": "longtext"}]}),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {v}");
        let (s, v) = post(
            &app,
            &a,
            "/api/collections",
            json!({
                "adopted": true, "physicalTable": table, "slug": "weird",
                "fields": [
                    {"name": "unicode_name", "column": "Ünïcödé name", "type": "longtext"},
                    {"name": "semi", "column": "semi;colon' --", "type": "text"},
                    {"name": long, "type": "integer"}
                ]
            }),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        assert_eq!(v["data"]["physicalTable"], table);
        let (s, v) = post(
            &app,
            &a,
            "/api/items/weird",
            json!({"Key": 1, "unicode_name": "ü'\"; DROP TABLE x; --", "semi": "s", long.as_str(): 7}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        let (s, v) = get(
            &app,
            &a,
            "/api/items/weird?filter=semi%20%3D%20%22s%22&sort=-unicode_name",
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        assert_eq!(
            v["data"],
            json!([{"Key": 1, "unicode_name": "ü'\"; DROP TABLE x; --", "semi": "s", long.as_str(): 7}]),
            "{name}"
        );
        let direct = texts(
            &t.db,
            &format!(
                r#"SELECT "Ünïcödé name", "semi;colon' --", CAST("{long}" AS TEXT) FROM "Weird ""Orders""; --""#
            ),
        )
        .await;
        assert_eq!(
            direct,
            vec![vec![
                Some("ü'\"; DROP TABLE x; --".to_owned()),
                Some("s".to_owned()),
                Some("7".to_owned())
            ]],
            "{name}: each value in its own column"
        );
        let (s, v) = call(
            &app,
            Some(&a),
            "PATCH",
            "/api/items/weird/1",
            Some(json!({"semi": "x".repeat(21)})),
        )
        .await;
        assert_eq!(
            s,
            if pg {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::OK
            },
            "{name}: varchar(20) is the table's rule (SQLite does not enforce it): {v}"
        );
        t.close().await;
    }
}

/// Everything the database says about its schema, as text: SQLite's `sqlite_schema`; on
/// PostgreSQL every column, index, constraint and trigger of the current schema.
async fn schema(db: &Db) -> Vec<Vec<Option<String>>> {
    let sql = match db.pool() {
        workeros_store::DbPool::Sqlite(_) => {
            "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name"
        }
        workeros_store::DbPool::Postgres(_) => {
            "SELECT 'column', table_name::text, column_name::text, \
                    data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '') \
                      || ' ' || ordinal_position::text \
               FROM information_schema.columns WHERE table_schema = current_schema() \
             UNION ALL \
             SELECT 'index', tablename::text, indexname::text, indexdef \
               FROM pg_indexes WHERE schemaname = current_schema() \
             UNION ALL \
             SELECT 'constraint', c.conrelid::regclass::text, c.conname::text, \
                    pg_get_constraintdef(c.oid) \
               FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace \
              WHERE n.nspname = current_schema() \
             UNION ALL \
             SELECT 'trigger', tgrelid::regclass::text, tgname::text, '' \
               FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid \
               JOIN pg_namespace n ON n.oid = r.relnamespace \
              WHERE n.nspname = current_schema() \
             ORDER BY 1, 2, 3"
        }
    };
    texts(db, sql).await
}

#[tokio::test]
async fn no_ddl_runs_against_adopted_tables() {
    for t in dbs().await {
        let name = t.name();
        let pg = matches!(t.db.pool(), workeros_store::DbPool::Postgres(_));
        load_chinook(&t.db).await;
        legacy_tables(&t.db).await;
        let app = app_on(&t).await;
        let a = admin();
        let before = schema(&t.db).await;
        assert!(before.len() > 40, "{name}: the snapshot sees the schema");

        // Adopt: a relation pair, aliases with row ownership, and side-table ownership.
        let (artist, album, artist_id, album_id, title) = if pg {
            ("artist", "album", "artist_id", "album_id", "title")
        } else {
            ("Artist", "Album", "ArtistId", "AlbumId", "Title")
        };
        let artist_name = if pg { "name" } else { "Name" };
        for body in [
            json!({"adopted": true, "physicalTable": artist, "slug": "artists",
                   "fields": [{"name": artist_name, "type": "text"}]}),
            json!({"adopted": true, "physicalTable": album, "slug": "albums", "ownerScoped": true,
                   "fields": [{"name": title, "type": "text"},
                              {"name": artist_id, "type": "relation", "to": "artists"}]}),
            orders_body(),
            json!({"adopted": true, "physicalTable": "legacy_notes", "slug": "notes",
                   "ownerScoped": true, "updatedAtColumn": "modified_at",
                   "fields": [{"name": "body", "type": "longtext"}]}),
        ] {
            let (s, v) = post(&app, &a, "/api/collections", body).await;
            assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        }
        // Permissions of every kind, then writes by a user and an admin.
        let (s, v) = post(
            &app,
            &a,
            "/api/permissions",
            json!({"role": AUTHENTICATED, "collection": "artists", "action": "read",
                   "filter": {artist_name: {"_starts_with": "A"}}}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        let ann = user("ann");
        let writes: Vec<(&Subject, &str, String, Option<Value>)> = vec![
            (
                &ann,
                "POST",
                "/api/items/albums".into(),
                Some(json!({album_id: 5000, title: "A", artist_id: 1})),
            ),
            (
                &ann,
                "PATCH",
                "/api/items/albums/5000".into(),
                Some(json!({title: "B"})),
            ),
            (
                &ann,
                "POST",
                "/api/items/orders".into(),
                Some(json!({"total": 3})),
            ),
            (
                &ann,
                "POST",
                "/api/items/notes".into(),
                Some(json!({"sku": "n1", "body": "b"})),
            ),
            (
                &ann,
                "PATCH",
                "/api/items/notes/n1".into(),
                Some(json!({"body": "c"})),
            ),
            (
                &a,
                "POST",
                "/api/items/artists".into(),
                Some(json!({artist_id: 9000, artist_name: "Z"})),
            ),
            (&a, "DELETE", "/api/items/artists/9000".into(), None),
        ];
        for (who, method, uri, body) in writes {
            let (s, v) = call(&app, Some(who), method, &uri, body).await;
            assert!(s.is_success(), "{name}: {method} {uri}: {s} {v}");
        }
        let (_, v) = get(&app, &ann, "/api/items/artists?meta=count").await;
        assert!(v["meta"]["count"].as_u64().unwrap() > 0, "{name}: {v}");
        // Archive, restore, delete an item, archive again, purge.
        for slug in ["artists", "albums", "orders", "notes"] {
            let (s, _) = call(
                &app,
                Some(&a),
                "DELETE",
                &format!("/api/collections/{slug}"),
                None,
            )
            .await;
            assert_eq!(s, StatusCode::OK, "{name}: archive {slug}");
            let (s, _) = post(
                &app,
                &a,
                &format!("/api/collections/{slug}/restore"),
                json!({}),
            )
            .await;
            assert_eq!(s, StatusCode::OK, "{name}: restore {slug}");
        }
        let (s, _) = call(&app, Some(&ann), "DELETE", "/api/items/albums/5000", None).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{name}");
        let (s, _) = call(&app, Some(&ann), "DELETE", "/api/items/notes/n1", None).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{name}");
        for slug in ["albums", "artists", "orders", "notes"] {
            for _ in 0..2 {
                let (s, v) = call(
                    &app,
                    Some(&a),
                    "DELETE",
                    &format!("/api/collections/{slug}"),
                    None,
                )
                .await;
                assert_eq!(s, StatusCode::OK, "{name}: {slug}: {v}");
            }
        }
        let after = schema(&t.db).await;
        assert_eq!(before, after, "{name}: the schema did not change");
        t.close().await;
    }
}

#[tokio::test]
async fn adopted_rows_are_judged_on_their_stored_values() {
    for t in dbs().await {
        let name = t.name();
        let pg = matches!(t.db.pool(), workeros_store::DbPool::Postgres(_));
        let when = if pg { "timestamptz" } else { "DATETIME" };
        exec(
            &t.db,
            &format!("CREATE TABLE tickets (code text PRIMARY KEY, title text, deleted_at {when})"),
        )
        .await;
        let app = app_on(&t).await;
        let a = admin();
        let (s, v) = post(
            &app,
            &a,
            "/api/collections",
            json!({"adopted": true, "physicalTable": "tickets", "slug": "tickets", "ownerScoped": true,
                   "fields": [{"name": "title", "type": "longtext"},
                              {"name": "deleted_at", "type": "timestamp"}]}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        // Only live tickets, for every action.
        for action in ["read", "update", "delete"] {
            let (s, v) = post(
                &app,
                &a,
                "/api/permissions",
                json!({"role": "staff", "collection": "tickets", "action": action,
                       "filter": {"deleted_at": {"_null": true}}}),
            )
            .await;
            assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        }
        // Another application soft-deletes a ticket with a date in its own format (SQLite keeps
        // the text as is; workeros cannot decode it and reads null).
        let stamp = if pg {
            "2024-05-01 10:00:00+00"
        } else {
            "2024/05/01"
        };
        exec(
            &t.db,
            &format!(
                "INSERT INTO tickets VALUES ('gone', 'old', '{stamp}'), ('live', 'new', NULL)"
            ),
        )
        .await;
        let staff = Subject::user(User::new("s1").with_roles(["staff"]));
        let (_, v) = get(&app, &staff, "/api/items/tickets").await;
        assert_eq!(v["data"].as_array().unwrap().len(), 1, "{name}: {v}");
        let (s, _) = get(&app, &staff, "/api/items/tickets/gone").await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{name}");
        for (method, body) in [("PATCH", Some(json!({"title": "x"}))), ("DELETE", None)] {
            let (s, v) = call(&app, Some(&staff), method, "/api/items/tickets/gone", body).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{name}: {method}: {v}");
        }
        let (s, v) = call(
            &app,
            Some(&staff),
            "PATCH",
            "/api/items/tickets/live",
            Some(json!({"title": "y"})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        // Sorting by the owner kept in `item_ownership`, and a key that looks like a variable.
        let (s, v) = post(
            &app,
            &a,
            "/api/items/tickets",
            json!({"code": "$user.id", "title": "dollar"}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        let (s, v) = get(&app, &a, "/api/items/tickets/%24user.id").await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        assert_eq!(v["data"]["title"], "dollar");
        let (s, v) = get(&app, &a, "/api/items/tickets?sort=-ownerId").await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        assert_eq!(v["data"][0]["ownerId"], ADMIN_ID, "{name}: {v}");
        // Names that would shadow the key or a system field, and workeros' own tables.
        let (s, v) = post(
            &app,
            &a,
            "/api/collections",
            json!({"adopted": true, "physicalTable": "legacy_x", "slug": "x"}),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {v}");
        exec(
            &t.db,
            "CREATE TABLE shadow (id integer PRIMARY KEY, c text)",
        )
        .await;
        let (s, v) = post(
            &app,
            &a,
            "/api/collections",
            json!({"adopted": true, "physicalTable": "shadow", "slug": "shadow",
                   "fields": [{"name": "createdAt", "column": "c", "type": "longtext"}]}),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {v}");
        assert_eq!(v["error"]["field"], "createdAt", "{name}: {v}");
        // A table of workeros's own is never adopted: on SQLite its prefixed name; on
        // PostgreSQL any table, when the host schema is workeros's own.
        let db = match t.db.pool() {
            workeros_store::DbPool::Postgres(_) => {
                let ns = t.db.names().namespace().to_string();
                t.db.clone().with_host_schema(ns).unwrap()
            }
            workeros_store::DbPool::Sqlite(_) => t.db.clone(),
        };
        let store = workeros_store::Store::new(db);
        let e = store
            .create_adopted(
                &a,
                serde_json::from_value(json!({
                    "slug": "perms", "physicalTable": t.db.names().physical(system_table("permissions")), "ownerScoped": false,
                    "fields": [], "adoption": {"pkColumn": "id", "pkType": "uuid"}
                }))
                .unwrap(),
            )
            .await
            .unwrap_err();
        assert_eq!(
            e.code(),
            workeros_core::ErrorCode::Validation,
            "{name}: {e:?}"
        );
        t.close().await;
    }
}
