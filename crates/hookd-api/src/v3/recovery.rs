//! Extension: `POST /v3/webhooks/endpoints/{endpoint_id}/recover`. After an outage the
//! customer sends again, in one call, every delivery to the endpoint that failed for
//! good in a time window (a dry run counts them first).

use axum::Json;
use axum::extract::{Path, State};
use hookd_core::RecoveryWindow;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::envelope::Data;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{Customer, JsonBody, RequestBody, json_integer, optional_json_integer};
use crate::openapi::ResourceId;
use crate::v3::endpoints::parse_endpoint_id;
use crate::{ApiState, now_millis};

/// Body of a recovery: the window, in unix seconds, that the deliveries failed in.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverRequest {
    /// Unix seconds; not in the future, and at most 30 days before `until`.
    #[serde(deserialize_with = "json_integer")]
    since: i64,
    /// Unix seconds, not before `since`; default now.
    #[serde(default, deserialize_with = "optional_json_integer")]
    until: Option<i64>,
    /// Only count what would be sent again.
    #[serde(default)]
    dry_run: Option<bool>,
}

impl RequestBody for RecoverRequest {
    const FIELDS: &'static [&'static str] = &["since", "until", "dry_run"];
    const REQUIRED: &'static [&'static str] = &["since"];
}

/// How many deliveries were put back to pending (or, in a dry run, would be).
#[derive(Debug, Serialize, ToSchema)]
pub struct Recovered {
    #[schema(minimum = 0)]
    deliveries: u64,
}

#[utoipa::path(
    post, path = "/v3/webhooks/endpoints/{endpoint_id}/recover", tag = "Webhooks",
    operation_id = "recoverWebhookEndpoint",
    params(("endpoint_id" = ResourceId, Path, description = "The endpoint's id")),
    request_body = RecoverRequest,
    responses(
        (status = 200, description = "The failed deliveries in the window, now pending again (or counted, in a dry run)", body = Data<Recovered>),
        (status = 400, description = "Invalid request parameters (a window in the future, reversed or over 30 days among them)", body = ErrorEnvelope),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint", body = ErrorEnvelope),
        (status = 429, description = "Too many requests for this account; Retry-After says when to retry", body = ErrorEnvelope),
    ),
    security(("ApiKeyAuth" = []), ("BearerAuth" = []))
)]
pub async fn recover(
    State(state): State<ApiState>,
    Customer(account_id): Customer,
    Path(endpoint_id): Path<String>,
    JsonBody(request): JsonBody<RecoverRequest>,
) -> Result<Json<Data<Recovered>>, ApiError> {
    let endpoint_id = parse_endpoint_id(&endpoint_id)?;
    let now = now_millis();
    let window = RecoveryWindow::new(request.since, request.until, now / 1000)
        .map_err(|error| ApiError::invalid_parameter(error.field(), format!("{error}.")))?;
    let dry_run = request.dry_run.unwrap_or(false);
    let deliveries = state.store.recover_failed(&account_id, &endpoint_id, window, dry_run, now).await?;
    if !dry_run && deliveries > 0 {
        state.delivery.wake.notify_one();
    }
    Ok(Json(Data { data: Recovered { deliveries } }))
}
