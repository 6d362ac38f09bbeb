//! The workeros example server as a library: [`Engines`] (the realtime hub, webhooks, flows and
//! the adopt wizard over one store), and [`app`], the axum app that `example-server` serves, so
//! tests can drive it without a socket.
//!
//! Nothing here has a hidden side effect: making the engines only makes them, [`Engines::connect`]
//! registers them with the store (sinks, the adopter), [`Engines::start`] runs their workers,
//! and [`app`] only builds the router. It mounts every router of the workspace
//! (`workeros_store::http::router`, `workeros_auth::http::router`, `workeros_adopt::http::router`,
//! realtime `workeros_events::http::router` with tickets checked by `workeros-auth`, webhooks and
//! flows `workeros_events::http::{webhooks, flows}`), `GET /healthz`, the auth layer (session
//! cookie, then `Authorization: Bearer` with an API key or the bootstrap admin token; presented but
//! invalid credentials are 401, never anonymous; none is anonymous) and a request log.

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use workeros_adopt::Adopt;
use workeros_auth::Auth;
use workeros_auth::http::AuthLayer;
use workeros_core::EmailSender;
use workeros_events::{
    EventsError, Flows, FlowsConfig, Guard, Realtime, RealtimeConfig, WebhookConfig, Webhooks,
    Workers,
};
use workeros_store::migrate::Component;
use workeros_store::{Names, Store};

/// The engines of the example over one store.
#[derive(Debug, Clone)]
pub struct Engines {
    /// The realtime hub.
    pub realtime: Realtime,
    /// Webhooks.
    pub webhooks: Webhooks,
    /// Flows.
    pub flows: Flows,
    /// The adopt wizard.
    pub adopt: Adopt,
}

impl Engines {
    /// The engines over `store`; outgoing requests (webhooks, flow requests) go through `guard`,
    /// flow emails through `email`.
    pub fn new(
        store: &Store,
        guard: Guard,
        email: Option<Arc<dyn EmailSender>>,
        webhooks: WebhookConfig,
    ) -> Self {
        Self {
            realtime: Realtime::new(store.clone(), RealtimeConfig::default()),
            webhooks: Webhooks::new(store.clone(), guard.clone(), webhooks),
            flows: Flows::new(store.clone(), guard, email, FlowsConfig::default()),
            adopt: Adopt::new(store.clone()),
        }
    }

    /// Registers the engines with `store`: the hub, webhooks and flows as sinks (committed writes
    /// reach them at once), the wizard as the adopter of `POST /api/collections`.
    pub fn connect(&self, store: &Store) {
        store.add_sink(Arc::new(self.realtime.clone()));
        store.add_sink(Arc::new(self.webhooks.clone()));
        store.add_sink(Arc::new(self.flows.clone()));
        store.set_adopter(self.adopt.adopter());
    }

    /// Runs the engines' workers (webhook dispatch and delivery, flow runs and, on PostgreSQL,
    /// realtime following other instances); shut each handle down to stop them. An instance that
    /// cannot follow the others (a connection pooler that refuses `LISTEN`, say) logs it and
    /// serves its own events.
    pub async fn start(&self) -> Result<Vec<Workers>, EventsError> {
        let mut workers = vec![self.webhooks.start().await?, self.flows.start().await?];
        match self.realtime.start().await {
            Ok(w) => workers.push(w),
            Err(e) => tracing::error!(error = %e, "realtime: cannot follow other instances"),
        }
        Ok(workers)
    }
}

/// The app: the store's, auth's, adopt's, realtime's, webhooks' and flows' routes, `/healthz`,
/// the auth layer and the request log.
pub fn app(store: Store, auth: Auth, engines: &Engines) -> Router {
    let tickets = auth.clone();
    let tickets: workeros_events::http::TicketCheck =
        Arc::new(move |t: &str| tickets.verify_ticket(t).ok());
    Router::new()
        .route("/healthz", get(healthz))
        .merge(workeros_adopt::http::router(engines.adopt.clone()))
        .merge(workeros_store::http::router(store))
        .merge(workeros_auth::http::router(auth.clone()))
        .merge(workeros_events::http::router(
            engines.realtime.clone(),
            Some(tickets),
        ))
        .merge(workeros_events::http::webhooks(engines.webhooks.clone()))
        .merge(workeros_events::http::flows(engines.flows.clone()))
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
