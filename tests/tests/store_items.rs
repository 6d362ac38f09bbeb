//! Items through the HTTP routes on SQLite and PostgreSQL: CRUD with every query parameter, the
//! permission pipeline for non-admin subjects (owner scope, IDOR, field allow-lists and null-out,
//! presets, validation, scope escape, mass assignment), relations, unique values, and the outbox.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use async_trait::async_trait;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use workeros_core::roles::AUTHENTICATED;
use workeros_core::{CoreError, Event, EventSink, Subject, User};
use workeros_store::{Store, migrate};
use workeros_tests::fixtures::{admin, user};
use workeros_tests::http::call;
use workeros_tests::stores::dbs;

#[derive(Default)]
struct Recorder(Mutex<Vec<Event>>);

#[async_trait]
impl EventSink for Recorder {
    async fn deliver(&self, events: &[Event]) -> Result<(), CoreError> {
        self.0.lock().unwrap().extend_from_slice(events);
        Ok(())
    }
}

fn ids(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn admin_crud_with_every_query_parameter() {
    for t in dbs().await {
        let name = t.name();
        migrate(&t.db).await.unwrap();
        let store = Store::new(t.db.clone());
        let rec = Arc::new(Recorder::default());
        store.add_sink(rec.clone());
        let app: axum::Router = workeros_tests::mount::mount(workeros_store::http::router(store));
        let a = admin();
        let a = Some(&a);
        let (s, v) = call(
            &app,
            a,
            "POST",
            "/api/collections",
            Some(json!({"slug": "posts", "fields": [
                {"name": "title", "type": "text", "required": true},
                {"name": "sku", "type": "text", "unique": true},
                {"name": "views", "type": "integer"},
                {"name": "score", "type": "number"},
                {"name": "draft", "type": "boolean"},
                {"name": "meta", "type": "json"},
                {"name": "published", "type": "timestamp"}
            ]})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");

        let (s, v) = call(&app, a, "POST", "/api/items/posts", Some(json!(
            {"title": "one", "sku": "a", "views": 5, "score": 1.5, "draft": true, "meta": {"k": [1]},
             "published": "2024-05-01T10:00:00+02:00"}
        ))).await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        let one = v["data"].clone();
        assert_eq!(one["published"], "2024-05-01T08:00:00.000000Z", "{name}");
        assert_eq!(one["meta"], json!({"k": [1]}), "{name}");
        assert!(
            one["createdAt"].is_string() && one["id"].is_string(),
            "{name}"
        );
        let (s, v) = call(
            &app,
            a,
            "POST",
            "/api/items/posts",
            Some(json!([
                {"title": "two", "sku": "b", "views": 50},
                {"title": "three", "sku": "c", "views": 500, "draft": false}
            ])),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        assert_eq!(v["data"].as_array().unwrap().len(), 2, "{name}");

        let (s, v) = call(
            &app,
            a,
            "GET",
            "/api/items/posts?sort=-views&limit=2&offset=0&meta=count&fields=title,views",
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        assert_eq!(ids(&v), ["three", "two"], "{name}");
        assert_eq!(v["meta"]["count"], 3, "{name}");
        assert_eq!(v["data"][0].as_object().unwrap().len(), 2, "{name}: fields");
        let (_, v) = call(
            &app,
            a,
            "GET",
            "/api/items/posts?sort=-views&limit=2&offset=2",
            None,
        )
        .await;
        assert_eq!(ids(&v), ["one"], "{name}");
        for q in [
            "filter=%7B%22views%22%3A%7B%22_gt%22%3A10%7D%7D",
            "filter=views%20%3E%2010",
            "filter[views][_gt]=10",
            "filter[sku][_in]=b,c",
            "filter[_or][0][title][_eq]=two&filter[_or][1][title][_eq]=three",
        ] {
            let (s, v) = call(
                &app,
                a,
                "GET",
                &format!("/api/items/posts?sort=title&{q}"),
                None,
            )
            .await;
            assert_eq!(s, StatusCode::OK, "{name}: {q}: {v}");
            assert_eq!(ids(&v), ["three", "two"], "{name}: {q}");
        }
        let (s, _) = call(&app, a, "GET", "/api/items/posts?limit=1001", None).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        let (s, _) = call(&app, a, "GET", "/api/items/posts?filter=views%20%3E", None).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}");

        let id = one["id"].as_str().unwrap();
        let (s, v) = call(&app, a, "GET", &format!("/api/items/posts/{id}"), None).await;
        assert_eq!(
            (s, v["data"]["title"].clone()),
            (StatusCode::OK, json!("one")),
            "{name}"
        );
        let (s, v) = call(
            &app,
            a,
            "PATCH",
            &format!("/api/items/posts/{id}"),
            Some(json!({"views": 6, "draft": null})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        assert_eq!(
            (v["data"]["views"].clone(), v["data"]["draft"].clone()),
            (json!(6), Value::Null),
            "{name}"
        );

        // Validation of values, required fields, unique values, system fields. A write refused
        // by the database (the duplicate `sku`) leaves no journal row: on PostgreSQL its item and
        // journal rows are one statement in autocommit, on SQLite one script in its transaction.
        let outbox = workeros_tests::stores::outbox_len(&t.db).await;
        for (body, status) in [
            (
                json!({"title": "x", "views": "many"}),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                json!({"title": "x".repeat(256)}),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (json!({"views": 1}), StatusCode::UNPROCESSABLE_ENTITY),
            (
                json!({"title": "x", "nope": 1}),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                json!({"title": "x", "published": "yesterday"}),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (json!({"title": "x", "sku": "a"}), StatusCode::CONFLICT),
            (
                json!({"title": "x", "id": "0191f5a2-7c3e-7abc-8def-0123456789ab"}),
                StatusCode::FORBIDDEN,
            ),
            (
                json!({"title": "x", "createdAt": "2020-01-01T00:00:00Z"}),
                StatusCode::FORBIDDEN,
            ),
        ] {
            let (s, v) = call(&app, a, "POST", "/api/items/posts", Some(body.clone())).await;
            assert_eq!(s, status, "{name}: {body}: {v}");
            assert!(v["error"]["message"].is_string(), "{name}");
        }
        assert_eq!(
            workeros_tests::stores::outbox_len(&t.db).await,
            outbox,
            "{name}: refused writes left no outbox row"
        );
        let before = rec.0.lock().unwrap().len();
        assert_eq!(
            before, 4,
            "{name}: three creates and one update were delivered"
        );

        let (s, _) = call(&app, a, "DELETE", &format!("/api/items/posts/{id}"), None).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{name}");
        let (s, _) = call(&app, a, "GET", &format!("/api/items/posts/{id}"), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{name}");
        let events = rec.0.lock().unwrap().clone();
        assert_eq!(events.len(), 5, "{name}: the failed writes emitted nothing");
        assert_eq!(
            events[4].action,
            workeros_core::EventAction::Delete,
            "{name}"
        );
        assert_eq!(events[3].previous.as_ref().unwrap()["views"], 5, "{name}");
        t.close().await;
    }
}

#[tokio::test]
async fn owner_scope_idor_and_mass_assignment() {
    for t in dbs().await {
        let name = t.name();
        let app = workeros_tests::stores::app(&t).await;
        let a = admin();
        let (s, _) = call(
            &app,
            Some(&a),
            "POST",
            "/api/collections",
            Some(json!({
                "slug": "notes", "ownerScoped": true, "fields": [{"name": "title", "type": "text"}]
            })),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}");
        let (alice, bob) = (user("alice"), user("bob"));
        let (s, v) = call(
            &app,
            Some(&alice),
            "POST",
            "/api/items/notes",
            Some(json!({"title": "a1"})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        assert_eq!(v["data"]["ownerId"], "alice", "{name}");
        let alice_item = v["data"]["id"].as_str().unwrap().to_owned();
        call(
            &app,
            Some(&bob),
            "POST",
            "/api/items/notes",
            Some(json!({"title": "b1"})),
        )
        .await;

        let (_, v) = call(&app, Some(&alice), "GET", "/api/items/notes", None).await;
        assert_eq!(ids(&v), ["a1"], "{name}");
        let (_, v) = call(&app, Some(&bob), "GET", "/api/items/notes?meta=count", None).await;
        assert_eq!(
            (ids(&v), v["meta"]["count"].clone()),
            (vec!["b1".to_owned()], json!(1)),
            "{name}"
        );

        // IDOR: bob on alice's item gets exactly what a missing item gives.
        let missing = "0191f5a2-7c3e-7abc-8def-0123456789ab";
        for method in ["GET", "PATCH", "DELETE"] {
            let body = (method == "PATCH").then(|| json!({"title": "x"}));
            let (s1, v1) = call(
                &app,
                Some(&bob),
                method,
                &format!("/api/items/notes/{alice_item}"),
                body.clone(),
            )
            .await;
            let (s2, v2) = call(
                &app,
                Some(&bob),
                method,
                &format!("/api/items/notes/{missing}"),
                body,
            )
            .await;
            assert_eq!(s1, StatusCode::NOT_FOUND, "{name}: {method}");
            assert_eq!(s2, StatusCode::NOT_FOUND, "{name}: {method}");
            let strip = |v: Value| {
                v["error"]["message"]
                    .as_str()
                    .unwrap()
                    .replace(&alice_item, "ID")
                    .replace(missing, "ID")
            };
            assert_eq!(strip(v1), strip(v2), "{name}: {method}");
        }
        // Mass assignment: no owner, tenant or timestamps from the client.
        for body in [
            json!({"ownerId": "bob"}),
            json!({"owner_id": "bob"}),
            json!({"tenant_id": "x"}),
            json!({"updatedAt": "2020-01-01T00:00:00Z"}),
        ] {
            let (s, v) = call(
                &app,
                Some(&alice),
                "PATCH",
                &format!("/api/items/notes/{alice_item}"),
                Some(body.clone()),
            )
            .await;
            assert!(
                s == StatusCode::FORBIDDEN || s == StatusCode::UNPROCESSABLE_ENTITY,
                "{name}: {body}: {s} {v}"
            );
        }
        let (_, v) = call(
            &app,
            Some(&alice),
            "GET",
            &format!("/api/items/notes/{alice_item}"),
            None,
        )
        .await;
        assert_eq!(v["data"]["ownerId"], "alice", "{name}");
        // Anonymous: no permission at all.
        let (s, _) = call(&app, None, "GET", "/api/items/notes", None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{name}");
        // The owner updates and deletes its own item.
        let (s, v) = call(
            &app,
            Some(&alice),
            "PATCH",
            &format!("/api/items/notes/{alice_item}"),
            Some(json!({"title": "a2"})),
        )
        .await;
        assert_eq!(
            (s, v["data"]["title"].clone()),
            (StatusCode::OK, json!("a2")),
            "{name}: {v}"
        );
        let (s, _) = call(
            &app,
            Some(&alice),
            "DELETE",
            &format!("/api/items/notes/{alice_item}"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{name}");
        let (s, _) = call(
            &app,
            Some(&alice),
            "GET",
            &format!("/api/items/notes/{alice_item}"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{name}");
        t.close().await;
    }
}

#[tokio::test]
async fn custom_permissions_fields_presets_validation_scope() {
    for t in dbs().await {
        let name = t.name();
        let app = workeros_tests::stores::app(&t).await;
        let a = admin();
        let a = Some(&a);
        call(
            &app,
            a,
            "POST",
            "/api/collections",
            Some(json!({"slug": "articles", "fields": [
                {"name": "title", "type": "text"}, {"name": "status", "type": "text"},
                {"name": "secret", "type": "text"}, {"name": "editor", "type": "text"},
                {"name": "views", "type": "integer"}
            ]})),
        )
        .await;
        for p in [
            // Everyone signed in reads published articles, but not `secret`.
            json!({"role": AUTHENTICATED, "collection": "articles", "action": "read",
                   "filter": {"status": {"_eq": "published"}}, "fields": ["title", "status", "views", "editor"]}),
            // Editors read drafts too, every field.
            json!({"role": "editor", "collection": "articles", "action": "read",
                   "filter": "status = 'draft'"}),
            // Editors create drafts; the editor field is preset; views must be small.
            json!({"role": "editor", "collection": "articles", "action": "create",
                   "fields": ["title", "views", "status"], "presets": {"editor": "$user.id", "status": "draft"},
                   "validation": "views < 100"}),
            // Editors update drafts and must leave them drafts.
            json!({"role": "editor", "collection": "articles", "action": "update",
                   "filter": {"status": {"_eq": "draft"}}, "fields": ["title", "status"]}),
        ] {
            let (s, v) = call(&app, a, "POST", "/api/permissions", Some(p)).await;
            assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        }
        call(
            &app,
            a,
            "POST",
            "/api/items/articles",
            Some(json!([
                {"title": "pub", "status": "published", "secret": "s1", "views": 1},
                {"title": "old-draft", "status": "draft", "secret": "s2", "views": 2}
            ])),
        )
        .await;
        let reader = user("r1");
        let editor = Subject::user(User::new("e1").with_roles(["editor"]));

        let (_, v) = call(&app, Some(&reader), "GET", "/api/items/articles", None).await;
        assert_eq!(ids(&v), ["pub"], "{name}");
        assert_eq!(v["data"][0]["secret"], Value::Null, "{name}: masked");
        // Filtering or sorting on an unreadable field is refused, not answered.
        for q in [
            "filter[secret][_eq]=s1",
            "sort=secret",
            "fields=secret",
            "filter=secret%20is%20null",
        ] {
            let (s, v) = call(
                &app,
                Some(&reader),
                "GET",
                &format!("/api/items/articles?{q}"),
                None,
            )
            .await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{name}: {q}: {v}");
        }
        // The editor sees the draft with `secret` (its draft permission grants every field) and
        // the published one without it (only the authenticated permission matches it).
        let (_, v) = call(
            &app,
            Some(&editor),
            "GET",
            "/api/items/articles?sort=title",
            None,
        )
        .await;
        assert_eq!(ids(&v), ["old-draft", "pub"], "{name}");
        assert_eq!(
            (
                v["data"][0]["secret"].clone(),
                v["data"][1]["secret"].clone()
            ),
            (json!("s2"), Value::Null),
            "{name}"
        );

        // Create: presets win over client input; validation; fields outside the allow-list.
        let (s, v) = call(
            &app,
            Some(&editor),
            "POST",
            "/api/items/articles",
            Some(json!({"title": "new", "views": 3, "status": "published"})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        assert_eq!(
            (v["data"]["status"].clone(), v["data"]["editor"].clone()),
            (json!("draft"), json!("e1")),
            "{name}"
        );
        let new_id = v["data"]["id"].as_str().unwrap().to_owned();
        let (s, _) = call(
            &app,
            Some(&editor),
            "POST",
            "/api/items/articles",
            Some(json!({"title": "big", "views": 500})),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: validation");
        let (s, _) = call(
            &app,
            Some(&editor),
            "POST",
            "/api/items/articles",
            Some(json!({"title": "x", "secret": "no"})),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{name}: field allow-list");
        let (s, _) = call(
            &app,
            Some(&reader),
            "POST",
            "/api/items/articles",
            Some(json!({"title": "x"})),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{name}: no create permission");

        // Update: allowed within scope; moving the row out of scope is refused; a readable row
        // without an update permission is 403.
        let (s, v) = call(
            &app,
            Some(&editor),
            "PATCH",
            &format!("/api/items/articles/{new_id}"),
            Some(json!({"title": "renamed"})),
        )
        .await;
        assert_eq!(
            (s, v["data"]["title"].clone()),
            (StatusCode::OK, json!("renamed")),
            "{name}: {v}"
        );
        let (s, _) = call(
            &app,
            Some(&editor),
            "PATCH",
            &format!("/api/items/articles/{new_id}"),
            Some(json!({"status": "published"})),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{name}: scope escape");
        let (_, v) = call(
            &app,
            Some(&editor),
            "GET",
            &format!("/api/items/articles/{new_id}"),
            None,
        )
        .await;
        assert_eq!(v["data"]["status"], "draft", "{name}: unchanged");
        let (_, v) = call(
            &app,
            Some(&reader),
            "GET",
            "/api/items/articles?filter[title][_eq]=pub",
            None,
        )
        .await;
        let pub_id = v["data"][0]["id"].as_str().unwrap().to_owned();
        let (s, _) = call(
            &app,
            Some(&reader),
            "PATCH",
            &format!("/api/items/articles/{pub_id}"),
            Some(json!({"title": "x"})),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{name}: readable, not updatable");
        // Delete under a custom permission: editors delete drafts only.
        let (s, v) = call(
            &app,
            a,
            "POST",
            "/api/permissions",
            Some(json!({"role": "editor", "collection": "articles",
            "action": "delete", "filter": {"status": {"_eq": "draft"}}})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        let (s, _) = call(
            &app,
            Some(&editor),
            "DELETE",
            &format!("/api/items/articles/{pub_id}"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{name}: readable, not deletable");
        let (s, _) = call(
            &app,
            Some(&editor),
            "DELETE",
            &format!("/api/items/articles/{new_id}"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{name}: a draft");
        let (s, _) = call(
            &app,
            Some(&reader),
            "DELETE",
            &format!("/api/items/articles/{pub_id}"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{name}: no delete permission");
        t.close().await;
    }
}

#[tokio::test]
async fn relations_must_exist() {
    for t in dbs().await {
        let name = t.name();
        let app = workeros_tests::stores::app(&t).await;
        let a = admin();
        let a = Some(&a);
        call(
            &app,
            a,
            "POST",
            "/api/collections",
            Some(json!({"slug": "authors", "fields": [{"name": "title", "type": "text"}]})),
        )
        .await;
        call(
            &app,
            a,
            "POST",
            "/api/collections",
            Some(json!({"slug": "books", "fields": [
                {"name": "title", "type": "text"},
                {"name": "author", "type": "relation", "to": "authors"},
                {"name": "coauthors", "type": "relation_many", "to": "authors"}
            ]})),
        )
        .await;
        let (_, v) = call(
            &app,
            a,
            "POST",
            "/api/items/authors",
            Some(json!({"title": "ann"})),
        )
        .await;
        let ann = v["data"]["id"].as_str().unwrap().to_owned();
        let ghost = "0191f5a2-7c3e-7abc-8def-0123456789ab";
        let (s, v) = call(
            &app,
            a,
            "POST",
            "/api/items/books",
            Some(json!({"title": "b", "author": ann, "coauthors": [ann]})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        for body in [
            json!({"title": "b", "author": ghost}),
            json!({"title": "b", "coauthors": [ann, ghost]}),
            json!({"title": "b", "author": "not-a-uuid"}),
        ] {
            let (s, v) = call(&app, a, "POST", "/api/items/books", Some(body.clone())).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}: {v}");
        }
        t.close().await;
    }
}
