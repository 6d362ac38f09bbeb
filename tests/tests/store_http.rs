//! The store's routes end to end (through `workeros_store::http::router`) on SQLite and
//! PostgreSQL: the collection lifecycle and permissions over HTTP, status codes and error bodies.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use axum::http::StatusCode;
use serde_json::json;
use workeros_core::{Subject, User};
use workeros_store::{Store, migrate};
use workeros_tests::http::call;
use workeros_tests::stores::dbs;

#[tokio::test]
async fn collection_lifecycle_over_http() {
    for t in dbs().await {
        let name = t.name();
        migrate(&t.db).await.unwrap();
        let app: axum::Router = workeros_store::http::router(Store::new(t.db.clone()));
        let admin = Subject::user(User::new("a1").with_roles(["admin"]));
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
            "role": "authenticated", "collection": "tasks", "action": "read", "filter": "due > $now"
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
            "role": "authenticated", "collection": "tasks", "action": "read", "filter": {"secret": {"_eq": 1}}
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
