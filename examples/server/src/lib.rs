//! The workeros example server as a library: [`app`] builds the axum app that `example-server`
//! serves, so tests can drive it without a socket.
//!
//! It mounts every router the workspace has so far (`workeros_store::http::router`,
//! `workeros_auth::http::router`, `workeros_adopt::http::router`, and realtime:
//! `workeros_events::http::router`, with realtime tickets checked by `workeros-auth`, webhooks
//! and flows: `workeros_events::http::{webhooks, flows}`),
//! `GET /healthz`, the auth layer (session cookie, then
//! `Authorization: Bearer` with an API key or the bootstrap admin token; presented but invalid
//! credentials are 401, never anonymous; none is anonymous) and a request log.

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use workeros_auth::Auth;
use workeros_auth::http::AuthLayer;
use workeros_events::{Flows, Realtime, RealtimeConfig, Webhooks};
use workeros_store::Store;

/// The app: the store's, auth's, adopt's, realtime's, webhooks' and flows' routes, `/healthz`,
/// the auth layer and the request log. It registers a realtime hub, `webhooks` and `flows` as
/// sinks of `store` and, on PostgreSQL, has the hub follow the events of other instances (call
/// it inside a Tokio runtime). The workers are the caller's to run
/// ([`Webhooks::spawn_workers`], [`Flows::start`]).
pub fn app(store: Store, auth: Auth, webhooks: Webhooks, flows: Flows) -> Router {
    let realtime = Realtime::new(store.clone(), RealtimeConfig::default());
    store.add_sink(Arc::new(realtime.clone()));
    store.add_sink(Arc::new(webhooks.clone()));
    store.add_sink(Arc::new(flows.clone()));
    // On PostgreSQL, other instances' events reach this one's subscribers too.
    let follower = realtime.clone();
    tokio::spawn(async move {
        if let Err(e) = follower.follow_other_instances().await {
            tracing::error!(error = %e, "realtime: cannot follow other instances");
        }
    });
    let tickets = auth.clone();
    let tickets: workeros_events::http::TicketCheck =
        Arc::new(move |t: &str| tickets.verify_ticket(t).ok());
    Router::new()
        .route("/healthz", get(healthz))
        .merge(workeros_adopt::http::router(workeros_adopt::Adopt::new(
            store.clone(),
        )))
        .merge(workeros_store::http::router(store))
        .merge(workeros_auth::http::router(auth.clone()))
        .merge(workeros_events::http::router(realtime, Some(tickets)))
        .merge(workeros_events::http::webhooks(webhooks))
        .merge(workeros_events::http::flows(flows))
        .layer(AuthLayer::new(auth))
        .layer(middleware::from_fn(log))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// One log line per request: method, path, status, time.
async fn log(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let start = std::time::Instant::now();
    let res = next.run(req).await;
    tracing::info!(
        %method,
        path,
        status = res.status().as_u16(),
        ms = start.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    res
}
