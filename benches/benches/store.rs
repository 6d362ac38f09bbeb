//! Store benches, side by side in one run on each database: a filtered list (the subject's
//! permission filter + a client filter, 50 rows) through `Store::list_items` against the same
//! query written by hand with sqlx on the same pool; a get by id; and a create of one item.
//!
//! PostgreSQL runs when `WORKEROS_TEST_PG` is set (a fresh schema, dropped at the end).

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};
use sqlx::Row;
use workeros_core::{Subject, User};
use workeros_store::{DbPool, ListQuery, NewItems, Store, migrate};

const ROWS: usize = 1_000;

struct World {
    name: &'static str,
    store: Store,
    table: String,
    tenant: String,
    one_id: String,
}

async fn world(t: &workeros_tests::stores::TestDb) -> World {
    migrate(&t.db).await.unwrap();
    let store = Store::new(t.db.clone());
    let admin = Subject::user(User::new("ann").with_roles([workeros_core::roles::ADMIN]));
    let info = store
        .create_collection(
            &admin,
            serde_json::from_value(json!({"slug": "posts", "ownerScoped": true, "fields": [
                {"name": "title", "type": "text"}, {"name": "views", "type": "integer"},
                {"name": "status", "type": "text"}
            ]}))
            .unwrap(),
        )
        .await
        .unwrap();
    let mut one_id = String::new();
    for owner in ["u1", "u2"] {
        let items: Vec<Map<String, Value>> = (0..ROWS / 2)
            .map(|i| {
                json!({"title": format!("post {i}"), "views": i, "status": "published"})
                    .as_object()
                    .unwrap()
                    .clone()
            })
            .collect();
        let w = store
            .create_items(
                &Subject::user(User::new(owner)),
                "posts",
                NewItems::Many(items),
            )
            .await
            .unwrap();
        if let workeros_store::Written::Many(rows) = w
            && owner == "u1"
        {
            one_id = rows[10]["id"].as_str().unwrap().to_owned();
        }
    }
    World {
        name: t.name(),
        store,
        table: info.physical_table,
        tenant: workeros_core::DEFAULT_TENANT.into(),
        one_id,
    }
}

#[derive(serde::Serialize)]
struct Post {
    id: String,
    #[serde(rename = "createdAt")]
    created_at: String,
    #[serde(rename = "updatedAt")]
    updated_at: String,
    #[serde(rename = "ownerId")]
    owner_id: Option<String>,
    title: Option<String>,
    views: Option<i64>,
    status: Option<String>,
}

/// The same list, written by hand: owner filter + client filter, 50 rows, decoded to JSON.
async fn by_hand(w: &World, min_views: i64) -> Vec<Value> {
    let table = w.store.db().names().collection_physical(&w.table);
    let schema = w.store.db().names().namespace().to_string();
    match w.store.db().pool() {
        DbPool::Sqlite(pool) => {
            let sql = format!(
                "SELECT id, created_at, updated_at, owner_id, title, views, status FROM \"{table}\" \
                 WHERE tenant_id = ?1 AND views > ?2 AND owner_id = ?3 ORDER BY id LIMIT 50"
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&w.tenant)
                .bind(min_views)
                .bind("u1")
                .fetch_all(pool)
                .await
                .unwrap();
            rows.iter()
                .map(|r| {
                    serde_json::to_value(Post {
                        id: r.get(0),
                        created_at: r.get(1),
                        updated_at: r.get(2),
                        owner_id: r.get(3),
                        title: r.get(4),
                        views: r.get(5),
                        status: r.get(6),
                    })
                    .unwrap()
                })
                .collect()
        }
        DbPool::Postgres(pool) => {
            let sql = format!(
                "SELECT id, created_at, updated_at, owner_id, title, views, status FROM \"{schema}\".\"{table}\" \
                 WHERE tenant_id = $1 AND views > $2 AND owner_id = $3 ORDER BY id LIMIT 50"
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&w.tenant)
                .bind(min_views)
                .bind("u1")
                .fetch_all(pool)
                .await
                .unwrap();
            let ts = |t: time::OffsetDateTime| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .unwrap()
            };
            rows.iter()
                .map(|r| {
                    serde_json::to_value(Post {
                        id: r.get::<uuid::Uuid, _>(0).to_string(),
                        created_at: ts(r.get(1)),
                        updated_at: ts(r.get(2)),
                        owner_id: r.get(3),
                        title: r.get(4),
                        views: r.get(5),
                        status: r.get(6),
                    })
                    .unwrap()
                })
                .collect()
        }
    }
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dbs = rt.block_on(workeros_tests::stores::dbs());
    let worlds: Vec<World> = rt.block_on(async {
        let mut out = Vec::new();
        for t in &dbs {
            out.push(world(t).await);
        }
        out
    });
    let u1 = Subject::user(User::new("u1"));
    let q = ListQuery {
        filter: Some(json!({"views": {"_gt": 100}})),
        limit: Some(50),
        ..ListQuery::default()
    };
    for w in &worlds {
        let page = rt.block_on(w.store.list_items(&u1, "posts", &q)).unwrap();
        let hand = rt.block_on(by_hand(w, 100));
        assert_eq!(page.data.len(), 50);
        assert_eq!(hand.len(), 50);
        let mut g = c.benchmark_group(format!("store/{}", w.name));
        g.bench_function("list_50_store", |b| {
            b.to_async(&rt)
                .iter(|| async { w.store.list_items(&u1, "posts", &q).await.unwrap() })
        });
        g.bench_function("list_50_by_hand", |b| {
            b.to_async(&rt).iter(|| async { by_hand(w, 100).await })
        });
        g.bench_function("get_by_id_store", |b| {
            b.to_async(&rt).iter(|| async {
                w.store
                    .get_item(&u1, "posts", &w.one_id, None)
                    .await
                    .unwrap()
            })
        });
        // A create as a user makes it over HTTP: the item, its activity row, its revision and
        // its outbox event, permission-checked, in one transaction.
        g.bench_function("create_one_store", |b| {
            b.to_async(&rt).iter(|| async {
                let body = json!({"title": "new", "views": 1, "status": "draft"});
                w.store
                    .create_items(&u1, "posts", NewItems::from_json(body).unwrap())
                    .await
                    .unwrap()
            })
        });
        g.finish();
    }
    rt.block_on(async {
        for t in dbs {
            t.close().await;
        }
    });
}

criterion_group!(store, benches);
criterion_main!(store);
