//! Extension: an endpoint's delivery settings (`GET`/`PUT
//! /v3/webhooks/endpoints/{endpoint_id}/settings`) and the head of its queue (`GET
//! .../head`, `POST .../skip-head`). FIFO ordering and rate limits are enforced where
//! deliveries are claimed (`hookd-store`), so they hold across instances.

use axum::Json;
use axum::extract::{Path, State};
use hookd_core::{DeliveryOrdering, DeliverySettings, RateLimit};
use hookd_store::QueueHead;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::envelope::Data;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{Customer, JsonBody, RequestBody, optional_json_integer};
use crate::openapi::ResourceId;
use crate::v3::endpoints::parse_endpoint_id;
use crate::{ApiState, now_millis};

/// The order deliveries to the endpoint start in.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Ordering {
    /// As they come due, several at once (the default).
    None,
    /// In publish order, one at a time: the next starts once the previous is
    /// delivered, failed for good or skipped.
    Fifo,
}

/// An endpoint's delivery settings. A `PUT` replaces both.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    ordering: Ordering,
    /// At most this many attempts start per second to the endpoint, over all
    /// instances (plus a burst of one twentieth of it, at least one); `null` for no
    /// limit.
    #[serde(deserialize_with = "optional_json_integer")]
    #[schema(minimum = 1, maximum = 10000, value_type = Option<i64>, required = true)]
    rate_limit_per_second: Option<i64>,
}

impl RequestBody for Settings {
    const FIELDS: &'static [&'static str] = &["ordering", "rate_limit_per_second"];
    const REQUIRED: &'static [&'static str] = &["ordering", "rate_limit_per_second"];
}

impl From<DeliverySettings> for Settings {
    fn from(settings: DeliverySettings) -> Self {
        Self {
            ordering: match settings.ordering {
                DeliveryOrdering::None => Ordering::None,
                DeliveryOrdering::Fifo => Ordering::Fifo,
            },
            rate_limit_per_second: settings.rate_limit.map(|limit| i64::from(limit.per_second())),
        }
    }
}

impl TryFrom<Settings> for DeliverySettings {
    type Error = ApiError;

    fn try_from(settings: Settings) -> Result<Self, ApiError> {
        let rate_limit = settings
            .rate_limit_per_second
            .map(RateLimit::new)
            .transpose()
            .map_err(|error| ApiError::invalid_parameter("rate_limit_per_second", format!("{error}.")))?;
        let ordering = match settings.ordering {
            Ordering::None => DeliveryOrdering::None,
            Ordering::Fifo => DeliveryOrdering::Fifo,
        };
        Ok(Self { ordering, rate_limit })
    }
}

/// The endpoint's oldest pending delivery: under `fifo`, the one the rest wait for.
#[derive(Debug, Serialize, ToSchema)]
pub struct Head {
    delivery_id: String,
    event_id: String,
    event_type: String,
    /// Attempts made so far.
    #[schema(minimum = 0)]
    attempts: u32,
    /// Unix seconds: when it is tried next (while an attempt is in flight, when that
    /// attempt's claim lapses).
    next_attempt_at: i64,
}

impl From<QueueHead> for Head {
    fn from(head: QueueHead) -> Self {
        Self {
            delivery_id: head.delivery_id.as_str().to_owned(),
            event_id: head.event_id.as_str().to_owned(),
            event_type: head.event_type,
            attempts: head.attempts,
            next_attempt_at: head.next_attempt_at.div_euclid(1000),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueHeadView {
    /// `null` when nothing is pending.
    head: Option<Head>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Skipped {
    /// The delivery marked failed; `null` when nothing was pending.
    skipped: Option<Head>,
}

#[utoipa::path(
    get, path = "/v3/webhooks/endpoints/{endpoint_id}/settings", tag = "Webhooks",
    operation_id = "getWebhookEndpointSettings",
    params(("endpoint_id" = ResourceId, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint's delivery settings", body = Data<Settings>),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint", body = ErrorEnvelope),
        (status = 429, description = "Too many requests for this account; Retry-After says when to retry", body = ErrorEnvelope),
    ),
    security(("ApiKeyAuth" = []), ("BearerAuth" = []))
)]
pub async fn get_settings(
    State(state): State<ApiState>,
    Customer(account_id): Customer,
    Path(raw_id): Path<String>,
) -> Result<Json<Data<Settings>>, ApiError> {
    let settings = state.store.delivery_settings(&account_id, &parse_endpoint_id(&raw_id)?).await?;
    Ok(Json(Data { data: settings.into() }))
}

#[utoipa::path(
    put, path = "/v3/webhooks/endpoints/{endpoint_id}/settings", tag = "Webhooks",
    operation_id = "updateWebhookEndpointSettings",
    params(("endpoint_id" = ResourceId, Path, description = "The endpoint's id")),
    request_body = Settings,
    responses(
        (status = 200, description = "The settings now in force", body = Data<Settings>),
        (status = 400, description = "Invalid request parameters", body = ErrorEnvelope),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint", body = ErrorEnvelope),
        (status = 429, description = "Too many requests for this account; Retry-After says when to retry", body = ErrorEnvelope),
    ),
    security(("ApiKeyAuth" = []), ("BearerAuth" = []))
)]
pub async fn put_settings(
    State(state): State<ApiState>,
    Customer(account_id): Customer,
    Path(raw_id): Path<String>,
    JsonBody(request): JsonBody<Settings>,
) -> Result<Json<Data<Settings>>, ApiError> {
    let endpoint_id = parse_endpoint_id(&raw_id)?;
    let settings = DeliverySettings::try_from(request)?;
    state.store.set_delivery_settings(&account_id, &endpoint_id, settings, now_millis()).await?;
    // Switching FIFO off (or a limit off) may free deliveries that were waiting.
    state.delivery.wake.notify_one();
    Ok(Json(Data { data: settings.into() }))
}

#[utoipa::path(
    get, path = "/v3/webhooks/endpoints/{endpoint_id}/head", tag = "Webhooks",
    operation_id = "getWebhookEndpointQueueHead",
    params(("endpoint_id" = ResourceId, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint's oldest pending delivery, if any", body = Data<QueueHeadView>),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint", body = ErrorEnvelope),
        (status = 429, description = "Too many requests for this account; Retry-After says when to retry", body = ErrorEnvelope),
    ),
    security(("ApiKeyAuth" = []), ("BearerAuth" = []))
)]
pub async fn get_head(
    State(state): State<ApiState>,
    Customer(account_id): Customer,
    Path(raw_id): Path<String>,
) -> Result<Json<Data<QueueHeadView>>, ApiError> {
    let head = state.store.queue_head(&account_id, &parse_endpoint_id(&raw_id)?).await?;
    Ok(Json(Data { data: QueueHeadView { head: head.map(Head::from) } }))
}

#[utoipa::path(
    post, path = "/v3/webhooks/endpoints/{endpoint_id}/skip-head", tag = "Webhooks",
    operation_id = "skipWebhookEndpointQueueHead",
    params(("endpoint_id" = ResourceId, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The oldest pending delivery, now failed, so the next may go", body = Data<Skipped>),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint", body = ErrorEnvelope),
        (status = 429, description = "Too many requests for this account; Retry-After says when to retry", body = ErrorEnvelope),
    ),
    security(("ApiKeyAuth" = []), ("BearerAuth" = []))
)]
pub async fn skip_head(
    State(state): State<ApiState>,
    Customer(account_id): Customer,
    Path(raw_id): Path<String>,
) -> Result<Json<Data<Skipped>>, ApiError> {
    let skipped =
        state.store.skip_queue_head(&account_id, &parse_endpoint_id(&raw_id)?, now_millis()).await?;
    if skipped.is_some() {
        state.delivery.wake.notify_one();
    }
    Ok(Json(Data { data: Skipped { skipped: skipped.map(Head::from) } }))
}
