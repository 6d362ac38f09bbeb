//! Where the suites mount workeros: at the root, or, with `WORKEROS_TEST_PREFIX=/cms`, nested
//! under that prefix next to host routes named like workeros' own (`/api/users`, `/api/roles`),
//! as a host that embeds workeros mounts it. The request helpers ([`crate::http::call`],
//! [`crate::auth::Client::call`], [`crate::sse::open`]) send every request through [`uri`], so a
//! suite run with the prefix exercises every route nested.

use axum::Router;
use axum::routing::get;
use serde_json::json;

/// The prefix workeros is nested under (`""`: the root).
pub fn prefix() -> String {
    std::env::var("WORKEROS_TEST_PREFIX")
        .map(|p| p.trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

/// `app` as the suites mount it: as is, or nested under [`prefix`] beside the host's routes.
pub fn mount(app: Router) -> Router {
    let prefix = prefix();
    if prefix.is_empty() {
        app
    } else {
        Router::new().nest(&prefix, app).merge(host_routes())
    }
}

/// Routes of the host's own, with the names workeros uses at the root.
pub fn host_routes() -> Router {
    Router::new()
        .route(
            "/api/users",
            get(|| async { axum::Json(json!({"host": "users"})) }),
        )
        .route(
            "/api/roles",
            get(|| async { axum::Json(json!({"host": "roles"})) }),
        )
}

/// A workeros path as requested from outside: prefixed, except paths already prefixed and
/// absolute URLs.
pub fn uri(path: &str) -> String {
    let prefix = prefix();
    if prefix.is_empty() || !path.starts_with('/') || path.starts_with(&format!("{prefix}/")) {
        path.to_owned()
    } else {
        format!("{prefix}{path}")
    }
}
