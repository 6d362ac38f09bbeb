//! A webhook receiver on a real socket (`127.0.0.1`, a free port): it records every request and
//! answers what the test tells it to.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// One request the sink received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The path (with the query).
    pub path: String,
    /// Headers, names lowercase.
    pub headers: HashMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// What the sink answers: a status and optional `location`.
pub type Responder = Arc<dyn Fn(&Received, usize) -> (u16, Option<String>) + Send + Sync>;

#[derive(Clone)]
struct State {
    got: Arc<Mutex<Vec<Received>>>,
    responder: Arc<Mutex<Responder>>,
    notify: Arc<Notify>,
    /// Requests whose path starts with this wait for [`Sink::release`] before answering.
    hold: Arc<Mutex<Option<String>>>,
    released: Arc<tokio::sync::watch::Sender<bool>>,
}

/// A running sink; stops when dropped.
pub struct Sink {
    /// Where it listens.
    pub addr: SocketAddr,
    state: State,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(
    axum::extract::State(st): axum::extract::State<State>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = Received {
        path: uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned()),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    let r_path = r.path.clone();
    let (status, location) = {
        let mut got = st.got.lock().unwrap();
        let n = got.iter().filter(|g| g.path == r.path).count();
        let responder = st.responder.lock().unwrap().clone();
        let answer = responder(&r, n);
        got.push(r);
        answer
    };
    st.notify.notify_waiters();
    let held = (st.hold.lock().unwrap().as_deref()).is_some_and(|p| r_path.starts_with(p));
    if held {
        let mut rx = st.released.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    match location {
        Some(l) => (status, [("location", l)]).into_response(),
        None => status.into_response(),
    }
}

impl Sink {
    /// Starts a sink answering `200` to everything.
    pub async fn start() -> Sink {
        let state = State {
            got: Arc::new(Mutex::new(Vec::new())),
            responder: Arc::new(Mutex::new(Arc::new(|_: &Received, _: usize| (200, None)))),
            notify: Arc::new(Notify::new()),
            hold: Arc::new(Mutex::new(None)),
            released: Arc::new(tokio::sync::watch::Sender::new(false)),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(receive).with_state(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Sink { addr, state, task }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers with `f(request, earlier requests to the same path)` from now on.
    pub fn respond(
        &self,
        f: impl Fn(&Received, usize) -> (u16, Option<String>) + Send + Sync + 'static,
    ) {
        *self.state.responder.lock().unwrap() = Arc::new(f);
    }

    /// From now on, requests whose path starts with `prefix` are recorded at once but answered
    /// only after [`Sink::release`] (a receiver that hangs).
    pub fn hold(&self, prefix: &str) {
        self.state.released.send_replace(false);
        *self.state.hold.lock().unwrap() = Some(prefix.to_owned());
    }

    /// Answers the held requests, and every later one at once.
    pub fn release(&self) {
        *self.state.hold.lock().unwrap() = None;
        self.state.released.send_replace(true);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.got.lock().unwrap().clone()
    }

    /// Forgets what it received.
    pub fn clear(&self) {
        self.state.got.lock().unwrap().clear();
    }

    /// Waits until `pred` holds of what was received, or `within` passes (then returns what
    /// there is).
    pub async fn wait(
        &self,
        within: Duration,
        pred: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.state.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let got = self.state.got.lock().unwrap();
                if pred(&got) {
                    return got.clone();
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return self.received();
            }
            let step = deadline.min(tokio::time::Instant::now() + Duration::from_millis(100));
            let _ = tokio::time::timeout_at(step, notified).await;
        }
    }
}
