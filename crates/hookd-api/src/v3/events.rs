//! The event catalog and the account's event history (contract §3).

use axum::Json;
use axum::extract::State;
use hookd_core::EntityId;
use hookd_store::{Event, EventQuery};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ApiState;
use crate::envelope::{List, iso8601};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::query::try_list_envelope;
use crate::extract::{Customer, PageParams, QueryParams};
use crate::openapi::{ResourceId, WebhookEventType};

/// One catalog entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeItem {
    #[schema(value_type = WebhookEventType)]
    event_type: String,
    /// When this event fires.
    description: String,
}

/// One published event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventResponse {
    /// The same id a receiver sees in `Heygen-Event-Id`.
    #[schema(value_type = ResourceId)]
    event_id: String,
    #[schema(value_type = WebhookEventType)]
    event_type: String,
    #[schema(value_type = Object)]
    event_data: Box<serde_json::value::RawValue>,
    /// ISO 8601 UTC.
    created_at: String,
}

#[utoipa::path(
    get, path = "/v3/webhooks/event-types", tag = "Webhooks", operation_id = "listWebhookEventTypes",
    responses(
        (status = 200, description = "The whole catalog in one page", body = List<EventTypeItem>),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 429, description = "Too many requests for this account; Retry-After says when to retry", body = ErrorEnvelope),
    ),
    security(("ApiKeyAuth" = []), ("BearerAuth" = []))
)]
pub async fn list_event_types(
    State(state): State<ApiState>,
    _customer: Customer,
) -> Json<List<EventTypeItem>> {
    let data = state
        .publication
        .catalog
        .entries()
        .iter()
        .map(|info| EventTypeItem { event_type: info.name.clone(), description: info.description.clone() })
        .collect();
    Json(List { data, has_more: false, next_token: None })
}

#[utoipa::path(
    get, path = "/v3/webhooks/events", tag = "Webhooks", operation_id = "listWebhookEvents",
    params(
        ("event_type" = Option<WebhookEventType>, Query, description = "Only events of this catalog type"),
        ("entity_id" = Option<String>, Query, description = "Only events with this entity_id", max_length = 255),
        ("limit" = Option<u32>, Query, description = "Items per page, 1-100 (default 10)", minimum = 1, maximum = 100),
        ("token" = Option<String>, Query, description = "Opaque cursor from a previous next_token"),
    ),
    responses(
        (status = 200, description = "A page of events, newest first", body = List<EventResponse>),
        (status = 400, description = "Invalid request parameters", body = ErrorEnvelope),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 429, description = "Too many requests for this account; Retry-After says when to retry", body = ErrorEnvelope),
    ),
    security(("ApiKeyAuth" = []), ("BearerAuth" = []))
)]
pub async fn list_events(
    State(state): State<ApiState>,
    Customer(account_id): Customer,
    query: QueryParams,
) -> Result<Json<List<EventResponse>>, ApiError> {
    let filter = history_filter(&state, &query)?;
    // The token is bound to the filters too: a token from one filtered walk cannot
    // continue a differently filtered one. entity_id goes last as it may hold '|'.
    let scope = format!(
        "events|{account_id}|{}|{}",
        filter.event_type.as_deref().unwrap_or("*"),
        filter.entity_id.as_deref().unwrap_or("")
    );
    let page = PageParams::from_query(&query)?.page_request(&state.cursor_key, &scope)?;
    let events = state.store.list_events(&account_id, &filter, page).await?;
    Ok(Json(try_list_envelope(events, &state.cursor_key, &scope, EventResponse::try_from)?))
}

/// The history's filters, `event_type` (a catalog type) and `entity_id`, from a query.
pub(crate) fn history_filter(state: &ApiState, query: &QueryParams) -> Result<EventQuery, ApiError> {
    let event_type = query.get("event_type").map(str::to_owned);
    if let Some(event_type) = &event_type
        && !state.publication.catalog.contains(event_type)
    {
        return Err(ApiError::invalid_parameter("event_type", format!("Unknown event type {event_type:?}.")));
    }
    // An entity_id no event can carry is a mistake worth saying so, not an empty page.
    let entity_id = query
        .get("entity_id")
        .map(|raw| EntityId::parse(raw.to_owned()))
        .transpose()
        .map_err(|error| ApiError::invalid_parameter("entity_id", format!("{error}.")))?;
    Ok(EventQuery { event_type, entity_id: entity_id.map(EntityId::into_string) })
}

impl TryFrom<Event> for EventResponse {
    type Error = serde_json::Error;

    /// Fails only if the stored `event_data` is not JSON, which hookd never writes.
    fn try_from(event: Event) -> Result<Self, Self::Error> {
        Ok(Self {
            event_id: event.event_id.to_string(),
            event_type: event.event_type,
            event_data: serde_json::value::RawValue::from_string(event.event_data)?,
            created_at: iso8601(event.created_at),
        })
    }
}
