//! Runs one store operation N times on an in-memory SQLite database, for instruction counting
//! with callgrind (see `dsl_ops`): `list` (through the store) or `hand` (the same query by hand).

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::json;
use sqlx::Row;
use workeros_core::{Subject, User};
use workeros_store::{Db, ListQuery, NewItems, Store, migrate};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let op = args.get(1).cloned().unwrap_or_else(|| "list".into());
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        migrate(&db).await.unwrap();
        // A long TTL: callgrind slows the run far past the default second.
        let store = Store::with_cache_ttl(db.clone(), std::time::Duration::from_secs(3600));
        let admin = Subject::user(User::new("ann").with_roles([workeros_core::roles::ADMIN]));
        let info = store
            .create_collection(&admin, serde_json::from_value(json!({"slug": "posts", "ownerScoped": true,
                "fields": [{"name": "title", "type": "text"}, {"name": "views", "type": "integer"}, {"name": "status", "type": "text"}]})).unwrap())
            .await
            .unwrap();
        for owner in ["u1", "u2"] {
            let items = (0..500)
                .map(|i| json!({"title": format!("post {i}"), "views": i, "status": "p"}).as_object().unwrap().clone())
                .collect();
            store.create_items(&Subject::user(User::new(owner)), "posts", NewItems::Many(items)).await.unwrap();
        }
        let u1 = Subject::user(User::new("u1"));
        let q = ListQuery { filter: Some(json!({"views": {"_gt": 100}})), limit: Some(50), ..ListQuery::default() };
        let Some(pool) = db.sqlite_pool() else { panic!() };
        let sql = format!("SELECT id, created_at, updated_at, owner_id, title, views, status FROM \"{}\" WHERE tenant_id = ?1 AND views > ?2 AND owner_id = ?3 ORDER BY id LIMIT 50", db.names().collection_physical(&info.physical_table));
        for _ in 0..n {
            match op.as_str() {
                "list" => assert_eq!(store.list_items(&u1, "posts", &q).await.unwrap().data.len(), 50),
                "hand" => {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                        .bind(workeros_core::DEFAULT_TENANT).bind(100_i64).bind("u1")
                        .fetch_all(pool).await.unwrap();
                    let v: Vec<serde_json::Value> = rows.iter().map(|r| json!({
                        "id": r.get::<String, _>(0), "createdAt": r.get::<String, _>(1), "updatedAt": r.get::<String, _>(2),
                        "ownerId": r.get::<Option<String>, _>(3), "title": r.get::<Option<String>, _>(4),
                        "views": r.get::<Option<i64>, _>(5), "status": r.get::<Option<String>, _>(6)})).collect();
                    assert_eq!(v.len(), 50);
                }
                other => panic!("unknown op {other}"),
            }
        }
    });
}
