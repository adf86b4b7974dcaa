//! `/v3/webhooks/endpoints`: create, list, update, delete, rotate secret (contract §2).

use axum::Json;
use axum::extract::{Path, State};
use hookd_core::{
    EndpointId, EndpointSecret, EndpointStatus, EndpointUrl, EntityId, EventFilter, EventFilterError,
};
use hookd_store::{Endpoint, EndpointPatch};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::envelope::{Data, Deleted, List, iso8601};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::query::list_envelope;
use crate::extract::{
    Customer, JsonBody, OptionalJsonBody, PageParams, QueryParams, RequestBody, double_option,
    optional_json_integer,
};
use crate::openapi::{EndpointState, ResourceId, WebhookEventType, WebhookUrl};
use crate::{ApiState, now_millis};

/// Body of `POST /v3/webhooks/endpoints`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpointRequest {
    /// Publicly accessible HTTPS URL that will receive webhook POST requests.
    #[schema(value_type = WebhookUrl)]
    url: String,
    /// Event types to subscribe to; omit or null for all, including types added later.
    #[serde(default)]
    #[schema(value_type = Option<Vec<WebhookEventType>>, min_items = 1)]
    events: Option<Vec<String>>,
    /// Deliver only events whose `entity_id` equals this (at most 255 characters).
    #[serde(default)]
    #[schema(max_length = 255)]
    entity_id: Option<String>,
}

impl RequestBody for CreateEndpointRequest {
    const FIELDS: &'static [&'static str] = &["url", "events", "entity_id"];
    const REQUIRED: &'static [&'static str] = &["url"];
}

/// Body of `PATCH /v3/webhooks/endpoints/{endpoint_id}`; a missing field is left as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpointRequest {
    /// New URL; same rules as on create.
    #[serde(default)]
    #[schema(value_type = Option<WebhookUrl>)]
    url: Option<String>,
    /// Replaces the list whole; null means all event types.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Vec<WebhookEventType>>, min_items = 1)]
    events: Option<Option<Vec<String>>>,
    /// Extension: `enabled` or `disabled` (pause, or re-enable an endpoint hookd disabled).
    #[serde(default)]
    #[schema(value_type = Option<EndpointState>)]
    status: Option<String>,
}

impl RequestBody for UpdateEndpointRequest {
    const FIELDS: &'static [&'static str] = &["url", "events", "status"];
}

/// A registered webhook endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointResponse {
    #[schema(value_type = ResourceId)]
    endpoint_id: String,
    url: String,
    /// Event types this endpoint receives; null means all.
    events: Option<Vec<String>>,
    #[schema(value_type = EndpointState)]
    status: &'static str,
    /// Extension: the entity this endpoint is scoped to.
    entity_id: Option<String>,
    /// ISO 8601 UTC.
    created_at: String,
    /// The signing secret; only on create, null everywhere else.
    secret: Option<String>,
}

impl EndpointResponse {
    /// `secret` only in the answers to create (rotate has its own shape).
    pub(crate) fn new(endpoint: Endpoint, secret: Option<&EndpointSecret>) -> Self {
        Self {
            endpoint_id: endpoint.endpoint_id.to_string(),
            url: endpoint.url.as_str().to_owned(),
            events: endpoint.events.as_list().map(<[String]>::to_vec),
            status: endpoint.status.as_str(),
            entity_id: endpoint.entity_id.map(EntityId::into_string),
            created_at: iso8601(endpoint.created_at),
            secret: secret.map(|secret| secret.expose().to_owned()),
        }
    }
}

/// Extension: the optional body of a rotation. Without it (HeyGen's rotation), the old
/// secret stops at once.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretRequest {
    /// Seconds (1 to 604,800) the old secret keeps signing beside the new one:
    /// `webhook-signature` carries both, `Heygen-Signature` the new one's.
    #[serde(default, deserialize_with = "optional_json_integer")]
    #[schema(minimum = 1, maximum = 604_800)]
    grace_period_seconds: Option<i64>,
}

impl RequestBody for RotateSecretRequest {
    const FIELDS: &'static [&'static str] = &["grace_period_seconds"];
}

/// The longest overlap a rotation may ask for: a week.
const MAX_GRACE_PERIOD_SECONDS: i64 = 604_800;

/// The result of rotating an endpoint's secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotateSecretResponse {
    #[schema(value_type = ResourceId)]
    endpoint_id: String,
    /// The new secret; the old one stops signing at once.
    secret: String,
}

#[utoipa::path(
    post, path = "/v3/webhooks/endpoints", tag = "Webhooks", operation_id = "createWebhookEndpoint",
    request_body = CreateEndpointRequest,
    responses(
        (status = 200, description = "The new endpoint, with its secret", body = Data<EndpointResponse>),
        (status = 400, description = "Invalid request parameters", body = ErrorEnvelope),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 429, description = "Too many requests for this account; Retry-After says when to retry", body = ErrorEnvelope),
    ),
    security(("ApiKeyAuth" = []), ("BearerAuth" = []))
)]
pub async fn create_endpoint(
    State(state): State<ApiState>,
    Customer(account_id): Customer,
    JsonBody(request): JsonBody<CreateEndpointRequest>,
) -> Result<Json<Data<EndpointResponse>>, ApiError> {
    let endpoint = Endpoint {
        endpoint_id: EndpointId::new_random(),
        account_id,
        url: parse_url(&state, &request.url)?,
        events: parse_events(&state, request.events)?,
        entity_id: request
            .entity_id
            .map(EntityId::parse)
            .transpose()
            .map_err(|error| ApiError::invalid_parameter("entity_id", format!("{error}.")))?,
        status: EndpointStatus::Enabled,
        created_at: now_millis(),
    };
    let secret = EndpointSecret::generate();
    state.store.create_endpoint(&endpoint, &secret).await?;
    Ok(Json(Data { data: EndpointResponse::new(endpoint, Some(&secret)) }))
}

#[utoipa::path(
    get, path = "/v3/webhooks/endpoints", tag = "Webhooks", operation_id = "listWebhookEndpoints",
    params(
        ("limit" = Option<u32>, Query, description = "Items per page, 1-100 (default 10)", minimum = 1, maximum = 100),
        ("token" = Option<String>, Query, description = "Opaque cursor from a previous next_token"),
    ),
    responses(
        (status = 200, description = "A page of endpoints, newest first", body = List<EndpointResponse>),
        (status = 400, description = "Invalid request parameters", body = ErrorEnvelope),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 429, description = "Too many requests for this account; Retry-After says when to retry", body = ErrorEnvelope),
    ),
    security(("ApiKeyAuth" = []), ("BearerAuth" = []))
)]
pub async fn list_endpoints(
    State(state): State<ApiState>,
    Customer(account_id): Customer,
    query: QueryParams,
) -> Result<Json<List<EndpointResponse>>, ApiError> {
    let scope = format!("endpoints|{account_id}");
    let page = PageParams::from_query(&query)?.page_request(&state.cursor_key, &scope)?;
    let endpoints = state.store.list_endpoints(&account_id, page).await?;
    Ok(Json(list_envelope(endpoints, &state.cursor_key, &scope, |e| EndpointResponse::new(e, None))))
}

#[utoipa::path(
    patch, path = "/v3/webhooks/endpoints/{endpoint_id}", tag = "Webhooks", operation_id = "updateWebhookEndpoint",
    params(("endpoint_id" = ResourceId, Path, description = "The endpoint's id")),
    request_body = UpdateEndpointRequest,
    responses(
        (status = 200, description = "The updated endpoint; secret is null", body = Data<EndpointResponse>),
        (status = 400, description = "Invalid request parameters", body = ErrorEnvelope),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 429, description = "Too many requests for this account; Retry-After says when to retry", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint", body = ErrorEnvelope),
    ),
    security(("ApiKeyAuth" = []), ("BearerAuth" = []))
)]
pub async fn update_endpoint(
    State(state): State<ApiState>,
    Customer(account_id): Customer,
    Path(endpoint_id): Path<String>,
    JsonBody(request): JsonBody<UpdateEndpointRequest>,
) -> Result<Json<Data<EndpointResponse>>, ApiError> {
    let endpoint_id = parse_endpoint_id(&endpoint_id)?;
    if request.url.is_none() && request.events.is_none() && request.status.is_none() {
        // HeyGen's answer, to the letter (its document's example has no param); the
        // `status` extension alone is a change too.
        return Err(ApiError::InvalidParameter {
            param: None,
            message: "At least one of 'url' or 'events' must be provided.".into(),
        });
    }
    let patch = EndpointPatch {
        url: request.url.map(|url| parse_url(&state, &url)).transpose()?,
        events: request.events.map(|events| parse_events(&state, events)).transpose()?,
        status: request.status.map(|status| parse_status(&status)).transpose()?,
    };
    let endpoint = state.store.update_endpoint(&account_id, &endpoint_id, &patch, now_millis()).await?;
    Ok(Json(Data { data: EndpointResponse::new(endpoint, None) }))
}

#[utoipa::path(
    delete, path = "/v3/webhooks/endpoints/{endpoint_id}", tag = "Webhooks", operation_id = "deleteWebhookEndpoint",
    params(("endpoint_id" = ResourceId, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "Deleted; nothing more is sent to it", body = Deleted),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 429, description = "Too many requests for this account; Retry-After says when to retry", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint", body = ErrorEnvelope),
    ),
    security(("ApiKeyAuth" = []), ("BearerAuth" = []))
)]
pub async fn delete_endpoint(
    State(state): State<ApiState>,
    Customer(account_id): Customer,
    Path(endpoint_id): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    let endpoint_id = parse_endpoint_id(&endpoint_id)?;
    state.store.delete_endpoint(&account_id, &endpoint_id, now_millis()).await?;
    Ok(Json(Deleted::new()))
}

#[utoipa::path(
    post, path = "/v3/webhooks/endpoints/{endpoint_id}/rotate-secret", tag = "Webhooks",
    operation_id = "rotateWebhookSecret",
    params(("endpoint_id" = ResourceId, Path, description = "The endpoint's id")),
    request_body(content = Option<RotateSecretRequest>, description = "Optional (extension): an overlap during which the old secret still signs"),
    responses(
        (status = 200, description = "The new secret", body = Data<RotateSecretResponse>),
        (status = 400, description = "Invalid request parameters", body = ErrorEnvelope),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 429, description = "Too many requests for this account; Retry-After says when to retry", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint", body = ErrorEnvelope),
    ),
    security(("ApiKeyAuth" = []), ("BearerAuth" = []))
)]
pub async fn rotate_secret(
    State(state): State<ApiState>,
    Customer(account_id): Customer,
    Path(endpoint_id): Path<String>,
    OptionalJsonBody(request): OptionalJsonBody<RotateSecretRequest>,
) -> Result<Json<Data<RotateSecretResponse>>, ApiError> {
    let endpoint_id = parse_endpoint_id(&endpoint_id)?;
    let grace = match request.grace_period_seconds {
        Some(seconds @ 1..=MAX_GRACE_PERIOD_SECONDS) => Some(seconds * 1000),
        Some(_) => {
            return Err(ApiError::invalid_parameter(
                "grace_period_seconds",
                "'grace_period_seconds' must be between 1 and 604800.",
            ));
        }
        None => None,
    };
    let now = now_millis();
    let secret = EndpointSecret::generate();
    let overlap_until = grace.map(|grace| now + grace);
    state.store.rotate_endpoint_secret(&account_id, &endpoint_id, &secret, overlap_until, now).await?;
    let data =
        RotateSecretResponse { endpoint_id: endpoint_id.to_string(), secret: secret.expose().to_owned() };
    Ok(Json(Data { data }))
}

/// A malformed id cannot name anything, so it is answered like an unknown one.
pub(crate) fn parse_endpoint_id(raw: &str) -> Result<EndpointId, ApiError> {
    EndpointId::parse(raw).map_err(|_| ApiError::NotFound)
}

pub(crate) fn parse_url(state: &ApiState, raw: &str) -> Result<EndpointUrl, ApiError> {
    EndpointUrl::parse(raw, &state.publication.url_rules)
        .map_err(|error| ApiError::invalid_parameter("url", format!("'url' {error}.")))
}

fn parse_events(state: &ApiState, events: Option<Vec<String>>) -> Result<EventFilter, ApiError> {
    EventFilter::parse(events, &state.publication.catalog)
        .map_err(|error: EventFilterError| ApiError::invalid_parameter("events", format!("{error}.")))
}

fn parse_status(raw: &str) -> Result<EndpointStatus, ApiError> {
    EndpointStatus::parse(raw)
        .ok_or_else(|| ApiError::invalid_parameter("status", "'status' must be 'enabled' or 'disabled'."))
}
