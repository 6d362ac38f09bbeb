//! The actix host on a real socket, on SQLite and PostgreSQL: collections and items through the
//! plain API with the admin token and an anonymous caller, a list query in the Directus bracket
//! syntax, errors in workeros's shape, a realtime stream that receives a create, and a graceful
//! stop that ends the stream.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use actix_web::{App, HttpServer, web};
use serde_json::{Value, json};
use std::time::Duration;
use workeros_auth::AuthConfig;
use workeros_tests::stores::dbs;

const TOKEN: &str = "the-actix-example-admin-token";

#[actix_web::test]
async fn items_collections_and_realtime_through_actix() {
    for t in dbs().await {
        let name = t.name();
        let config = AuthConfig {
            bootstrap_token: Some(TOKEN.into()),
            ..AuthConfig::default()
        };
        let wk = example_actix::Workeros::new(t.db.clone(), config)
            .await
            .unwrap();
        let workers = wk.start().await.unwrap();
        let routes = wk.clone();
        let server = HttpServer::new(move || {
            App::new()
                .service(web::scope("/cms").configure(example_actix::configure(routes.clone())))
        })
        .disable_signals()
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        let running = actix_web::rt::spawn(server);

        let base = format!("http://{addr}/cms");
        let http = reqwest::Client::new();
        let call = |method: reqwest::Method, path: &str, admin: bool, body: Option<Value>| {
            let mut req = http.request(method, format!("{base}{path}"));
            if admin {
                req = req.bearer_auth(TOKEN);
            }
            if let Some(b) = body {
                req = req
                    .header("content-type", "application/json")
                    .body(b.to_string());
            }
            async move {
                let res = req.send().await.unwrap();
                let status = res.status().as_u16();
                let v = serde_json::from_slice::<Value>(&res.bytes().await.unwrap())
                    .unwrap_or(Value::Null);
                (status, v)
            }
        };
        use reqwest::Method;

        let (s, v) = call(
            Method::POST,
            "/api/collections",
            true,
            Some(json!({"slug": "posts",
                        "fields": [{"name": "title", "type": "text"}, {"name": "views", "type": "integer"}]})),
        )
        .await;
        assert_eq!(s, 201, "{name}: {v}");
        let (s, v) = call(
            Method::POST,
            "/api/permissions",
            true,
            Some(json!({"role": "public", "collection": "posts", "action": "read"})),
        )
        .await;
        assert_eq!(s, 201, "{name}: {v}");
        let (s, v) = call(Method::GET, "/api/collections", true, None).await;
        assert_eq!(
            (s, v["data"][0]["slug"].clone()),
            (200, json!("posts")),
            "{name}"
        );
        // Anonymous is not an admin; a bearer nobody issued is 401, in workeros's error shape.
        let (s, v) = call(Method::GET, "/api/collections", false, None).await;
        assert_eq!(s, 403, "{name}: {v}");
        let res = http
            .get(format!("{base}/api/collections"))
            .bearer_auth("not-a-workeros-credential")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 401, "{name}");
        let v: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
        assert_eq!(v["error"]["code"], "UNAUTHORIZED", "{name}: {v}");

        // A realtime stream, open before the writes.
        let mut stream = http
            .get(format!(
                "{base}/api/realtime?collection=posts&events=create"
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status().as_u16(), 200, "{name}");
        assert_eq!(
            stream.headers()["content-type"].to_str().unwrap(),
            "text/event-stream",
            "{name}"
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while wk.realtime.subscribers() < 1 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        for (title, views) in [("alpha", 5), ("beta", 50), ("gamma", 500)] {
            let (s, v) = call(
                Method::POST,
                "/api/items/posts",
                true,
                Some(json!({"title": title, "views": views})),
            )
            .await;
            assert_eq!(s, 201, "{name}: {v}");
        }
        let mut seen = String::new();
        while seen.matches("event: create").count() < 3 {
            let chunk = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
                .await
                .expect("frames within 5 s")
                .unwrap()
                .expect("the stream is open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(seen.contains(r#""title":"gamma""#), "{name}: {seen}");

        // The Directus bracket syntax, read by `ListQuery::parse`.
        let (s, v) = call(
            Method::GET,
            "/api/items/posts?filter[views][_gte]=50&sort=-views&fields=title&meta=count",
            true,
            None,
        )
        .await;
        assert_eq!(s, 200, "{name}: {v}");
        assert_eq!(
            v["data"],
            json!([{"title": "gamma"}, {"title": "beta"}]),
            "{name}"
        );
        assert_eq!(v["meta"]["count"], 2, "{name}");
        let (s, v) = call(
            Method::GET,
            "/api/items/posts?filter[nope][_eq]=1",
            true,
            None,
        )
        .await;
        assert_eq!(s, 422, "{name}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("nope"),
            "{name}: {v}"
        );

        // One item: read, change, delete.
        let (_, v) = call(
            Method::GET,
            "/api/items/posts?filter[title][_eq]=alpha",
            true,
            None,
        )
        .await;
        let id = v["data"][0]["id"]
            .as_str()
            .map_or_else(|| v["data"][0]["id"].to_string(), str::to_owned);
        let item = format!("/api/items/posts/{id}");
        let (s, v) = call(Method::PATCH, &item, true, Some(json!({"views": 6}))).await;
        assert_eq!(
            (s, v["data"]["views"].clone()),
            (200, json!(6)),
            "{name}: {v}"
        );
        let (s, v) = call(Method::GET, &item, false, None).await;
        assert_eq!(s, 200, "{name}: public read: {v}");
        let (s, _) = call(Method::DELETE, &item, false, None).await;
        assert_eq!(s, 403, "{name}: anonymous cannot delete");
        let (s, _) = call(Method::DELETE, &item, true, None).await;
        assert_eq!(s, 204, "{name}");
        let (s, _) = call(Method::GET, &item, true, None).await;
        assert_eq!(s, 404, "{name}");

        // A graceful stop: the open stream ends, so actix drains at once.
        let stop = std::time::Instant::now();
        wk.realtime.close();
        tokio::time::timeout(Duration::from_secs(5), handle.stop(true))
            .await
            .expect("actix stops within 5 s");
        running.await.unwrap().unwrap();
        while let Some(_chunk) = stream.chunk().await.unwrap_or(None) {}
        assert!(stop.elapsed() < Duration::from_secs(5), "{name}");
        wk.shutdown(workers).await;
        t.close().await;
    }
}
