//! The operator's operational endpoints (`/admin/v1/operational-endpoints`): where
//! hookd reports on its customers' endpoints (`endpoint.disabled`, `endpoint.enabled`,
//! `delivery.exhausted`, `endpoint.recovered`). They are endpoints of the reserved
//! operations account, so they are signed, delivered and retried like any other, and
//! answered in the customer endpoint's shape.

use axum::Json;
use axum::extract::{Path, State};
use hookd_core::{
    EndpointId, EndpointSecret, EndpointStatus, EventCatalog, EventFilter, OperationalEventType,
    operations_account,
};
use hookd_store::Endpoint;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::envelope::{Data, Deleted, List};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::query::list_envelope;
use crate::extract::{JsonBody, PageParams, QueryParams, RequestBody};
use crate::openapi::{ResourceId, WebhookUrl};
use crate::v3::endpoints::{EndpointResponse, parse_endpoint_id, parse_url};
use crate::{ApiState, now_millis};

/// Body of `POST /admin/v1/operational-endpoints`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOperationalEndpointRequest {
    /// Where hookd sends its operational events; the same rules as a customer's URL.
    #[schema(value_type = WebhookUrl)]
    url: String,
    /// Operational event types to receive; omit or null for all.
    #[serde(default)]
    #[schema(value_type = Option<Vec<OperationalEventName>>, min_items = 1)]
    events: Option<Vec<String>>,
}

impl RequestBody for CreateOperationalEndpointRequest {
    const FIELDS: &'static [&'static str] = &["url", "events"];
    const REQUIRED: &'static [&'static str] = &["url"];
}

/// An operational event type.
#[derive(ToSchema)]
#[schema(as = OperationalEventName)]
#[allow(dead_code)] // a schema only
pub enum OperationalEventName {
    #[schema(rename = "endpoint.disabled")]
    EndpointDisabled,
    #[schema(rename = "endpoint.enabled")]
    EndpointEnabled,
    #[schema(rename = "delivery.exhausted")]
    DeliveryExhausted,
    #[schema(rename = "endpoint.recovered")]
    EndpointRecovered,
}

const _: () = assert!(OperationalEventType::ALL.len() == 4, "OperationalEventName lists every type");

#[utoipa::path(
    post, path = "/admin/v1/operational-endpoints", tag = "Admin", operation_id = "createOperationalEndpoint",
    request_body = CreateOperationalEndpointRequest,
    responses(
        (status = 200, description = "The new operational endpoint, with its secret (shown once)", body = Data<EndpointResponse>),
        (status = 400, description = "Invalid request parameters", body = ErrorEnvelope),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
    ),
    security(("AdminToken" = []))
)]
pub async fn create_operational_endpoint(
    State(state): State<ApiState>,
    JsonBody(request): JsonBody<CreateOperationalEndpointRequest>,
) -> Result<Json<Data<EndpointResponse>>, ApiError> {
    let events = EventFilter::parse(request.events, &EventCatalog::operational())
        .map_err(|error| ApiError::invalid_parameter("events", format!("{error}.")))?;
    let endpoint = Endpoint {
        endpoint_id: EndpointId::new_random(),
        account_id: operations_account(),
        url: parse_url(&state, &request.url)?,
        events,
        entity_id: None,
        status: EndpointStatus::Enabled,
        created_at: now_millis(),
    };
    let secret = EndpointSecret::generate();
    state.store.create_endpoint(&endpoint, &secret).await?;
    tracing::info!(endpoint_id = %endpoint.endpoint_id, "operational endpoint created");
    Ok(Json(Data { data: EndpointResponse::new(endpoint, Some(&secret)) }))
}

#[utoipa::path(
    get, path = "/admin/v1/operational-endpoints", tag = "Admin", operation_id = "listOperationalEndpoints",
    params(
        ("limit" = Option<u32>, Query, description = "Items per page, 1-100 (default 10)", minimum = 1, maximum = 100),
        ("token" = Option<String>, Query, description = "Opaque cursor from a previous next_token"),
    ),
    responses(
        (status = 200, description = "A page of operational endpoints, newest first", body = List<EndpointResponse>),
        (status = 400, description = "Invalid request parameters", body = ErrorEnvelope),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
    ),
    security(("AdminToken" = []))
)]
pub async fn list_operational_endpoints(
    State(state): State<ApiState>,
    query: QueryParams,
) -> Result<Json<List<EndpointResponse>>, ApiError> {
    let scope = "operational-endpoints";
    let page = PageParams::from_query(&query)?.page_request(&state.cursor_key, scope)?;
    let endpoints = state.store.list_endpoints(&operations_account(), page).await?;
    Ok(Json(list_envelope(endpoints, &state.cursor_key, scope, |e| EndpointResponse::new(e, None))))
}

#[utoipa::path(
    delete, path = "/admin/v1/operational-endpoints/{endpoint_id}", tag = "Admin",
    operation_id = "deleteOperationalEndpoint",
    params(("endpoint_id" = ResourceId, Path, description = "The operational endpoint's id")),
    responses(
        (status = 200, description = "Deleted; nothing more is sent to it", body = Deleted),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 404, description = "No such operational endpoint", body = ErrorEnvelope),
    ),
    security(("AdminToken" = []))
)]
pub async fn delete_operational_endpoint(
    State(state): State<ApiState>,
    Path(endpoint_id): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    let endpoint_id = parse_endpoint_id(&endpoint_id)?;
    state.store.delete_endpoint(&operations_account(), &endpoint_id, now_millis()).await?;
    tracing::info!(%endpoint_id, "operational endpoint deleted");
    Ok(Json(Deleted::new()))
}
