//! The events routes, to mount in the host's axum app: [`router`] (realtime) and [`webhooks`].
//!
//! | route | who | what |
//! |---|---|---|
//! | `GET /api/realtime?collection=&filter=&events=&ticket=` | anyone the collection's read permissions admit | a Server-Sent Events stream |
//! | `GET`, `POST /api/webhooks` | tenant admins | list; create (`201`, the `secret` shown once) |
//! | `GET`, `PATCH`, `DELETE /api/webhooks/{id}` | tenant admins | read, change, delete (`204`) |
//! | `POST /api/webhooks/{id}/rotate` | tenant admins | a new secret (the previous one signs alongside for a day) |
//! | `GET /api/webhooks/{id}/deliveries?state=&limit=&offset=` | tenant admins | the delivery log, newest first |
//! | `GET /api/webhooks/{id}/deliveries/{delivery}` | tenant admins | one delivery with every attempt |
//! | `POST /api/webhooks/{id}/deliveries/{delivery}/redeliver` | tenant admins | send it again now (same `webhook-id`) |
//! | `GET`, `POST /api/flows` | tenant admins | list; create (`201`, the `secret` and `hookToken` shown once) |
//! | `GET`, `PATCH`, `DELETE /api/flows/{id}` | tenant admins | read, change, delete (`204`) |
//! | `POST /api/flows/{id}/run` | tenant admins | run a `manual` flow now with the body (JSON only: `content-type: application/json`) as its trigger data; the finished run |
//! | `POST /api/flows/{id}/hook` | whoever holds the token (`x-workeros-token` header, or `?token=`) | run a `webhook` flow with the body; the run's `id`, `status` and the `output` of the operation its trigger names in `respond`, nothing else |
//! | `GET /api/flows/{id}/runs?limit=` | tenant admins | the runs, newest first, every step |
//!
//! The subject is the request's [`Subject`] extension (set by the host's auth layer), or the
//! subject of `ticket` (from `POST /api/realtime/ticket` of `workeros-auth`) for browser
//! `EventSource`s, which cannot send headers. `Last-Event-ID` (header, or `lastEventId` in the
//! query) resumes after that event.

use crate::EventsError;
use crate::flows::{FlowInput, Flows};
use crate::realtime::{Realtime, Subscribe};
use crate::webhooks::{DeliveryQuery, WebhookInput, Webhooks};
use axum::Extension;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use workeros_core::{ClientAddr, Subject};
use workeros_store::http::{Body, Caller};

impl IntoResponse for EventsError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code().http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.body())).into_response()
    }
}

/// Resolves a realtime ticket to its subject (`None`: invalid or expired). With
/// `workeros-auth`: `Arc::new(move |t| auth.verify_ticket(t).ok())`.
pub type TicketCheck = Arc<dyn Fn(&str) -> Option<Subject> + Send + Sync>;

#[derive(Clone)]
struct RealtimeState {
    rt: Realtime,
    tickets: Option<TicketCheck>,
}

/// `GET /api/realtime` over `rt`; `tickets` resolves `ticket=` (without it, tickets are
/// refused).
pub fn router<S>(rt: Realtime, tickets: Option<TicketCheck>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/realtime", get(stream))
        .with_state(RealtimeState { rt, tickets })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StreamQuery {
    collection: Option<String>,
    filter: Option<String>,
    events: Option<String>,
    ticket: Option<String>,
    last_event_id: Option<String>,
}

async fn stream(
    State(st): State<RealtimeState>,
    Caller(subject): Caller,
    client: Option<Extension<ClientAddr>>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> Result<Response, EventsError> {
    let subject = match &q.ticket {
        Some(t) => st
            .tickets
            .as_ref()
            .and_then(|check| check(t))
            .ok_or(EventsError::Unauthorized)?,
        None => subject,
    };
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(q.last_event_id);
    let req = Subscribe {
        collection: q.collection.filter(|c| !c.is_empty()),
        filter: q
            .filter
            .filter(|f| !f.trim().is_empty())
            .map(serde_json::Value::String),
        events: q
            .events
            .map(|e| e.split(',').map(|s| s.trim().to_owned()).collect()),
        last_event_id,
        // The auth layer's view of the address (behind trusted proxies), else the connection's.
        client: match client {
            Some(Extension(ClientAddr(a))) => a,
            None => connect.map(|Extension(ConnectInfo(a))| a.ip()),
        },
    };
    let sub = st.rt.subscribe(&subject, req).await?;
    // The stream ends after its lifetime; the client reconnects, authenticated again.
    let deadline = tokio::time::Instant::now() + st.rt.config().max_lifetime;
    let frames = futures::stream::unfold(sub, move |mut sub| async move {
        let f = tokio::time::timeout_at(deadline, sub.next()).await.ok()??;
        let mut ev = SseEvent::default().event(&*f.event).data(&*f.data);
        if let Some(id) = &f.id {
            ev = ev.id(&**id);
        }
        Some((Ok::<_, Infallible>(ev), sub))
    });
    let mut res = Sse::new(frames)
        .keep_alive(KeepAlive::new().interval(st.rt.config().heartbeat))
        .into_response();
    // Proxies that buffer responses (nginx) would hold the stream back.
    res.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    res.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    Ok(res)
}

/// The webhook admin routes over `w` (see the [module](self) table).
pub fn webhooks<S>(w: Webhooks) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/webhooks", get(list_webhooks).post(create_webhook))
        .route(
            "/api/webhooks/{id}",
            get(get_webhook)
                .patch(update_webhook)
                .delete(delete_webhook),
        )
        .route("/api/webhooks/{id}/rotate", post(rotate_webhook))
        .route("/api/webhooks/{id}/deliveries", get(list_deliveries))
        .route(
            "/api/webhooks/{id}/deliveries/{delivery}",
            get(get_delivery),
        )
        .route(
            "/api/webhooks/{id}/deliveries/{delivery}/redeliver",
            post(redeliver),
        )
        .with_state(w)
}

/// A path id; one that is not a UUID names nothing (404).
fn id_of(s: &str, what: &str) -> Result<uuid::Uuid, EventsError> {
    uuid::Uuid::try_parse(s).map_err(|_| EventsError::NotFound(format!("{what} `{s}` not found")))
}

fn data<T: serde::Serialize>(v: T) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "data": v }))
}

async fn list_webhooks(
    State(w): State<Webhooks>,
    Caller(subject): Caller,
) -> Result<Response, EventsError> {
    Ok(data(w.list(&subject).await?).into_response())
}

async fn create_webhook(
    State(w): State<Webhooks>,
    Caller(subject): Caller,
    Body(input): Body<WebhookInput>,
) -> Result<Response, EventsError> {
    let made = w.create(&subject, input).await?;
    let body = serde_json::json!({ "data": made.webhook, "secret": made.secret });
    Ok((
        StatusCode::CREATED,
        [("cache-control", "no-store")],
        Json(body),
    )
        .into_response())
}

async fn get_webhook(
    State(w): State<Webhooks>,
    Caller(subject): Caller,
    Path(id): Path<String>,
) -> Result<Response, EventsError> {
    let id = id_of(&id, "webhook")?;
    Ok(data(w.get(&subject, id).await?).into_response())
}

async fn update_webhook(
    State(w): State<Webhooks>,
    Caller(subject): Caller,
    Path(id): Path<String>,
    Body(input): Body<WebhookInput>,
) -> Result<Response, EventsError> {
    let id = id_of(&id, "webhook")?;
    Ok(data(w.update(&subject, id, input).await?).into_response())
}

async fn delete_webhook(
    State(w): State<Webhooks>,
    Caller(subject): Caller,
    Path(id): Path<String>,
) -> Result<Response, EventsError> {
    let id = id_of(&id, "webhook")?;
    w.delete(&subject, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn rotate_webhook(
    State(w): State<Webhooks>,
    Caller(subject): Caller,
    Path(id): Path<String>,
) -> Result<Response, EventsError> {
    let id = id_of(&id, "webhook")?;
    let made = w.rotate(&subject, id).await?;
    let body = serde_json::json!({ "data": made.webhook, "secret": made.secret });
    Ok(([("cache-control", "no-store")], Json(body)).into_response())
}

async fn list_deliveries(
    State(w): State<Webhooks>,
    Caller(subject): Caller,
    Path(id): Path<String>,
    Query(q): Query<DeliveryQuery>,
) -> Result<Response, EventsError> {
    let id = id_of(&id, "webhook")?;
    Ok(data(w.deliveries(&subject, id, &q).await?).into_response())
}

async fn get_delivery(
    State(w): State<Webhooks>,
    Caller(subject): Caller,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<Response, EventsError> {
    let (id, delivery) = (id_of(&id, "webhook")?, id_of(&delivery, "delivery")?);
    Ok(data(w.delivery(&subject, id, delivery).await?).into_response())
}

async fn redeliver(
    State(w): State<Webhooks>,
    Caller(subject): Caller,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<Response, EventsError> {
    let (id, delivery) = (id_of(&id, "webhook")?, id_of(&delivery, "delivery")?);
    Ok(data(w.redeliver(&subject, id, delivery).await?).into_response())
}

/// The flow routes over `f` (see the [module](self) table).
pub fn flows<S>(f: Flows) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/flows", get(list_flows).post(create_flow))
        .route(
            "/api/flows/{id}",
            get(get_flow).patch(update_flow).delete(delete_flow),
        )
        .route("/api/flows/{id}/run", post(run_flow))
        .route("/api/flows/{id}/hook", post(hook_flow))
        .route("/api/flows/{id}/runs", get(flow_runs))
        .with_state(f)
}

async fn list_flows(
    State(f): State<Flows>,
    Caller(subject): Caller,
) -> Result<Response, EventsError> {
    Ok(data(f.list(&subject).await?).into_response())
}

async fn create_flow(
    State(f): State<Flows>,
    Caller(subject): Caller,
    Body(input): Body<FlowInput>,
) -> Result<Response, EventsError> {
    let made = f.create(&subject, input).await?;
    let body = serde_json::json!({
        "data": made.flow, "secret": made.secret, "hookToken": made.hook_token,
    });
    Ok((
        StatusCode::CREATED,
        [("cache-control", "no-store")],
        Json(body),
    )
        .into_response())
}

async fn get_flow(
    State(f): State<Flows>,
    Caller(subject): Caller,
    Path(id): Path<String>,
) -> Result<Response, EventsError> {
    let id = id_of(&id, "flow")?;
    Ok(data(f.get(&subject, id).await?).into_response())
}

async fn update_flow(
    State(f): State<Flows>,
    Caller(subject): Caller,
    Path(id): Path<String>,
    Body(input): Body<FlowInput>,
) -> Result<Response, EventsError> {
    let id = id_of(&id, "flow")?;
    Ok(data(f.update(&subject, id, input).await?).into_response())
}

async fn delete_flow(
    State(f): State<Flows>,
    Caller(subject): Caller,
    Path(id): Path<String>,
) -> Result<Response, EventsError> {
    let id = id_of(&id, "flow")?;
    f.delete(&subject, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A request body as trigger data: JSON when it parses, else the text, `null` when empty.
fn body_data(bytes: &[u8]) -> serde_json::Value {
    if bytes.is_empty() {
        return serde_json::Value::Null;
    }
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

async fn run_flow(
    State(f): State<Flows>,
    Caller(subject): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<Response, EventsError> {
    // A browser sends a form or text body to another site without asking first (no CORS
    // preflight); JSON it does not. Requiring JSON keeps a page on a sibling subdomain, which
    // carries the session cookie, from starting a flow.
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(EventsError::BadRequest(
            "send the trigger data as JSON with `content-type: application/json` (`null` for \
             none)"
                .into(),
        ));
    }
    let id = id_of(&id, "flow")?;
    Ok(data(f.run_manual(&subject, id, body_data(&bytes)).await?).into_response())
}

#[derive(Debug, Deserialize)]
struct HookQuery {
    token: Option<String>,
}

async fn hook_flow(
    State(f): State<Flows>,
    Path(id): Path<String>,
    Query(q): Query<HookQuery>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<Response, EventsError> {
    let id = id_of(&id, "flow")?;
    // The header keeps the token out of access logs; the query serves senders that cannot set
    // headers.
    let token = headers
        .get("x-workeros-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(q.token)
        .unwrap_or_default();
    Ok(data(f.run_hook(id, &token, body_data(&bytes)).await?).into_response())
}

#[derive(Debug, Deserialize)]
struct RunsQuery {
    limit: Option<u64>,
}

async fn flow_runs(
    State(f): State<Flows>,
    Caller(subject): Caller,
    Path(id): Path<String>,
    Query(q): Query<RunsQuery>,
) -> Result<Response, EventsError> {
    let id = id_of(&id, "flow")?;
    Ok(data(f.runs(&subject, id, q.limit.unwrap_or(50)).await?).into_response())
}
