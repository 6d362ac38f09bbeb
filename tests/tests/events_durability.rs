//! Durable webhook delivery under `kill -9`: a separate process runs the dispatcher and senders
//! and is killed again and again while writes pour in; in the end every (webhook, event) pair
//! has arrived, and every duplicate carries the same `webhook-id` and body. On SQLite (a file)
//! and PostgreSQL.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;
use workeros_events::webhooks::{DeliveryQuery, DeliveryState, Webhooks};
use workeros_events::{Allow, Guard, WebhookConfig};
use workeros_store::{Store, migrate};
use workeros_tests::fixtures::admin;
use workeros_tests::http::call;
use workeros_tests::sink::Sink;
use workeros_tests::stores::shared;

const ITEMS: usize = 1000;

/// One received copy of a delivery: its `webhook-id` and body.
type Arrival = (String, Vec<u8>);
const BATCH: usize = 10;

/// Starts the worker process and waits for its `ready`.
async fn worker(args: &[String]) -> tokio::process::Child {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_webhook_worker"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the worker");
    let out = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(out).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the worker starts")
        .unwrap();
    assert_eq!(line.as_deref(), Some("ready"));
    child
}

fn pseudo_random(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_workers_lose_nothing() {
    for group in shared(1).await {
        let t = &group[0];
        let name = t.name();
        let args = t.child_args().unwrap();
        migrate(&t.db).await.unwrap();
        workeros_events::migrate(&t.db).await.unwrap();
        let store = Store::new(t.db.clone());
        let guard = Guard::new(
            Allow::parse("127.0.0.1/32").unwrap(),
            Duration::from_secs(1),
        );
        // This process writes and administers; only the killed process delivers.
        let hooks = Webhooks::new(store.clone(), guard, WebhookConfig::default());
        let app = workeros_store::http::router(store);
        let sink = Sink::start().await;
        let (s, v) = call(
            &app,
            Some(&admin()),
            "POST",
            "/api/collections",
            Some(json!({"slug": "tasks", "fields": [{"name": "title", "type": "text"}]})),
        )
        .await;
        assert_eq!(s.as_u16(), 201, "{name}: {v}");
        let mut hook_ids = Vec::new();
        for path in ["/a", "/b"] {
            let made = hooks
                .create(
                    &admin(),
                    serde_json::from_value(
                        json!({"url": sink.url(path), "collections": ["tasks"]}),
                    )
                    .unwrap(),
                )
                .await
                .unwrap();
            hook_ids.push(made.webhook.id);
        }

        let writer = {
            let app = app.clone();
            tokio::spawn(async move {
                for b in 0..ITEMS / BATCH {
                    let items: Vec<Value> = (0..BATCH)
                        .map(|i| json!({"title": format!("t{}", b * BATCH + i)}))
                        .collect();
                    let (s, v) = call(
                        &app,
                        Some(&admin()),
                        "POST",
                        "/api/items/tasks",
                        Some(json!(items)),
                    )
                    .await;
                    assert!(s.is_success(), "{v}");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };

        let want = ITEMS * hook_ids.len();
        let started = Instant::now();
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut kills = 0;
        let mut killed_with_work_left = 0;
        loop {
            let mut child = worker(&args).await;
            let done = writer.is_finished() && kills >= 12;
            if done {
                // The last run goes on until everything has arrived.
                let deadline = Instant::now() + Duration::from_secs(120);
                loop {
                    let ok = succeeded(&hooks, &hook_ids).await;
                    if ok >= want || Instant::now() > deadline {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                child.kill().await.unwrap();
                break;
            }
            let ms = 150 + pseudo_random(&mut seed) % 450;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            child.start_kill().unwrap(); // SIGKILL
            child.wait().await.unwrap();
            kills += 1;
            if succeeded(&hooks, &hook_ids).await < want {
                killed_with_work_left += 1;
            }
        }
        writer.await.unwrap();

        let got = sink.received();
        // (path, event) → every copy's (webhook-id, body).
        let mut by_pair: HashMap<(String, String), Vec<Arrival>> = HashMap::new();
        for r in &got {
            let event = r.json()["data"]["event"].as_str().unwrap().to_owned();
            by_pair
                .entry((r.path.clone(), event))
                .or_default()
                .push((r.header("webhook-id").to_owned(), r.body.clone()));
        }
        let titles: HashSet<(String, String)> = got
            .iter()
            .map(|r| {
                (
                    r.path.clone(),
                    r.json()["data"]["item"]["title"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                )
            })
            .collect();
        assert_eq!(by_pair.len(), want, "{name}: lost deliveries");
        assert_eq!(titles.len(), want, "{name}: lost deliveries");
        let mut duplicates = 0;
        for (pair, copies) in &by_pair {
            duplicates += copies.len() - 1;
            assert!(
                copies.iter().all(|c| c == &copies[0]),
                "{name}: {pair:?}: a duplicate with another webhook-id or body"
            );
        }
        assert_eq!(succeeded(&hooks, &hook_ids).await, want, "{name}");
        eprintln!(
            "{name}: {want} deliveries, {kills} kills ({killed_with_work_left} with work left), \
             {} requests, {duplicates} duplicates (same webhook-id), 0 lost, {:.1} s",
            got.len(),
            started.elapsed().as_secs_f64()
        );
        for t in group.into_iter().rev() {
            t.close().await;
        }
    }
}

/// How many deliveries of these webhooks have succeeded.
async fn succeeded(hooks: &Webhooks, ids: &[uuid::Uuid]) -> usize {
    let mut n = 0;
    for id in ids {
        let q = DeliveryQuery {
            state: Some(DeliveryState::Succeeded),
            limit: Some(500),
            offset: None,
        };
        let mut offset = 0;
        loop {
            let page = hooks
                .deliveries(
                    &admin(),
                    *id,
                    &DeliveryQuery {
                        offset: Some(offset),
                        ..q.clone()
                    },
                )
                .await
                .unwrap();
            n += page.len();
            if page.len() < 500 {
                break;
            }
            offset += 500;
        }
    }
    n
}
