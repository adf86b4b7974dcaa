//! Result rows into records, shared by both databases: the two schemas use the same
//! column names and compatible types (TEXT, 64-bit integers, doubles), so each mapping
//! is written once. A value that no longer parses is [`StoreError::Corrupt`], never a
//! panic.

use std::collections::BTreeMap;

use hookd_core::{
    AccountId, DeliveryId, DeliveryOrdering, DeliverySettings, DeliveryState, EndpointId, EndpointSecret,
    EndpointStatus, EndpointUrl, EntityId, EventFilter, EventId, PortalSessionId, RateLimit, SecretSealer,
    VideoId, VideoStatus,
};
use sqlx::Row;

use crate::operational::{EndpointState, ExhaustedDelivery};

use crate::{
    AttemptOutcome, AttemptRecord, ClaimedDelivery, DeliveryRecord, Endpoint, EndpointSecrets, Event,
    NextStep, Page, PageRequest, PortalSession, QueueHead, StoreError, StoreResult, UnixMillis, Video,
    VideoResult,
};

/// Typed column access, the same for a SQLite and a PostgreSQL row.
pub(crate) trait RecordRow {
    fn text(&self, column: &str) -> StoreResult<String>;
    fn text_opt(&self, column: &str) -> StoreResult<Option<String>>;
    fn int(&self, column: &str) -> StoreResult<i64>;
    fn int_opt(&self, column: &str) -> StoreResult<Option<i64>>;
    fn real_opt(&self, column: &str) -> StoreResult<Option<f64>>;
    fn flag(&self, column: &str) -> StoreResult<bool>;
}

/// `$get` is the driver's fallible accessor: sqlx's `try_get`, rusqlite's `get`.
macro_rules! record_row {
    ($row:ty, $get:ident) => {
        impl RecordRow for $row {
            fn text(&self, column: &str) -> StoreResult<String> {
                Ok(self.$get(column)?)
            }
            fn text_opt(&self, column: &str) -> StoreResult<Option<String>> {
                Ok(self.$get(column)?)
            }
            fn int(&self, column: &str) -> StoreResult<i64> {
                Ok(self.$get(column)?)
            }
            fn int_opt(&self, column: &str) -> StoreResult<Option<i64>> {
                Ok(self.$get(column)?)
            }
            fn real_opt(&self, column: &str) -> StoreResult<Option<f64>> {
                Ok(self.$get(column)?)
            }
            fn flag(&self, column: &str) -> StoreResult<bool> {
                Ok(self.$get(column)?)
            }
        }
    };
}

record_row!(sqlx::sqlite::SqliteRow, try_get);
record_row!(sqlx::postgres::PgRow, try_get);
// A row of the SQLite write engine.
record_row!(rusqlite::Row<'_>, get);

/// The `LIMIT` to ask for: one more than the page, to learn whether more follow.
pub(crate) fn fetch_limit(page: PageRequest) -> i64 {
    i64::from(page.limit) + 1
}

/// Trims a `limit + 1` fetch to a page, and gives the position to continue from.
pub(crate) fn into_page<T>(mut rows: Vec<(i64, T)>, page: PageRequest) -> Page<T> {
    let has_more = rows.len() > page.limit as usize;
    rows.truncate(page.limit as usize);
    let next_before = if has_more { rows.last().map(|(seq, _)| *seq) } else { None };
    Page { items: rows.into_iter().map(|(_, item)| item).collect(), next_before }
}

/// Catalog names never contain commas, so a comma-joined list round-trips.
pub(crate) fn events_column(events: &EventFilter) -> Option<String> {
    events.as_list().map(|types| types.join(","))
}

/// A delivery's state column and due time after an attempt.
pub(crate) fn state_after(next: NextStep) -> (&'static str, Option<i64>) {
    match next {
        NextStep::Delivered => ("delivered", None),
        NextStep::RetryAt(at) => ("pending", Some(at)),
        NextStep::Failed => ("failed", None),
    }
}

/// What a batch of outcomes says about one endpoint's failure run.
#[derive(Debug, Default)]
pub(crate) struct Health {
    /// A success in the batch ended the run that was open before it.
    pub(crate) succeeded: bool,
    /// The first failure after the batch's last success: the start of the open run.
    pub(crate) first_failure: Option<i64>,
}

/// Each endpoint's [`Health`] after a batch, in endpoint-id order.
pub(crate) fn endpoint_health(outcomes: &[AttemptOutcome]) -> BTreeMap<&str, Health> {
    let mut health: BTreeMap<&str, Health> = BTreeMap::new();
    for outcome in outcomes {
        let Some(endpoint_id) = &outcome.endpoint_id else { continue };
        let entry = health.entry(endpoint_id.as_str()).or_default();
        if outcome.next == NextStep::Delivered {
            entry.succeeded = true;
            entry.first_failure = None;
        } else if entry.first_failure.is_none() {
            entry.first_failure = Some(outcome.attempt.attempted_at);
        }
    }
    health
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn endpoint_id_opt(row: &impl RecordRow) -> StoreResult<Option<EndpointId>> {
    row.text_opt("endpoint_id")?
        .as_deref()
        .map(EndpointId::parse)
        .transpose()
        .map_err(|_| corrupt("delivery endpoint"))
}

pub(crate) fn account_id(row: &impl RecordRow) -> StoreResult<AccountId> {
    AccountId::parse(&row.text("account_id")?).map_err(|_| corrupt("account id"))
}

/// An endpoint's sealed secrets, opened.
pub(crate) fn endpoint_secrets(
    sealed: &str,
    previous: Option<(String, UnixMillis)>,
    endpoint_id: &EndpointId,
    sealer: &SecretSealer,
) -> StoreResult<EndpointSecrets> {
    let open =
        |sealed: &str| sealer.open(sealed, endpoint_id.as_str()).map_err(|_| corrupt("endpoint secret"));
    let previous = match previous {
        Some((sealed, until)) => Some((open(&sealed)?, until)),
        None => None,
    };
    Ok(EndpointSecrets { current: open(sealed)?, previous })
}

pub(crate) fn endpoint(row: &impl RecordRow) -> StoreResult<(i64, Endpoint)> {
    let endpoint_id = EndpointId::parse(&row.text("endpoint_id")?).map_err(|_| corrupt("endpoint id"))?;
    let endpoint = Endpoint {
        endpoint_id,
        account_id: account_id(row)?,
        url: EndpointUrl::from_stored(row.text("url")?),
        events: match row.text_opt("events")? {
            None => EventFilter::All,
            Some(list) => EventFilter::Only(list.split(',').map(str::to_owned).collect()),
        },
        entity_id: row
            .text_opt("entity_id")?
            .map(EntityId::parse)
            .transpose()
            .map_err(|_| corrupt("endpoint entity_id"))?,
        status: EndpointStatus::parse(&row.text("status")?).ok_or_else(|| corrupt("endpoint status"))?,
        created_at: row.int("created_at")?,
    };
    Ok((row.int("seq")?, endpoint))
}

pub(crate) fn event(row: &impl RecordRow) -> StoreResult<(i64, Event)> {
    let event = Event {
        event_id: EventId::parse(&row.text("event_id")?).map_err(|_| corrupt("event id"))?,
        account_id: account_id(row)?,
        event_type: row.text("event_type")?,
        entity_id: row.text_opt("entity_id")?,
        event_data: row.text("event_data")?,
        callback_url: row.text_opt("callback_url")?,
        callback_id: row.text_opt("callback_id")?,
        created_at: row.int("created_at")?,
        // Read where it is used (a claim), not with the history.
        traceparent: None,
    };
    Ok((row.int("seq")?, event))
}

/// A sealed secret that does not open here (the row was edited by hand: startup checked
/// the master key) becomes an unusable one, so the dispatcher records a refused attempt
/// for that endpoint instead of the whole claim failing, and never sends unsigned.
pub(crate) fn claimed_delivery(row: &impl RecordRow, sealer: &SecretSealer) -> StoreResult<ClaimedDelivery> {
    let endpoint_id = endpoint_id_opt(row)?;
    let secret = match (row.text_opt("secret")?, &endpoint_id) {
        (Some(sealed), Some(endpoint_id)) => Some(
            sealer
                .open(&sealed, endpoint_id.as_str())
                .unwrap_or_else(|_| EndpointSecret::from_stored(String::new())),
        ),
        _ => None,
    };
    let previous_secret =
        match (row.text_opt("previous_secret")?, row.int_opt("previous_secret_until")?, &endpoint_id) {
            // One that does not open is left out: the current secret still signs.
            (Some(sealed), Some(until), Some(endpoint_id)) => {
                sealer.open(&sealed, endpoint_id.as_str()).ok().map(|secret| (secret, until))
            }
            _ => None,
        };
    Ok(ClaimedDelivery {
        delivery_id: DeliveryId::parse(&row.text("delivery_id")?).map_err(|_| corrupt("delivery id"))?,
        event_id: EventId::parse(&row.text("event_id")?).map_err(|_| corrupt("delivery event id"))?,
        event_type: row.text("event_type")?,
        event_data: row.text("event_data")?,
        url: row.text("url")?,
        endpoint_id,
        secret,
        previous_secret,
        attempts_made: u32::try_from(row.int("attempts")?).unwrap_or(u32::MAX),
        traceparent: row.text_opt("traceparent")?,
    })
}

pub(crate) fn delivery(row: &impl RecordRow) -> StoreResult<DeliveryRecord> {
    Ok(DeliveryRecord {
        delivery_id: DeliveryId::parse(&row.text("delivery_id")?).map_err(|_| corrupt("delivery id"))?,
        endpoint_id: endpoint_id_opt(row)?,
        url: row.text("url")?,
        state: DeliveryState::parse(&row.text("state")?).ok_or_else(|| corrupt("delivery state"))?,
        next_attempt_at: row.int_opt("next_attempt_at")?,
        attempts: Vec::new(),
    })
}

pub(crate) fn attempt(row: &impl RecordRow) -> StoreResult<AttemptRecord> {
    Ok(AttemptRecord {
        attempted_at: row.int("attempted_at")?,
        status_code: row.int_opt("status_code")?.and_then(|code| u16::try_from(code).ok()),
        duration_ms: row.int("duration_ms")?,
        error: row.text_opt("error")?,
        response_body: row.text_opt("response_body")?,
    })
}

/// Attaches attempts (rows with a `delivery_id`, oldest first) to their deliveries.
pub(crate) fn with_attempts(
    mut deliveries: Vec<DeliveryRecord>,
    attempt_rows: &[impl RecordRow],
) -> StoreResult<Vec<DeliveryRecord>> {
    for row in attempt_rows {
        let delivery_id = row.text("delivery_id")?;
        if let Some(record) = deliveries.iter_mut().find(|r| r.delivery_id.as_str() == delivery_id) {
            record.attempts.push(attempt(row)?);
        }
    }
    Ok(deliveries)
}

pub(crate) fn video(row: &impl RecordRow) -> StoreResult<(i64, Video)> {
    let video = Video {
        video_id: VideoId::parse(&row.text("video_id")?).map_err(|_| corrupt("video id"))?,
        account_id: account_id(row)?,
        video_type: row.text("video_type")?,
        status: VideoStatus::parse(&row.text("status")?).ok_or_else(|| corrupt("video status"))?,
        request: row.text("request")?,
        title: row.text_opt("title")?,
        callback_url: row.text_opt("callback_url")?,
        callback_id: row.text_opt("callback_id")?,
        output_format: row.text("output_format")?,
        result: VideoResult {
            video_url: row.text_opt("video_url")?,
            thumbnail_url: row.text_opt("thumbnail_url")?,
            gif_url: row.text_opt("gif_url")?,
            captioned_video_url: row.text_opt("captioned_video_url")?,
            subtitle_url: row.text_opt("subtitle_url")?,
            duration: row.real_opt("duration")?,
            folder_id: row.text_opt("folder_id")?,
            output_language: row.text_opt("output_language")?,
            video_page_url: row.text_opt("video_page_url")?,
            failure_code: row.text_opt("failure_code")?,
            failure_message: row.text_opt("failure_message")?,
        },
        created_at: row.int("created_at")?,
        completed_at: row.int_opt("completed_at")?,
    };
    Ok((row.int("seq")?, video))
}

/// A row with `delivery_id, event_id, event_type, attempts, next_attempt_at`.
pub(crate) fn queue_head(row: &impl RecordRow) -> StoreResult<QueueHead> {
    Ok(QueueHead {
        delivery_id: DeliveryId::parse(&row.text("delivery_id")?).map_err(|_| corrupt("delivery id"))?,
        event_id: EventId::parse(&row.text("event_id")?).map_err(|_| corrupt("delivery event id"))?,
        event_type: row.text("event_type")?,
        attempts: u32::try_from(row.int("attempts")?).unwrap_or(u32::MAX),
        next_attempt_at: row.int_opt("next_attempt_at")?.unwrap_or_default(),
    })
}

/// A row with `ordering, rate_limit_per_second`.
pub(crate) fn delivery_settings(row: &impl RecordRow) -> StoreResult<DeliverySettings> {
    let ordering =
        DeliveryOrdering::parse(&row.text("ordering")?).ok_or_else(|| corrupt("endpoint ordering"))?;
    let rate_limit = row
        .int_opt("rate_limit_per_second")?
        .map(|per_second| RateLimit::new(per_second).map_err(|_| corrupt("endpoint rate limit")))
        .transpose()?;
    Ok(DeliverySettings { ordering, rate_limit })
}

/// A row with `endpoint_id, account_id, url, status, failing_since`.
pub(crate) fn endpoint_state(row: &impl RecordRow) -> StoreResult<EndpointState> {
    Ok(EndpointState {
        endpoint_id: row.text("endpoint_id")?,
        account_id: row.text("account_id")?,
        url: row.text("url")?,
        enabled: row.text("status")? == "enabled",
        failing_since: row.int_opt("failing_since")?,
    })
}

/// A row with `delivery_id, account_id, event_id, endpoint_id, url, attempts, updated_at`.
pub(crate) fn exhausted_delivery(row: &impl RecordRow) -> StoreResult<ExhaustedDelivery> {
    Ok(ExhaustedDelivery {
        delivery_id: row.text("delivery_id")?,
        account_id: row.text("account_id")?,
        event_id: row.text("event_id")?,
        endpoint_id: row.text_opt("endpoint_id")?,
        url: row.text("url")?,
        attempts: row.int("attempts")?,
        updated_at: row.int("updated_at")?,
    })
}

/// A row with `session_id, account_id, read_only, created_at, expires_at`.
pub(crate) fn portal_session(row: &impl RecordRow) -> StoreResult<PortalSession> {
    Ok(PortalSession {
        session_id: PortalSessionId::parse(&row.text("session_id")?)
            .map_err(|_| corrupt("portal session id"))?,
        account_id: account_id(row)?,
        read_only: row.flag("read_only")?,
        created_at: row.int("created_at")?,
        expires_at: row.int("expires_at")?,
    })
}
