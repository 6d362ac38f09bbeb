//! The existing service with workeros added, on SQLite and PostgreSQL: its own routes answer
//! as before (`/api/users` is the service's, beside workeros's under `/cms`), its JWTs are
//! workeros subjects, its own `orders` and `users` tables are adopted in place (rows the service
//! writes are items; items written through workeros are the service's rows, owned by the
//! token's user), a customer sees only its own orders in lists and in realtime, and a restart
//! adopts nothing twice.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use example_embed::{HostPool, Secret};
use serde_json::{Value, json};
use std::time::Duration;
use workeros_store::DbPool;
use workeros_tests::stores::dbs;

const KEY: &[u8] = b"the service's own signing key, 32+ bytes";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_keeps_its_routes_and_tables_and_gains_workeros() {
    for t in dbs().await {
        let name = t.name();
        let pool = match t.db.pool() {
            DbPool::Postgres(p) => HostPool::Postgres(p.clone()),
            DbPool::Sqlite(p) => HostPool::Sqlite(p.clone()),
        };
        let ns = t.db.names().namespace().clone();
        let secret = Secret::new(KEY);
        // The service as it was: its migrations and its users.
        example_embed::migrate(&pool).await.unwrap();
        let seed = "INSERT INTO users (id, email, name, role) VALUES \
                    ('root', 'root@shop.example', 'Root', 'admin'), \
                    ('alice', 'alice@shop.example', 'Alice', 'customer'), \
                    ('bob', 'bob@shop.example', 'Bob', 'customer')";
        exec(&pool, seed).await;

        let (app, wk) = example_embed::app(pool.clone(), secret.clone(), ns.clone())
            .await
            .unwrap();
        let running = wk.start().await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(axum::serve(listener, app).into_future());
        let base = format!("http://{addr}");
        let http = reqwest::Client::new();
        let token = |user: &str, role: &str| secret.issue(user, role).unwrap();
        let (root, alice, bob) = (
            token("root", "admin"),
            token("alice", "customer"),
            token("bob", "customer"),
        );
        let call = |method: reqwest::Method, path: &str, token: &str, body: Option<Value>| {
            let mut req = http
                .request(method, format!("{base}{path}"))
                .bearer_auth(token);
            if let Some(b) = body {
                req = req
                    .header("content-type", "application/json")
                    .body(b.to_string());
            }
            async move {
                let res = req.send().await.unwrap();
                let status = res.status().as_u16();
                (
                    status,
                    serde_json::from_slice::<Value>(&res.bytes().await.unwrap())
                        .unwrap_or(Value::Null),
                )
            }
        };
        use reqwest::Method;

        // The service's own routes, unchanged.
        let (s, v) = call(Method::GET, "/api/users", &root, None).await;
        assert_eq!(s, 200, "{name}: {v}");
        assert_eq!(v["users"].as_array().unwrap().len(), 3, "{name}: {v}");
        let (s, _) = call(Method::GET, "/api/users", &alice, None).await;
        assert_eq!(s, 403, "{name}");
        let (s, v) = call(Method::GET, "/api/users/me", &alice, None).await;
        assert_eq!((s, &v["id"]), (200, &json!("alice")), "{name}");
        // A token the service did not sign is refused by workeros with the service's answer.
        let forged = Secret::new(b"somebody else's key of 32+ bytes!!".as_slice())
            .issue("root", "admin")
            .unwrap();
        let (s, _) = call(Method::GET, "/cms/api/collections", &forged, None).await;
        assert_eq!(s, 401, "{name}");

        // workeros sees the service's users table as `customers`, admins only.
        let (s, v) = call(Method::GET, "/cms/api/items/customers?sort=id", &root, None).await;
        assert_eq!(s, 200, "{name}: {v}");
        let emails: Vec<&str> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap())
            .collect();
        assert_eq!(
            emails,
            [
                "alice@shop.example",
                "bob@shop.example",
                "root@shop.example"
            ]
        );
        let (s, _) = call(Method::GET, "/cms/api/items/customers", &alice, None).await;
        assert!(
            s == 403 || s == 404,
            "{name}: a customer cannot list users: {s}"
        );

        // Alice's realtime stream of orders, open before the writes.
        let mut stream = http
            .get(format!("{base}/cms/api/realtime?collection=orders"))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status().as_u16(), 200, "{name}");
        let rt = wk.events().unwrap().realtime.clone();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while rt.subscribers() < 1 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        // Orders written through workeros are the service's rows, owned by the token's user.
        let (s, v) = call(
            Method::POST,
            "/cms/api/items/orders",
            &bob,
            Some(json!({"id": "o-bob", "total": 99.0})),
        )
        .await;
        assert_eq!(s, 201, "{name}: {v}");
        let (s, v) = call(
            Method::POST,
            "/cms/api/items/orders",
            &alice,
            Some(json!({"id": "o-alice", "total": 12.5})),
        )
        .await;
        assert_eq!(s, 201, "{name}: {v}");
        assert_eq!(v["data"]["ownerId"], "alice", "{name}: {v}");
        let owners = rows(&pool, "SELECT id, user_id FROM orders ORDER BY id").await;
        assert_eq!(
            owners,
            [
                ("o-alice".to_owned(), "alice".to_owned()),
                ("o-bob".to_owned(), "bob".to_owned())
            ],
            "{name}: the service's own rows"
        );
        // Alice's stream has her order and nothing of Bob's.
        let mut seen = String::new();
        while !seen.contains("o-alice") {
            let chunk = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
                .await
                .expect("alice's create within 5 s")
                .unwrap()
                .expect("open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(!seen.contains("o-bob"), "{name}: {seen}");

        // A row the service writes itself is an item at once; each customer lists its own.
        exec(
            &pool,
            "INSERT INTO orders (id, user_id, total, status) VALUES ('o-legacy', 'alice', 5, 'paid')",
        )
        .await;
        let (s, v) = call(
            Method::GET,
            "/cms/api/items/orders?sort=id&fields=id,total",
            &alice,
            None,
        )
        .await;
        assert_eq!(s, 200, "{name}: {v}");
        assert_eq!(
            v["data"],
            json!([{"id": "o-alice", "total": 12.5}, {"id": "o-legacy", "total": 5.0}]),
            "{name}"
        );
        let (_, v) = call(Method::GET, "/cms/api/items/orders", &bob, None).await;
        assert_eq!(v["data"].as_array().unwrap().len(), 1, "{name}: {v}");
        let (s, _) = call(Method::GET, "/cms/api/items/orders/o-bob", &alice, None).await;
        assert_eq!(s, 404, "{name}: not alice's");
        let (s, _) = call(
            Method::PATCH,
            "/cms/api/items/orders/o-bob",
            &alice,
            Some(json!({"total": 1})),
        )
        .await;
        assert_eq!(s, 404, "{name}");

        // Shut down (the stream ends), then start again: nothing is adopted twice.
        running.shutdown().await;
        while let Some(_c) = stream.chunk().await.unwrap_or(None) {}
        server.abort();
        let (_, again) = example_embed::app(pool.clone(), secret.clone(), ns.clone())
            .await
            .unwrap();
        let admin = workeros_core::Subject::user(
            workeros_core::User::new("root").with_roles([workeros_core::roles::ADMIN]),
        );
        let slugs: Vec<String> = again
            .store()
            .list_collections(&admin, true)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.slug.to_string())
            .collect();
        assert_eq!(slugs.len(), 2, "{name}: {slugs:?}");
        t.close().await;
    }
}

async fn exec(pool: &HostPool, sql: &'static str) {
    use sqlx::Executor;
    match pool {
        HostPool::Postgres(p) => {
            p.execute(sql).await.unwrap();
        }
        HostPool::Sqlite(p) => {
            p.execute(sql).await.unwrap();
        }
    }
}

async fn rows(pool: &HostPool, sql: &'static str) -> Vec<(String, String)> {
    match pool {
        HostPool::Postgres(p) => sqlx::query_as(sql).fetch_all(p).await.unwrap(),
        HostPool::Sqlite(p) => sqlx::query_as(sql).fetch_all(p).await.unwrap(),
    }
}
