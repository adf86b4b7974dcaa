//! Operational routes: liveness, readiness, and the OpenAPI document.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::ApiState;
use crate::error::{ApiError, ErrorEnvelope};

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
}

#[utoipa::path(get, path = "/healthz", tag = "Operations", operation_id = "healthz",
    responses((status = 200, description = "The process is up", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[utoipa::path(get, path = "/readyz", tag = "Operations", operation_id = "readyz",
    responses(
        (status = 200, description = "The database answers", body = Health),
        (status = 503, description = "The database does not answer", body = ErrorEnvelope),
    ))]
pub async fn readyz(State(state): State<ApiState>) -> Result<Json<Health>, ApiError> {
    // Whatever the cause, a database that does not answer means "not ready".
    state.store.ping().await.map_err(ApiError::Unavailable)?;
    Ok(Json(Health { status: "ready" }))
}
