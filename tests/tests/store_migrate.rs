//! `workeros_store::migrate` on SQLite and PostgreSQL: it creates every system table, is
//! idempotent, and applies each version once when several processes start at the same time.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use sea_query::{Expr, Query};
use workeros_store::{Db, migrate};
use workeros_tests::stores::{dbs, shared, system_table};

const TABLES: &[&str] = &[
    "collections",
    "permissions",
    "activity",
    "revisions",
    "item_ownership",
    "events",
    "collection_adoptions",
    "outbox_cursors",
    "migrations",
];

async fn count(db: &Db, table: &str) -> usize {
    db.fetch_all(
        Query::select()
            .expr(Expr::cust("1"))
            .from(db.table(system_table(table))),
    )
    .await
    .unwrap_or_else(|e| panic!("select from {table}: {e:?}"))
    .len()
}

#[tokio::test]
async fn migrate_creates_the_tables_once() {
    for t in dbs().await {
        let db = &t.db;
        let all: Vec<i64> = (1..=workeros_store::SCHEMA.latest()).collect();
        assert_eq!(migrate(db).await.unwrap(), all, "{}", t.name());
        assert!(migrate(db).await.unwrap().is_empty(), "{}", t.name());
        for table in TABLES {
            let n = count(db, table).await;
            let want = if *table == "migrations" { all.len() } else { 0 };
            assert_eq!(n, want, "{} {table}", t.name());
        }
        t.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_starts_apply_each_version_once() {
    for group in shared(4).await {
        let name = group[0].name();
        let handles: Vec<_> = group
            .iter()
            .map(|t| {
                let db = t.db.clone();
                tokio::spawn(async move { migrate(&db).await })
            })
            .collect();
        let mut applied = Vec::new();
        for h in handles {
            applied.extend(h.await.unwrap().unwrap_or_else(|e| panic!("{name}: {e:?}")));
        }
        applied.sort_unstable();
        let all: Vec<i64> = (1..=workeros_store::SCHEMA.latest()).collect();
        assert_eq!(
            applied, all,
            "{name}: exactly one process applies each version"
        );
        assert_eq!(count(&group[0].db, "migrations").await, all.len(), "{name}");
        for t in group {
            t.close().await;
        }
    }
}
