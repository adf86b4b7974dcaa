//! Operational events (see [`hookd_core::operational`]) as the backends emit them: in
//! the transaction that records their cause, as events of the operations account, so
//! the publish that follows fans them out to the operator's operational endpoints.
//! This module decides what to emit from rows each backend reads; it runs no SQL.

use hookd_core::operational::{OPERATIONS_ACCOUNT_ID, RECOVERED_AFTER_MS};
use hookd_core::{EventId, OperationalEventType, operations_account};
use serde_json::{Value, json};

use crate::{AttemptOutcome, Event, NextStep, UnixMillis};

/// An endpoint's state around a batch of outcomes (or a change by its owner).
#[derive(Debug, Clone)]
pub(crate) struct EndpointState {
    pub endpoint_id: String,
    pub account_id: String,
    pub url: String,
    pub enabled: bool,
    pub failing_since: Option<i64>,
}

/// A delivery the batch failed for good.
#[derive(Debug, Clone)]
pub(crate) struct ExhaustedDelivery {
    pub delivery_id: String,
    pub account_id: String,
    pub event_id: String,
    pub endpoint_id: Option<String>,
    pub url: String,
    pub attempts: i64,
    /// When it last changed: a delivery this batch failed has its attempt's time here
    /// (one skipped earlier, whose late attempt the batch only records, does not).
    pub updated_at: i64,
}

/// Who disabled an endpoint.
#[derive(Debug, Clone, Copy)]
enum DisabledBy {
    Hookd,
    Owner,
}

fn secs(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

fn event(kind: OperationalEventType, data: Value, at: UnixMillis) -> Event {
    Event {
        event_id: EventId::new_random(),
        account_id: operations_account(),
        event_type: kind.as_str().to_owned(),
        entity_id: None,
        event_data: data.to_string(),
        callback_url: None,
        callback_id: None,
        created_at: at,
        traceparent: None,
    }
}

/// Whether an account is the operations account: its own endpoints and deliveries
/// never cause operational events (a failing alert endpoint must not alert itself).
pub(crate) fn is_operations(account_id: &str) -> bool {
    account_id == OPERATIONS_ACCOUNT_ID
}

/// `endpoint.disabled`.
fn disabled(endpoint: &EndpointState, by: DisabledBy, at: UnixMillis) -> Event {
    let reason = match by {
        DisabledBy::Hookd => "failing",
        DisabledBy::Owner => "owner",
    };
    let data = json!({
        "account_id": endpoint.account_id, "endpoint_id": endpoint.endpoint_id, "url": endpoint.url,
        "reason": reason, "failing_since": endpoint.failing_since.map(secs), "disabled_at": secs(at),
    });
    event(OperationalEventType::EndpointDisabled, data, at)
}

/// `endpoint.enabled`.
fn enabled(endpoint: &EndpointState, at: UnixMillis) -> Event {
    let data = json!({
        "account_id": endpoint.account_id, "endpoint_id": endpoint.endpoint_id, "url": endpoint.url,
        "enabled_at": secs(at),
    });
    event(OperationalEventType::EndpointEnabled, data, at)
}

/// What an owner's change of an endpoint's status caused: `endpoint.disabled` (by the
/// owner) or `endpoint.enabled`, if the status changed.
pub(crate) fn caused_by_owner(
    before: &EndpointState,
    after: &EndpointState,
    at: UnixMillis,
) -> Option<Event> {
    if is_operations(&after.account_id) {
        return None;
    }
    match (before.enabled, after.enabled) {
        (true, false) => Some(disabled(after, DisabledBy::Owner, at)),
        (false, true) => Some(enabled(after, at)),
        _ => None,
    }
}

/// What a batch of outcomes caused: each endpoint hookd disabled and each that
/// recovered after a failure run of at least an hour (`before` and `after` are the
/// endpoints' states around the batch), and each delivery it failed for good.
pub(crate) fn caused_by_outcomes(
    outcomes: &[AttemptOutcome],
    before: &[EndpointState],
    after: &[EndpointState],
    exhausted: &[ExhaustedDelivery],
) -> Vec<Event> {
    let mut events = Vec::new();
    for was in before {
        let Some(now) = after.iter().find(|now| now.endpoint_id == was.endpoint_id) else { continue };
        if is_operations(&now.account_id) {
            continue;
        }
        let last_at = |success: bool| {
            outcomes
                .iter()
                .filter(|o| o.endpoint_id.as_ref().is_some_and(|id| id.as_str() == now.endpoint_id))
                .filter(|o| (o.next == NextStep::Delivered) == success)
                .map(|o| o.attempt.attempted_at)
                .max()
        };
        if was.enabled && !now.enabled {
            events.push(disabled(now, DisabledBy::Hookd, last_at(false).unwrap_or_default()));
        }
        if let (Some(since), Some(success_at)) = (was.failing_since, last_at(true))
            && success_at - since >= RECOVERED_AFTER_MS
        {
            let data = json!({
                "account_id": now.account_id, "endpoint_id": now.endpoint_id, "url": now.url,
                "failing_since": secs(since), "recovered_at": secs(success_at),
            });
            events.push(event(OperationalEventType::EndpointRecovered, data, success_at));
        }
    }
    for delivery in exhausted.iter().filter(|d| !is_operations(&d.account_id)) {
        let Some(last) = outcomes.iter().rev().find(|o| o.delivery_id.as_str() == delivery.delivery_id)
        else {
            continue;
        };
        if last.attempt.attempted_at != delivery.updated_at {
            continue;
        }
        let data = json!({
            "account_id": delivery.account_id, "endpoint_id": delivery.endpoint_id, "url": delivery.url,
            "event_id": delivery.event_id, "delivery_id": delivery.delivery_id, "attempts": delivery.attempts,
            "last_status_code": last.attempt.status_code, "last_error": last.attempt.error,
        });
        events.push(event(OperationalEventType::DeliveryExhausted, data, last.attempt.attempted_at));
    }
    events
}

/// The failed-for-good deliveries of a batch, to look up.
pub(crate) fn failed_ids(outcomes: &[AttemptOutcome]) -> Vec<String> {
    outcomes
        .iter()
        .filter(|o| o.next == NextStep::Failed)
        .map(|o| o.delivery_id.as_str().to_owned())
        .collect()
}

/// The endpoints of a batch, in id order (the order rows are locked in).
pub(crate) fn endpoint_ids(outcomes: &[AttemptOutcome]) -> Vec<String> {
    crate::rows::endpoint_health(outcomes).into_keys().map(str::to_owned).collect()
}
