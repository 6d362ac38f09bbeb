//! Realtime over SSE on SQLite and PostgreSQL, through the real routers: subscribers with
//! different permissions and filters each receive exactly the events and fields they may read
//! (rows entering and leaving their set, deletes), a slow subscriber is cut off without slowing
//! the others, `Last-Event-ID` resumes without loss, tickets and custom broadcasts.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use workeros_core::Subject;
use workeros_events::{Broadcast, Realtime, RealtimeConfig};
use workeros_store::{Store, migrate};
use workeros_tests::fixtures::{admin, with_role};
use workeros_tests::http::call;
use workeros_tests::sse::{SseFrame, open};
use workeros_tests::stores::{TestDb, dbs};

const QUIET: Duration = Duration::from_millis(150);

struct App {
    app: Router,
    rt: Realtime,
}

async fn hub_app(t: &TestDb, config: RealtimeConfig) -> App {
    migrate(&t.db).await.unwrap();
    let store = Store::new(t.db.clone());
    let rt = Realtime::new(store.clone(), config);
    store.add_sink(Arc::new(rt.clone()));
    let tickets: workeros_events::http::TicketCheck =
        Arc::new(|t: &str| (t == "good-ticket").then(|| with_role("ticket-user", "viewer")));
    let app = workeros_tests::mount::mount(
        workeros_store::http::router(store)
            .merge(workeros_events::http::router(rt.clone(), Some(tickets))),
    );
    App { app, rt }
}

/// `tasks` with three roles' read permissions: `viewer` sees published rows without `secret`,
/// `red` sees the red team's rows, every field.
async fn tasks(app: &Router, name: &str) {
    let a = admin();
    let (s, v) = call(
        app,
        Some(&a),
        "POST",
        "/api/collections",
        Some(json!({"slug": "tasks", "fields": [
            {"name": "title", "type": "text"},
            {"name": "status", "type": "text"},
            {"name": "team", "type": "text"},
            {"name": "secret", "type": "text"}
        ]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
    for p in [
        json!({"role": "viewer", "collection": "tasks", "action": "read",
               "filter": {"status": {"_eq": "published"}}, "fields": ["title", "status", "team"]}),
        json!({"role": "red", "collection": "tasks", "action": "read",
               "filter": {"team": {"_eq": "red"}}, "fields": "*"}),
    ] {
        let (s, v) = call(app, Some(&a), "POST", "/api/permissions", Some(p)).await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
    }
}

async fn write(app: &Router, method: &str, uri: &str, body: Option<Value>) -> Value {
    let (s, v) = call(app, Some(&admin()), method, uri, body).await;
    assert!(s.is_success(), "{method} {uri}: {s} {v}");
    v
}

/// The status of a stream the server refuses to open (its error body printed when it opens).
async fn refused(app: &Router, subject: Option<&Subject>, uri: &str) -> StatusCode {
    match open(app, subject, uri, None).await {
        Ok(_) => panic!("{uri} opened"),
        Err((status, body)) => {
            assert!(body["error"]["code"].is_string(), "{uri}: {body}");
            status
        }
    }
}

/// What one subscriber got, reduced to (event, key, data).
fn seen(frames: &[SseFrame]) -> Vec<(String, String, Value)> {
    frames
        .iter()
        .map(|f| {
            (
                f.event.clone(),
                f.data["key"].as_str().unwrap_or("").to_owned(),
                f.data.get("data").cloned().unwrap_or(Value::Null),
            )
        })
        .collect()
}

/// The item as `subject` reads it through the items API now.
async fn as_read(app: &Router, subject: &Subject, id: &str) -> Value {
    let (s, v) = call(
        app,
        Some(subject),
        "GET",
        &format!("/api/items/tasks/{id}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["data"].clone()
}

#[tokio::test]
async fn subscribers_see_exactly_what_they_may_read() {
    for t in dbs().await {
        let name = t.name();
        let App { app, .. } = hub_app(&t, RealtimeConfig::default()).await;
        tasks(&app, name).await;
        let (viewer, red, v2) = (
            with_role("v-1", "viewer"),
            with_role("r-1", "red"),
            with_role("v-2", "viewer"),
        );
        let mut sa = open(&app, Some(&admin()), "/api/realtime?collection=tasks", None)
            .await
            .unwrap();
        let mut sv = open(&app, Some(&viewer), "/api/realtime?collection=tasks", None)
            .await
            .unwrap();
        let mut sr = open(
            &app,
            Some(&red),
            "/api/realtime?collection=tasks&filter=status%20!%3D%20%22archived%22",
            None,
        )
        .await
        .unwrap();
        let mut sv2 = open(
            &app,
            Some(&v2),
            "/api/realtime?collection=tasks&events=create",
            None,
        )
        .await
        .unwrap();
        // Who may read nothing may not subscribe; unknown collections and event types are refused.
        assert_eq!(
            refused(&app, None, "/api/realtime?collection=tasks").await,
            StatusCode::FORBIDDEN,
            "{name}"
        );
        assert_eq!(
            refused(&app, Some(&viewer), "/api/realtime?collection=nope").await,
            StatusCode::NOT_FOUND,
            "{name}"
        );
        assert_eq!(
            refused(
                &app,
                Some(&viewer),
                "/api/realtime?collection=tasks&events=upsert"
            )
            .await,
            StatusCode::BAD_REQUEST,
            "{name}"
        );
        // A filter on a field the viewer may not read is refused (no filter oracle).
        assert_eq!(
            refused(
                &app,
                Some(&viewer),
                "/api/realtime?collection=tasks&filter=secret%20%3D%20%22s%22"
            )
            .await,
            StatusCode::FORBIDDEN,
            "{name}"
        );

        // 1. A red draft: the admin and red see it, viewers do not.
        let v = write(
            &app,
            "POST",
            "/api/items/tasks",
            Some(json!({"title": "a", "status": "draft", "team": "red", "secret": "s1"})),
        )
        .await;
        let t1 = v["data"]["id"].as_str().unwrap().to_owned();
        let full1 = as_read(&app, &admin(), &t1).await;
        let red1 = as_read(&app, &red, &t1).await;
        assert_eq!(
            seen(&sa.drain(QUIET).await),
            [("create".into(), t1.clone(), full1)],
            "{name}"
        );
        assert_eq!(
            seen(&sr.drain(QUIET).await),
            [("create".into(), t1.clone(), red1)],
            "{name}"
        );
        assert!(sv.drain(QUIET).await.is_empty(), "{name}");
        assert!(sv2.drain(QUIET).await.is_empty(), "{name}");

        // 2. Published: it enters the viewers' set (a create, without `secret`).
        write(
            &app,
            "PATCH",
            &format!("/api/items/tasks/{t1}"),
            Some(json!({"status": "published"})),
        )
        .await;
        let view = as_read(&app, &viewer, &t1).await;
        assert_eq!(view["secret"], Value::Null, "{name}");
        assert_eq!(view["title"], "a", "{name}");
        assert_eq!(
            seen(&sv.drain(QUIET).await),
            [("create".into(), t1.clone(), view.clone())],
            "{name}"
        );
        assert_eq!(
            seen(&sv2.drain(QUIET).await),
            [("create".into(), t1.clone(), view)],
            "{name}"
        );
        let full = as_read(&app, &admin(), &t1).await;
        assert_eq!(
            seen(&sa.drain(QUIET).await),
            [("update".into(), t1.clone(), full.clone())],
            "{name}"
        );
        assert_eq!(
            seen(&sr.drain(QUIET).await),
            [("update".into(), t1.clone(), full)],
            "{name}"
        );

        // 3. To the blue team: it leaves red's set (a delete with the key only).
        write(
            &app,
            "PATCH",
            &format!("/api/items/tasks/{t1}"),
            Some(json!({"team": "blue"})),
        )
        .await;
        let view = as_read(&app, &viewer, &t1).await;
        assert_eq!(
            seen(&sv.drain(QUIET).await),
            [("update".into(), t1.clone(), view)],
            "{name}"
        );
        assert_eq!(
            seen(&sr.drain(QUIET).await),
            [("delete".into(), t1.clone(), Value::Null)],
            "{name}"
        );
        assert!(sv2.drain(QUIET).await.is_empty(), "{name}: create only");
        assert_eq!(sa.drain(QUIET).await.len(), 1, "{name}");

        // 4. Back to draft: it leaves the viewers' set.
        write(
            &app,
            "PATCH",
            &format!("/api/items/tasks/{t1}"),
            Some(json!({"status": "draft"})),
        )
        .await;
        assert_eq!(
            seen(&sv.drain(QUIET).await),
            [("delete".into(), t1.clone(), Value::Null)],
            "{name}"
        );
        assert!(sr.drain(QUIET).await.is_empty(), "{name}");

        // 5. Deleted: only who could read it before hears of it.
        write(&app, "DELETE", &format!("/api/items/tasks/{t1}"), None).await;
        assert_eq!(
            seen(&sa.drain(QUIET).await)[1..],
            [("delete".into(), t1.clone(), Value::Null)],
            "{name}"
        );
        assert!(sv.drain(QUIET).await.is_empty(), "{name}");
        assert!(sr.drain(QUIET).await.is_empty(), "{name}");

        // 6. A published red row: everyone; then deleted: everyone who saw it (not create-only).
        let v = write(
            &app,
            "POST",
            "/api/items/tasks",
            Some(json!({"title": "b", "status": "published", "team": "red", "secret": "s2"})),
        )
        .await;
        let t2 = v["data"]["id"].as_str().unwrap().to_owned();
        for s in [&mut sa, &mut sv, &mut sr, &mut sv2] {
            assert_eq!(
                seen(&s.drain(QUIET).await)
                    .iter()
                    .map(|x| x.0.as_str())
                    .collect::<Vec<_>>(),
                ["create"],
                "{name}"
            );
        }
        write(&app, "DELETE", &format!("/api/items/tasks/{t2}"), None).await;
        for s in [&mut sa, &mut sv, &mut sr] {
            assert_eq!(
                seen(&s.drain(QUIET).await),
                [("delete".into(), t2.clone(), Value::Null)],
                "{name}"
            );
        }
        assert!(sv2.drain(QUIET).await.is_empty(), "{name}");

        // A permission change applies to open streams: viewers now see drafts too.
        let (_, perms) = call(&app, Some(&admin()), "GET", "/api/permissions", None).await;
        let pid = perms["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["role"] == "viewer")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (s, v) = call(
            &app,
            Some(&admin()),
            "PATCH",
            &format!("/api/permissions/{pid}"),
            Some(
                json!({"role": "viewer", "collection": "tasks", "action": "read",
                        "fields": ["title", "status", "team"]}),
            ),
        )
        .await;
        assert!(s.is_success(), "{name}: {v}");
        let v = write(
            &app,
            "POST",
            "/api/items/tasks",
            Some(json!({"title": "c", "status": "draft", "team": "blue"})),
        )
        .await;
        let t3 = v["data"]["id"].as_str().unwrap().to_owned();
        assert_eq!(seen(&sv.drain(QUIET).await)[0].1, t3, "{name}");
        t.close().await;
    }
}

#[tokio::test]
async fn slow_subscribers_are_cut_off_and_resume_loses_nothing() {
    for t in dbs().await {
        let name = t.name();
        let cfg = RealtimeConfig {
            queue: 4,
            ..RealtimeConfig::default()
        };
        let App { app, .. } = hub_app(&t, cfg).await;
        tasks(&app, name).await;
        let mut slow = open(&app, Some(&admin()), "/api/realtime?collection=tasks", None)
            .await
            .unwrap();
        let mut fast = open(&app, Some(&admin()), "/api/realtime?collection=tasks", None)
            .await
            .unwrap();
        let mut got = Vec::new();
        for i in 0..20 {
            write(
                &app,
                "POST",
                "/api/items/tasks",
                Some(json!({"title": format!("t{i}")})),
            )
            .await;
            // The fast one reads as it goes: it gets every event, never held up by the slow one.
            got.extend(fast.drain(Duration::from_millis(20)).await);
        }
        got.extend(fast.drain(QUIET).await);
        assert_eq!(got.len(), 20, "{name}");
        assert!(got.iter().all(|f| f.event == "create"), "{name}");
        // The slow one: what fit in its queue, then a final error, then the end.
        let frames = slow.drain(QUIET).await;
        assert_eq!(frames.len(), 5, "{name}: {frames:?}");
        assert_eq!(frames[4].event, "error", "{name}");
        assert_eq!(frames[4].data["code"], "slow_consumer", "{name}");
        assert!(slow.ended(), "{name}");

        // It reconnects from the last event it got and loses nothing.
        let last = frames[3].id.clone().unwrap();
        let mut again = open(
            &app,
            Some(&admin()),
            "/api/realtime?collection=tasks",
            Some(&last),
        )
        .await
        .unwrap();
        write(
            &app,
            "POST",
            "/api/items/tasks",
            Some(json!({"title": "live"})),
        )
        .await;
        let rest = again.drain(QUIET).await;
        let titles: Vec<&str> = rest
            .iter()
            .map(|f| f.data["data"]["title"].as_str().unwrap())
            .collect();
        let mut want: Vec<String> = (4..20).map(|i| format!("t{i}")).collect();
        want.push("live".into());
        assert_eq!(titles, want, "{name}");
        assert_eq!(
            rest.iter()
                .map(|f| f.id.clone().unwrap())
                .collect::<Vec<_>>(),
            got[4..]
                .iter()
                .map(|f| f.id.clone().unwrap())
                .chain(rest.last().unwrap().id.clone())
                .collect::<Vec<_>>(),
            "{name}: the same ids"
        );
        // An unknown id: a reset (reload, then follow), and the stream goes on.
        let mut lost = open(
            &app,
            Some(&admin()),
            "/api/realtime?collection=tasks",
            Some("0191f5a2-7c3e-7abc-8def-0123456789ab"),
        )
        .await
        .unwrap();
        let f = lost.next(QUIET).await.unwrap();
        assert_eq!(f.event, "reset", "{name}");
        // A resume as a viewer replays only what the viewer may see.
        let mut v = open(
            &app,
            Some(&with_role("v", "viewer")),
            "/api/realtime?collection=tasks",
            Some(&last),
        )
        .await
        .unwrap();
        assert!(v.drain(QUIET).await.is_empty(), "{name}: drafts only");
        t.close().await;
    }
}

#[tokio::test]
async fn tickets_and_custom_broadcasts() {
    for t in dbs().await {
        let name = t.name();
        let App { app, rt } = hub_app(&t, RealtimeConfig::default()).await;
        tasks(&app, name).await;
        // A ticket stands for its subject (a viewer); a bad one is 401.
        assert_eq!(
            refused(&app, None, "/api/realtime?collection=tasks&ticket=forged").await,
            StatusCode::UNAUTHORIZED,
            "{name}"
        );
        let mut s = open(
            &app,
            None,
            "/api/realtime?collection=tasks&ticket=good-ticket",
            None,
        )
        .await
        .unwrap();
        write(
            &app,
            "POST",
            "/api/items/tasks",
            Some(json!({"title": "p", "status": "published"})),
        )
        .await;
        write(
            &app,
            "POST",
            "/api/items/tasks",
            Some(json!({"title": "d", "status": "draft"})),
        )
        .await;
        let frames = s.drain(QUIET).await;
        assert_eq!(frames.len(), 1, "{name}");
        assert_eq!(frames[0].data["data"]["title"], "p", "{name}");

        // Custom events: by namespace, to one user, to some roles.
        let mut ann = open(
            &app,
            Some(&with_role("ann", "viewer")),
            "/api/realtime?events=chat:*",
            None,
        )
        .await
        .unwrap();
        let mut bob = open(
            &app,
            Some(&with_role("bob", "red")),
            "/api/realtime?events=chat:message,create&collection=tasks",
            None,
        )
        .await
        .unwrap();
        let mut other = open(
            &app,
            Some(&with_role("cy", "red")),
            "/api/realtime?events=jobs:done",
            None,
        )
        .await
        .unwrap();
        let b = |name: &str, user: Option<&str>, roles: &[&str]| Broadcast {
            tenant: None,
            name: name.into(),
            payload: json!({"text": "hi"}),
            user: user.map(str::to_owned),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        };
        assert_eq!(
            rt.broadcast(&b("chat:message", None, &[])).unwrap(),
            2,
            "{name}"
        );
        assert_eq!(
            rt.broadcast(&b("chat:typing", None, &[])).unwrap(),
            1,
            "{name}"
        );
        assert_eq!(
            rt.broadcast(&b("chat:message", Some("bob"), &[])).unwrap(),
            1,
            "{name}"
        );
        assert_eq!(
            rt.broadcast(&b("chat:message", None, &["viewer"])).unwrap(),
            1,
            "{name}"
        );
        assert!(
            rt.broadcast(&b("Chat Message", None, &[])).is_err(),
            "{name}"
        );
        let ann_got: Vec<String> = ann
            .drain(QUIET)
            .await
            .into_iter()
            .map(|f| f.event)
            .collect();
        assert_eq!(
            ann_got,
            ["chat:message", "chat:typing", "chat:message"],
            "{name}"
        );
        let bob_got = bob.drain(QUIET).await;
        assert_eq!(bob_got.len(), 2, "{name}");
        assert_eq!(
            bob_got[0].data,
            json!({"event": "chat:message", "payload": {"text": "hi"}}),
            "{name}"
        );
        assert!(other.drain(QUIET).await.is_empty(), "{name}");
        // Idle streams get heartbeat comments.
        let App { app: beating, .. } = hub_app(
            &t,
            RealtimeConfig {
                heartbeat: Duration::from_millis(50),
                ..RealtimeConfig::default()
            },
        )
        .await;
        let mut idle = open(
            &beating,
            Some(&admin()),
            "/api/realtime?collection=tasks",
            None,
        )
        .await
        .unwrap();
        assert!(
            idle.next(Duration::from_millis(400)).await.is_none(),
            "{name}"
        );
        assert!(
            idle.comments() >= 3,
            "{name}: {} heartbeats",
            idle.comments()
        );
        // A stream ends after its lifetime (the client reconnects, authenticated again, and
        // resumes from its last event).
        let App { app: short, .. } = hub_app(
            &t,
            RealtimeConfig {
                max_lifetime: Duration::from_millis(300),
                ..RealtimeConfig::default()
            },
        )
        .await;
        let mut brief = open(
            &short,
            Some(&admin()),
            "/api/realtime?collection=tasks",
            None,
        )
        .await
        .unwrap();
        assert!(!brief.ended(), "{name}");
        assert!(
            brief.next(Duration::from_millis(800)).await.is_none(),
            "{name}"
        );
        assert!(brief.ended(), "{name}: the stream ended after its lifetime");
        // Without a collection, item events are refused.
        assert_eq!(
            refused(&app, Some(&admin()), "/api/realtime?events=create").await,
            StatusCode::BAD_REQUEST,
            "{name}"
        );
        drop((ann, bob, other, s));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(rt.subscribers(), 0, "{name}: closed streams leave the hub");
        t.close().await;
    }
}

#[tokio::test]
async fn two_instances_on_one_postgresql_database() {
    // On PostgreSQL: a write through one instance reaches the SSE subscribers of the other.
    for group in workeros_tests::stores::shared(2).await {
        let mut it = group.into_iter();
        let (one, two) = (it.next().unwrap(), it.next().unwrap());
        let name = one.name();
        let a = hub_app(&one, RealtimeConfig::default()).await;
        let b = hub_app(&two, RealtimeConfig::default()).await;
        let following = b.rt.start().await.unwrap();
        assert_eq!(following.loops() > 0, name == "postgres", "{name}");
        tasks(&a.app, name).await;
        let mut on_b = open(
            &b.app,
            Some(&with_role("v", "viewer")),
            "/api/realtime?collection=tasks",
            None,
        )
        .await
        .unwrap();
        let v = write(
            &a.app,
            "POST",
            "/api/items/tasks",
            Some(json!({"title": "x", "status": "published", "secret": "s"})),
        )
        .await;
        write(
            &a.app,
            "POST",
            "/api/items/tasks",
            Some(json!({"title": "d", "status": "draft"})),
        )
        .await;
        let frames = on_b.drain(Duration::from_millis(1500)).await;
        if name == "postgres" {
            assert_eq!(seen(&frames).len(), 1, "{name}: {frames:?}");
            assert_eq!(frames[0].data["key"], v["data"]["id"], "{name}");
            assert_eq!(frames[0].data["data"]["secret"], Value::Null, "{name}");
        } else {
            // SQLite is one process's database: no cross-instance fan-out.
            assert!(frames.is_empty(), "{name}");
        }
        two.close().await;
        one.close().await;
    }
}
