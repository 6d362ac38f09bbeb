//! Issue 15's findings about events, on SQLite and PostgreSQL, each test failing without its
//! defence:
//! - `_regex` is refused wherever a client or a tenant admin writes a filter that runs per event
//!   or as SQL (list and realtime filters, webhook and flow trigger filters, flow `condition`,
//!   permission filters), and kept in `validation`;
//! - a write does not wait for realtime subscribers, and a backlog that overflows ends the
//!   streams (which resume) instead of holding writers;
//! - streams are capped per user, per address, per tenant, and distinct subscriptions per
//!   collection;
//! - a resumed stream shows the rows as the items API shows them now: not a value since
//!   overwritten, not a field since dropped, not a row since deleted, not the rows of a deleted
//!   collection whose slug was reused;
//! - a flow that starts itself through `public` writes stops at the depth cap, with the reason
//!   recorded.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use axum::http::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use workeros_core::{ErrorCode, Subject, User};
use workeros_events::{
    Allow, EventsError, Flows, FlowsConfig, Guard, Realtime, RealtimeConfig, Subscribe,
    Subscription,
};
use workeros_store::{NewItems, PermissionInput, Store, Written, migrate};
use workeros_tests::fixtures::admin;
use workeros_tests::http::call;
use workeros_tests::stores::{TestDb, dbs};

async fn store_of(t: &TestDb) -> Store {
    migrate(&t.db).await.unwrap();
    workeros_events::migrate(&t.db).await.unwrap();
    Store::new(t.db.clone())
}

async fn collection(store: &Store, slug: &str, fields: &[&str]) {
    let fields: Vec<Value> = fields
        .iter()
        .map(|f| json!({"name": f, "type": "text"}))
        .collect();
    store
        .create_collection(
            &admin(),
            serde_json::from_value(json!({"slug": slug, "fields": fields})).unwrap(),
        )
        .await
        .unwrap();
}

async fn create(store: &Store, subject: &Subject, slug: &str, v: Value) -> String {
    let w = store
        .create_items(subject, slug, NewItems::from_json(v).unwrap())
        .await
        .unwrap();
    let Written::One(row) = w else { panic!() };
    row["id"].as_str().unwrap().to_owned()
}

fn sub(collection: &str) -> Subscribe {
    Subscribe {
        collection: Some(collection.to_owned()),
        ..Subscribe::default()
    }
}

fn frames(s: &mut Subscription) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    while let Some(f) = s.try_next() {
        out.push((f.event.to_string(), serde_json::from_str(&f.data).unwrap()));
    }
    out
}

fn overloaded(r: Result<Subscription, EventsError>) -> bool {
    matches!(r, Err(e) if e.code() == ErrorCode::RateLimited)
}

#[tokio::test]
async fn regex_is_refused_outside_validation() {
    for t in dbs().await {
        let name = t.name();
        let store = store_of(&t).await;
        collection(&store, "posts", &["title"]).await;
        let guard = Guard::new(
            Allow::parse("127.0.0.1/32").unwrap(),
            Duration::from_secs(2),
        );
        let flows = Flows::new(store.clone(), guard.clone(), None, FlowsConfig::default());
        let hooks = workeros_events::Webhooks::new(
            store.clone(),
            guard,
            workeros_events::WebhookConfig::default(),
        );
        let app = workeros_tests::mount::mount(
            workeros_store::http::router(store.clone())
                .merge(workeros_events::http::flows(flows))
                .merge(workeros_events::http::webhooks(hooks)),
        );
        let a = Some(admin());
        let regex = json!({"title": {"_regex": "^(a+)+$"}});

        // A list filter (JSON and text forms).
        for uri in [
            "/api/items/posts?filter=%7B%22title%22%3A%7B%22_regex%22%3A%22a%22%7D%7D",
            "/api/items/posts?filter=title%20matches%20%27a%27",
        ] {
            let (s, v) = call(&app, a.as_ref(), "GET", uri, None).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{name}: {uri}: {v}");
            assert!(
                v["error"]["message"].as_str().unwrap().contains("_regex"),
                "{v}"
            );
        }
        // A realtime subscriber's filter.
        let rt = Realtime::new(store.clone(), RealtimeConfig::default());
        let req = Subscribe {
            filter: Some(regex.clone()),
            ..sub("posts")
        };
        let e = rt.subscribe(&admin(), req).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadRequest, "{name}: {e}");
        // A webhook's filter.
        let (s, v) = call(
            &app,
            a.as_ref(),
            "POST",
            "/api/webhooks",
            Some(json!({
            "url": "http://127.0.0.1:9/hook", "collections": ["posts"], "filter": regex})),
        )
        .await;
        assert!(s.is_client_error(), "{name}: {s} {v}");
        assert!(v.to_string().contains("_regex"), "{name}: {v}");
        // A flow's trigger filter, and a `condition`.
        let (s, v) = call(
            &app,
            a.as_ref(),
            "POST",
            "/api/flows",
            Some(json!({
            "trigger": {"type": "event", "collections": ["posts"], "filter": regex},
            "operations": [{"key": "l", "type": "log", "options": {"message": "x"}}]})),
        )
        .await;
        assert!(s.is_client_error(), "{name}: {s} {v}");
        assert!(v.to_string().contains("_regex"), "{name}: {v}");
        let (s, v) = call(&app, a.as_ref(), "POST", "/api/flows", Some(json!({
            "trigger": {"type": "manual"},
            "operations": [{"key": "c", "type": "condition", "options": {"filter": "title matches 'a'"}}]}))).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {v}");
        // A permission's filter, for any action (it runs as SQL); `validation` keeps it.
        for action in ["read", "update", "delete", "create"] {
            let (s, v) = call(
                &app,
                a.as_ref(),
                "POST",
                "/api/permissions",
                Some(json!({
                "role": "x", "collection": "posts", "action": action, "filter": regex})),
            )
            .await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {action}: {v}");
        }
        let (s, v) = call(
            &app,
            a.as_ref(),
            "POST",
            "/api/permissions",
            Some(json!({
            "role": "x", "collection": "posts", "action": "create", "validation": regex})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        // A filter is held to its limits in the JSON form too.
        let long: Vec<Value> = (0..40)
            .map(|i| json!({"title": {"_eq": format!("{i}{}", "x".repeat(4000))}}))
            .collect();
        let req = Subscribe {
            filter: Some(json!({"_or": long})),
            ..sub("posts")
        };
        let e = rt.subscribe(&admin(), req).await.unwrap_err();
        assert!(e.to_string().contains("bytes"), "{name}: {e}");
        t.close().await;
    }
}

#[tokio::test]
async fn writes_do_not_wait_for_subscribers() {
    for t in dbs().await {
        let name = t.name();
        let store = store_of(&t).await;
        collection(&store, "posts", &["title"]).await;
        let rt = Realtime::new(store.clone(), RealtimeConfig::default());
        store.add_sink(Arc::new(rt.clone()));
        let mut s = rt.subscribe(&admin(), sub("posts")).await.unwrap();
        // This test runs on one thread: the hub's task judges the event only once the test
        // yields, so the write returned before any subscriber was judged.
        create(&store, &admin(), "posts", json!({"title": "a"})).await;
        assert!(frames(&mut s).is_empty(), "{name}: judged inside the write");
        rt.settled().await;
        let got = frames(&mut s);
        assert_eq!(got.len(), 1, "{name}: {got:?}");
        assert_eq!(got[0].1["data"]["title"], "a", "{name}");

        // A backlog that overflows ends every stream (to resume), never holds the writer: five
        // batches handed over at once to a hub whose queue holds one.
        let small = Realtime::new(
            store.clone(),
            RealtimeConfig {
                backlog: 1,
                ..RealtimeConfig::default()
            },
        );
        let mut s = small.subscribe(&admin(), sub("posts")).await.unwrap();
        for i in 0..5 {
            small.enqueue(&[event("posts", &format!("k{i}"))]);
        }
        small.settled().await;
        let mut got = Vec::new();
        while let Some(f) = s.next().await {
            got.push((f.event.to_string(), f.data.to_string()));
        }
        assert_eq!(got.len(), 1, "{name}: {got:?}");
        assert_eq!(got[0].0, "error", "{name}: {got:?}");
        assert!(got[0].1.contains("lagged"), "{name}: {got:?}");
        t.close().await;
    }
}

/// A create event of `collection` for item `key`.
fn event(collection: &str, key: &str) -> workeros_core::Event {
    workeros_core::Event {
        id: uuid::Uuid::now_v7(),
        tenant: workeros_core::DEFAULT_TENANT.into(),
        collection: collection.into(),
        action: workeros_core::EventAction::Create,
        item_id: key.into(),
        data: Some(json!({"id": key, "title": "t"})),
        previous: None,
        actor: None,
        at: time::OffsetDateTime::now_utc(),
        depth: 0,
    }
}

#[tokio::test]
async fn streams_are_capped_per_user_address_tenant_and_distinct_filter() {
    for t in dbs().await {
        let name = t.name();
        let store = store_of(&t).await;
        collection(&store, "posts", &["title"]).await;
        let rt = Realtime::new(
            store.clone(),
            RealtimeConfig {
                max_per_user: 2,
                max_per_address: 2,
                max_per_tenant: 5,
                max_groups: 3,
                ..RealtimeConfig::default()
            },
        );
        let a = admin();
        let one = rt.subscribe(&a, sub("posts")).await.unwrap();
        let _two = rt.subscribe(&a, sub("posts")).await.unwrap();
        assert!(
            overloaded(rt.subscribe(&a, sub("posts")).await),
            "{name}: per user"
        );
        drop(one);
        let _three = rt.subscribe(&a, sub("posts")).await.unwrap();

        // Anonymous streams count per address.
        store
            .create_permission(
                &a,
                serde_json::from_value::<PermissionInput>(
                    json!({"role": "public", "collection": "posts", "action": "read"}),
                )
                .unwrap(),
            )
            .await
            .unwrap();
        let addr = Some("203.0.113.7".parse().unwrap());
        let anon = |client| Subscribe {
            client,
            ..sub("posts")
        };
        let _p1 = rt
            .subscribe(&Subject::anonymous(), anon(addr))
            .await
            .unwrap();
        let _p2 = rt
            .subscribe(&Subject::anonymous(), anon(addr))
            .await
            .unwrap();
        assert!(
            overloaded(rt.subscribe(&Subject::anonymous(), anon(addr)).await),
            "{name}: per address"
        );
        // Five in the tenant now (admin's two, two anonymous, bob's one).
        let bob = Subject::user(User::new("bob").with_roles(["admin"]));
        let _b = rt.subscribe(&bob, sub("posts")).await.unwrap();
        let carol = Subject::user(User::new("carol").with_roles(["admin"]));
        assert!(
            overloaded(rt.subscribe(&carol, sub("posts")).await),
            "{name}: per tenant"
        );
        // Another tenant has its own count.
        let other = workeros_tests::fixtures::admin_of("t2");
        store
            .create_collection(
                &other,
                serde_json::from_value(
                    json!({"slug": "posts", "fields": [{"name": "title", "type": "text"}]}),
                )
                .unwrap(),
            )
            .await
            .unwrap();
        let dave = Subject::user(User::new("dave").with_roles(["admin"])).with_tenant("t2");
        let _o = rt.subscribe(&dave, sub("posts")).await.unwrap();
        drop(_b);

        // Distinct subscriptions per collection: three groups at most; subscribers that ask
        // alike share one.
        let rt = Realtime::new(
            store.clone(),
            RealtimeConfig {
                max_groups: 3,
                ..RealtimeConfig::default()
            },
        );
        let mut held = Vec::new();
        for i in 0..3 {
            let req = Subscribe {
                filter: Some(json!(format!("title = 'v{i}'"))),
                ..sub("posts")
            };
            held.push(rt.subscribe(&a, req).await.unwrap());
        }
        let req = |f: &str| Subscribe {
            filter: Some(json!(f)),
            ..sub("posts")
        };
        assert!(
            overloaded(rt.subscribe(&a, req("title = 'v9'")).await),
            "{name}: groups"
        );
        held.push(rt.subscribe(&bob, req("title = 'v1'")).await.unwrap());

        // The filters' nodes together: what judging one event costs.
        let rt = Realtime::new(
            store.clone(),
            RealtimeConfig {
                max_filter_nodes: 6,
                ..RealtimeConfig::default()
            },
        );
        let four = "title = 'a' or title = 'b' or title = 'c'";
        let _f = rt.subscribe(&a, req(four)).await.unwrap();
        let _g = rt.subscribe(&bob, req(four)).await.unwrap();
        let e = rt
            .subscribe(&a, req("title = 'x' or title = 'y' or title = 'z'"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::RateLimited, "{name}: {e}");
        assert!(e.to_string().contains("as large as allowed"), "{name}: {e}");
        t.close().await;
    }
}

#[tokio::test]
async fn resume_shows_only_what_the_items_api_shows_now() {
    for t in dbs().await {
        let name = t.name();
        let store = store_of(&t).await;
        let a = admin();
        collection(&store, "notes", &["title", "secret"]).await;
        let rt = Realtime::new(store.clone(), RealtimeConfig::default());
        store.add_sink(Arc::new(rt.clone()));
        // The point a client resumes from.
        let mut s = rt.subscribe(&a, sub("notes")).await.unwrap();
        create(&store, &a, "notes", json!({"title": "mark", "secret": "x"})).await;
        rt.settled().await;
        let mark = s.try_next().unwrap().id.clone().unwrap().to_string();
        drop(s);

        // After it: a row created then changed (a value overwritten to purge it), one created
        // then deleted, and a field dropped.
        let kept = create(
            &store,
            &a,
            "notes",
            json!({"title": "old", "secret": "pii"}),
        )
        .await;
        let gone = create(&store, &a, "notes", json!({"title": "gone", "secret": "y"})).await;
        let mut patch = serde_json::Map::new();
        patch.insert("title".into(), json!("new"));
        store.update_item(&a, "notes", &kept, patch).await.unwrap();
        store.delete_item(&a, "notes", &gone).await.unwrap();
        store.drop_field(&a, "notes", "secret").await.unwrap();

        let req = Subscribe {
            last_event_id: Some(mark.clone()),
            ..sub("notes")
        };
        let mut s = rt.subscribe(&a, req).await.unwrap();
        let got = frames(&mut s);
        let text = serde_json::to_string(&got).unwrap();
        assert!(
            !text.contains("pii"),
            "{name}: a dropped field came back: {text}"
        );
        assert!(
            !text.contains("\"old\""),
            "{name}: an overwritten value came back: {text}"
        );
        assert!(
            !text.contains("\"gone\""),
            "{name}: a deleted row came back: {text}"
        );
        let kept_frames: Vec<&(String, Value)> = got
            .iter()
            .filter(|(_, v)| v["key"] == json!(kept))
            .collect();
        assert_eq!(kept_frames.len(), 1, "{name}: {got:?}");
        assert_eq!(kept_frames[0].0, "create", "{name}");
        assert_eq!(kept_frames[0].1["data"]["title"], "new", "{name}");
        let gone_frames: Vec<&(String, Value)> = got
            .iter()
            .filter(|(_, v)| v["key"] == json!(gone))
            .collect();
        assert_eq!(gone_frames.len(), 1, "{name}: {got:?}");
        assert_eq!(gone_frames[0].0, "delete", "{name}");
        assert!(gone_frames[0].1.get("data").is_none(), "{name}");
        drop(s);

        // A collection deleted and made again under the same slug: the old one's events are not
        // the new one's.
        store.delete_collection(&a, "notes").await.unwrap();
        collection(&store, "notes", &["title", "secret"]).await;
        create(
            &store,
            &a,
            "notes",
            json!({"title": "fresh", "secret": "z"}),
        )
        .await;
        let req = Subscribe {
            last_event_id: Some(mark.clone()),
            ..sub("notes")
        };
        let mut s = rt.subscribe(&a, req).await.unwrap();
        let got = frames(&mut s);
        let keys: Vec<&Value> = got.iter().map(|(_, v)| &v["key"]).collect();
        assert!(!keys.contains(&&json!(kept)), "{name}: {got:?}");
        assert!(!keys.contains(&&json!(gone)), "{name}: {got:?}");
        assert!(
            got.iter().any(|(_, v)| v["data"]["title"] == "fresh"),
            "{name}: {got:?}"
        );
        t.close().await;
    }
}

/// Dispatches and runs flows until nothing is left to do (at most `rounds` times).
async fn drain(flows: &Flows, rounds: usize) {
    for _ in 0..rounds {
        let queued = flows.dispatch_once().await.unwrap();
        let ran = flows.run_due().await.unwrap();
        if queued == 0 && ran == 0 {
            return;
        }
    }
    panic!("the flows were still busy after {rounds} rounds");
}

#[tokio::test]
async fn a_flow_that_starts_itself_stops_at_the_depth_cap() {
    for t in dbs().await {
        let name = t.name();
        let store = store_of(&t).await;
        let a = admin();
        collection(&store, "tasks", &["title"]).await;
        // Anonymous visitors may create tasks: the flow writes with `public` permissions, as
        // nobody, which the loop guard of writes made as the flows' admin does not cover.
        store
            .create_permission(
                &a,
                serde_json::from_value::<PermissionInput>(
                    json!({"role": "public", "collection": "tasks", "action": "create"}),
                )
                .unwrap(),
            )
            .await
            .unwrap();
        let guard = Guard::new(
            Allow::parse("127.0.0.1/32").unwrap(),
            Duration::from_secs(2),
        );
        let flows = Flows::new(store.clone(), guard, None, FlowsConfig::default());
        let app = workeros_tests::mount::mount(workeros_events::http::flows(flows.clone()));
        // Every new task writes two more: without a cap, 2^n runs.
        let (s, v) = call(
            &app,
            Some(&a),
            "POST",
            "/api/flows",
            Some(json!({
            "trigger": {"type": "event", "collections": ["tasks"], "actions": ["create"]},
            "operations": [{"key": "twice", "type": "item", "options": {"permissions": "public",
                "collection": "tasks", "payload": [{"title": "child"}, {"title": "child"}]}}]})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        let id = v["data"]["id"].as_str().unwrap().to_owned();
        // What `Flows::start` does first: follow the outbox from here on.
        workeros_store::register_consumer(&t.db, "flows")
            .await
            .unwrap();
        create(&store, &a, "tasks", json!({"title": "root"})).await;
        drain(&flows, 20).await;

        // depth 1: one run (2 tasks); depth 2: two runs (4 tasks); the 4 events of depth 2 start
        // nothing: 4 runs recorded as stopped.
        let (_, runs) = call(
            &app,
            Some(&a),
            "GET",
            &format!("/api/flows/{id}/runs?limit=100"),
            None,
        )
        .await;
        let runs = runs["data"].as_array().unwrap();
        let ok = runs.iter().filter(|r| r["status"] == "succeeded").count();
        let stopped: Vec<&Value> = runs.iter().filter(|r| r["status"] == "failed").collect();
        assert_eq!((ok, stopped.len()), (3, 4), "{name}: {runs:?}");
        for r in &stopped {
            let why = r["error"].as_str().unwrap();
            assert!(why.contains("max_depth"), "{name}: {why}");
        }
        let page = store
            .list_items(&a, "tasks", &workeros_store::ListQuery::default())
            .await
            .unwrap();
        assert_eq!(page.data.len(), 7, "{name}: the root, 2 and 4 children");
        t.close().await;
    }
}

#[tokio::test]
async fn a_write_in_one_tenant_reaches_nothing_of_another() {
    for t in dbs().await {
        let name = t.name();
        let store = store_of(&t).await;
        let (a, b) = (
            workeros_tests::fixtures::admin_of("tenant-a"),
            workeros_tests::fixtures::admin_of("tenant-b"),
        );
        for s in [&a, &b] {
            store
                .create_collection(
                    s,
                    serde_json::from_value(
                        json!({"slug": "posts", "fields": [{"name": "title", "type": "text"}]}),
                    )
                    .unwrap(),
                )
                .await
                .unwrap();
        }
        let guard = Guard::new(
            // Organizations' exemptions too: the receiver is local.
            Allow::parse("127.0.0.1/32").unwrap().for_every_tenant(),
            Duration::from_secs(2),
        );
        let hooks = workeros_events::Webhooks::new(
            store.clone(),
            guard.clone(),
            workeros_events::WebhookConfig::default(),
        );
        let flows = Flows::new(store.clone(), guard, None, FlowsConfig::default());
        workeros_store::register_consumer(&t.db, "flows")
            .await
            .unwrap();
        let rt = Realtime::new(store.clone(), RealtimeConfig::default());
        store.add_sink(Arc::new(rt.clone()));

        // Tenant A's webhook, flow and subscriber on its `posts`.
        let hook: workeros_events::webhooks::WebhookInput = serde_json::from_value(
            json!({"url": "http://127.0.0.1:9/hook", "collections": ["posts"]}),
        )
        .unwrap();
        let hook = hooks.create(&a, hook).await.unwrap().webhook.id;
        let flow: workeros_events::flows::FlowInput = serde_json::from_value(json!({
            "trigger": {"type": "event", "collections": ["posts"]},
            "operations": [{"key": "l", "type": "log", "options": {"message": "{{$trigger.item.title}}"}}]
        }))
        .unwrap();
        let flow = flows.create(&a, flow).await.unwrap().flow.id;
        let mut live = rt.subscribe(&a, sub("posts")).await.unwrap();
        // A's own write, the point a resume starts from.
        create(&store, &a, "posts", json!({"title": "a's"})).await;
        rt.settled().await;
        let mark = live.try_next().unwrap().id.clone().unwrap().to_string();

        // Tenant B writes to its `posts`, same slug, same ids space.
        for i in 0..3 {
            create(&store, &b, "posts", json!({"title": format!("b's {i}")})).await;
        }
        rt.settled().await;
        assert!(
            frames(&mut live).is_empty(),
            "{name}: realtime crossed tenants"
        );
        let req = Subscribe {
            last_event_id: Some(mark),
            ..sub("posts")
        };
        let mut resumed = rt.subscribe(&a, req).await.unwrap();
        assert!(
            frames(&mut resumed).is_empty(),
            "{name}: resume crossed tenants"
        );
        // A's second write, after B's: consumers read the outbox in commit order (on PostgreSQL
        // only once no older transaction of the whole cluster is running, which other tests'
        // may delay), so once it has reached A's webhook and flow, B's writes went by them too.
        create(&store, &a, "posts", json!({"title": "a's last"})).await;
        rt.settled().await;
        let last = live.try_next().unwrap().id.clone().unwrap().to_string();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let (got, runs) = loop {
            hooks.dispatch_once().await.unwrap();
            flows.dispatch_once().await.unwrap();
            let got = hooks
                .deliveries(
                    &a,
                    hook,
                    &workeros_events::webhooks::DeliveryQuery::default(),
                )
                .await
                .unwrap();
            let runs = flows.runs(&a, flow, 100).await.unwrap();
            let delivered = got.iter().any(|d| d.event_id.to_string() == last);
            let ran = runs.iter().any(|r| r.data.to_string().contains("a's last"));
            if (delivered && ran) || std::time::Instant::now() > deadline {
                break (got, runs);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(got.len(), 2, "{name}: only A's own writes: {got:?}");
        assert_eq!(runs.len(), 2, "{name}: only A's own writes: {runs:?}");
        // B's admin cannot see A's webhook or flow.
        assert!(
            hooks
                .deliveries(&b, hook, &Default::default())
                .await
                .is_err()
        );
        assert!(flows.runs(&b, flow, 10).await.is_err());
        t.close().await;
    }
}

/// Issue 15, finding 6: the deployment's SSRF exemptions (`WORKEROS_WEBHOOK_ALLOW`) are its own:
/// an organization's admin (anyone, in org mode) reaches none of them through a flow `request`,
/// a webhook, or a flow `webhook` operation.
#[tokio::test]
async fn the_deployments_exemptions_are_not_an_organizations() {
    let allow = || Allow::parse("127.0.0.1/32").unwrap();
    let guard = Guard::new(allow(), Duration::from_secs(2));
    let url = "http://127.0.0.1:9/hook";
    assert!(
        guard
            .for_tenant(workeros_core::DEFAULT_TENANT)
            .check(url)
            .await
            .is_ok()
    );
    let e = guard.for_tenant("org-1").check(url).await.unwrap_err();
    assert!(e.to_string().contains("refused"), "{e}");
    let every = Guard::new(allow().for_every_tenant(), Duration::from_secs(2));
    assert!(every.for_tenant("org-1").check(url).await.is_ok());

    for t in dbs().await {
        let name = t.name();
        let store = store_of(&t).await;
        let flows = Flows::new(store.clone(), guard.clone(), None, FlowsConfig::default());
        let hooks = workeros_events::Webhooks::new(
            store.clone(),
            guard.clone(),
            workeros_events::WebhookConfig::default(),
        );
        let org = workeros_tests::fixtures::admin_of("org-1");
        let input: workeros_events::flows::FlowInput = serde_json::from_value(json!({
            "trigger": {"type": "manual"},
            "operations": [{"key": "probe", "type": "request", "options": {"url": url}}]
        }))
        .unwrap();
        let flow = flows.create(&org, input).await.unwrap().flow.id;
        let run = flows.run_manual(&org, flow, json!({})).await.unwrap();
        assert_eq!(run.status, "failed", "{name}: {run:?}");
        let why = run.error.clone().unwrap_or_default();
        assert!(why.contains("refused"), "{name}: {why}");
        // A webhook an organization points at the exempt address is refused when saved.
        let input: workeros_events::webhooks::WebhookInput =
            serde_json::from_value(json!({"url": url})).unwrap();
        let e = hooks.create(&org, input).await.unwrap_err();
        assert!(e.to_string().contains("refused"), "{name}: {e}");
        // The deployment's own admin may.
        let input: workeros_events::webhooks::WebhookInput =
            serde_json::from_value(json!({"url": url})).unwrap();
        hooks.create(&admin(), input).await.unwrap();
        t.close().await;
    }
}

/// Issue 15, finding 6: a tenant's flows make a bounded number of outgoing requests per minute
/// (a flow is an HTTP client any organization's admin can write); past it the operation is not
/// sent and the run says why.
#[tokio::test]
async fn a_tenants_flows_make_a_bounded_number_of_requests() {
    for t in dbs().await {
        let name = t.name();
        let store = store_of(&t).await;
        let guard = Guard::new(Allow::none(), Duration::from_secs(2));
        let flows = Flows::new(
            store.clone(),
            guard,
            None,
            FlowsConfig {
                requests_per_minute: 2,
                ..FlowsConfig::default()
            },
        );
        let org = workeros_tests::fixtures::admin_of("org-1");
        let input: workeros_events::flows::FlowInput = serde_json::from_value(json!({
            "trigger": {"type": "manual"},
            "operations": [{"key": "probe", "type": "request", "options": {"url": "http://127.0.0.1:9/x"}}]
        }))
        .unwrap();
        let flow = flows.create(&org, input).await.unwrap().flow.id;
        let mut errors = Vec::new();
        for _ in 0..3 {
            let run = flows.run_manual(&org, flow, json!({})).await.unwrap();
            errors.push(run.error.unwrap_or_default());
        }
        assert!(errors[0].contains("refused"), "{name}: {errors:?}");
        assert!(errors[1].contains("refused"), "{name}: {errors:?}");
        assert!(
            errors[2].contains("requests this minute"),
            "{name}: {errors:?}"
        );
        // Another tenant has its own budget.
        let other = workeros_tests::fixtures::admin_of("org-2");
        let input: workeros_events::flows::FlowInput = serde_json::from_value(json!({
            "trigger": {"type": "manual"},
            "operations": [{"key": "probe", "type": "request", "options": {"url": "http://127.0.0.1:9/x"}}]
        }))
        .unwrap();
        let flow = flows.create(&other, input).await.unwrap().flow.id;
        let run = flows.run_manual(&other, flow, json!({})).await.unwrap();
        assert!(run.error.unwrap_or_default().contains("refused"), "{name}");
        t.close().await;
    }
}
