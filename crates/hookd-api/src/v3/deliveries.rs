//! Customer extensions (contract §7): what happened to an event's deliveries, sending
//! an event again, and a test send to one endpoint.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hookd_core::{EndpointId, EventId};
use hookd_delivery::Outgoing;
use hookd_store::{AttemptRecord, DeliveryRecord};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::envelope::{Data, iso8601};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{Customer, OptionalJsonBody, RequestBody};
use crate::openapi::{DeliveryState, ResourceId, WebhookEventType};
use crate::{ApiState, now_millis};

/// One delivery of an event: to an endpoint, or (with `endpoint_id` null) to the
/// event's callback URL.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryResponse {
    #[schema(value_type = ResourceId)]
    delivery_id: String,
    #[schema(value_type = Option<ResourceId>)]
    endpoint_id: Option<String>,
    url: String,
    #[schema(value_type = DeliveryState)]
    status: &'static str,
    attempts: Vec<AttemptResponse>,
    /// ISO 8601; null once the delivery is final.
    next_attempt_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptResponse {
    attempted_at: String,
    status_code: Option<u16>,
    duration_ms: i64,
    error: Option<String>,
    /// The first 1 KiB of the response body.
    response_body: Option<String>,
}

impl From<AttemptRecord> for AttemptResponse {
    fn from(attempt: AttemptRecord) -> Self {
        Self {
            attempted_at: iso8601(attempt.attempted_at),
            status_code: attempt.status_code,
            duration_ms: attempt.duration_ms,
            error: attempt.error,
            response_body: attempt.response_body,
        }
    }
}

impl From<DeliveryRecord> for DeliveryResponse {
    fn from(record: DeliveryRecord) -> Self {
        Self {
            delivery_id: record.delivery_id.to_string(),
            endpoint_id: record.endpoint_id.map(|id| id.to_string()),
            url: record.url,
            status: record.state.as_str(),
            attempts: record.attempts.into_iter().map(AttemptResponse::from).collect(),
            next_attempt_at: record.next_attempt_at.map(iso8601),
        }
    }
}

#[utoipa::path(
    get, path = "/v3/webhooks/events/{event_id}/deliveries", tag = "Webhooks", operation_id = "listEventDeliveries",
    params(("event_id" = ResourceId, Path, description = "The event's id")),
    responses(
        (status = 200, description = "Every delivery of the event, with its attempts", body = Data<Vec<DeliveryResponse>>),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 429, description = "Too many requests for this account; Retry-After says when to retry", body = ErrorEnvelope),
        (status = 404, description = "No such event", body = ErrorEnvelope),
    ),
    security(("ApiKeyAuth" = []), ("BearerAuth" = []))
)]
pub async fn list_deliveries(
    State(state): State<ApiState>,
    Customer(account_id): Customer,
    Path(event_id): Path<String>,
) -> Result<Json<Data<Vec<DeliveryResponse>>>, ApiError> {
    let event_id = EventId::parse(&event_id).map_err(|_| ApiError::NotFound)?;
    let records = state.store.list_deliveries(&account_id, &event_id).await?;
    Ok(Json(Data { data: records.into_iter().map(DeliveryResponse::from).collect() }))
}

/// Body of a resend; an empty body resends to every endpoint the event went to.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResendRequest {
    /// Only to this endpoint (which need not have received the event before).
    #[serde(default)]
    #[schema(value_type = Option<ResourceId>)]
    endpoint_id: Option<String>,
}

impl RequestBody for ResendRequest {
    const FIELDS: &'static [&'static str] = &["endpoint_id"];
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResendResponse {
    /// New deliveries scheduled now.
    deliveries: usize,
}

#[utoipa::path(
    post, path = "/v3/webhooks/events/{event_id}/resend", tag = "Webhooks", operation_id = "resendEvent",
    params(("event_id" = ResourceId, Path, description = "The event's id")),
    request_body(content = Option<ResendRequest>, description = "Optional"),
    responses(
        (status = 202, description = "New deliveries scheduled; same event id and body", body = Data<ResendResponse>),
        (status = 400, description = "Invalid request parameters", body = ErrorEnvelope),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 429, description = "Too many requests for this account; Retry-After says when to retry", body = ErrorEnvelope),
        (status = 404, description = "No such event or endpoint", body = ErrorEnvelope),
    ),
    security(("ApiKeyAuth" = []), ("BearerAuth" = []))
)]
pub async fn resend(
    State(state): State<ApiState>,
    Customer(account_id): Customer,
    Path(event_id): Path<String>,
    OptionalJsonBody(request): OptionalJsonBody<ResendRequest>,
) -> Result<(StatusCode, Json<Data<ResendResponse>>), ApiError> {
    let event_id = EventId::parse(&event_id).map_err(|_| ApiError::NotFound)?;
    let endpoint_id =
        request.endpoint_id.as_deref().map(EndpointId::parse).transpose().map_err(|_| ApiError::NotFound)?;
    let deliveries = state.store.resend(&account_id, &event_id, endpoint_id.as_ref(), now_millis()).await?;
    state.delivery.wake.notify_one();
    Ok((StatusCode::ACCEPTED, Json(Data { data: ResendResponse { deliveries } })))
}

/// Body of a test send.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// The sample's event type (default `avatar_video.success`).
    #[serde(default)]
    #[schema(value_type = Option<WebhookEventType>)]
    event_type: Option<String>,
}

impl RequestBody for TestRequest {
    const FIELDS: &'static [&'static str] = &["event_type"];
}

/// The outcome of a test send.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestResponse {
    /// The sample's id (not stored in the history).
    event_id: String,
    delivered: bool,
    status_code: Option<u16>,
    duration_ms: i64,
    error: Option<String>,
    response_body: Option<String>,
}

#[utoipa::path(
    post, path = "/v3/webhooks/endpoints/{endpoint_id}/test", tag = "Webhooks", operation_id = "testWebhookEndpoint",
    params(("endpoint_id" = ResourceId, Path, description = "The endpoint's id")),
    request_body(content = Option<TestRequest>, description = "Optional"),
    responses(
        (status = 200, description = "What the endpoint answered to a signed sample event", body = Data<TestResponse>),
        (status = 400, description = "Invalid request parameters", body = ErrorEnvelope),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 429, description = "Too many requests for this account; Retry-After says when to retry", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint", body = ErrorEnvelope),
    ),
    security(("ApiKeyAuth" = []), ("BearerAuth" = []))
)]
pub async fn test_endpoint(
    State(state): State<ApiState>,
    Customer(account_id): Customer,
    Path(endpoint_id): Path<String>,
    OptionalJsonBody(request): OptionalJsonBody<TestRequest>,
) -> Result<Json<Data<TestResponse>>, ApiError> {
    let endpoint_id = EndpointId::parse(&endpoint_id).map_err(|_| ApiError::NotFound)?;
    let event_type = request.event_type.unwrap_or_else(|| "avatar_video.success".to_owned());
    if !state.publication.catalog.contains(&event_type) {
        return Err(ApiError::invalid_parameter("event_type", format!("Unknown event type {event_type:?}.")));
    }
    let endpoint = state.store.get_endpoint(&account_id, &endpoint_id).await?;
    let secrets = state.store.endpoint_secret(&account_id, &endpoint_id).await?;
    let now = now_millis();
    let event_id = EventId::new_random();
    let event_data = serde_json::json!({
        "test": true,
        "message": "A test event sent by hookd to check this endpoint.",
        "endpoint_id": endpoint_id.to_string(),
    });
    let outgoing = Outgoing {
        url: endpoint.url.as_str(),
        event_id: event_id.as_str(),
        event_type: &event_type,
        event_data: &event_data.to_string(),
        secret: Some(&secrets.current),
        // Signed as a delivery sent now would be: by both secrets during an overlap.
        previous_secret: secrets
            .previous
            .as_ref()
            .filter(|(_, until)| *until > now)
            .map(|(secret, _)| secret),
        traceparent: None,
    };
    let report = state.delivery.client.send(outgoing, now / 1000).await;
    Ok(Json(Data {
        data: TestResponse {
            event_id: event_id.to_string(),
            delivered: report.delivered(),
            status_code: report.status,
            duration_ms: i64::try_from(report.duration.as_millis()).unwrap_or(i64::MAX),
            error: report.error,
            response_body: report.response_body,
        },
    }))
}
