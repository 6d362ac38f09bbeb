//! Issue 15, finding 6: the worker pools are shared fairly between tenants (in org mode anyone
//! who signs up administers one). A tenant whose receivers hang holds at most its share of the
//! webhook senders, the flow workers and the manual-run slots; another tenant's work goes
//! through meanwhile. On SQLite and PostgreSQL, against a real receiver that hangs on request.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use workeros_core::Subject;
use workeros_events::{Allow, EventsError, Flows, FlowsConfig, Guard, WebhookConfig, Webhooks};
use workeros_store::{NewItems, Store, migrate};
use workeros_tests::fixtures::admin_of;
use workeros_tests::sink::{Received, Sink};
use workeros_tests::stores::{TestDb, dbs};

/// Long enough that only a broken defence makes a test wait for it.
const PATIENCE: Duration = Duration::from_secs(20);

async fn store_of(t: &TestDb) -> Store {
    migrate(&t.db).await.unwrap();
    workeros_events::migrate(&t.db).await.unwrap();
    Store::new(t.db.clone())
}

/// Tenants `a` and `b`, each with a `posts` collection.
async fn tenants(store: &Store) -> (Subject, Subject) {
    let (a, b) = (admin_of("tenant-a"), admin_of("tenant-b"));
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
    (a, b)
}

async fn post(store: &Store, s: &Subject, i: usize) {
    store
        .create_items(
            s,
            "posts",
            NewItems::from_json(json!({"title": format!("post {i}")})).unwrap(),
        )
        .await
        .unwrap();
}

/// A guard that lets every tenant reach the local receiver, with a long timeout (the held
/// requests must not time out while the test looks).
fn guard() -> Guard {
    Guard::new(
        Allow::parse("127.0.0.1/32").unwrap().for_every_tenant(),
        Duration::from_secs(60),
    )
}

fn paths(got: &[Received]) -> Vec<&str> {
    got.iter().map(|r| r.path.as_str()).collect()
}

fn count(got: &[Received], prefix: &str) -> usize {
    got.iter().filter(|r| r.path.starts_with(prefix)).count()
}

/// A writes 8 posts whose work hangs at the receiver: alone, A may use all but its share (3 of
/// the 4 slots). Then B writes one, whose work goes through on the slot kept free while A's
/// still hang.
async fn a_hangs_b_goes_through(store: &Store, sink: &Sink, a: &Subject, b: &Subject, name: &str) {
    for i in 0..8 {
        post(store, a, i).await;
    }
    let got = sink.wait(PATIENCE, |g| count(g, "/slow") >= 3).await;
    assert_eq!(count(&got, "/slow"), 3, "{name}: {:?}", paths(&got));
    post(store, b, 0).await;
    let got = sink.wait(PATIENCE, |g| count(g, "/fast") >= 1).await;
    assert_eq!(
        count(&got, "/fast"),
        1,
        "{name}: B's work waited behind A's hanging work"
    );
    assert_eq!(count(&got, "/slow"), 3, "{name}: A took more than it may");
}

#[tokio::test]
async fn a_tenants_hanging_receivers_leave_the_other_tenants_their_senders() {
    for t in dbs().await {
        let name = t.name();
        let store = store_of(&t).await;
        let (a, b) = tenants(&store).await;
        let sink = Sink::start().await;
        sink.hold("/slow");
        let hooks = Webhooks::new(
            store.clone(),
            guard(),
            WebhookConfig {
                concurrency: 4,
                per_tenant: 1,
                timeout: Duration::from_secs(60),
                lease: Duration::from_secs(120),
                poll: Duration::from_millis(50),
                ..WebhookConfig::default()
            },
        );
        store.add_sink(Arc::new(hooks.clone()));
        for (s, path) in [(&a, "/slow"), (&b, "/fast")] {
            let input =
                serde_json::from_value(json!({"url": sink.url(path), "collections": ["posts"]}))
                    .unwrap();
            hooks.create(s, input).await.unwrap();
        }
        let workers = hooks.start().await.unwrap();
        a_hangs_b_goes_through(&store, &sink, &a, &b, name).await;
        sink.release();
        let got = sink.wait(PATIENCE, |g| count(g, "/slow") >= 8).await;
        assert_eq!(count(&got, "/slow"), 8, "{name}: A's deliveries all went");
        workers.shutdown().await;
        t.close().await;
    }
}

fn request_flow(trigger: Value, url: &str) -> workeros_events::flows::FlowInput {
    serde_json::from_value(json!({
        "trigger": trigger,
        "operations": [{"key": "r", "type": "request", "options": {"url": url, "method": "POST"}}]
    }))
    .unwrap()
}

#[tokio::test]
async fn a_tenants_hanging_flows_leave_the_other_tenants_their_workers() {
    for t in dbs().await {
        let name = t.name();
        let store = store_of(&t).await;
        let (a, b) = tenants(&store).await;
        let sink = Sink::start().await;
        sink.hold("/slow");
        let flows = Flows::new(
            store.clone(),
            guard(),
            None,
            FlowsConfig {
                concurrency: 4,
                max_sync_runs: 4,
                per_tenant: 1,
                poll: Duration::from_millis(50),
                ..FlowsConfig::default()
            },
        );
        store.add_sink(Arc::new(flows.clone()));
        let on_posts = json!({"type": "event", "collections": ["posts"]});
        for (s, path) in [(&a, "/slow"), (&b, "/fast")] {
            let input = request_flow(on_posts.clone(), &sink.url(path));
            flows.create(s, input).await.unwrap();
        }
        let workers = flows.start().await.unwrap();
        a_hangs_b_goes_through(&store, &sink, &a, &b, name).await;

        // Manual runs: A's hang; past all but one slot (3 of 4) the next is refused at once,
        // while B's goes through on the slot kept free.
        let manual = json!({"type": "manual"});
        let a_flow = flows
            .create(&a, request_flow(manual.clone(), &sink.url("/slow-manual")))
            .await
            .unwrap()
            .flow
            .id;
        let b_flow = flows
            .create(&b, request_flow(manual, &sink.url("/fast-manual")))
            .await
            .unwrap()
            .flow
            .id;
        let hanging: Vec<_> = (0..3)
            .map(|_| {
                let (flows, a) = (flows.clone(), a.clone());
                tokio::spawn(async move { flows.run_manual(&a, a_flow, json!({})).await })
            })
            .collect();
        let got = sink.wait(PATIENCE, |g| count(g, "/slow-manual") >= 3).await;
        assert_eq!(count(&got, "/slow-manual"), 3, "{name}");
        let fourth = flows.run_manual(&a, a_flow, json!({})).await;
        assert!(
            matches!(fourth, Err(EventsError::Overloaded(_))),
            "{name}: {fourth:?}"
        );
        let run = flows.run_manual(&b, b_flow, json!({})).await.unwrap();
        assert_eq!(run.error, None, "{name}: {run:?}");
        sink.release();
        for h in hanging {
            let run = h.await.unwrap().unwrap();
            assert_eq!(run.error, None, "{name}: {run:?}");
        }
        let got = sink.wait(PATIENCE, |g| count(g, "/slow") >= 11).await;
        assert_eq!(count(&got, "/slow"), 11, "{name}: A's runs all went");
        workers.shutdown().await;
        t.close().await;
    }
}
