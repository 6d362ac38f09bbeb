//! Regression tests for findings of a code review of the store, on SQLite and PostgreSQL: a field
//! readable only in some rows is not filterable (oracle), read filters cannot use `_regex`, one
//! grant's unbuildable row does not stop another grant, revisions hide states the subject could not
//! read, huge offsets and NUL in JSON are client errors.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use axum::http::StatusCode;
use serde_json::json;
use workeros_core::roles::{AUTHENTICATED, PUBLIC};
use workeros_core::{Subject, User};
use workeros_tests::fixtures::admin;
use workeros_tests::http::call;
use workeros_tests::stores::dbs;

#[tokio::test]
async fn review_findings() {
    for t in dbs().await {
        let name = t.name();
        let app = workeros_tests::stores::app(&t).await;
        let admin = admin();
        let a = Some(&admin);
        call(
            &app,
            a,
            "POST",
            "/api/collections",
            Some(json!({"slug": "emp", "ownerScoped": true, "fields": [
                {"name": "title", "type": "text"}, {"name": "salary", "type": "integer"},
                {"name": "team", "type": "text", "required": true}, {"name": "meta", "type": "json"}
            ]})),
        )
        .await;
        // Everyone signed in reads every title; only their own rows in full.
        let (_, v) = call(&app, a, "GET", "/api/permissions?collection=emp", None).await;
        for p in v["data"].as_array().unwrap() {
            let id = p["id"].as_str().unwrap();
            call(&app, a, "DELETE", &format!("/api/permissions/{id}"), None).await;
        }
        for p in [
            json!({"role": AUTHENTICATED, "collection": "emp", "action": "read", "fields": ["title"]}),
            json!({"role": AUTHENTICATED, "collection": "emp", "action": "read", "filter": {"owner_id": {"_eq": "$user.id"}}}),
            json!({"role": AUTHENTICATED, "collection": "emp", "action": "create", "fields": ["title", "salary", "meta"]}),
            json!({"role": AUTHENTICATED, "collection": "emp", "action": "create", "fields": ["title", "salary", "meta"], "presets": {"team": "support"}}),
        ] {
            let (s, v) = call(&app, a, "POST", "/api/permissions", Some(p)).await;
            assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        }
        let alice = Subject::user(User::new("alice"));
        let bob = Subject::user(User::new("bob"));
        // The first create grant cannot build a row without `team`; the second (its preset) can.
        let (s, v) = call(
            &app,
            Some(&alice),
            "POST",
            "/api/items/emp",
            Some(json!({"title": "a", "salary": 500000})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        call(
            &app,
            Some(&bob),
            "POST",
            "/api/items/emp",
            Some(json!({"title": "b", "salary": 10})),
        )
        .await;

        // `salary` is readable only in one's own rows: it cannot rank or count other rows.
        for q in [
            "filter[salary][_gt]=100000&meta=count",
            "sort=-salary",
            "filter=salary%20is%20null",
        ] {
            let (s, v) = call(
                &app,
                Some(&bob),
                "GET",
                &format!("/api/items/emp?{q}"),
                None,
            )
            .await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{name}: {q}: {v}");
        }
        // It can still be asked for: shown where readable, null elsewhere.
        let (s, v) = call(
            &app,
            Some(&bob),
            "GET",
            "/api/items/emp?fields=title,salary&sort=title",
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        assert_eq!(
            v["data"],
            json!([{"title": "a", "salary": null}, {"title": "b", "salary": 10}]),
            "{name}"
        );

        // Read filters cannot use `_regex` (they run as SQL); other actions may.
        let (s, v) = call(
            &app,
            a,
            "POST",
            "/api/permissions",
            Some(json!({"role": "x", "collection": "emp",
            "action": "read", "filter": {"title": {"_regex": "^a"}}})),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {v}");

        // NUL in JSON, huge offsets: client errors, not 500s.
        let (s, v) = call(
            &app,
            Some(&alice),
            "POST",
            "/api/items/emp",
            Some(json!({"title": "n", "meta": {"k": "a\u{0}b"}})),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {v}");
        for uri in [
            "/api/activity?offset=9223372036854775808",
            "/api/items/emp?offset=9223372036854775808",
        ] {
            let (s, v) = call(&app, a, "GET", uri, None).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {uri}: {v}");
        }
        t.close().await;
    }
}

#[tokio::test]
async fn revisions_hide_states_the_subject_could_not_read() {
    for t in dbs().await {
        let name = t.name();
        let app = workeros_tests::stores::app(&t).await;
        let admin = admin();
        let a = Some(&admin);
        call(
            &app,
            a,
            "POST",
            "/api/collections",
            Some(json!({"slug": "posts", "fields": [
                {"name": "status", "type": "text"}, {"name": "body", "type": "text"}
            ]})),
        )
        .await;
        call(
            &app,
            a,
            "POST",
            "/api/permissions",
            Some(json!({"role": PUBLIC, "collection": "posts",
            "action": "read", "filter": {"status": {"_eq": "published"}}})),
        )
        .await;
        let (_, v) = call(
            &app,
            a,
            "POST",
            "/api/items/posts",
            Some(json!({"status": "draft", "body": "secret plan"})),
        )
        .await;
        let id = v["data"]["id"].as_str().unwrap().to_owned();
        call(
            &app,
            a,
            "PATCH",
            &format!("/api/items/posts/{id}"),
            Some(json!({"status": "published", "body": "hello"})),
        )
        .await;
        let upper = id.to_uppercase();
        for item in [&id, &upper] {
            let (s, v) = call(
                &app,
                None,
                "GET",
                &format!("/api/revisions?collection=posts&item={item}"),
                None,
            )
            .await;
            assert_eq!(s, StatusCode::OK, "{name}: {v}");
            let revs = v["data"].as_array().unwrap();
            assert_eq!(revs.len(), 1, "{name}: only the published state: {v}");
            assert!(!v.to_string().contains("secret plan"), "{name}: {v}");
        }
        let (_, v) = call(
            &app,
            a,
            "GET",
            &format!("/api/revisions?collection=posts&item={upper}"),
            None,
        )
        .await;
        assert_eq!(
            v["data"].as_array().unwrap().len(),
            2,
            "{name}: the admin sees both"
        );
        t.close().await;
    }
}

#[tokio::test]
async fn dropping_a_field_takes_it_out_of_permissions() {
    for t in dbs().await {
        let name = t.name();
        let app = workeros_tests::stores::app(&t).await;
        let admin = admin();
        let a = Some(&admin);
        call(&app, a, "POST", "/api/collections", Some(json!({"slug": "emp", "fields": [
            {"name": "title", "type": "text"}, {"name": "salary", "type": "integer"}, {"name": "team", "type": "text"}
        ]}))).await;
        let (_, p) = call(
            &app,
            a,
            "POST",
            "/api/permissions",
            Some(json!({"role": "hr", "collection": "emp",
            "action": "create", "fields": ["title", "salary"], "presets": {"team": "hr"}})),
        )
        .await;
        let id = p["data"]["id"].as_str().unwrap().to_owned();
        for field in ["salary", "team"] {
            let (s, v) = call(
                &app,
                a,
                "DELETE",
                &format!("/api/collections/emp/fields/{field}"),
                None,
            )
            .await;
            assert_eq!(s, StatusCode::OK, "{name}: {v}");
        }
        let (_, v) = call(&app, a, "GET", &format!("/api/permissions/{id}"), None).await;
        assert_eq!(v["data"]["fields"], json!(["title"]), "{name}");
        assert_eq!(v["data"]["presets"], serde_json::Value::Null, "{name}");
        // Added again, the field is not granted by the old list.
        call(
            &app,
            a,
            "PATCH",
            "/api/collections/emp",
            Some(json!({"fields": [{"name": "salary", "type": "integer"}]})),
        )
        .await;
        let hr = Subject::user(User::new("h1").with_roles(["hr"]));
        let (s, _) = call(
            &app,
            Some(&hr),
            "POST",
            "/api/items/emp",
            Some(json!({"title": "x", "salary": 1})),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{name}");
        let (s, v) = call(
            &app,
            Some(&hr),
            "POST",
            "/api/items/emp",
            Some(json!({"title": "x"})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        t.close().await;
    }
}
