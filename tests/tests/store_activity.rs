//! Activity and revisions through the HTTP routes on SQLite and PostgreSQL: the query parameters,
//! who sees which rows, and revisions masked like the item they belong to.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use axum::http::StatusCode;
use serde_json::{Value, json};
use workeros_core::roles::AUTHENTICATED;
use workeros_core::{Subject, User};
use workeros_tests::fixtures::admin;
use workeros_tests::http::call;
use workeros_tests::stores::dbs;

fn actions(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn activity_and_revisions() {
    for t in dbs().await {
        let name = t.name();
        let app = workeros_tests::stores::app(&t).await;
        let admin = admin();
        let a = Some(&admin);
        let (alice, bob) = (
            Subject::user(User::new("alice")),
            Subject::user(User::new("bob")),
        );
        call(
            &app,
            a,
            "POST",
            "/api/collections",
            Some(json!({"slug": "notes", "ownerScoped": true,
            "fields": [{"name": "title", "type": "text"}, {"name": "secret", "type": "text"}]})),
        )
        .await;
        // Signed-in users read their notes without `secret`, and write both.
        let (_, v) = call(&app, a, "GET", "/api/permissions?collection=notes", None).await;
        let read_id = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["action"] == "read")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (s, v) = call(
            &app,
            a,
            "PATCH",
            &format!("/api/permissions/{read_id}"),
            Some(json!({
            "role": AUTHENTICATED, "collection": "notes", "action": "read",
            "filter": {"owner_id": {"_eq": "$user.id"}}, "fields": ["title"]})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        let (_, v) = call(
            &app,
            Some(&alice),
            "POST",
            "/api/items/notes",
            Some(json!({"title": "a", "secret": "s"})),
        )
        .await;
        let item = v["data"]["id"].as_str().unwrap().to_owned();
        assert_eq!(v["data"]["secret"], Value::Null, "{name}: masked on return");
        let (s, v) = call(
            &app,
            Some(&alice),
            "PATCH",
            &format!("/api/items/notes/{item}"),
            Some(json!({"title": "a2", "secret": "s2"})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        call(
            &app,
            Some(&bob),
            "POST",
            "/api/items/notes",
            Some(json!({"title": "b"})),
        )
        .await;

        // Admin: everything in the tenant, newest first, with every filter.
        let (s, v) = call(&app, a, "GET", "/api/activity?meta=count", None).await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        let all = actions(&v);
        assert_eq!(
            all.first().map(String::as_str),
            Some("item.create"),
            "{name}: newest first"
        );
        assert_eq!(
            all.last().map(String::as_str),
            Some("collection.create"),
            "{name}"
        );
        assert_eq!(v["meta"]["count"], all.len(), "{name}");
        let (_, v) = call(&app, a, "GET", "/api/activity?action=item", None).await;
        assert_eq!(
            actions(&v),
            ["item.create", "item.update", "item.create"],
            "{name}"
        );
        let (_, v) = call(&app, a, "GET", "/api/activity?action=item.up", None).await;
        assert_eq!(actions(&v), ["item.update"], "{name}");
        let (_, v) = call(&app, a, "GET", "/api/activity?action=ITEM", None).await;
        assert!(
            actions(&v).is_empty(),
            "{name}: prefixes are case-sensitive"
        );
        let (_, v) = call(&app, a, "GET", "/api/activity?action=item%25", None).await;
        assert!(actions(&v).is_empty(), "{name}: no LIKE wildcards");
        let (_, v) = call(
            &app,
            a,
            "GET",
            &format!("/api/activity?itemId={item}&collection=notes"),
            None,
        )
        .await;
        assert_eq!(actions(&v), ["item.update", "item.create"], "{name}");
        let (_, v) = call(&app, a, "GET", "/api/activity?from=4102444800000", None).await;
        assert!(actions(&v).is_empty(), "{name}: from the year 2100");
        let (_, v) = call(&app, a, "GET", "/api/activity?to=0&meta=count", None).await;
        assert_eq!(v["meta"]["count"], 0, "{name}");
        let (_, v) = call(&app, a, "GET", "/api/activity?limit=2&offset=1", None).await;
        assert_eq!(actions(&v), all[1..3].to_vec(), "{name}");
        let (s, _) = call(&app, a, "GET", "/api/activity?limit=201", None).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        let (s, _) = call(&app, a, "GET", "/api/activity?from=soon", None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{name}");

        // Others: only their own rows; anonymous: none.
        let (_, v) = call(&app, Some(&alice), "GET", "/api/activity", None).await;
        assert_eq!(actions(&v), ["item.update", "item.create"], "{name}");
        let (s, _) = call(&app, None, "GET", "/api/activity", None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{name}");

        // Revisions: the owner sees them without `secret`; bob gets 404; the admin sees all.
        let uri = format!("/api/revisions?collection=notes&item={item}");
        let (s, v) = call(&app, Some(&alice), "GET", &uri, None).await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        let revs = v["data"].as_array().unwrap();
        assert_eq!(revs.len(), 2, "{name}");
        assert_eq!(
            revs[1]["delta"],
            json!({"title": "a2"}),
            "{name}: delta masked"
        );
        assert_eq!(revs[1]["data"]["title"], "a2", "{name}");
        assert!(
            revs.iter().all(|r| r["data"].get("secret").is_none()),
            "{name}: {revs:?}"
        );
        let (s, _) = call(&app, Some(&bob), "GET", &uri, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{name}");
        let (_, v) = call(&app, a, "GET", &uri, None).await;
        assert_eq!(v["data"][1]["data"]["secret"], "s2", "{name}");
        let (s, _) = call(&app, a, "GET", "/api/revisions?collection=notes", None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{name}");
        t.close().await;
    }
}
