//! The axum routers (feature `axum`, on by default): thin handlers over [`Store`]'s methods.
//!
//! The [`Subject`] comes from a request extension that the host's auth layer sets; a request
//! without one is anonymous. Errors are `{"error":{"code":…,"message":…,"field":…}}` with the
//! status of their [`ErrorCode`](workeros_core::ErrorCode).
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

use crate::{CollectionPatch, NewCollection, PermissionInput, Store, StoreError};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
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

/// The subject of a request: the extension the auth layer set, or anonymous.
fn subject(ext: Option<Extension<Subject>>) -> Subject {
    ext.map(|Extension(s)| s).unwrap_or_default()
}

/// A JSON body, with a client error (not axum's plain-text rejection) when it does not parse.
struct Body<T>(T);

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

/// Every store route: `/api/collections…` and `/api/permissions…` (the items, activity and
/// revisions routes join as they are built). Nest or merge it into the host's router.
pub fn router<S: Clone + Send + Sync + 'static>(store: Store) -> Router<S> {
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
    ext: Option<Extension<Subject>>,
    Body(body): Body<NewCollection>,
) -> Result<Response, StoreError> {
    let info = store.create_collection(&subject(ext), body).await?;
    Ok((StatusCode::CREATED, Json(json!({ "data": info }))).into_response())
}

async fn list_collections(
    State(store): State<Store>,
    ext: Option<Extension<Subject>>,
    Query(q): Query<ArchivedQuery>,
) -> Result<Response, StoreError> {
    let list = store.list_collections(&subject(ext), q.on()).await?;
    Ok(Json(json!({ "data": list })).into_response())
}

async fn get_collection(
    State(store): State<Store>,
    ext: Option<Extension<Subject>>,
    Path(slug): Path<String>,
    Query(q): Query<ArchivedQuery>,
) -> Result<Response, StoreError> {
    let info = store.get_collection(&subject(ext), &slug, q.on()).await?;
    Ok(Json(json!({ "data": info })).into_response())
}

async fn apply_collection(
    State(store): State<Store>,
    ext: Option<Extension<Subject>>,
    Path(slug): Path<String>,
    Body(body): Body<CollectionPatch>,
) -> Result<Response, StoreError> {
    let info = store.apply_collection(&subject(ext), &slug, body).await?;
    Ok(Json(json!({ "data": info })).into_response())
}

async fn delete_collection(
    State(store): State<Store>,
    ext: Option<Extension<Subject>>,
    Path(slug): Path<String>,
) -> Result<Response, StoreError> {
    store.delete_collection(&subject(ext), &slug).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn drop_field(
    State(store): State<Store>,
    ext: Option<Extension<Subject>>,
    Path((slug, field)): Path<(String, String)>,
) -> Result<Response, StoreError> {
    let info = store.drop_field(&subject(ext), &slug, &field).await?;
    Ok(Json(json!({ "data": info })).into_response())
}

async fn restore_collection(
    State(store): State<Store>,
    ext: Option<Extension<Subject>>,
    Path(slug): Path<String>,
) -> Result<Response, StoreError> {
    let info = store.restore_collection(&subject(ext), &slug).await?;
    Ok(Json(json!({ "data": info })).into_response())
}

#[derive(Debug, Deserialize)]
struct PermissionQuery {
    #[serde(default)]
    collection: Option<String>,
}

async fn create_permission(
    State(store): State<Store>,
    ext: Option<Extension<Subject>>,
    Body(body): Body<PermissionInput>,
) -> Result<Response, StoreError> {
    let p = store.create_permission(&subject(ext), body).await?;
    Ok((StatusCode::CREATED, Json(json!({ "data": p }))).into_response())
}

async fn list_permissions(
    State(store): State<Store>,
    ext: Option<Extension<Subject>>,
    Query(q): Query<PermissionQuery>,
) -> Result<Response, StoreError> {
    let list = store
        .list_permissions(&subject(ext), q.collection.as_deref())
        .await?;
    Ok(Json(json!({ "data": list })).into_response())
}

async fn get_permission(
    State(store): State<Store>,
    ext: Option<Extension<Subject>>,
    Path(id): Path<String>,
) -> Result<Response, StoreError> {
    let p = store.permission(&subject(ext), &id).await?;
    Ok(Json(json!({ "data": p })).into_response())
}

async fn update_permission(
    State(store): State<Store>,
    ext: Option<Extension<Subject>>,
    Path(id): Path<String>,
    Body(body): Body<PermissionInput>,
) -> Result<Response, StoreError> {
    let p = store.update_permission(&subject(ext), &id, body).await?;
    Ok(Json(json!({ "data": p })).into_response())
}

async fn delete_permission(
    State(store): State<Store>,
    ext: Option<Extension<Subject>>,
    Path(id): Path<String>,
) -> Result<Response, StoreError> {
    store.delete_permission(&subject(ext), &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
