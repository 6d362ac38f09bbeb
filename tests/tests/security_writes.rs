//! Issue 15, finding 4: the write path is no oracle for rows the subject cannot read, on SQLite
//! and PostgreSQL, in paired state (two stores that differ only in a row the subject cannot
//! see answer every write identically):
//! - a relation (to-one and to-many) must name a row the subject may read: an existing but
//!   hidden target is answered exactly like a missing one (422), and no link to it is made;
//! - a unique conflict is an accepted, documented channel (the value is taken, whoever holds
//!   it): the 409 names neither the row nor anything of it;
//! - a list takes at most `MAX_SORT_KEYS` sort keys.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use axum::http::StatusCode;
use serde_json::{Value, json};
use workeros_core::{Subject, User};
use workeros_store::{Store, migrate};
use workeros_tests::fixtures::admin_of;
use workeros_tests::http::call;
use workeros_tests::stores::{TestDb, dbs};

/// `authors` (name, a unique handle, `public`), `books` (title, `author` → authors, `coauthors`
/// → many authors). A writer may read public authors and create books and authors. With
/// `hidden`, a private author exists at `id` (else nothing does). Returns the app.
async fn world(t: &TestDb, hidden: Option<&str>) -> (axum::Router, String) {
    migrate(&t.db).await.unwrap();
    let app: axum::Router =
        workeros_tests::mount::mount(workeros_store::http::router(Store::new(t.db.clone())));
    let a = admin_of("t1");
    let a = Some(&a);
    let (s, v) = call(
        &app,
        a,
        "POST",
        "/api/collections",
        Some(json!({"slug": "authors", "fields": [
            {"name": "name", "type": "text"}, {"name": "handle", "type": "text", "unique": true},
            {"name": "public", "type": "boolean"}
        ]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = call(
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
    assert_eq!(s, StatusCode::CREATED, "{v}");
    for p in [
        json!({"role": "writer", "collection": "authors", "action": "read", "filter": {"public": {"_eq": true}}}),
        json!({"role": "writer", "collection": "authors", "action": "create"}),
        json!({"role": "writer", "collection": "books", "action": "create"}),
        json!({"role": "writer", "collection": "books", "action": "read"}),
    ] {
        let (s, v) = call(&app, a, "POST", "/api/permissions", Some(p)).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (s, v) = call(
        &app,
        a,
        "POST",
        "/api/items/authors",
        Some(json!({"name": "Ann", "handle": "ann", "public": true})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let public = v["data"]["id"].as_str().unwrap().to_owned();
    if let Some(handle) = hidden {
        let (s, v) = call(
            &app,
            a,
            "POST",
            "/api/items/authors",
            Some(json!({"name": "Secret Sam", "handle": handle, "public": false})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    (app, public)
}

/// The id of the hidden author of `app` (as its admin reads it).
async fn hidden_id(app: &axum::Router) -> String {
    let a = admin_of("t1");
    let (_, v) = call(
        app,
        Some(&a),
        "GET",
        "/api/items/authors?filter[public][_eq]=false",
        None,
    )
    .await;
    v["data"][0]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn writes_answer_alike_whether_a_hidden_row_exists() {
    // Two databases of each backend: one holds a private author, the other does not.
    let (left, right) = (dbs().await, dbs().await);
    for (l, r) in left.into_iter().zip(right) {
        let name = l.name();
        let (app_l, pub_l) = world(&l, Some("sam")).await;
        let (app_r, pub_r) = world(&r, None).await;
        // The same key in both: an existing hidden row on the left, nothing on the right.
        let hidden = hidden_id(&app_l).await;
        let writer = Subject::user(User::new("w").with_roles(["writer"])).with_tenant("t1");
        let normal = |v: &Value, public: &str| v.to_string().replace(public, "PUBLIC");
        for body in [
            json!({"title": "b", "author": hidden}),
            json!({"title": "b", "coauthors": [hidden]}),
            json!({"title": "b", "coauthors": ["PUB", hidden]}),
        ] {
            let with = |public: &str| {
                serde_json::from_str::<Value>(&body.to_string().replace("PUB", public)).unwrap()
            };
            let (sl, vl) = call(
                &app_l,
                Some(&writer),
                "POST",
                "/api/items/books",
                Some(with(&pub_l)),
            )
            .await;
            let (sr, vr) = call(
                &app_r,
                Some(&writer),
                "POST",
                "/api/items/books",
                Some(with(&pub_r)),
            )
            .await;
            assert_eq!(sl, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}: {vl}");
            assert_eq!(
                (sl, normal(&vl, &pub_l)),
                (sr, normal(&vr, &pub_r)),
                "{name}: {body}"
            );
        }
        // A readable target links.
        let (s, v) = call(
            &app_l,
            Some(&writer),
            "POST",
            "/api/items/books",
            Some(json!({"title": "ok", "author": pub_l, "coauthors": [pub_l, pub_l]})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");

        // A unique value held by a hidden row: 409 on the left (the accepted channel), and the
        // answer names nothing of the row.
        let (s, v) = call(
            &app_l,
            Some(&writer),
            "POST",
            "/api/items/authors",
            Some(json!({"name": "x", "handle": "sam", "public": true})),
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT, "{name}: {v}");
        let text = v.to_string();
        for leak in [hidden.as_str(), "Secret", "false"] {
            assert!(!text.contains(leak), "{name}: {text}");
        }
        // Cost: a sort holds at most `MAX_SORT_KEYS` keys.
        let keys = ["name"; workeros_store::MAX_SORT_KEYS + 1].join(",");
        let (s, v) = call(
            &app_l,
            Some(&writer),
            "GET",
            &format!("/api/items/authors?sort={keys}"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{name}: {v}");
        let keys = ["name"; workeros_store::MAX_SORT_KEYS].join(",");
        let (s, v) = call(
            &app_l,
            Some(&writer),
            "GET",
            &format!("/api/items/authors?sort={keys}"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        l.close().await;
        r.close().await;
    }
}

#[tokio::test]
async fn creates_take_no_server_fields_and_batches_stay_in_scope() {
    for t in dbs().await {
        let name = t.name();
        migrate(&t.db).await.unwrap();
        let app: axum::Router =
            workeros_tests::mount::mount(workeros_store::http::router(Store::new(t.db.clone())));
        let a = admin_of("t1");
        let (s, v) = call(
            &app,
            Some(&a),
            "POST",
            "/api/collections",
            Some(json!({"slug": "notes", "ownerScoped": true,
            "fields": [{"name": "title", "type": "text"}, {"name": "status", "type": "text"}]})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        for p in [
            json!({"role": "writer", "collection": "notes", "action": "create",
                   "filter": {"status": {"_eq": "draft"}}, "fields": ["title", "status"],
                   "presets": {"status": "draft"}}),
            json!({"role": "writer", "collection": "notes", "action": "read",
                   "filter": {"owner_id": {"_eq": "$user.id"}}}),
        ] {
            let (s, v) = call(&app, Some(&a), "POST", "/api/permissions", Some(p)).await;
            assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        }
        let w = Subject::user(User::new("w").with_roles(["writer"])).with_tenant("t1");
        // Mass assignment on create: the owner, tenant, key and timestamps are the server's.
        for extra in [
            json!({"ownerId": "mallory"}),
            json!({"owner_id": "mallory"}),
            json!({"tenant_id": "t2"}),
            json!({"tenantId": "t2"}),
            json!({"createdAt": "2020-01-01T00:00:00Z"}),
            json!({"updatedAt": "2020-01-01T00:00:00Z"}),
            json!({"id": "01900000-0000-7000-8000-000000000000"}),
        ] {
            let mut body = json!({"title": "n"});
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let (s, v) = call(&app, Some(&w), "POST", "/api/items/notes", Some(body)).await;
            assert!(
                s == StatusCode::FORBIDDEN || s == StatusCode::UNPROCESSABLE_ENTITY,
                "{name}: {extra}: {s} {v}"
            );
        }
        // Without owner scoping (whose implicit grant would accept): a preset wins over what
        // the client sends, and a batch with one row out of the grant's scope writes nothing.
        for (slug, p) in [
            (
                "drafts",
                json!({"role": "writer", "collection": "drafts", "action": "create",
                   "filter": {"status": {"_eq": "draft"}}, "presets": {"status": "draft"}}),
            ),
            (
                "queue",
                json!({"role": "writer", "collection": "queue", "action": "create",
                   "filter": {"status": {"_eq": "draft"}}}),
            ),
        ] {
            let (s, v) = call(&app, Some(&a), "POST", "/api/collections", Some(json!({"slug": slug,
                "fields": [{"name": "title", "type": "text"}, {"name": "status", "type": "text"}]}))).await;
            assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
            let (s, v) = call(&app, Some(&a), "POST", "/api/permissions", Some(p)).await;
            assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        }
        let (s, v) = call(
            &app,
            Some(&w),
            "POST",
            "/api/items/drafts",
            Some(json!({"title": "p", "status": "published"})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        // (The writer may not read drafts: its answer is the key alone; the admin reads it.)
        let id = v["data"]["id"].as_str().unwrap();
        let (_, v) = call(
            &app,
            Some(&a),
            "GET",
            &format!("/api/items/drafts/{id}"),
            None,
        )
        .await;
        assert_eq!(v["data"]["status"], "draft", "{name}: {v}");
        let (s, v) = call(&app, Some(&w), "POST", "/api/items/queue",
            Some(json!([{"title": "ok", "status": "draft"}, {"title": "bad", "status": "published"}]))).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{name}: {v}");
        let (_, after) = call(&app, Some(&a), "GET", "/api/items/queue?meta=count", None).await;
        assert_eq!(after["meta"]["count"], 0, "{name}: all or nothing");
        let (s, v) = call(
            &app,
            Some(&w),
            "POST",
            "/api/items/notes",
            Some(json!([{"title": "ok"}, {"title": "bad", "ownerId": "mallory"}])),
        )
        .await;
        assert!(s.is_client_error(), "{name}: {s} {v}");
        let (_, after) = call(&app, Some(&a), "GET", "/api/items/notes?meta=count", None).await;
        assert_eq!(after["meta"]["count"], 0, "{name}: all or nothing");
        t.close().await;
    }
}

/// Issue 15, finding 6: a tenant holds at most `MAX_COLLECTIONS` collections (each is a table;
/// in org mode anyone administers a tenant); another tenant is not held back.
#[tokio::test]
async fn a_tenant_holds_a_bounded_number_of_collections() {
    use workeros_store::MAX_COLLECTIONS;
    for t in dbs().await {
        let name = t.name();
        migrate(&t.db).await.unwrap();
        let store = Store::new(t.db.clone());
        let new = |i: usize| {
            serde_json::from_value(
                json!({"slug": format!("c{i}"), "fields": [{"name": "t", "type": "text"}]}),
            )
            .unwrap()
        };
        let a = admin_of("org-a");
        for i in 0..MAX_COLLECTIONS {
            store.create_collection(&a, new(i)).await.unwrap();
        }
        let e = store
            .create_collection(&a, new(MAX_COLLECTIONS))
            .await
            .unwrap_err();
        assert_eq!(
            e.code(),
            workeros_core::ErrorCode::Validation,
            "{name}: {e}"
        );
        assert!(e.to_string().contains("at most"), "{name}: {e}");
        store
            .create_collection(&admin_of("org-b"), new(0))
            .await
            .unwrap();
        t.close().await;
    }
}

/// Issue 15, low finding: a dropped field's values leave the revisions, so a field added again
/// under the same name does not show the old one's values (a field dropped to purge it is gone
/// from history too).
#[tokio::test]
async fn a_dropped_field_leaves_the_revisions() {
    for t in dbs().await {
        let name = t.name();
        migrate(&t.db).await.unwrap();
        let store = Store::new(t.db.clone());
        let app: axum::Router =
            workeros_tests::mount::mount(workeros_store::http::router(store.clone()));
        let a = admin_of("t1");
        let (s, v) = call(
            &app,
            Some(&a),
            "POST",
            "/api/collections",
            Some(json!({"slug": "people",
            "fields": [{"name": "name", "type": "text"}, {"name": "ssn", "type": "text"}]})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        let (_, v) = call(
            &app,
            Some(&a),
            "POST",
            "/api/items/people",
            Some(json!({"name": "Ann", "ssn": "078-05-1120"})),
        )
        .await;
        let id = v["data"]["id"].as_str().unwrap().to_owned();
        call(
            &app,
            Some(&a),
            "PATCH",
            &format!("/api/items/people/{id}"),
            Some(json!({"name": "Ann B.", "ssn": "219-09-9999"})),
        )
        .await;
        let (s, v) = call(
            &app,
            Some(&a),
            "DELETE",
            "/api/collections/people/fields/ssn",
            None,
        )
        .await;
        assert!(s.is_success(), "{name}: {s} {v}");
        // Added again under the same name.
        let patch: workeros_store::CollectionPatch = serde_json::from_value(json!({
            "fields": [{"name": "name", "type": "text"}, {"name": "ssn", "type": "text"}]
        }))
        .unwrap();
        store.apply_collection(&a, "people", patch).await.unwrap();
        let (s, v) = call(
            &app,
            Some(&a),
            "GET",
            &format!("/api/revisions?collection=people&item={id}"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        let text = v.to_string();
        assert!(
            text.contains("Ann B."),
            "{name}: the revisions are there: {text}"
        );
        for old in ["078-05-1120", "219-09-9999"] {
            assert!(
                !text.contains(old),
                "{name}: a dropped field's value: {text}"
            );
        }
        t.close().await;
    }
}
