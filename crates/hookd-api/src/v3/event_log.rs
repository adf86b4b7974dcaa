//! Extensions the customer portal reads, on routes of their own: the event log (the
//! history with how each event's deliveries stand, filtered by time and delivery
//! state), one event, an endpoint's health over the last day (one, or a page of them in
//! short), and an example payload per catalog type. HeyGen's routes and bodies are untouched.

use axum::Json;
use axum::extract::{Path, State};
use hookd_core::{DeliveryState, EventId};
use hookd_store::{DeliveryCounts, EndpointHealth, EventLogEntry, EventLogQuery, EventQuery};
use serde::Serialize;
use utoipa::ToSchema;

use crate::envelope::{Data, List, iso8601};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::query::list_envelope;
use crate::extract::{Customer, PageParams, QueryParams};
use crate::openapi::{ResourceId, WebhookEventType};
use crate::v3::endpoints::parse_endpoint_id;
use crate::v3::events::history_filter;
use crate::{ApiState, now_millis};

/// How an event's deliveries stand.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryCountsResponse {
    pending: u32,
    delivered: u32,
    failed: u32,
    cancelled: u32,
}

/// One line of the event log.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventLogItem {
    #[schema(value_type = ResourceId)]
    event_id: String,
    #[schema(value_type = WebhookEventType)]
    event_type: String,
    entity_id: Option<String>,
    /// Unix seconds.
    created_at: i64,
    deliveries: DeliveryCountsResponse,
}

/// One event, whole.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventDetail {
    #[schema(value_type = ResourceId)]
    event_id: String,
    #[schema(value_type = WebhookEventType)]
    event_type: String,
    entity_id: Option<String>,
    callback_id: Option<String>,
    #[schema(value_type = Object)]
    event_data: Box<serde_json::value::RawValue>,
    /// ISO 8601 UTC, as in the event history.
    created_at: String,
}

/// Attempts that started within one hour.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthHourResponse {
    /// Unix seconds: the start of the hour.
    start: i64,
    succeeded: u32,
    failed: u32,
}

/// An endpoint's attempts over the last 24 hours.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointHealthResponse {
    /// Succeeded attempts over all attempts of the last 24 hours; null without attempts.
    success_rate: Option<f64>,
    /// The 24 hours, oldest first, the current one last.
    hours: Vec<HealthHourResponse>,
    /// Unix seconds, or null.
    last_success_at: Option<i64>,
    last_failure_at: Option<i64>,
    /// When the current run of failures began (unix seconds); null after a success.
    failing_since: Option<i64>,
}

/// One endpoint's attempts over the last 24 hours, in short.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointOutcomes {
    #[schema(value_type = ResourceId)]
    endpoint_id: String,
    succeeded: u32,
    failed: u32,
    /// Succeeded over all.
    success_rate: f64,
}

/// An example of a catalog type's `event_data`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeExample {
    #[schema(value_type = WebhookEventType)]
    event_type: String,
    /// `history`: the account's newest event of the type; `sample`: what hookd's own
    /// video events carry; `none`: no event yet, and hookd does not emit the type itself.
    #[schema(pattern = "^(history|sample|none)$")]
    source: &'static str,
    #[schema(value_type = Option<Object>)]
    event_data: Option<serde_json::Value>,
}

#[utoipa::path(
    get, path = "/v3/webhooks/event-log", tag = "Webhooks", operation_id = "listEventLog",
    params(
        ("event_type" = Option<WebhookEventType>, Query, description = "Only events of this catalog type"),
        ("entity_id" = Option<String>, Query, description = "Only events with this entity_id", max_length = 255),
        ("since" = Option<i64>, Query, description = "Only events created at or after (unix seconds)", minimum = 0),
        ("until" = Option<i64>, Query, description = "Only events created at or before (unix seconds)", minimum = 0),
        ("status" = Option<String>, Query, description = "pending, failed or cancelled: a delivery in that state; delivered: every delivery delivered or cancelled, at least one delivered", pattern = "^(pending|delivered|failed|cancelled)$"),
        ("limit" = Option<u32>, Query, description = "Items per page, 1-100 (default 10)", minimum = 1, maximum = 100),
        ("token" = Option<String>, Query, description = "Opaque cursor from a previous next_token"),
    ),
    responses(
        (status = 200, description = "A page of the account's events, newest first, with their deliveries' states", body = List<EventLogItem>),
        (status = 400, description = "Invalid request parameters", body = ErrorEnvelope),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 429, description = "Too many requests for this account; Retry-After says when to retry", body = ErrorEnvelope),
    ),
    security(("ApiKeyAuth" = []), ("BearerAuth" = []))
)]
pub async fn event_log(
    State(state): State<ApiState>,
    Customer(account_id): Customer,
    query: QueryParams,
) -> Result<Json<List<EventLogItem>>, ApiError> {
    let history = history_filter(&state, &query)?;
    let since = unix_seconds(&query, "since")?;
    let until = unix_seconds(&query, "until")?;
    if let (Some(since), Some(until)) = (since, until)
        && until < since
    {
        return Err(ApiError::invalid_parameter("until", "'until' must not be before 'since'."));
    }
    let status = match query.get("status") {
        None => None,
        Some(raw) => Some(DeliveryState::parse(raw).ok_or_else(|| {
            ApiError::invalid_parameter(
                "status",
                "'status' must be one of pending, delivered, failed, cancelled.",
            )
        })?),
    };
    let filter = EventLogQuery {
        history,
        since: since.map(|s| s.saturating_mul(1000)),
        until: until.map(|u| u.saturating_mul(1000).saturating_add(999)),
        status,
    };
    let scope = log_scope(&account_id, &filter);
    let page = PageParams::from_query(&query)?.page_request(&state.cursor_key, &scope)?;
    let entries = state.store.event_log(&account_id, &filter, page).await?;
    Ok(Json(list_envelope(entries, &state.cursor_key, &scope, log_item)))
}

#[utoipa::path(
    get, path = "/v3/webhooks/events/{event_id}", tag = "Webhooks", operation_id = "getWebhookEvent",
    params(("event_id" = ResourceId, Path, description = "The event's id (Heygen-Event-Id)")),
    responses(
        (status = 200, description = "The event", body = Data<EventDetail>),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 404, description = "No such event", body = ErrorEnvelope),
        (status = 429, description = "Too many requests for this account; Retry-After says when to retry", body = ErrorEnvelope),
    ),
    security(("ApiKeyAuth" = []), ("BearerAuth" = []))
)]
pub async fn get_event(
    State(state): State<ApiState>,
    Customer(account_id): Customer,
    Path(event_id): Path<String>,
) -> Result<Json<Data<EventDetail>>, ApiError> {
    let event_id = EventId::parse(&event_id).map_err(|_| ApiError::NotFound)?;
    let event = state.store.get_event(&account_id, &event_id).await?;
    let event_data =
        serde_json::value::RawValue::from_string(event.event_data).map_err(ApiError::internal)?;
    Ok(Json(Data {
        data: EventDetail {
            event_id: event.event_id.to_string(),
            event_type: event.event_type,
            entity_id: event.entity_id,
            callback_id: event.callback_id,
            event_data,
            created_at: iso8601(event.created_at),
        },
    }))
}

#[utoipa::path(
    get, path = "/v3/webhooks/endpoints/{endpoint_id}/health", tag = "Webhooks",
    operation_id = "getWebhookEndpointHealth",
    params(("endpoint_id" = ResourceId, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint's attempts over the last 24 hours", body = Data<EndpointHealthResponse>),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint", body = ErrorEnvelope),
        (status = 429, description = "Too many requests for this account; Retry-After says when to retry", body = ErrorEnvelope),
    ),
    security(("ApiKeyAuth" = []), ("BearerAuth" = []))
)]
pub async fn endpoint_health(
    State(state): State<ApiState>,
    Customer(account_id): Customer,
    Path(endpoint_id): Path<String>,
) -> Result<Json<Data<EndpointHealthResponse>>, ApiError> {
    let endpoint_id = parse_endpoint_id(&endpoint_id)?;
    let health = state.store.endpoint_health(&account_id, &endpoint_id, now_millis()).await?;
    Ok(Json(Data { data: health_response(health) }))
}

#[utoipa::path(
    get, path = "/v3/webhooks/endpoint-health", tag = "Webhooks", operation_id = "listWebhookEndpointHealth",
    params(
        ("endpoint_ids" = String, Query, description = "Comma-separated endpoint ids, 1 to 100", pattern = "^[0-9a-f]{32}(,[0-9a-f]{32}){0,99}$"),
    ),
    responses(
        (status = 200, description = "Each listed endpoint of the account with attempts in the last 24 hours; the others are left out", body = Data<Vec<EndpointOutcomes>>),
        (status = 400, description = "Invalid request parameters", body = ErrorEnvelope),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 429, description = "Too many requests for this account; Retry-After says when to retry", body = ErrorEnvelope),
    ),
    security(("ApiKeyAuth" = []), ("BearerAuth" = []))
)]
pub async fn endpoints_health(
    State(state): State<ApiState>,
    Customer(account_id): Customer,
    query: QueryParams,
) -> Result<Json<Data<Vec<EndpointOutcomes>>>, ApiError> {
    let refused = || {
        ApiError::invalid_parameter(
            "endpoint_ids",
            "'endpoint_ids' must be 1 to 100 comma-separated endpoint ids.",
        )
    };
    let raw = query.get("endpoint_ids").ok_or_else(refused)?;
    let ids = raw
        .split(',')
        .map(|id| hookd_core::EndpointId::parse(id).map_err(|_| refused()))
        .collect::<Result<Vec<_>, _>>()?;
    if ids.is_empty() || ids.len() > 100 {
        return Err(refused());
    }
    let counted = state.store.recent_outcomes(&account_id, &ids, now_millis()).await?;
    let data = counted
        .into_iter()
        .map(|(id, succeeded, failed)| EndpointOutcomes {
            endpoint_id: id.to_string(),
            succeeded,
            failed,
            success_rate: success_rate(succeeded.into(), failed.into()).unwrap_or(0.0),
        })
        .collect();
    Ok(Json(Data { data }))
}

#[utoipa::path(
    get, path = "/v3/webhooks/event-types/{event_type}/example", tag = "Webhooks",
    operation_id = "getWebhookEventTypeExample",
    params(("event_type" = WebhookEventType, Path, description = "A catalog type")),
    responses(
        (status = 200, description = "An example of the type's event_data", body = Data<EventTypeExample>),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 404, description = "No such event type", body = ErrorEnvelope),
        (status = 429, description = "Too many requests for this account; Retry-After says when to retry", body = ErrorEnvelope),
    ),
    security(("ApiKeyAuth" = []), ("BearerAuth" = []))
)]
pub async fn event_type_example(
    State(state): State<ApiState>,
    Customer(account_id): Customer,
    Path(event_type): Path<String>,
) -> Result<Json<Data<EventTypeExample>>, ApiError> {
    if !state.publication.catalog.contains(&event_type) {
        return Err(ApiError::NotFound);
    }
    let newest = hookd_store::PageRequest { before: None, limit: 1 };
    let filter = EventQuery { event_type: Some(event_type.clone()), entity_id: None };
    let page = state.store.list_events(&account_id, &filter, newest).await?;
    let (source, event_data) = match page.items.into_iter().next() {
        Some(event) => {
            ("history", Some(serde_json::from_str(&event.event_data).map_err(ApiError::internal)?))
        }
        None => match crate::admin::videos::example_event_data(&event_type) {
            Some(sample) => ("sample", Some(sample)),
            None => ("none", None),
        },
    };
    Ok(Json(Data { data: EventTypeExample { event_type, source, event_data } }))
}

/// A time filter in unix seconds, if given.
fn unix_seconds(query: &QueryParams, name: &str) -> Result<Option<i64>, ApiError> {
    query
        .get(name)
        .map(|raw| {
            raw.parse::<i64>()
                .ok()
                .filter(|seconds| (0..=253_402_300_799).contains(seconds))
                .ok_or_else(|| ApiError::invalid_parameter(name, format!("'{name}' must be unix seconds.")))
        })
        .transpose()
}

/// A token continues only the walk it came from: the same account and filters.
fn log_scope(account_id: &hookd_core::AccountId, filter: &EventLogQuery) -> String {
    let time = |t: Option<i64>| t.map(|t| t.to_string()).unwrap_or_default();
    format!(
        "event-log|{account_id}|{}|{}|{}|{}|{}",
        filter.history.event_type.as_deref().unwrap_or("*"),
        filter.status.map(DeliveryState::as_str).unwrap_or("*"),
        time(filter.since),
        time(filter.until),
        // Last, as it may hold '|'.
        filter.history.entity_id.as_deref().unwrap_or("")
    )
}

fn log_item(entry: EventLogEntry) -> EventLogItem {
    let DeliveryCounts { pending, delivered, failed, cancelled } = entry.deliveries;
    EventLogItem {
        event_id: entry.event.event_id.to_string(),
        event_type: entry.event.event_type,
        entity_id: entry.event.entity_id,
        created_at: entry.event.created_at.div_euclid(1000),
        deliveries: DeliveryCountsResponse { pending, delivered, failed, cancelled },
    }
}

/// Succeeded over all attempts; none without attempts.
#[allow(clippy::cast_precision_loss)]
fn success_rate(succeeded: u64, failed: u64) -> Option<f64> {
    let total = succeeded + failed;
    (total > 0).then(|| succeeded as f64 / total as f64)
}

fn health_response(health: EndpointHealth) -> EndpointHealthResponse {
    let (succeeded, failed) = health
        .hours
        .iter()
        .fold((0u64, 0u64), |(ok, bad), h| (ok + u64::from(h.succeeded), bad + u64::from(h.failed)));
    let seconds = |t: Option<i64>| t.map(|t| t.div_euclid(1000));
    EndpointHealthResponse {
        success_rate: success_rate(succeeded, failed),
        hours: health
            .hours
            .iter()
            .map(|h| HealthHourResponse {
                start: h.start.div_euclid(1000),
                succeeded: h.succeeded,
                failed: h.failed,
            })
            .collect(),
        last_success_at: seconds(health.last_success_at),
        last_failure_at: seconds(health.last_failure_at),
        failing_since: seconds(health.failing_since),
    }
}
