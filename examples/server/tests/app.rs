//! The example server's app through its real router (no socket): health, the admin token, and a
//! collection created as the README shows.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use workeros_auth::AuthConfig;
use workeros_store::Db;

const TOKEN: &str = "secret-token-0123456789";

async fn app() -> axum::Router {
    app_and_hooks().await.0
}

async fn app_and_hooks() -> (axum::Router, workeros_events::Webhooks) {
    let db = Db::connect("sqlite::memory:").await.unwrap();
    let config = AuthConfig {
        bootstrap_token: Some(TOKEN.into()),
        ..AuthConfig::default()
    };
    let events = workeros::EventsConfig {
        allow: workeros_events::Allow::parse("127.0.0.1/32").unwrap(),
        webhooks: workeros_events::WebhookConfig {
            timeout: std::time::Duration::from_secs(2),
            ..Default::default()
        },
        ..Default::default()
    };
    let wk = example_server::build(db, config, events).await.unwrap();
    let hooks = wk.events().unwrap().webhooks.clone();
    (example_server::app(&wk), hooks)
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string()))
            .unwrap(),
        None => req.body(Body::empty()).unwrap(),
    };
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, v)
}

#[tokio::test]
async fn health_and_admin_token() {
    let app = app().await;
    let (s, v) = call(&app, "GET", "/healthz", None, None).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"status": "ok"})));

    // Anonymous: not an admin. A wrong token: 401, never anonymous.
    let (s, v) = call(&app, "GET", "/api/collections", None, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["error"]["code"], "FORBIDDEN");
    for bad in ["wrong", "secret-token-0123456789x", "pak_x", ""] {
        let (s, v) = call(&app, "GET", "/api/collections", Some(bad), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{bad:?}");
        assert_eq!(v["error"]["code"], "UNAUTHORIZED");
    }

    // The admin creates a collection and sees it.
    let (s, v) = call(
        &app,
        "POST",
        "/api/collections",
        Some(TOKEN),
        Some(json!({"slug": "notes", "ownerScoped": true, "fields": [{"name": "body", "type": "text"}]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["data"]["slug"], "notes");
    let (s, v) = call(&app, "GET", "/api/collections", Some(TOKEN), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    let (s, v) = call(
        &app,
        "GET",
        "/api/permissions?collection=notes",
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"].as_array().unwrap().len(), 4);

    // A bad value is 422, a body that is not JSON 400, both with the error shape.
    let (s, v) = call(
        &app,
        "POST",
        "/api/collections",
        Some(TOKEN),
        Some(json!({"slug": "Bad Slug"})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["code"], "VALIDATION");
    let req = Request::builder()
        .method("POST")
        .uri("/api/collections")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn realtime_with_a_ticket() {
    let app = app().await;
    let (s, v) = call(
        &app,
        "POST",
        "/api/collections",
        Some(TOKEN),
        Some(json!({"slug": "posts", "fields": [{"name": "title", "type": "text"}]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = call(&app, "POST", "/api/realtime/ticket", Some(TOKEN), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let ticket = v["data"]["ticket"].as_str().unwrap().to_owned();
    // An EventSource sends no header: the ticket alone admits it.
    let req = Request::builder()
        .uri(format!("/api/realtime?collection=posts&ticket={ticket}"))
        .body(Body::empty())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res.into_body();
    let (s, _) = call(
        &app,
        "POST",
        "/api/items/posts",
        Some(TOKEN),
        Some(json!({"title": "hello"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let frame = tokio::time::timeout(std::time::Duration::from_secs(5), body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    let text = String::from_utf8(frame.to_vec()).unwrap();
    assert!(text.contains("event: create"), "{text}");
    assert!(text.contains(r#""title":"hello""#), "{text}");
    // A forged ticket is refused.
    let req = Request::builder()
        .uri("/api/realtime?collection=posts&ticket=forged.ticket")
        .body(Body::empty())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn webhooks_deliver_through_the_server() {
    let (app, hooks) = app_and_hooks().await;
    // A receiver on a real socket that hands each request's headers and body to the test.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(axum::http::HeaderMap, String)>();
    let receiver =
        axum::Router::new().fallback(move |headers: axum::http::HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body));
                StatusCode::NO_CONTENT
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    let _workers = hooks.start().await.unwrap();

    let (s, v) = call(
        &app,
        "POST",
        "/api/collections",
        Some(TOKEN),
        Some(json!({"slug": "orders", "fields": [{"name": "total", "type": "number"}]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = call(
        &app,
        "POST",
        "/api/webhooks",
        Some(TOKEN),
        Some(json!({"url": format!("http://{addr}/hook"), "collections": ["orders"], "events": ["create"]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let secret = workeros_events::signing::Secret::parse(v["secret"].as_str().unwrap()).unwrap();
    let id = v["data"]["id"].as_str().unwrap().to_owned();
    let (s, _) = call(&app, "GET", "/api/webhooks", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let (s, _) = call(
        &app,
        "POST",
        "/api/items/orders",
        Some(TOKEN),
        Some(json!({"total": 42})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (headers, body) = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .expect("a delivery")
        .unwrap();
    let h = |n: &str| headers.get(n).unwrap().to_str().unwrap().to_owned();
    let (wid, ts, sig) = (
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
    );
    let signed = workeros_events::signing::SignedHeaders {
        id: &wid,
        timestamp: &ts,
        signature: &sig,
    };
    let now = time_now();
    workeros_events::signing::verify(&[secret], signed, body.as_bytes(), now, 300).unwrap();
    let payload: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(payload["type"], "orders.create");
    assert_eq!(payload["data"]["item"]["total"].as_f64(), Some(42.0));
    // The log shows it delivered.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (s, v) = call(
            &app,
            "GET",
            &format!("/api/webhooks/{id}/deliveries"),
            Some(TOKEN),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        if v["data"][0]["state"] == "succeeded" {
            assert_eq!(v["data"][0]["id"], wid.as_str());
            assert_eq!(v["data"][0]["lastStatus"], 204);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{v}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn time_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}
