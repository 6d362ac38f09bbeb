//! The axum routers (feature `axum`, on by default): thin handlers over [`Store`]'s methods.
//!
//! The [`Subject`] comes from a request extension that the host's auth layer sets (workeros-auth's
//! `AuthLayer`, or [`IdentifyLayer`] over the host's own [`Identify`] resolver), read by the
//! [`Caller`] extractor (every crate's routes take it); a request without one is anonymous.
//!
//! [`router`] serves every store route; [`items_router`], [`collections_router`],
//! [`permissions_router`] and [`activity_router`] serve one concern each, for a host that mounts
//! only what it wants. Every router works nested under a prefix.
//! Errors are `{"error":{"code":…,"message":…,"field":…,"at":…,"help":…}}` (`field`, `at` and
//! `help` when known) with the status of their [`ErrorCode`](workeros_core::ErrorCode).
//!
//! ```
//! use axum::Router;
//! # async fn demo() -> Result<(), workeros_store::StoreError> {
//! let db = workeros_store::Db::connect("sqlite::memory:").await?;
//! workeros_store::migrate(&db).await?;
//! let store = workeros_store::Store::new(db);
//! let app: Router = Router::new().merge(workeros_store::http::router(store));
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

mod identify;

pub use identify::{BoxFuture, Identifier, Identify, IdentifyLayer, IdentifyService};

use crate::{
    ActivityQuery, CollectionPatch, ListQuery, NewItems, PermissionInput, Store, StoreError,
    Written,
};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use workeros_core::Subject;

impl IntoResponse for StoreError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code().http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.body())).into_response()
    }
}

/// Who is asking: the [`Subject`] the host's auth layer put in the request's extensions, or
/// the anonymous subject when there is none. Every workeros route takes it, and a host's own
/// handlers can too:
///
/// ```
/// use workeros_store::http::Caller;
///
/// async fn whoami(Caller(who): Caller) -> String {
///     who.user.map_or_else(|| "anonymous".to_owned(), |u| u.id)
/// }
/// let app: axum::Router = axum::Router::new().route("/whoami", axum::routing::get(whoami));
/// # let _ = app;
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Caller(pub Subject);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Caller(
            parts
                .extensions
                .get::<Subject>()
                .cloned()
                .unwrap_or_default(),
        ))
    }
}

/// A JSON body, with a client error in the shared error body (not axum's plain-text rejection)
/// when it does not parse: 400 for a body that is not JSON, 422 for JSON of the wrong shape.
#[derive(Debug, Clone)]
pub struct Body<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for Body<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = StoreError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, StoreError> {
        use axum::extract::rejection::JsonRejection;
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            // Well-formed JSON with a bad value (an invalid slug, an unknown field type): 422.
            Err(JsonRejection::JsonDataError(e)) => Err(StoreError::validation(
                format!("the request body is not valid: {}", e.body_text()),
                None,
            )),
            Err(e) => Err(StoreError::BadRequest(format!(
                "the request body could not be read: {}",
                e.body_text()
            ))),
        }
    }
}

/// Every store route: [`items_router`], [`collections_router`], [`permissions_router`] and
/// [`activity_router`] merged. Nest or merge it into the host's router; every route works under a
/// prefix (`Router::new().nest("/cms", router(store))` serves `/cms/api/items/…`).
pub fn router<S: Clone + Send + Sync + 'static>(store: Store) -> Router<S> {
    Router::new()
        .merge(items_router(store.clone()))
        .merge(collections_router(store.clone()))
        .merge(permissions_router(store.clone()))
        .merge(activity_router(store))
}

/// The items API alone: `GET, POST /api/items/{slug}` and `GET, PATCH, DELETE
/// /api/items/{slug}/{id}`, for a host that manages collections itself (or only through code).
pub fn items_router<S: Clone + Send + Sync + 'static>(store: Store) -> Router<S> {
    Router::new()
        .route("/api/items/{slug}", get(list_items).post(create_items))
        .route(
            "/api/items/{slug}/{id}",
            get(get_item).patch(update_item).delete(delete_item),
        )
        .with_state(store)
}

/// Collections admin: `GET, POST /api/collections`, `GET, PATCH, DELETE
/// /api/collections/{slug}`, `DELETE /api/collections/{slug}/fields/{field}` and `POST
/// /api/collections/{slug}/restore`.
pub fn collections_router<S: Clone + Send + Sync + 'static>(store: Store) -> Router<S> {
    Router::new()
        .route(
            "/api/collections",
            post(create_collection).get(list_collections),
        )
        .route(
            "/api/collections/{slug}",
            get(get_collection)
                .patch(apply_collection)
                .delete(delete_collection),
        )
        .route("/api/collections/{slug}/fields/{field}", delete(drop_field))
        .route("/api/collections/{slug}/restore", post(restore_collection))
        .with_state(store)
}

/// Permissions admin: `GET, POST /api/permissions` and `GET, PATCH, DELETE
/// /api/permissions/{id}`.
pub fn permissions_router<S: Clone + Send + Sync + 'static>(store: Store) -> Router<S> {
    Router::new()
        .route(
            "/api/permissions",
            post(create_permission).get(list_permissions),
        )
        .route(
            "/api/permissions/{id}",
            get(get_permission)
                .patch(update_permission)
                .delete(delete_permission),
        )
        .with_state(store)
}

/// The audit trail: `GET /api/activity` and `GET /api/revisions`.
pub fn activity_router<S: Clone + Send + Sync + 'static>(store: Store) -> Router<S> {
    Router::new()
        .route("/api/activity", get(activity))
        .route("/api/revisions", get(revisions))
        .with_state(store)
}

#[derive(Debug, Deserialize)]
struct ArchivedQuery {
    #[serde(default)]
    include_archived: Option<String>,
}

impl ArchivedQuery {
    fn on(&self) -> bool {
        matches!(self.include_archived.as_deref(), Some("true" | "1"))
    }
}

async fn create_collection(
    State(store): State<Store>,
    Caller(subject): Caller,
    Body(body): Body<serde_json::Value>,
) -> Result<Response, StoreError> {
    let info = store.create_collection_json(&subject, body).await?;
    Ok((StatusCode::CREATED, Json(json!({ "data": info }))).into_response())
}

async fn list_collections(
    State(store): State<Store>,
    Caller(subject): Caller,
    Query(q): Query<ArchivedQuery>,
) -> Result<Response, StoreError> {
    let list = store.list_collections(&subject, q.on()).await?;
    Ok(Json(json!({ "data": list })).into_response())
}

async fn get_collection(
    State(store): State<Store>,
    Caller(subject): Caller,
    Path(slug): Path<String>,
    Query(q): Query<ArchivedQuery>,
) -> Result<Response, StoreError> {
    let info = store.get_collection(&subject, &slug, q.on()).await?;
    Ok(Json(json!({ "data": info })).into_response())
}

async fn apply_collection(
    State(store): State<Store>,
    Caller(subject): Caller,
    Path(slug): Path<String>,
    Body(body): Body<CollectionPatch>,
) -> Result<Response, StoreError> {
    let info = store.apply_collection(&subject, &slug, body).await?;
    Ok(Json(json!({ "data": info })).into_response())
}

async fn delete_collection(
    State(store): State<Store>,
    Caller(subject): Caller,
    Path(slug): Path<String>,
) -> Result<Response, StoreError> {
    Ok(match store.delete_collection(&subject, &slug).await? {
        crate::Deleted::Dropped => StatusCode::NO_CONTENT.into_response(),
        crate::Deleted::Archived => Json(json!({ "ok": true, "archived": true })).into_response(),
        crate::Deleted::Purged => Json(json!({ "ok": true, "purged": true })).into_response(),
    })
}

async fn drop_field(
    State(store): State<Store>,
    Caller(subject): Caller,
    Path((slug, field)): Path<(String, String)>,
) -> Result<Response, StoreError> {
    let info = store.drop_field(&subject, &slug, &field).await?;
    Ok(Json(json!({ "data": info })).into_response())
}

async fn restore_collection(
    State(store): State<Store>,
    Caller(subject): Caller,
    Path(slug): Path<String>,
) -> Result<Response, StoreError> {
    let info = store.restore_collection(&subject, &slug).await?;
    Ok(Json(json!({ "data": info })).into_response())
}

#[derive(Debug, Deserialize)]
struct PermissionQuery {
    #[serde(default)]
    collection: Option<String>,
}

async fn create_permission(
    State(store): State<Store>,
    Caller(subject): Caller,
    Body(body): Body<PermissionInput>,
) -> Result<Response, StoreError> {
    let p = store.create_permission(&subject, body).await?;
    Ok((StatusCode::CREATED, Json(json!({ "data": p }))).into_response())
}

async fn list_permissions(
    State(store): State<Store>,
    Caller(subject): Caller,
    Query(q): Query<PermissionQuery>,
) -> Result<Response, StoreError> {
    let list = store
        .list_permissions(&subject, q.collection.as_deref())
        .await?;
    Ok(Json(json!({ "data": list })).into_response())
}

async fn get_permission(
    State(store): State<Store>,
    Caller(subject): Caller,
    Path(id): Path<String>,
) -> Result<Response, StoreError> {
    let p = store.permission(&subject, &id).await?;
    Ok(Json(json!({ "data": p })).into_response())
}

async fn update_permission(
    State(store): State<Store>,
    Caller(subject): Caller,
    Path(id): Path<String>,
    Body(body): Body<PermissionInput>,
) -> Result<Response, StoreError> {
    let p = store.update_permission(&subject, &id, body).await?;
    Ok(Json(json!({ "data": p })).into_response())
}

async fn delete_permission(
    State(store): State<Store>,
    Caller(subject): Caller,
    Path(id): Path<String>,
) -> Result<Response, StoreError> {
    store.delete_permission(&subject, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The raw pairs of a query string; one that does not decode is a client error with the error
/// shape.
fn query_pairs(
    q: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Vec<(String, String)>, StoreError> {
    q.map(|Query(p)| p).map_err(|e| {
        StoreError::BadRequest(format!("the query string is not valid: {}", e.body_text()))
    })
}

async fn list_items(
    State(store): State<Store>,
    Caller(subject): Caller,
    Path(slug): Path<String>,
    pairs: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, StoreError> {
    let q = ListQuery::from_pairs(&query_pairs(pairs)?)?;
    let page = store.list_items(&subject, &slug, &q).await?;
    let body = match page.count {
        Some(n) => json!({ "data": page.data, "meta": { "count": n } }),
        None => json!({ "data": page.data }),
    };
    Ok(Json(body).into_response())
}

async fn get_item(
    State(store): State<Store>,
    Caller(subject): Caller,
    Path((slug, id)): Path<(String, String)>,
    pairs: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, StoreError> {
    let q = ListQuery::from_pairs(&query_pairs(pairs)?)?;
    let item = store.get_item(&subject, &slug, &id, q.fields).await?;
    Ok(Json(json!({ "data": item })).into_response())
}

async fn create_items(
    State(store): State<Store>,
    Caller(subject): Caller,
    Path(slug): Path<String>,
    Body(body): Body<serde_json::Value>,
) -> Result<Response, StoreError> {
    let written = store
        .create_items(&subject, &slug, NewItems::from_json(body)?)
        .await?;
    let data = match written {
        Written::One(m) => serde_json::Value::Object(m),
        Written::Many(v) => json!(v),
    };
    Ok((StatusCode::CREATED, Json(json!({ "data": data }))).into_response())
}

async fn update_item(
    State(store): State<Store>,
    Caller(subject): Caller,
    Path((slug, id)): Path<(String, String)>,
    Body(body): Body<serde_json::Map<String, serde_json::Value>>,
) -> Result<Response, StoreError> {
    let item = store.update_item(&subject, &slug, &id, body).await?;
    Ok(Json(json!({ "data": item })).into_response())
}

async fn delete_item(
    State(store): State<Store>,
    Caller(subject): Caller,
    Path((slug, id)): Path<(String, String)>,
) -> Result<Response, StoreError> {
    store.delete_item(&subject, &slug, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn activity(
    State(store): State<Store>,
    Caller(subject): Caller,
    q: Result<Query<ActivityQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, StoreError> {
    let Query(q) = q.map_err(|e| StoreError::BadRequest(e.body_text()))?;
    let (list, count) = store.activity(&subject, &q).await?;
    let body = match count {
        Some(n) => json!({ "data": list, "meta": { "count": n } }),
        None => json!({ "data": list }),
    };
    Ok(Json(body).into_response())
}

#[derive(Debug, Deserialize)]
struct RevisionQuery {
    collection: String,
    item: String,
}

async fn revisions(
    State(store): State<Store>,
    Caller(subject): Caller,
    q: Result<Query<RevisionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, StoreError> {
    let Query(q) = q.map_err(|_| {
        StoreError::BadRequest("give `collection` and `item` to read an item's revisions".into())
    })?;
    let list = store.revisions(&subject, &q.collection, &q.item).await?;
    Ok(Json(json!({ "data": list })).into_response())
}
