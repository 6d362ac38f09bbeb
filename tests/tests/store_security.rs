//! Security probes of the store on SQLite and PostgreSQL (`spec/security.md`): the filter oracle
//! (paired state), tenant isolation, hostile identifiers in URLs, and SQL canaries in values.

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

/// A store holding `articles` (title, views, secret) with three rows whose `secret`s are
/// `secrets`; `reader` may read title and views only. Returns the app and the created ids.
async fn world(t: &TestDb, secrets: [&str; 3]) -> (axum::Router, Vec<String>) {
    migrate(&t.db).await.unwrap();
    let app: axum::Router =
        workeros_tests::mount::mount(workeros_store::http::router(Store::new(t.db.clone())));
    let a = admin_of("t1");
    let a = Some(&a);
    call(&app, a, "POST", "/api/collections", Some(json!({"slug": "articles", "fields": [
        {"name": "title", "type": "text"}, {"name": "views", "type": "integer"}, {"name": "secret", "type": "text"}
    ]}))).await;
    let (s, v) = call(
        &app,
        a,
        "POST",
        "/api/permissions",
        Some(json!({"role": "reader", "collection": "articles",
        "action": "read", "fields": ["title", "views"]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let mut ids = Vec::new();
    for (i, secret) in secrets.iter().enumerate() {
        let (_, v) = call(
            &app,
            a,
            "POST",
            "/api/items/articles",
            Some(json!({"title": format!("t{i}"), "views": i * 10, "secret": secret})),
        )
        .await;
        ids.push(v["data"]["id"].as_str().unwrap().to_owned());
    }
    (app, ids)
}

/// A response with ids and instants replaced by stable names, so two stores can be compared byte
/// for byte.
fn normal(v: &Value, ids: &[String]) -> String {
    let mut s = v.to_string();
    for (i, id) in ids.iter().enumerate() {
        s = s.replace(id, &format!("item-{i}"));
    }
    let re_ts = |s: &str| {
        let mut out = String::new();
        let mut rest = s;
        while let Some(p) = rest.find("\"20") {
            out.push_str(&rest[..p]);
            let tail = &rest[p + 1..];
            if tail.len() >= 28 && tail.as_bytes()[27] == b'"' && tail.as_bytes()[26] == b'Z' {
                out.push_str("\"TS\"");
                rest = &tail[28..];
            } else {
                out.push('"');
                rest = tail;
            }
        }
        out.push_str(rest);
        out
    };
    re_ts(&s)
}

#[tokio::test]
async fn filter_oracle_paired_state() {
    // Two databases of each backend that differ only in the hidden field.
    let (left, right) = (dbs().await, dbs().await);
    for (l, r) in left.into_iter().zip(right) {
        let name = l.name();
        let (app_l, ids_l) = world(&l, ["alpha", "bravo", "charlie"]).await;
        let (app_r, ids_r) = world(&r, ["zulu", "", "alpha"]).await;
        let reader = Subject::user(User::new("r1").with_roles(["reader"])).with_tenant("t1");
        let queries = [
            "/api/items/articles",
            "/api/items/articles?meta=count",
            "/api/items/articles?sort=-views&limit=2",
            "/api/items/articles?filter[views][_gte]=10",
            "/api/items/articles?filter=title%20icontains%20%22t%22",
            "/api/items/articles?fields=title",
            // Every way to ask about the hidden field must be refused, identically.
            "/api/items/articles?filter[secret][_eq]=alpha",
            "/api/items/articles?filter[secret][_null]=true",
            "/api/items/articles?filter=secret%20starts_with%20%22a%22",
            "/api/items/articles?filter=%7B%22_or%22%3A%5B%7B%22secret%22%3A%7B%22_gt%22%3A%22b%22%7D%7D%5D%7D",
            "/api/items/articles?sort=secret",
            "/api/items/articles?sort=-secret",
            "/api/items/articles?fields=secret",
            "/api/items/articles?fields=title,secret",
        ];
        for q in queries {
            let (sl, vl) = call(&app_l, Some(&reader), "GET", q, None).await;
            let (sr, vr) = call(&app_r, Some(&reader), "GET", q, None).await;
            assert_eq!(sl, sr, "{name}: {q}");
            assert_eq!(normal(&vl, &ids_l), normal(&vr, &ids_r), "{name}: {q}");
            if q.contains("secret") {
                assert_eq!(sl, StatusCode::FORBIDDEN, "{name}: {q}");
            }
        }
        for (i, (idl, idr)) in ids_l.iter().zip(&ids_r).enumerate() {
            let (sl, vl) = call(
                &app_l,
                Some(&reader),
                "GET",
                &format!("/api/items/articles/{idl}"),
                None,
            )
            .await;
            let (sr, vr) = call(
                &app_r,
                Some(&reader),
                "GET",
                &format!("/api/items/articles/{idr}"),
                None,
            )
            .await;
            assert_eq!(
                (sl, normal(&vl, &ids_l)),
                (sr, normal(&vr, &ids_r)),
                "{name}: item {i}"
            );
            assert_eq!(vl["data"]["secret"], Value::Null, "{name}");
        }
        l.close().await;
        r.close().await;
    }
}

#[tokio::test]
async fn tenants_are_isolated() {
    for t in dbs().await {
        let name = t.name();
        let app = workeros_tests::stores::app(&t).await;
        let (a, b) = (admin_of("tenant-a"), admin_of("tenant-b"));
        for s in [&a, &b] {
            let (st, v) = call(
                &app,
                Some(s),
                "POST",
                "/api/collections",
                Some(json!({"slug": "posts", "ownerScoped": true,
                "fields": [{"name": "title", "type": "text"}]})),
            )
            .await;
            assert_eq!(st, StatusCode::CREATED, "{name}: {v}");
        }
        let (_, v) = call(&app, Some(&a), "GET", "/api/collections/posts", None).await;
        let (_, w) = call(&app, Some(&b), "GET", "/api/collections/posts", None).await;
        assert_ne!(
            v["data"]["physicalTable"], w["data"]["physicalTable"],
            "{name}"
        );
        let alice = Subject::user(User::new("alice")).with_tenant("tenant-a");
        let mallory = Subject::user(User::new("alice")).with_tenant("tenant-b");
        let (_, v) = call(
            &app,
            Some(&alice),
            "POST",
            "/api/items/posts",
            Some(json!({"title": "mine"})),
        )
        .await;
        let item = v["data"]["id"].as_str().unwrap().to_owned();
        // Same user id, other tenant: nothing of tenant A is visible or writable.
        let (_, v) = call(&app, Some(&mallory), "GET", "/api/items/posts", None).await;
        assert_eq!(v["data"], json!([]), "{name}");
        for (method, uri) in [
            ("GET", format!("/api/items/posts/{item}")),
            ("PATCH", format!("/api/items/posts/{item}")),
            ("DELETE", format!("/api/items/posts/{item}")),
            (
                "GET",
                format!("/api/revisions?collection=posts&item={item}"),
            ),
        ] {
            let body = (method == "PATCH").then(|| json!({"title": "x"}));
            let (s, _) = call(&app, Some(&mallory), method, &uri, body).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{name}: {method} {uri}");
        }
        let (_, v) = call(&app, Some(&b), "GET", "/api/items/posts?meta=count", None).await;
        assert_eq!(
            v["meta"]["count"], 0,
            "{name}: tenant B's admin sees none of A's items"
        );
        let (_, v) = call(&app, Some(&b), "GET", "/api/permissions", None).await;
        assert!(
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["collection"] == "posts"),
            "{name}"
        );
        assert_eq!(
            v["data"].as_array().unwrap().len(),
            4,
            "{name}: only B's own seeded permissions"
        );
        let (_, v) = call(&app, Some(&b), "GET", "/api/activity?action=item", None).await;
        assert_eq!(v["data"], json!([]), "{name}: no activity of tenant A");
        let (s, _) = call(&app, Some(&b), "DELETE", "/api/collections/posts", None).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{name}");
        let (s, v) = call(
            &app,
            Some(&alice),
            "GET",
            &format!("/api/items/posts/{item}"),
            None,
        )
        .await;
        assert_eq!(
            (s, v["data"]["title"].clone()),
            (StatusCode::OK, json!("mine")),
            "{name}: A untouched"
        );
        t.close().await;
    }
}

#[tokio::test]
async fn hostile_names_and_canaries_never_reach_sql() {
    for t in dbs().await {
        let name = t.name();
        let app = workeros_tests::stores::app(&t).await;
        let a = admin_of("t1");
        let a = Some(&a);
        call(
            &app,
            a,
            "POST",
            "/api/collections",
            Some(json!({"slug": "posts", "fields": [{"name": "title", "type": "text"}]})),
        )
        .await;
        call(
            &app,
            a,
            "POST",
            "/api/items/posts",
            Some(json!({"title": "kept"})),
        )
        .await;
        for slug in [
            "posts%22%3B%20DROP%20TABLE%20collections%3B--",
            "Posts",
            "po%27sts",
            "%C3%BC",
            &"a".repeat(300),
        ] {
            for method in ["GET", "POST"] {
                let body = (method == "POST").then(|| json!({"title": "x"}));
                let (s, v) = call(&app, a, method, &format!("/api/items/{slug}"), body).await;
                assert_eq!(s, StatusCode::NOT_FOUND, "{name}: {method} {slug}: {v}");
            }
        }
        let canary = "'); DROP TABLE collections; -- \" \\ % _ CANARY";
        let enc: String = canary.bytes().map(|b| format!("%{b:02X}")).collect();
        for q in [
            format!("filter[title][_eq]={enc}"),
            format!("filter[title][_contains]={enc}"),
            format!("filter[title][_in]={enc},x"),
            format!("sort={enc}"),
            format!("fields={enc}"),
        ] {
            let (s, v) = call(&app, a, "GET", &format!("/api/items/posts?{q}"), None).await;
            assert!(
                s == StatusCode::OK || s == StatusCode::UNPROCESSABLE_ENTITY,
                "{name}: {q}: {s} {v}"
            );
            assert!(!v.to_string().contains("SELECT"), "{name}: {v}");
        }
        let (s, v) = call(
            &app,
            a,
            "POST",
            "/api/items/posts",
            Some(json!({"title": canary})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        let (_, v) = call(
            &app,
            a,
            "GET",
            &format!("/api/items/posts?filter[title][_eq]={enc}"),
            None,
        )
        .await;
        assert_eq!(
            v["data"][0]["title"], canary,
            "{name}: stored and matched literally"
        );
        let (_, v) = call(
            &app,
            a,
            "GET",
            "/api/items/posts?filter[title][_contains]=%25&meta=count",
            None,
        )
        .await;
        assert_eq!(v["meta"]["count"], 1, "{name}: % matches literally");
        let (s, v) = call(
            &app,
            a,
            "GET",
            "/api/collections?include_archived=true",
            None,
        )
        .await;
        assert_eq!(
            (s, v["data"].as_array().unwrap().len()),
            (StatusCode::OK, 1),
            "{name}: tables intact"
        );
        t.close().await;
    }
}
