//! Permissions through the store's API, on SQLite and PostgreSQL: every DSL part is checked when
//! saved, stored in the JSON form, and tenants never see each other's rows.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::json;
use workeros_core::roles::{ADMIN, PUBLIC};
use workeros_core::{ErrorCode, Subject, User};
use workeros_store::{FieldList, NewCollection, PermissionInput, Store, migrate};
use workeros_tests::fixtures::admin_of;
use workeros_tests::stores::{dbs, shared};

fn input(v: serde_json::Value) -> PermissionInput {
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn permissions_are_checked_when_saved() {
    for t in dbs().await {
        let name = t.name();
        migrate(&t.db).await.unwrap();
        let store = Store::new(t.db.clone());
        let a = admin_of("tenant-a");
        let posts: NewCollection = serde_json::from_value(json!({
            "slug": "posts", "ownerScoped": true,
            "fields": [{"name": "title", "type": "text"}, {"name": "views", "type": "integer"},
                       {"name": "editor", "type": "text"}]
        }))
        .unwrap();
        store.create_collection(&a, posts).await.unwrap();
        // The four seeded owner permissions.
        assert_eq!(
            store
                .list_permissions(&a, Some("posts"))
                .await
                .unwrap()
                .len(),
            4,
            "{name}"
        );

        let p = store
            .create_permission(
                &a,
                input(
                    json!({"role": "editor", "collection": "posts", "action": "read",
                             "filter": "views > 10 && createdAt > $now(-1 day)",
                             "fields": ["title", "views"]}),
                ),
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(
            p.filter,
            Some(json!({"_and": [{"views": {"_gt": 10}}, {"createdAt": {"_gt": "$now(-1 day)"}}]})),
            "{name}: stored in the JSON form"
        );
        assert!(
            p.fields.allows("title") && !p.fields.allows("editor"),
            "{name}"
        );
        let w = store
            .create_permission(
                &a,
                input(
                    json!({"role": "editor", "collection": "posts", "action": "update",
                             "validation": {"views": {"_gte": 0}},
                             "presets": {"editor": "$user.id", "views": "0"}, "fields": "*"}),
                ),
            )
            .await
            .unwrap();
        assert_eq!(w.fields, FieldList::All, "{name}");

        for (body, what) in [
            (
                json!({"role": "r", "collection": "posts", "action": "read", "filter": {"secret": {"_eq": 1}}}),
                "unknown field",
            ),
            (
                json!({"role": "r", "collection": "posts", "action": "read", "filter": "views >"}),
                "syntax",
            ),
            (
                json!({"role": "r", "collection": "posts", "action": "read", "filter": {"views": {"_eq": "many"}}}),
                "type",
            ),
            (
                json!({"role": "r", "collection": "posts", "action": "read", "validation": {"views": {"_gt": 1}}}),
                "validation on read",
            ),
            (
                json!({"role": "r", "collection": "posts", "action": "create", "presets": {"views": "lots"}}),
                "preset type",
            ),
            (
                json!({"role": "r", "collection": "posts", "action": "create", "presets": {"owner_id": "x"}}),
                "system preset",
            ),
            (
                json!({"role": "r", "collection": "posts", "action": "read", "fields": ["nope"]}),
                "unknown in fields",
            ),
            (
                json!({"role": ADMIN, "collection": "posts", "action": "read"}),
                "admin role",
            ),
            (
                json!({"role": "r", "collection": "ghosts", "action": "read"}),
                "unknown collection",
            ),
        ] {
            let e = store.create_permission(&a, input(body)).await.unwrap_err();
            assert_eq!(e.code(), ErrorCode::Validation, "{name}: {what}: {e:?}");
        }

        // Update and delete.
        let changed = store
            .update_permission(
                &a,
                &p.id,
                input(json!({"role": "editor", "collection": "posts", "action": "read", "filter": {"views": {"_lt": 5}}})),
            )
            .await
            .unwrap();
        assert_eq!(changed.filter, Some(json!({"views": {"_lt": 5}})), "{name}");
        assert_eq!(changed.fields, FieldList::All, "{name}");
        store.delete_permission(&a, &w.id).await.unwrap();
        let e = store.permission(&a, &w.id).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::NotFound, "{name}");

        // Only admins, and only in their tenant.
        let user = Subject::user(User::new("u1")).with_tenant("tenant-a");
        let e = store.list_permissions(&user, None).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::Forbidden, "{name}");
        let b = admin_of("tenant-b");
        assert!(
            store.list_permissions(&b, None).await.unwrap().is_empty(),
            "{name}"
        );
        let e = store.permission(&b, &p.id).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::NotFound, "{name}");
        let e = store.delete_permission(&b, &p.id).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::NotFound, "{name}");
        assert_eq!(
            store.list_permissions(&a, None).await.unwrap().len(),
            5,
            "{name}"
        );
        t.close().await;
    }
}

#[tokio::test]
async fn other_processes_see_permission_changes_within_the_ttl() {
    for group in shared(2).await {
        let mut group = group.into_iter();
        let (t, other) = (group.next().unwrap(), group.next().unwrap());
        let name = t.name();
        migrate(&t.db).await.unwrap();
        let a = admin_of("t");
        // Two processes on one database (two pools): one changes permissions, the other serves
        // reads.
        let writer = Store::new(t.db.clone());
        let fresh = Store::with_cache_ttl(other.db.clone(), std::time::Duration::ZERO);
        let cached = Store::with_cache_ttl(other.db.clone(), std::time::Duration::from_millis(300));
        writer
            .create_collection(
                &a,
                serde_json::from_value(
                    json!({"slug": "docs", "fields": [{"name": "title", "type": "text"}]}),
                )
                .unwrap(),
            )
            .await
            .unwrap();
        let p = writer
            .create_permission(
                &a,
                input(json!({"role": PUBLIC, "collection": "docs", "action": "read"})),
            )
            .await
            .unwrap();
        let anon = Subject::anonymous().with_tenant("t");
        let q = workeros_store::ListQuery::default();
        assert!(fresh.list_items(&anon, "docs", &q).await.is_ok(), "{name}");
        assert!(cached.list_items(&anon, "docs", &q).await.is_ok(), "{name}");
        writer.delete_permission(&a, &p.id).await.unwrap();
        // Without a cache the revocation applies at once; with one, within its TTL.
        let e = fresh.list_items(&anon, "docs", &q).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::Forbidden, "{name}");
        tokio::time::sleep(std::time::Duration::from_millis(350)).await;
        let e = cached.list_items(&anon, "docs", &q).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::Forbidden, "{name}");
        // Through the same store, at once.
        let p = writer
            .create_permission(
                &a,
                input(json!({"role": PUBLIC, "collection": "docs", "action": "read"})),
            )
            .await
            .unwrap();
        assert!(writer.list_items(&anon, "docs", &q).await.is_ok(), "{name}");
        writer.delete_permission(&a, &p.id).await.unwrap();
        let e = writer.list_items(&anon, "docs", &q).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::Forbidden, "{name}");
        other.close().await;
        t.close().await;
    }
}

#[tokio::test]
async fn every_store_over_one_db_sees_a_change_at_once_writes_included() {
    for t in dbs().await {
        let name = t.name();
        migrate(&t.db).await.unwrap();
        let a = admin_of("t");
        let admin_store = Store::new(t.db.clone());
        // Another store over the same handle (another part of the app), whose cache would
        // keep the rules for an hour if nobody told it.
        let other = Store::with_cache_ttl(t.db.clone(), std::time::Duration::from_secs(3600));
        admin_store
            .create_collection(
                &a,
                serde_json::from_value(
                    json!({"slug": "notes", "fields": [{"name": "title", "type": "text"}]}),
                )
                .unwrap(),
            )
            .await
            .unwrap();
        let p = admin_store
            .create_permission(
                &a,
                input(json!({"role": PUBLIC, "collection": "notes", "action": "create"})),
            )
            .await
            .unwrap();
        let anon = Subject::anonymous().with_tenant("t");
        let note = || workeros_store::NewItems::from_json(json!({"title": "hi"})).unwrap();
        other.create_items(&anon, "notes", note()).await.unwrap();
        admin_store.delete_permission(&a, &p.id).await.unwrap();
        let e = other
            .create_items(&anon, "notes", note())
            .await
            .unwrap_err();
        assert_eq!(
            e.code(),
            ErrorCode::Forbidden,
            "{name}: a revoked create still served"
        );
        t.close().await;
    }
}
