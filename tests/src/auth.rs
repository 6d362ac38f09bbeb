//! workeros-auth in tests: the store's and auth's routers behind the real [`AuthLayer`], a
//! mailbox that keeps what would have been emailed, and a client with a cookie jar.

use crate::stores::TestDb;
use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;
use workeros_auth::http::AuthLayer;
use workeros_auth::{Auth, AuthConfig};
use workeros_core::{CoreError, Email, EmailSender};

/// A signup of `email` with a valid password and no organization.
pub fn signup(email: &str) -> workeros_auth::Signup {
    workeros_auth::Signup {
        email: email.into(),
        password: "correct horse battery".into(),
        name: None,
        organization_name: None,
    }
}

/// Keeps every email instead of sending it.
#[derive(Debug, Default)]
pub struct Mailbox {
    sent: Mutex<Vec<Email>>,
}

#[async_trait]
impl EmailSender for Mailbox {
    async fn send(&self, email: &Email) -> Result<(), CoreError> {
        self.sent.lock().unwrap().push(email.clone());
        Ok(())
    }
}

impl Mailbox {
    /// Every email sent so far.
    pub fn all(&self) -> Vec<Email> {
        self.sent.lock().unwrap().clone()
    }

    /// How many emails went to `to`.
    pub fn count(&self, to: &str) -> usize {
        let sent = self.sent.lock().unwrap();
        sent.iter()
            .filter(|e| e.to.eq_ignore_ascii_case(to))
            .count()
    }

    /// The token of the next email to `to` after the first `since` (emails sent in the
    /// background, such as password resets, arrive after the reply): waits up to 5 s.
    pub async fn next_token(&self, to: &str, since: usize) -> String {
        for _ in 0..500 {
            if self.count(to) > since {
                return self.last_token(to);
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("no new email to {to}");
    }

    /// The token of the last link sent to `to`.
    pub fn last_token(&self, to: &str) -> String {
        let sent = self.sent.lock().unwrap();
        let email = sent
            .iter()
            .rev()
            .find(|e| e.to.eq_ignore_ascii_case(to))
            .unwrap_or_else(|| panic!("no email to {to}"));
        let start = email.text.find("token=").expect("a link with a token") + "token=".len();
        email.text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect()
    }
}

/// An app with the store's and auth's routes behind the auth layer.
pub struct AuthApp {
    /// The router.
    pub app: Router,
    /// The auth service (for direct calls).
    pub auth: Auth,
    /// What was emailed.
    pub mail: Arc<Mailbox>,
}

/// Migrates `t` (store and auth) and builds the app with `config`.
pub async fn auth_app(t: &TestDb, config: AuthConfig) -> AuthApp {
    workeros_store::migrate(&t.db).await.expect("migrate store");
    workeros_auth::migrate(&t.db).await.expect("migrate auth");
    let mail = Arc::new(Mailbox::default());
    let auth = Auth::with_email_sender(t.db.clone(), config, mail.clone()).expect("auth");
    let store = workeros_store::Store::with_cache_ttl(t.db.clone(), std::time::Duration::ZERO);
    let app = crate::mount::mount(
        Router::new()
            .merge(workeros_store::http::router(store))
            .merge(workeros_auth::http::router(auth.clone()))
            .layer(AuthLayer::new(auth.clone())),
    );
    AuthApp { app, auth, mail }
}

/// A reply: status, headers, JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Value,
}

impl Reply {
    /// `body.data`.
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// The `Set-Cookie` headers.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }
}

/// A client: a cookie jar for the session cookie, and an optional bearer credential.
#[derive(Debug, Clone, Default)]
pub struct Client {
    /// The session cookie's value, if the jar has one.
    pub session: Option<String>,
    /// Sent as `Authorization: Bearer …` when set.
    pub bearer: Option<String>,
    /// The session cookie's name (default `__Host-workeros_session`, the name with secure cookies).
    pub cookie_name: Option<String>,
    /// The client address the request seems to come from (`ConnectInfo`).
    pub addr: Option<std::net::SocketAddr>,
}

impl Client {
    /// A client with a bearer credential and no cookie.
    pub fn bearer(key: &str) -> Self {
        Self {
            bearer: Some(key.to_owned()),
            ..Self::default()
        }
    }

    /// Sends a request and keeps the session cookie the reply sets or clears.
    pub async fn call(
        &mut self,
        app: &Router,
        method: &str,
        uri: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(crate::mount::uri(uri));
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(s) = &self.session {
            let name = self
                .cookie_name
                .as_deref()
                .unwrap_or("__Host-workeros_session");
            req = req.header(header::COOKIE, format!("other=1; {name}={s}"));
        }
        if let Some(b) = &self.bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {b}"));
        }
        let mut req = req
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap();
        if let Some(a) = self.addr {
            req.extensions_mut().insert(axum::extract::ConnectInfo(a));
        }
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        let reply = Reply {
            status,
            headers,
            body,
        };
        for c in reply.set_cookies() {
            let Some((name, rest)) = c.split_once('=') else {
                continue;
            };
            if name == "__Host-workeros_session" || name == "workeros_session" {
                let value = rest.split(';').next().unwrap_or_default();
                self.session = (!value.is_empty()).then(|| value.to_owned());
                self.cookie_name = Some(name.to_owned());
            }
        }
        reply
    }
}
