//! Webhook benches: Standard Webhooks signing of a 256-byte body (the target is 2,000,000 per
//! second per core) and verification of the same message; durable delivery to a local sink (the
//! target is 5,000 per second): 2,000 events committed to the outbox while the workers are
//! stopped, then timed from the start of the workers until every delivery has reached the
//! receiver and none is pending (dispatch into delivery rows, claim, signed POST to a receiver on
//! `127.0.0.1`, outcome and attempt log written). The workers are shut down between iterations.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use std::hint::black_box;
use std::time::{Duration, Instant};
use workeros_core::{Subject, User};
use workeros_events::signing::{Secret, SignedHeaders, verify};
use workeros_events::{Allow, Guard, WebhookConfig, Webhooks};
use workeros_store::{Db, NewItems, Store, migrate};
use workeros_tests::sink::Sink;

const DELIVERIES: usize = 2_000;

struct Rig {
    db: Db,
    store: Store,
    hooks: Webhooks,
    sink: Sink,
    path: Option<std::path::PathBuf>,
    schema: Option<(String, String)>,
}

async fn rig(url: Option<String>) -> Rig {
    let (db, path, schema) = match url {
        Some(_) => {
            let (url, schema) = workeros_tests::backend::fresh_pg_schema().await.unwrap();
            let pool = workeros_tests::backend::pg_pool(&url, &schema, 8).await;
            (
                workeros_tests::stores::pg_db(pool, &schema).await,
                None,
                Some((url, schema)),
            )
        }
        None => {
            let path = std::env::temp_dir()
                .join(format!("workeros-bench-{}.sqlite", uuid::Uuid::now_v7()));
            let db = Db::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            (db, Some(path), None)
        }
    };
    migrate(&db).await.unwrap();
    workeros_events::migrate(&db).await.unwrap();
    let store = Store::new(db.clone());
    let admin = Subject::user(User::new("ann").with_roles([workeros_core::roles::ADMIN]));
    store
        .create_collection(
            &admin,
            serde_json::from_value(
                json!({"slug": "orders", "fields": [{"name": "total", "type": "number"}]}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let config = WebhookConfig {
        poll: Duration::from_millis(5),
        concurrency: 128,
        ..WebhookConfig::default()
    };
    let guard = Guard::new(Allow::parse("127.0.0.1/32").unwrap(), config.timeout);
    let hooks = Webhooks::new(store.clone(), guard, config);
    let sink = Sink::start().await;
    hooks
        .create(
            &admin,
            serde_json::from_value(json!({"url": sink.url("/in")})).unwrap(),
        )
        .await
        .unwrap();
    Rig {
        db,
        store,
        hooks,
        sink,
        path,
        schema,
    }
}

/// Commits `n` events (writes of 500 items), then times the workers delivering them.
async fn deliver(r: &Rig, n: usize) -> Duration {
    let admin = Subject::user(User::new("ann").with_roles([workeros_core::roles::ADMIN]));
    for chunk in 0..n.div_ceil(500) {
        let items: Vec<serde_json::Value> = (0..500.min(n - chunk * 500))
            .map(|i| json!({"total": i}))
            .collect();
        r.store
            .create_items(&admin, "orders", NewItems::from_json(json!(items)).unwrap())
            .await
            .unwrap();
    }
    r.sink.clear();
    let start = Instant::now();
    let workers = r.hooks.start().await.unwrap();
    r.sink
        .wait(Duration::from_secs(120), |got| got.len() >= n)
        .await;
    while pending(&r.db).await > 0 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let took = start.elapsed();
    workers.shutdown().await;
    took
}

/// Deliveries not yet succeeded or failed (an index range: cheap however many are done).
async fn pending(db: &Db) -> usize {
    use sea_query::{Alias, Expr, ExprTrait, Query};
    let rows = db
        .fetch_all(
            Query::select()
                .expr(Expr::cust("COUNT(*) AS n"))
                .from(
                    db.table(
                        workeros_events::SCHEMA
                            .table("webhook_deliveries")
                            .expect("an events table"),
                    ),
                )
                .and_where(Expr::col(Alias::new("state")).eq("pending")),
        )
        .await
        .unwrap();
    let n = rows.iter().next().unwrap().int("n").unwrap().unwrap_or(0);
    usize::try_from(n).unwrap()
}

fn durable(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("webhooks_durable");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(DELIVERIES as u64));
    let mut backends = vec![("sqlite", None)];
    if let Ok(u) = std::env::var("WORKEROS_TEST_PG") {
        backends.push(("postgres", Some(u)));
    }
    for (name, url) in backends {
        let r = rt.block_on(rig(url));
        g.bench_function(format!("deliver_{DELIVERIES}_{name}"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += deliver(&r, DELIVERIES).await;
                    }
                    total
                })
            })
        });
        rt.block_on(r.db.close());
        if let Some((url, schema)) = &r.schema {
            rt.block_on(workeros_tests::backend::drop_pg_schema(url, schema));
        }
        if let Some(p) = &r.path {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
            }
        }
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let body = vec![b'x'; 256];
    let id = "msg_01JD5N7Q8ZK3V4W5X6Y7Z8A9B0";
    let ts = 1_732_000_000_i64;
    let mut g = c.benchmark_group("webhooks");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign_256_bytes", |b| {
        b.iter(|| black_box(&secret).sign(black_box(id), black_box(ts), black_box(&body)))
    });
    let signature = secret.sign(id, ts, &body);
    let headers = SignedHeaders {
        id,
        timestamp: "1732000000",
        signature: &signature,
    };
    let secrets = [secret.clone()];
    g.bench_function("verify_256_bytes", |b| {
        b.iter(|| {
            verify(
                black_box(&secrets),
                black_box(headers),
                black_box(&body),
                ts,
                300,
            )
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(group, benches, durable);
criterion_main!(group);
