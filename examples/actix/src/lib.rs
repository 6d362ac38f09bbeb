//! workeros in an actix-web host, through the plain async API (no axum): the host reads the
//! request's credentials with [`Auth::authenticate_headers`], its list query with
//! [`ListQuery::parse`], calls the [`Store`] and the [`Realtime`] hub, and answers with
//! workeros's error body and status. [`configure`] mounts the items, collections, permissions
//! and realtime routes (`GET /api/realtime` as Server-Sent Events) under whatever scope the host gives them.
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! # async fn run(state: example_actix::Workeros) -> std::io::Result<()> {
//! HttpServer::new(move || {
//!     App::new().service(web::scope("/cms").configure(example_actix::configure(state.clone())))
//! })
//! .bind("127.0.0.1:8080")?
//! .run()
//! .await
//! # }
//! ```

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, COOKIE};
use actix_web::web::{self, Bytes, Data, Json, Path, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde_json::{Value, json};
use std::sync::Arc;
use workeros_auth::{Auth, AuthConfig};
use workeros_core::{ErrorBody, ErrorCode, Subject};
use workeros_events::{Realtime, RealtimeConfig, Subscribe, Workers};
use workeros_store::{Db, ListQuery, NewItems, OutboxConfig, Store, Written};

/// What the routes use: the store, identity and the realtime hub, wired by hand through the
/// plain API (the `workeros` crate's builder does the same for axum hosts).
#[derive(Debug, Clone)]
pub struct Workeros {
    /// Collections, permissions and items.
    pub store: Store,
    /// Sessions, API keys and the bootstrap token.
    pub auth: Auth,
    /// The realtime hub, a sink of the store.
    pub realtime: Realtime,
}

impl Workeros {
    /// Migrates the store's, auth's and the events' schemas in `db` and makes the parts, with
    /// the realtime hub as a sink of the store.
    pub async fn new(db: Db, auth: AuthConfig) -> Result<Self, ApiError> {
        workeros_store::migrate(&db).await?;
        workeros_auth::migrate(&db).await?;
        workeros_events::migrate(&db).await?;
        let store = Store::new(db.clone());
        let realtime = Realtime::new(store.clone(), RealtimeConfig::default());
        store.add_sink(Arc::new(realtime.clone()));
        Ok(Self {
            auth: Auth::new(db, auth)?,
            store,
            realtime,
        })
    }

    /// Starts the background work: outbox pruning and, on PostgreSQL, following the events and
    /// credential changes of other instances. Stop with [`Workeros::shutdown`].
    pub async fn start(&self) -> Result<Vec<Workers>, ApiError> {
        Ok(vec![
            self.store.start(OutboxConfig::default()),
            self.auth.start().await?,
            self.realtime.start().await?,
        ])
    }

    /// Ends every realtime stream (so the server's graceful shutdown is not held by them), then
    /// stops `workers`.
    pub async fn shutdown(&self, workers: Vec<Workers>) {
        self.realtime.close();
        for w in workers {
            w.shutdown().await;
        }
    }
}

/// A workeros error as actix answers it: the shared status and body.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    body: ErrorBody,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.body.error.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(&self.body)
    }
}

impl From<workeros_store::StoreError> for ApiError {
    fn from(e: workeros_store::StoreError) -> Self {
        Self {
            code: e.code(),
            body: e.body(),
        }
    }
}

impl From<workeros_auth::AuthError> for ApiError {
    fn from(e: workeros_auth::AuthError) -> Self {
        Self {
            code: e.code(),
            body: e.body(),
        }
    }
}

impl From<workeros_events::EventsError> for ApiError {
    fn from(e: workeros_events::EventsError) -> Self {
        Self {
            code: e.code(),
            body: e.body(),
        }
    }
}

/// The routes, for `App::configure` or `Scope::configure`.
pub fn configure(state: Workeros) -> impl FnOnce(&mut ServiceConfig) {
    move |cfg| {
        cfg.app_data(Data::new(state))
            .route("/api/collections", web::get().to(list_collections))
            .route("/api/collections", web::post().to(create_collection))
            .route("/api/permissions", web::post().to(create_permission))
            .route("/api/items/{slug}", web::get().to(list_items))
            .route("/api/items/{slug}", web::post().to(create_items))
            .route("/api/items/{slug}/{id}", web::get().to(get_item))
            .route("/api/items/{slug}/{id}", web::patch().to(update_item))
            .route("/api/items/{slug}/{id}", web::delete().to(delete_item))
            .route("/api/realtime", web::get().to(realtime));
    }
}

/// The request's subject: a workeros session cookie or bearer credential, anonymous without
/// one; a credential presented but invalid is 401.
async fn subject(wk: &Workeros, req: &HttpRequest) -> Result<Subject, ApiError> {
    let cookies = req
        .headers()
        .get_all(COOKIE)
        .filter_map(|v| v.to_str().ok());
    let authorization = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let subject = wk.auth.authenticate_headers(cookies, authorization).await?;
    if subject.is_none() && authorization.is_some() {
        // A bearer workeros does not recognise (this host has no identity of its own).
        return Err(workeros_auth::AuthError::Unauthorized.into());
    }
    Ok(subject.unwrap_or_default())
}

/// `?include_archived=true` on the collections list.
#[derive(Debug, serde::Deserialize)]
struct ArchivedQuery {
    include_archived: Option<bool>,
}

async fn list_collections(
    wk: Data<Workeros>,
    req: HttpRequest,
    q: web::Query<ArchivedQuery>,
) -> Result<HttpResponse, ApiError> {
    let subject = subject(&wk, &req).await?;
    let archived = q.include_archived.unwrap_or(false);
    let list = wk.store.list_collections(&subject, archived).await?;
    Ok(HttpResponse::Ok().json(json!({ "data": list })))
}

async fn create_collection(
    wk: Data<Workeros>,
    req: HttpRequest,
    body: Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let subject = subject(&wk, &req).await?;
    let info = wk
        .store
        .create_collection_json(&subject, body.into_inner())
        .await?;
    Ok(HttpResponse::Created().json(json!({ "data": info })))
}

async fn create_permission(
    wk: Data<Workeros>,
    req: HttpRequest,
    body: Json<workeros_store::PermissionInput>,
) -> Result<HttpResponse, ApiError> {
    let subject = subject(&wk, &req).await?;
    let p = wk
        .store
        .create_permission(&subject, body.into_inner())
        .await?;
    Ok(HttpResponse::Created().json(json!({ "data": p })))
}

async fn list_items(
    wk: Data<Workeros>,
    req: HttpRequest,
    slug: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let subject = subject(&wk, &req).await?;
    let q = ListQuery::parse(req.query_string())?;
    let page = wk.store.list_items(&subject, &slug, &q).await?;
    Ok(HttpResponse::Ok().json(match page.count {
        Some(n) => json!({ "data": page.data, "meta": { "count": n } }),
        None => json!({ "data": page.data }),
    }))
}

async fn get_item(
    wk: Data<Workeros>,
    req: HttpRequest,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let subject = subject(&wk, &req).await?;
    let (slug, id) = path.into_inner();
    let q = ListQuery::parse(req.query_string())?;
    let item = wk.store.get_item(&subject, &slug, &id, q.fields).await?;
    Ok(HttpResponse::Ok().json(json!({ "data": item })))
}

async fn create_items(
    wk: Data<Workeros>,
    req: HttpRequest,
    slug: Path<String>,
    body: Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let subject = subject(&wk, &req).await?;
    let items = NewItems::from_json(body.into_inner())?;
    let data = match wk.store.create_items(&subject, &slug, items).await? {
        Written::One(m) => Value::Object(m),
        Written::Many(v) => json!(v),
    };
    Ok(HttpResponse::Created().json(json!({ "data": data })))
}

async fn update_item(
    wk: Data<Workeros>,
    req: HttpRequest,
    path: Path<(String, String)>,
    body: Json<serde_json::Map<String, Value>>,
) -> Result<HttpResponse, ApiError> {
    let subject = subject(&wk, &req).await?;
    let (slug, id) = path.into_inner();
    let item = wk
        .store
        .update_item(&subject, &slug, &id, body.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "data": item })))
}

async fn delete_item(
    wk: Data<Workeros>,
    req: HttpRequest,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let subject = subject(&wk, &req).await?;
    let (slug, id) = path.into_inner();
    wk.store.delete_item(&subject, &slug, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The realtime query: `collection`, `filter` (the DSL, text or JSON), `events`
/// (`create,update,…`).
#[derive(Debug, serde::Deserialize)]
struct RealtimeQuery {
    collection: Option<String>,
    filter: Option<String>,
    events: Option<String>,
}

/// `GET /api/realtime`: the subscription as Server-Sent Events, until the hub closes or the
/// subscription is cut off (a slow reader).
async fn realtime(
    wk: Data<Workeros>,
    req: HttpRequest,
    q: web::Query<RealtimeQuery>,
) -> Result<HttpResponse, ApiError> {
    let subject = subject(&wk, &req).await?;
    let q = q.into_inner();
    let sub = wk
        .realtime
        .subscribe(
            &subject,
            Subscribe {
                collection: q.collection.filter(|c| !c.is_empty()),
                filter: q.filter.filter(|f| !f.trim().is_empty()).map(Value::String),
                events: q
                    .events
                    .map(|e| e.split(',').map(|s| s.trim().to_owned()).collect()),
                last_event_id: req
                    .headers()
                    .get("last-event-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                // The per-address cap counts the peer's address.
                client: req.peer_addr().map(|a| a.ip()),
            },
        )
        .await?;
    let frames = futures::stream::unfold(sub, |mut sub| async move {
        let f = sub.next().await?;
        Some((Ok::<_, actix_web::Error>(Bytes::from(sse(&f))), sub))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-store"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(frames))
}

/// One frame in the Server-Sent Events wire form (each line of the data on its own `data:`).
fn sse(f: &workeros_events::Frame) -> String {
    let mut out = String::with_capacity(f.data.len() + 32);
    if let Some(id) = &f.id {
        out.push_str("id: ");
        out.push_str(id);
        out.push('\n');
    }
    out.push_str("event: ");
    out.push_str(&f.event);
    out.push('\n');
    for line in f.data.lines() {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}
