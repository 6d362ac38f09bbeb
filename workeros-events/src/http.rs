//! The realtime route, to mount in the host's axum app.
//!
//! | route | who | what |
//! |---|---|---|
//! | `GET /api/realtime?collection=&filter=&events=&ticket=` | anyone the collection's read permissions admit | a Server-Sent Events stream |
//!
//! The subject is the request's [`Subject`] extension (set by the host's auth layer), or the
//! subject of `ticket` (from `POST /api/realtime/ticket` of `workeros-auth`) for browser
//! `EventSource`s, which cannot send headers. `Last-Event-ID` (header, or `lastEventId` in the
//! query) resumes after that event.

use crate::EventsError;
use crate::realtime::{Realtime, Subscribe};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use std::convert::Infallible;
use std::sync::Arc;
use workeros_core::Subject;

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
    ext: Option<Extension<Subject>>,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> Result<Response, EventsError> {
    let subject = match &q.ticket {
        Some(t) => st
            .tickets
            .as_ref()
            .and_then(|check| check(t))
            .ok_or(EventsError::Unauthorized)?,
        None => workeros_store::http::subject(ext),
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
    };
    let sub = st.rt.subscribe(&subject, req).await?;
    let frames = futures::stream::unfold(sub, |mut sub| async move {
        let f = sub.next().await?;
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
