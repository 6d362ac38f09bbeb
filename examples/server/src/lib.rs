//! The workeros example server as a library: [`app`] builds the axum app that `example-server`
//! serves, so tests can drive it without a socket.
//!
//! It mounts every router the workspace has so far (`workeros_store::http::router`), `GET
//! /healthz`, a request log, and a bootstrap auth layer: `Authorization: Bearer <admin token>`
//! makes the request an admin's; any other presented bearer is 401 (never anonymous); no header is
//! anonymous.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use workeros_core::{ErrorBody, ErrorCode, Subject, User};
use workeros_store::Store;

/// The id of the subject that the admin token signs in.
pub const ADMIN_TOKEN_USER: &str = "admin-token";

/// The app: the store's routes, `/healthz`, the admin-token auth layer and the request log.
pub fn app(store: Store, admin_token: &str) -> Router {
    let token = Arc::new(Sha256::digest(admin_token.as_bytes()).to_vec());
    Router::new()
        .route("/healthz", get(healthz))
        .merge(workeros_store::http::router(store))
        .layer(middleware::from_fn_with_state(token, authenticate))
        .layer(middleware::from_fn(log))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Sets the request's [`Subject`]: the admin for the admin token, anonymous without a header, and
/// 401 for any other presented credential.
async fn authenticate(State(token): State<Arc<Vec<u8>>>, mut req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let subject = match presented {
        None => Subject::anonymous(),
        Some(v) => {
            let bearer = v.strip_prefix("Bearer ").unwrap_or_default();
            // Digests of equal length compared whole: the time does not depend on where a
            // guessed token first differs.
            let given = Sha256::digest(bearer.as_bytes());
            let same = given
                .iter()
                .zip(token.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
            if bearer.is_empty() || !same {
                let body = ErrorBody::new(ErrorCode::Unauthorized, "invalid credentials");
                return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
            }
            Subject::user(User::new(ADMIN_TOKEN_USER).with_roles(["admin"]))
        }
    };
    req.extensions_mut().insert(subject);
    next.run(req).await
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
