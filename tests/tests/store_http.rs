//! The store's routes end to end (through `workeros_store::http::router`) on SQLite and
//! PostgreSQL: the collection lifecycle and permissions over HTTP, status codes and error bodies,
//! a forced DDL failure that leaves nothing behind, and hostile names refused before SQL.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use axum::http::StatusCode;
use serde_json::json;
use workeros_core::roles::AUTHENTICATED;
use workeros_core::{Subject, User};
use workeros_tests::fixtures::admin;
use workeros_tests::http::call;
use workeros_tests::stores::dbs;

#[tokio::test]
async fn collection_lifecycle_over_http() {
    for t in dbs().await {
        let name = t.name();
        let app = workeros_tests::stores::app(&t).await;
        let admin = admin();
        let a = Some(&admin);

        let (s, v) = call(
            &app,
            a,
            "POST",
            "/api/collections",
            Some(json!({
                "slug": "tasks", "ownerScoped": true,
                "fields": [{"name": "title", "type": "text"}, {"name": "done", "type": "boolean"}]
            })),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        assert_eq!(v["data"]["ownerScoped"], true, "{name}");

        let (s, v) = call(
            &app,
            a,
            "PATCH",
            "/api/collections/tasks",
            Some(json!({
                "fields": [{"name": "due", "type": "timestamp"}]
            })),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        assert_eq!(v["data"]["fields"].as_array().unwrap().len(), 3, "{name}");

        let (s, v) = call(
            &app,
            a,
            "DELETE",
            "/api/collections/tasks/fields/done",
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        assert_eq!(v["data"]["fields"].as_array().unwrap().len(), 2, "{name}");

        let (s, v) = call(&app, a, "POST", "/api/permissions", Some(json!({
            "role": AUTHENTICATED, "collection": "tasks", "action": "read", "filter": "due > $now"
        }))).await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        let id = v["data"]["id"].as_str().unwrap().to_owned();
        let (s, v) = call(&app, a, "GET", &format!("/api/permissions/{id}"), None).await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        assert_eq!(
            v["data"]["filter"],
            json!({"due": {"_gt": "$now"}}),
            "{name}"
        );
        let (s, v) = call(&app, a, "POST", "/api/permissions", Some(json!({
            "role": AUTHENTICATED, "collection": "tasks", "action": "read", "filter": {"secret": {"_eq": 1}}
        }))).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {v}");
        assert_eq!(v["error"]["code"], "VALIDATION", "{name}");
        let (s, _) = call(&app, a, "DELETE", &format!("/api/permissions/{id}"), None).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{name}");
        let (s, _) = call(&app, a, "GET", "/api/permissions/not-a-uuid", None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{name}");

        // Not an admin: 403; anonymous (no extension): 403.
        let user = Subject::user(User::new("u1"));
        let (s, v) = call(&app, Some(&user), "GET", "/api/collections", None).await;
        assert_eq!(
            (s, v["error"]["code"].clone()),
            (StatusCode::FORBIDDEN, json!("FORBIDDEN")),
            "{name}"
        );
        let (s, _) = call(&app, None, "DELETE", "/api/collections/tasks", None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{name}");

        let (s, _) = call(&app, a, "DELETE", "/api/collections/tasks", None).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{name}");
        let (s, v) = call(
            &app,
            a,
            "GET",
            "/api/collections/tasks?include_archived=true",
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{name}: {v}");
        assert_eq!(
            v["error"]["message"], "collection `tasks` not found",
            "{name}"
        );
        t.close().await;
    }
}

#[tokio::test]
async fn failed_ddl_and_hostile_names_over_http() {
    for t in dbs().await {
        let name = t.name();
        let app = workeros_tests::stores::app(&t).await;
        let admin = admin();
        let a = Some(&admin);
        // A table already holds the name the collection's table would get: the CREATE TABLE
        // fails after the metadata row was written, and the whole transaction rolls back.
        let mut tx = t.db.begin().await.unwrap();
        tx.ddl(
            sea_query::Table::create()
                .table(t.db.names().collection_table("c_000000000000_clash"))
                .col(sea_query::ColumnDef::new(sea_query::Alias::new("x")).integer()),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let (s, v) = call(
            &app,
            a,
            "POST",
            "/api/collections",
            Some(json!({
                "slug": "clash", "ownerScoped": true, "fields": [{"name": "a", "type": "text"}]
            })),
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT, "{name}: {v}");
        assert_eq!(v["error"]["code"], "CONFLICT", "{name}");
        for uri in [
            "/api/collections?include_archived=true",
            "/api/permissions",
            "/api/activity",
        ] {
            let (s, v) = call(&app, a, "GET", uri, None).await;
            assert_eq!(
                (s, v["data"].clone()),
                (StatusCode::OK, json!([])),
                "{name}: {uri}"
            );
        }
        // Hostile slugs and field names are refused before any SQL.
        for body in [
            json!({"slug": "x\"; DROP TABLE collections; --"}),
            json!({"slug": "ok", "fields": [{"name": "a\"b", "type": "text"}]}),
            json!({"slug": "ok", "fields": [{"name": "Robert'); DROP TABLE x;--", "type": "text"}]}),
            json!({"slug": "ok", "fields": [{"name": "é", "type": "text"}]}),
            json!({"slug": "ok", "fields": [{"name": "a".repeat(64), "type": "text"}]}),
            json!({"slug": "ok", "fields": [{"name": "tenant_id", "type": "text"}]}),
            json!({"slug": "ok", "fields": [{"name": "a", "type": "varchar; --"}]}),
        ] {
            let (s, v) = call(&app, a, "POST", "/api/collections", Some(body.clone())).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}: {v}");
        }
        let (_, v) = call(&app, a, "GET", "/api/collections", None).await;
        assert_eq!(v["data"], json!([]), "{name}");
        t.close().await;
    }
}
