//! The one wiring entry, `workeros::Workeros::builder`: a server built with it shuts down
//! gracefully with 100 open realtime streams (they end, so the server drains in well under five
//! seconds); `Migrations::Check` changes nothing and names what is missing; the store prunes the
//! outbox with no event engine running; without workeros-auth the host's resolver is the
//! identity. On SQLite and PostgreSQL.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tower::ServiceExt;
use workeros::{EventsConfig, Migrations, Workeros};
use workeros_auth::AuthConfig;
use workeros_core::{Subject, User};
use workeros_store::OutboxConfig;
use workeros_tests::stores::{dbs, outbox_len};

const TOKEN: &str = "bootstrap-token-of-the-builder-test";

fn auth_config() -> AuthConfig {
    AuthConfig {
        bootstrap_token: Some(TOKEN.into()),
        ..AuthConfig::default()
    }
}

async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    admin: bool,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if admin {
        req = req.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    }
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_ends_100_open_realtime_streams() {
    const STREAMS: usize = 100;
    for t in dbs().await {
        let name = t.name();
        let wk = Workeros::builder(t.db.clone())
            .auth(auth_config())
            // One token opens every stream: past the default per-user cap.
            .events(EventsConfig {
                realtime: workeros_events::RealtimeConfig {
                    max_per_user: STREAMS,
                    ..workeros_events::RealtimeConfig::default()
                },
                ..EventsConfig::default()
            })
            .adopt()
            .build()
            .await
            .unwrap();
        let app = Router::new().nest("/cms", wk.router());
        let (s, v) = send(
            &app,
            "POST",
            "/cms/api/collections",
            true,
            Some(json!({"slug": "posts", "fields": [{"name": "title", "type": "text"}]})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let running = wk.start().await.unwrap();
        assert!(running.loops() > 0, "{name}");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(
            axum::serve(listener, app.clone())
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                    running.shutdown().await;
                })
                .into_future(),
        );

        let client = reqwest::Client::new();
        let url = format!("http://{addr}/cms/api/realtime?collection=posts");
        let mut streams = Vec::new();
        for _ in 0..STREAMS {
            let res = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
            assert_eq!(res.status(), reqwest::StatusCode::OK, "{name}");
            streams.push(res);
        }
        let realtime = wk.events().unwrap().realtime.clone();
        let deadline = Instant::now() + Duration::from_secs(10);
        while realtime.subscribers() < STREAMS && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(realtime.subscribers(), STREAMS, "{name}");
        // The streams are live: a write reaches every one of them.
        let (s, _) = send(
            &app,
            "POST",
            "/cms/api/items/posts",
            true,
            Some(json!({"title": "hello"})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}");
        for res in &mut streams {
            let mut seen = String::new();
            while !seen.contains("event: create") {
                let chunk = tokio::time::timeout(Duration::from_secs(5), res.chunk())
                    .await
                    .expect("a frame within 5 s")
                    .unwrap()
                    .expect("the stream is open");
                seen.push_str(&String::from_utf8_lossy(&chunk));
            }
        }

        let asked = Instant::now();
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap_or_else(|_| panic!("{name}: the server still runs 5 s after shutdown"))
            .unwrap()
            .unwrap();
        let took = asked.elapsed();
        for res in &mut streams {
            // Every stream ended (what was left of it, then the end of the body).
            while let Some(_chunk) = res.chunk().await.unwrap_or(None) {}
        }
        assert_eq!(realtime.subscribers(), 0, "{name}");
        assert!(realtime.is_closed(), "{name}");
        eprintln!("{name}: shutdown with {STREAMS} open streams took {took:?}");
        t.close().await;
    }
}

#[tokio::test]
async fn check_mode_changes_nothing_and_names_what_is_missing() {
    for t in dbs().await {
        let name = t.name();
        let err = Workeros::builder(t.db.clone())
            .migrations(Migrations::Check)
            .auth(auth_config())
            .build()
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("store"), "{name}: names the component: {err}");
        assert!(err.contains("migrat"), "{name}: says what to run: {err}");
        // Nothing was made: a check after a check fails the same way.
        let again = Workeros::builder(t.db.clone())
            .migrations(Migrations::Check)
            .build()
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(again, err, "{name}");
        // Migrated (the default), a check passes.
        Workeros::builder(t.db.clone())
            .auth(auth_config())
            .build()
            .await
            .unwrap();
        Workeros::builder(t.db.clone())
            .migrations(Migrations::Check)
            .auth(auth_config())
            .build()
            .await
            .unwrap();
        // Events were not turned on, so their schema is missing: checking it fails.
        let err = Workeros::builder(t.db.clone())
            .migrations(Migrations::Check)
            .events(EventsConfig::default())
            .build()
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("events"), "{name}: {err}");
        t.close().await;
    }
}

#[tokio::test]
async fn the_store_prunes_the_outbox_with_no_event_engine() {
    for t in dbs().await {
        let name = t.name();
        let wk = Workeros::builder(t.db.clone())
            .auth(auth_config())
            .outbox(OutboxConfig {
                retention: Duration::ZERO,
                prune_every: Duration::from_millis(50),
            })
            .build()
            .await
            .unwrap();
        let app = wk.router();
        let (s, _) = send(
            &app,
            "POST",
            "/api/collections",
            true,
            Some(json!({"slug": "notes", "fields": [{"name": "body", "type": "text"}]})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}");
        for i in 0..3 {
            let (s, _) = send(
                &app,
                "POST",
                "/api/items/notes",
                true,
                Some(json!({"body": format!("n{i}")})),
            )
            .await;
            assert_eq!(s, StatusCode::CREATED, "{name}");
        }
        assert_eq!(
            outbox_len(&t.db).await,
            3,
            "{name}: nothing prunes before start"
        );
        let running = wk.start().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while outbox_len(&t.db).await > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            outbox_len(&t.db).await,
            0,
            "{name}: the store pruned the outbox"
        );
        running.shutdown().await;
        t.close().await;
    }
}

#[tokio::test]
async fn without_auth_the_hosts_resolver_is_the_identity() {
    for t in dbs().await {
        let name = t.name();
        let wk = Workeros::builder(t.db.clone())
            .identify(|parts: &axum::http::request::Parts| {
                Ok::<_, StatusCode>(
                    parts
                        .headers
                        .get(header::AUTHORIZATION)
                        .filter(|v| v.as_bytes() == format!("Bearer {TOKEN}").as_bytes())
                        .map(|_| Subject::user(User::new("root").with_roles(["admin"]))),
                )
            })
            .build()
            .await
            .unwrap();
        let app = wk.router();
        let body = json!({"slug": "notes", "fields": [{"name": "body", "type": "text"}]});
        let (s, _) = send(&app, "POST", "/api/collections", false, Some(body.clone())).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{name}: anonymous");
        let (s, v) = send(&app, "POST", "/api/collections", true, Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{name}: the host's admin: {v}");
        let (s, _) = send(&app, "GET", "/api/auth/me", true, None).await;
        assert_eq!(
            s,
            StatusCode::NOT_FOUND,
            "{name}: no auth routes without auth"
        );
        t.close().await;
    }
}
