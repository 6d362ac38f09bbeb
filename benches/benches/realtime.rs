//! Realtime benches: matched deliveries per second with 1,000 filtered subscribers (the target is
//! 1,000,000 per second), and the publish-to-receipt latency (p99 target 50 ms).
//!
//! Every subscriber is a member of one of 10 teams (read permission `team = $user.team`, a subject
//! attribute) with its own filter `priority >= n`, `n` in 0..10: 100 distinct groups of 10, indexed
//! by team (`filtered`). `broad` is the other extreme, on another collection: 1,000 viewers whose
//! permission admits every row, one group. Each event is an update moving a row within its team.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use std::time::{Duration, Instant};
use workeros_core::{Event, EventAction, Subject, User};
use workeros_events::{Realtime, RealtimeConfig, Subscribe, Subscription};
use workeros_store::{Db, PermissionInput, Store, migrate};

const SUBSCRIBERS: usize = 1_000;
const BATCH: usize = 64;

async fn hub() -> (Realtime, Vec<Subscription>, Vec<Subscription>) {
    let db = Db::connect("sqlite::memory:").await.unwrap();
    migrate(&db).await.unwrap();
    let store = Store::new(db);
    let admin = Subject::user(User::new("ann").with_roles([workeros_core::roles::ADMIN]));
    for slug in ["tasks", "notes"] {
        store
            .create_collection(
                &admin,
                serde_json::from_value(json!({"slug": slug, "fields": [
                    {"name": "title", "type": "text"}, {"name": "team", "type": "text"},
                    {"name": "priority", "type": "integer"}, {"name": "secret", "type": "text"}
                ]}))
                .unwrap(),
            )
            .await
            .unwrap();
    }
    for p in [
        json!({"role": "member", "collection": "tasks", "action": "read",
               "filter": {"team": {"_eq": "$user.team"}}, "fields": ["title", "team", "priority"]}),
        json!({"role": "viewer", "collection": "notes", "action": "read", "fields": ["title", "team"]}),
    ] {
        let p: PermissionInput = serde_json::from_value(p).unwrap();
        store.create_permission(&admin, p).await.unwrap();
    }
    let rt = Realtime::new(
        store,
        RealtimeConfig {
            queue: 4 * BATCH,
            ..RealtimeConfig::default()
        },
    );
    let mut members = Vec::new();
    let mut viewers = Vec::new();
    for i in 0..SUBSCRIBERS {
        let s = Subject::user(
            User::new(format!("m{i}"))
                .with_roles(["member"])
                .with_attr("team", format!("team{}", i % 10)),
        );
        let req = Subscribe {
            collection: Some("tasks".into()),
            filter: Some(json!(format!("priority >= {}", (i / 10) % 10))),
            ..Subscribe::default()
        };
        members.push(rt.subscribe(&s, req).await.unwrap());
        let v = Subject::user(User::new(format!("v{i}")).with_roles(["viewer"]));
        let req = Subscribe {
            collection: Some("notes".into()),
            ..Subscribe::default()
        };
        viewers.push(rt.subscribe(&v, req).await.unwrap());
    }
    (rt, members, viewers)
}

fn event(collection: &str, i: usize) -> Event {
    let team = format!("team{}", i % 10);
    let row = |p: usize| {
        json!({"id": format!("0192{i:028x}"), "title": "t", "team": team,
                               "priority": p, "secret": "s", "createdAt": null, "updatedAt": null})
    };
    Event {
        id: uuid::Uuid::now_v7(),
        tenant: workeros_core::DEFAULT_TENANT.into(),
        collection: collection.into(),
        action: EventAction::Update,
        item_id: format!("0192{i:028x}"),
        data: Some(row(i % 10)),
        previous: Some(row((i + 3) % 10)),
        actor: None,
        at: time::OffsetDateTime::now_utc(),
        depth: 0,
    }
}

fn drain(subs: &mut [Subscription]) -> u64 {
    let mut n = 0;
    for s in subs {
        while s.try_next().is_some() {
            n += 1;
        }
    }
    n
}

fn benches(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (rt, mut members, mut viewers) = tokio.block_on(hub());
    let mut g = c.benchmark_group("realtime");
    for (name, collection, subs) in [
        ("filtered_1000_subscribers", "tasks", &mut members),
        ("broad_1000_subscribers", "notes", &mut viewers),
    ] {
        // How many deliveries a batch makes, to state throughput in deliveries.
        let probe: Vec<Event> = (0..BATCH).map(|i| event(collection, i)).collect();
        tokio.block_on(rt.publish(&probe));
        let per_batch = drain(subs);
        eprintln!("realtime {name}: a batch of {BATCH} events makes {per_batch} deliveries");
        g.throughput(Throughput::Elements(per_batch));
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let batch: Vec<Event> = (0..BATCH).map(|i| event(collection, i)).collect();
                    let t = Instant::now();
                    tokio.block_on(rt.publish(&batch));
                    drain(subs);
                    total += t.elapsed();
                }
                total
            })
        });
    }
    g.finish();
    latency(&tokio, &rt, &mut members);
}

/// Publish-to-receipt latency of the filtered subscribers while events are published in batches
/// of 50 every millisecond for a second (readers poll after each batch): p50/p99/max.
fn latency(tokio: &tokio::runtime::Runtime, rt: &Realtime, members: &mut [Subscription]) {
    let mut lat = Vec::new();
    let start = Instant::now();
    let mut deliveries = 0u64;
    while start.elapsed() < Duration::from_secs(1) {
        let batch: Vec<Event> = (0..50).map(|i| event("tasks", i)).collect();
        let sent = Instant::now();
        tokio.block_on(rt.publish(&batch));
        for s in members.iter_mut() {
            while s.try_next().is_some() {
                deliveries += 1;
                lat.push(sent.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(1).saturating_sub(sent.elapsed()));
    }
    lat.sort_unstable();
    let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    eprintln!(
        "realtime latency over {deliveries} deliveries in {:.2} s: p50 {:?}, p99 {:?}, max {:?}",
        start.elapsed().as_secs_f64(),
        q(0.50),
        q(0.99),
        lat[lat.len() - 1]
    );
}

criterion_group! {
    name = group;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(5));
    targets = benches
}
criterion_main!(group);
