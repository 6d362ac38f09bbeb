//! A Server-Sent Events reader over a router response (no socket), for realtime tests.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use std::time::Duration;
use tower::ServiceExt;
use workeros_core::Subject;

/// One SSE message.
#[derive(Debug, Clone, PartialEq)]
pub struct SseFrame {
    /// `id:`
    pub id: Option<String>,
    /// `event:` (`message` when absent).
    pub event: String,
    /// `data:`, parsed as JSON.
    pub data: Value,
}

/// An open stream.
pub struct SseStream {
    body: Body,
    buf: String,
    ended: bool,
    comments: usize,
}

/// Opens `uri` as `subject` (`None`: anonymous), with a `Last-Event-ID` header when given. An
/// error response comes back as its status and JSON body.
pub async fn open(
    app: &Router,
    subject: Option<&Subject>,
    uri: &str,
    last_event_id: Option<&str>,
) -> Result<SseStream, (StatusCode, Value)> {
    let mut req = Request::builder().method("GET").uri(crate::mount::uri(uri));
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let mut req = req.body(Body::empty()).unwrap();
    if let Some(s) = subject {
        req.extensions_mut().insert(s.clone());
    }
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    if status != StatusCode::OK {
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        return Err((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ));
    }
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    Ok(SseStream {
        body: res.into_body(),
        buf: String::new(),
        ended: false,
        comments: 0,
    })
}

impl SseStream {
    /// The next message within `wait` (heartbeat comments skipped); `None` on timeout or end.
    pub async fn next(&mut self, wait: Duration) -> Option<SseFrame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..i + 2).collect();
                match parse(&block) {
                    Some(f) => return Some(f),
                    None => self.comments += 1,
                }
                continue;
            }
            if self.ended {
                return None;
            }
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Err(_) => return None,
                Ok(None) => {
                    self.ended = true;
                }
                Ok(Some(frame)) => {
                    if let Ok(data) = frame.unwrap().into_data() {
                        self.buf.push_str(std::str::from_utf8(&data).unwrap());
                    }
                }
            }
        }
    }

    /// Every message until none comes for `quiet`.
    pub async fn drain(&mut self, quiet: Duration) -> Vec<SseFrame> {
        let mut out = Vec::new();
        while let Some(f) = self.next(quiet).await {
            out.push(f);
        }
        out
    }

    /// How many comment-only messages (heartbeats) were skipped so far.
    pub fn comments(&self) -> usize {
        self.comments
    }

    /// Whether the server ended the stream (after reading what was left).
    pub fn ended(&self) -> bool {
        self.ended && !self.buf.contains("\n\n")
    }
}

fn parse(block: &str) -> Option<SseFrame> {
    let mut id = None;
    let mut event = None;
    let mut data = String::new();
    for line in block.lines() {
        if line.starts_with(':') || line.is_empty() {
            continue;
        }
        let (k, v) = line.split_once(':').unwrap_or((line, ""));
        let v = v.strip_prefix(' ').unwrap_or(v);
        match k {
            "id" => id = Some(v.to_owned()),
            "event" => event = Some(v.to_owned()),
            "data" => {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(v);
            }
            _ => {}
        }
    }
    if id.is_none() && event.is_none() && data.is_empty() {
        return None;
    }
    Some(SseFrame {
        id,
        event: event.unwrap_or_else(|| "message".into()),
        data: serde_json::from_str(&data).unwrap_or(Value::String(data)),
    })
}
