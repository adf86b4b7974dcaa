//! Publishing events (contract §6): producers report what happened; hookd answers
//! 202 only after the event and one delivery per matching endpoint are committed.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use hookd_core::{AccountId, EventDraft};
use hookd_store::{Event, StoreError};
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use utoipa::ToSchema;

use crate::envelope::Data;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{JsonBody, RequestBody};
use crate::openapi::{ResourceId, WebhookEventType, WebhookUrl};
use crate::{ApiState, now_millis};

const MAX_BATCH: usize = 1000;

/// One event to publish.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishEventRequest {
    /// An existing account's id (an unknown one is 400, param `account_id`).
    #[schema(value_type = ResourceId)]
    account_id: String,
    #[schema(value_type = WebhookEventType)]
    event_type: String,
    /// A JSON object of at most 256 KiB, delivered as given.
    #[schema(value_type = Object)]
    event_data: serde_json::Value,
    /// Endpoints scoped to an entity receive only events with the same `entity_id`.
    #[serde(default)]
    #[schema(max_length = 255)]
    entity_id: Option<String>,
    /// Also deliver this event once to this URL (unsigned), as HeyGen does for callbacks.
    #[serde(default)]
    #[schema(value_type = Option<WebhookUrl>)]
    callback_url: Option<String>,
    #[serde(default)]
    #[schema(max_length = 255)]
    callback_id: Option<String>,
}

impl RequestBody for PublishEventRequest {
    const FIELDS: &'static [&'static str] =
        &["account_id", "event_type", "event_data", "entity_id", "callback_url", "callback_id"];
    const REQUIRED: &'static [&'static str] = &["account_id", "event_type", "event_data"];
}

/// Up to 1000 events, published all or nothing.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishBatchRequest {
    #[schema(min_items = 1, max_items = 1000)]
    events: Vec<PublishEventRequest>,
}

impl RequestBody for PublishBatchRequest {
    const FIELDS: &'static [&'static str] = &["events"];
    const REQUIRED: &'static [&'static str] = &["events"];
}

/// A published event and how many deliveries it scheduled.
#[derive(Debug, Serialize, ToSchema)]
pub struct Published {
    #[schema(value_type = ResourceId)]
    event_id: String,
    deliveries: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublishedBatch {
    events: Vec<Published>,
}

#[utoipa::path(
    post, path = "/admin/v1/events", tag = "Admin", operation_id = "publishEvent",
    request_body = PublishEventRequest,
    responses(
        (status = 202, description = "Stored with its deliveries", body = Data<Published>),
        (status = 400, description = "Invalid request parameters", body = ErrorEnvelope),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
    ),
    security(("AdminToken" = []))
)]
pub async fn publish_event(
    State(state): State<ApiState>,
    JsonBody(request): JsonBody<PublishEventRequest>,
) -> Result<(StatusCode, Json<Data<Published>>), ApiError> {
    let mut published = publish(&state, vec![request], "").await?;
    let data =
        published.pop().ok_or_else(|| ApiError::internal(std::io::Error::other("no event published")))?;
    Ok((StatusCode::ACCEPTED, Json(Data { data })))
}

#[utoipa::path(
    post, path = "/admin/v1/events/batch", tag = "Admin", operation_id = "publishEventBatch",
    request_body = PublishBatchRequest,
    responses(
        (status = 202, description = "All stored with their deliveries, in the order given", body = Data<PublishedBatch>),
        (status = 400, description = "Invalid request parameters; nothing was stored", body = ErrorEnvelope),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
    ),
    security(("AdminToken" = []))
)]
pub async fn publish_batch(
    State(state): State<ApiState>,
    JsonBody(request): JsonBody<PublishBatchRequest>,
) -> Result<(StatusCode, Json<Data<PublishedBatch>>), ApiError> {
    if request.events.is_empty() || request.events.len() > MAX_BATCH {
        return Err(ApiError::invalid_parameter("events", "'events' must hold 1 to 1000 events."));
    }
    let events = publish(&state, request.events, "events").await?;
    Ok((StatusCode::ACCEPTED, Json(Data { data: PublishedBatch { events } })))
}

/// Validates every event, stores them in one transaction, and wakes the dispatcher.
/// `prefix` names the list in error params (`events[3].event_type`).
async fn publish(
    state: &ApiState,
    requests: Vec<PublishEventRequest>,
    prefix: &str,
) -> Result<Vec<Published>, ApiError> {
    let now = now_millis();
    let events = requests
        .into_iter()
        .enumerate()
        .map(|(index, request)| {
            let param = |field: &str| {
                if prefix.is_empty() { field.to_owned() } else { format!("{prefix}[{index}].{field}") }
            };
            to_event(state, request, now, &param)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<String> = events.iter().map(|event| event.event_id.to_string()).collect();
    // However the database misbehaves, the producer hears within the bound: a 503 it
    // can retry on (a repeat at worst), not a hang past its own timeout.
    let limit = state.database_timeout;
    let span = tracing::info_span!(
        "publish",
        events = events.len(),
        event_id = ids.first().map_or("", String::as_str),
        deliveries = tracing::field::Empty
    );
    // The attempts of these events' deliveries are children of this span.
    let traceparent = span.in_scope(hookd_delivery::trace_context::current_traceparent);
    let mut events = events;
    for event in &mut events {
        event.traceparent.clone_from(&traceparent);
    }
    let stored = tokio::time::timeout(
        limit,
        async {
            ensure_accounts_exist(state, &events, prefix).await?;
            state.publishing.publish(events).await.map_err(|error| match error {
                StoreError::MissingReference => ApiError::invalid_parameter("account_id", "Unknown account."),
                other => other.into(),
            })
        }
        .instrument(span.clone()),
    )
    .await;
    let counts = stored.unwrap_or(Err(ApiError::Unavailable(StoreError::TimedOut(limit))))?;
    span.record("deliveries", counts.iter().sum::<usize>());
    state.store.availability().answered();
    state.delivery.wake.notify_one();
    metrics::counter!("hookd_events_published_total").increment(ids.len() as u64);
    Ok(ids.into_iter().zip(counts).map(|(event_id, deliveries)| Published { event_id, deliveries }).collect())
}

fn to_event(
    state: &ApiState,
    request: PublishEventRequest,
    now: i64,
    param: &dyn Fn(&str) -> String,
) -> Result<Event, ApiError> {
    let draft = EventDraft {
        account_id: request.account_id,
        event_type: request.event_type,
        event_data: request.event_data.to_string(),
        entity_id: request.entity_id,
        callback_url: request.callback_url,
        callback_id: request.callback_id,
    };
    let valid = state
        .publication
        .check(draft)
        .map_err(|invalid| ApiError::invalid_parameter(param(invalid.field), invalid.message))?;
    // `traceparent` is set by `publish`, inside its span.
    Ok(Event::accepted(valid, now))
}

async fn ensure_accounts_exist(state: &ApiState, events: &[Event], prefix: &str) -> Result<(), ApiError> {
    let wanted: BTreeSet<&AccountId> = events.iter().map(|event| &event.account_id).collect();
    let wanted: Vec<AccountId> = wanted.into_iter().cloned().collect();
    let missing = crate::known_accounts::ensure_exist(state, &wanted).await?;
    if let Some(index) = events.iter().position(|event| missing.contains(&event.account_id)) {
        let param =
            if prefix.is_empty() { "account_id".to_owned() } else { format!("{prefix}[{index}].account_id") };
        return Err(ApiError::invalid_parameter(param, "Unknown account."));
    }
    Ok(())
}
