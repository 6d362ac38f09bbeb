//! The workeros example server as a library: [`build`] (workeros with every part turned on,
//! through [`workeros::Builder`]) and [`app`], the axum app that `example-server` serves, so
//! tests can drive it without a socket.
//!
//! [`build`] migrates, makes and wires the store, auth, the event engines and the adopt wizard
//! (nothing runs until [`Workeros::start`]); [`app`] mounts [`Workeros::router`] (every route,
//! behind the auth layer: session cookie, then `Authorization: Bearer` with an API key or the
//! bootstrap admin token; presented but invalid credentials are 401, never anonymous; none is
//! anonymous), `GET /healthz` and a request log.

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use workeros::{EventsConfig, Workeros};
use workeros_auth::AuthConfig;
use workeros_store::migrate::Component;
use workeros_store::{Db, Names};

/// workeros over `db` with every part: auth with `auth` (emails to the console), the event
/// engines with `events` (outgoing requests through its SSRF guard) and the adopt wizard.
pub async fn build(
    db: Db,
    auth: AuthConfig,
    events: EventsConfig,
) -> Result<Workeros, workeros::Error> {
    Workeros::builder(db)
        .auth(auth)
        .email(Arc::new(console_sender()))
        .events(events)
        .adopt()
        .build()
        .await
}

/// The app: every route of `wk`, `/healthz` and the request log.
pub fn app(wk: &Workeros) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .merge(wk.router())
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

/// The components the example installs, in the order their migrations apply.
pub const COMPONENTS: [Component; 3] = [
    workeros_store::SCHEMA,
    workeros_auth::SCHEMA,
    workeros_events::SCHEMA,
];

/// Writes the migrations of every component ([`COMPONENTS`]) as SQL for the dialect and
/// namespace of `names` into `dir` (created if missing), one file per version
/// (`workeros_store_v0001.sql`, …), for a host whose own migration tool owns DDL. Returns the
/// files in the order to apply them.
pub fn write_migrations(
    dir: &std::path::Path,
    names: &Names,
) -> Result<Vec<std::path::PathBuf>, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create folder `{}`: {e}", dir.display()))?;
    let mut written = Vec::new();
    for c in &COMPONENTS {
        for m in workeros_store::migrate::export(names, c).map_err(|e| e.to_string())? {
            let path = dir.join(m.file_name());
            std::fs::write(&path, &m.sql)
                .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
            written.push(path);
        }
    }
    Ok(written)
}

/// The console sender: links in logged emails have their tokens redacted, unless
/// `WORKEROS_LOG_EMAIL_LINKS=1` (a developer's machine, following the links).
fn console_sender() -> workeros_auth::email::ConsoleSender {
    match std::env::var("WORKEROS_LOG_EMAIL_LINKS").as_deref() {
        Ok("1") => workeros_auth::email::ConsoleSender::revealing_links(),
        _ => workeros_auth::email::ConsoleSender::new(),
    }
}
