//! A load run (issue 15): how long a write takes when its collection has 10,000 realtime
//! subscribers holding the most hostile filters the limits allow, and whether other writers
//! wait. SQLite (a file, WAL), a 2-thread runtime, release build:
//!
//! ```sh
//! cargo run --release -p workeros-benches --example realtime_hostile [writes]
//! ```
//!
//! Phase 1 writes with no subscriber, phase 2 with 10,000 (as many distinct filters as one
//! collection holds, `RealtimeConfig::max_filter_nodes` nodes in all, each an `or` of 511
//! `icontains` that never match, so every comparison runs, against a 4 KiB text). In both, a second task writes to another collection at the same time.
//! Prints each writer's p50 / p99 / max, and how long the hub took to judge phase 2's events.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use workeros_core::{Subject, User};
use workeros_events::{Realtime, RealtimeConfig, Subscribe};
use workeros_store::{Db, NewItems, PermissionInput, Store, migrate};

const SUBSCRIBERS: usize = 10_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(what: &str, mut t: Vec<Duration>) {
    t.sort_unstable();
    println!(
        "{what:<44} n={:<5} p50={:>8.2} ms  p99={:>8.2} ms  max={:>8.2} ms",
        t.len(),
        percentile(&t, 0.5).as_secs_f64() * 1e3,
        percentile(&t, 0.99).as_secs_f64() * 1e3,
        t.last().unwrap().as_secs_f64() * 1e3
    );
}

/// The worst filter the limits allow: 511 comparisons under one `or` (512 nodes), in 16 KiB.
fn hostile(i: usize) -> String {
    let parts: Vec<String> = (0..511)
        .map(|k| format!("b icontains 'q{i:04}{k:03}'"))
        .collect();
    let f = parts.join(" or ");
    assert!(f.len() <= workeros_dsl::limits::MAX_TEXT_LEN, "{}", f.len());
    f
}

async fn write_loop(store: Store, who: Subject, slug: &'static str, n: usize) -> Vec<Duration> {
    let body: String = (0..4096).map(|i| (b'a' + (i % 23) as u8) as char).collect();
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let item = json!({"t": format!("post {i}"), "b": body});
        let start = Instant::now();
        store
            .create_items(&who, slug, NewItems::from_json(item).unwrap())
            .await
            .unwrap();
        times.push(start.elapsed());
    }
    times
}

async fn phase(store: &Store, rt: &Realtime, label: &str, writes: usize) {
    let admin = Subject::user(User::new("ann").with_roles([workeros_core::roles::ADMIN]));
    let main = tokio::spawn(write_loop(store.clone(), admin.clone(), "posts", writes));
    let other = tokio::spawn(write_loop(store.clone(), admin, "other", writes));
    let main = main.await.unwrap();
    let other = other.await.unwrap();
    report(&format!("{label}: write to `posts`"), main);
    report(&format!("{label}: write to `other` meanwhile"), other);
    let start = Instant::now();
    rt.settled().await;
    println!(
        "{label}: the hub finished judging {:.2} s after the last write",
        start.elapsed().as_secs_f64()
    );
}

fn main() {
    let writes: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let dir = std::env::temp_dir().join(format!("workeros-hostile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("db.sqlite").display());
        let db = Db::connect(&url).await.unwrap();
        migrate(&db).await.unwrap();
        let store = Store::new(db.clone());
        let rt = Realtime::new(store.clone(), RealtimeConfig::default());
        store.add_sink(Arc::new(rt.clone()));
        let admin = Subject::user(User::new("ann").with_roles([workeros_core::roles::ADMIN]));
        for slug in ["posts", "other"] {
            store
                .create_collection(
                    &admin,
                    serde_json::from_value(json!({"slug": slug,
                    "fields": [{"name": "t", "type": "text"}, {"name": "b", "type": "longtext"}]}))
                    .unwrap(),
                )
                .await
                .unwrap();
        }
        let p: PermissionInput = serde_json::from_value(
            json!({"role": "reader", "collection": "posts", "action": "read"}),
        )
        .unwrap();
        store.create_permission(&admin, p).await.unwrap();

        phase(&store, &rt, "no subscribers", writes).await;

        let start = Instant::now();
        // As many distinct hostile filters as one collection holds (`max_filter_nodes` in all).
        let n = (rt.config().max_filter_nodes / workeros_dsl::limits::MAX_NODES)
            .min(rt.config().max_groups);
        let filters: Vec<String> = (0..n).map(hostile).collect();
        let mut subs = Vec::with_capacity(SUBSCRIBERS);
        for i in 0..SUBSCRIBERS {
            let s = Subject::user(User::new(format!("u{i}")).with_roles(["reader"]));
            let req = Subscribe {
                collection: Some("posts".into()),
                filter: Some(json!(filters[i % filters.len()])),
                ..Subscribe::default()
            };
            subs.push(rt.subscribe(&s, req).await.unwrap());
        }
        println!(
            "{} subscribers in {} groups, subscribed in {:.1} s",
            rt.subscribers(),
            filters.len(),
            start.elapsed().as_secs_f64()
        );
        phase(&store, &rt, "10,000 hostile subscribers", writes).await;
        drop(subs);
        let _ = std::fs::remove_dir_all(&dir);
    });
}
