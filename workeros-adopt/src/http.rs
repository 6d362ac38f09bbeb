//! The wizard's routes: `GET /api/admin/adopt/tables`, `POST /api/admin/adopt/inspect`
//! (`{"table": "<name>"}`). Mount beside the store's router, behind the host's auth layer.

use crate::{Adopt, AdoptError};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use workeros_store::http::Body;
use workeros_store::http::Caller;

impl IntoResponse for AdoptError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code().http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.body())).into_response()
    }
}

/// The adopt routes.
pub fn router<S: Clone + Send + Sync + 'static>(adopt: Adopt) -> Router<S> {
    Router::new()
        .route("/api/admin/adopt/tables", get(tables))
        .route("/api/admin/adopt/inspect", post(inspect))
        .with_state(adopt)
}

async fn tables(
    State(adopt): State<Adopt>,
    Caller(subject): Caller,
) -> Result<Response, AdoptError> {
    let list = adopt.tables(&subject).await?;
    Ok(Json(json!({ "data": list })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InspectBody {
    table: String,
}

async fn inspect(
    State(adopt): State<Adopt>,
    Caller(subject): Caller,
    Body(body): Body<InspectBody>,
) -> Result<Response, AdoptError> {
    let report = adopt.inspect(&subject, &body.table).await?;
    Ok(Json(json!({ "data": report })).into_response())
}
