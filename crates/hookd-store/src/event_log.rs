//! What both backends share for [`crate::EventLogStore`]: the event-log query, the
//! delivery counts beside each event, and the day of hours an endpoint's health covers.

use hookd_core::DeliveryState;
use sqlx::{Database, Encode, QueryBuilder, Type};

use crate::rows::fetch_limit;
use crate::{
    DeliveryCounts, EndpointHealth, Event, EventLogEntry, EventLogQuery, HealthHour, PageRequest, UnixMillis,
};

const HOUR_MS: i64 = 3_600_000;
/// How many hours the health panel shows, the current one last.
pub(crate) const HEALTH_HOURS: i64 = 24;

/// The event-log query for either backend, with only the filters given (so each
/// backend's planner sees plain range conditions). A time range also bounds `seq`, by
/// the lowest and highest `seq` of the account's events inside it (read from the
/// `(account_id, created_at)` index): exact, as every event in the range lies within
/// those bounds, and the newest-first walk then starts at the range instead of at now.
pub(crate) fn log_query<'a, DB>(
    account_id: &'a str,
    query: &'a EventLogQuery,
    page: PageRequest,
) -> QueryBuilder<'a, DB>
where
    DB: Database,
    DB::Arguments<'a>: Default,
    &'a str: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    let mut sql = QueryBuilder::new(
        "SELECT e.seq, e.event_id, e.account_id, e.event_type, e.entity_id, e.event_data, e.callback_url,
                e.callback_id, e.created_at
         FROM events e WHERE e.account_id = ",
    );
    sql.push_bind(account_id).push(" AND e.seq < ").push_bind(page.before.unwrap_or(i64::MAX));
    if let Some(event_type) = query.history.event_type.as_deref() {
        sql.push(" AND e.event_type = ").push_bind(event_type);
    }
    if let Some(entity_id) = query.history.entity_id.as_deref() {
        sql.push(" AND e.entity_id = ").push_bind(entity_id);
    }
    if let Some(since) = query.since {
        sql.push(" AND e.created_at >= ").push_bind(since);
        sql.push(" AND e.seq >= (SELECT MIN(seq) FROM events WHERE account_id = ").push_bind(account_id);
        sql.push(" AND created_at >= ").push_bind(since).push(")");
    }
    if let Some(until) = query.until {
        sql.push(" AND e.created_at <= ").push_bind(until);
        sql.push(" AND e.seq <= (SELECT MAX(seq) FROM events WHERE account_id = ").push_bind(account_id);
        sql.push(" AND created_at <= ").push_bind(until).push(")");
    }
    // A state other than delivered is found through the account's deliveries in that
    // state, read once per query, so a rare state stays cheap to look for even when no
    // event has one: failed and cancelled through a partial index of their own (written
    // only when a delivery ends that way), pending through the queue's own index of
    // pending deliveries, so the hot path pays for no extra index.
    let in_state = |sql: &mut QueryBuilder<'a, DB>, states: &str| {
        sql.push(format!(
            " (SELECT d.event_id FROM deliveries d WHERE d.state IN ({states}) AND d.account_id = "
        ));
        sql.push_bind(account_id).push(")");
    };
    match query.status {
        None => {}
        Some(DeliveryState::Delivered) => {
            sql.push(" AND e.event_id NOT IN");
            in_state(&mut sql, "'pending'");
            sql.push(" AND e.event_id NOT IN");
            in_state(&mut sql, "'failed'");
            sql.push(
                " AND EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.event_id AND d.state = 'delivered')",
            );
        }
        // The state names are the core's, never the caller's text.
        Some(state) => {
            sql.push(" AND e.event_id IN");
            in_state(&mut sql, &format!("'{}'", state.as_str()));
        }
    }
    sql.push(" ORDER BY e.seq DESC LIMIT ").push_bind(fetch_limit(page));
    sql
}

/// Succeeded and failed attempts since `since` of each listed endpoint of the account,
/// for either backend: `(endpoint_id, succeeded, failed)`, endpoints with attempts only.
pub(crate) fn recent_outcomes_query<'a, DB>(
    account_id: &'a str,
    endpoint_ids: &'a [hookd_core::EndpointId],
    since: UnixMillis,
) -> QueryBuilder<'a, DB>
where
    DB: Database,
    DB::Arguments<'a>: Default,
    &'a str: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    let mut sql = QueryBuilder::new(format!(
        "SELECT a.endpoint_id, COUNT(*) FILTER (WHERE {}), COUNT(*) FILTER (WHERE {})
         FROM delivery_attempts a JOIN endpoints e ON e.endpoint_id = a.endpoint_id
         WHERE e.deleted_at IS NULL AND e.account_id = ",
        outcome_condition(true),
        outcome_condition(false)
    ));
    sql.push_bind(account_id)
        .push(" AND a.attempted_at >= ")
        .push_bind(since)
        .push(" AND a.endpoint_id IN (");
    let mut ids = sql.separated(", ");
    for id in endpoint_ids {
        ids.push_bind(id.as_str());
    }
    sql.push(") GROUP BY a.endpoint_id");
    sql
}

/// A row of [`recent_outcomes_query`].
pub(crate) fn recent_outcome(
    row: (String, i64, i64),
) -> crate::StoreResult<(hookd_core::EndpointId, u32, u32)> {
    let (id, succeeded, failed) = row;
    let id =
        hookd_core::EndpointId::parse(&id).map_err(|_| crate::StoreError::Corrupt("endpoint id".into()))?;
    Ok((id, u32::try_from(succeeded).unwrap_or(u32::MAX), u32::try_from(failed).unwrap_or(u32::MAX)))
}

/// A page of events with their deliveries' `(event_id, state, count)` rows (read in a
/// second query, by the deliveries-by-event index, for the page's events only).
pub(crate) fn with_counts(
    events: Vec<(i64, Event)>,
    counts: &[(String, String, i64)],
) -> Vec<(i64, EventLogEntry)> {
    events
        .into_iter()
        .map(|(seq, event)| {
            let mut deliveries = DeliveryCounts::default();
            for (_, state, n) in counts.iter().filter(|(id, _, _)| id == event.event_id.as_str()) {
                let n = u32::try_from(*n).unwrap_or(u32::MAX);
                match DeliveryState::parse(state) {
                    Some(DeliveryState::Pending) => deliveries.pending = n,
                    Some(DeliveryState::Delivered) => deliveries.delivered = n,
                    Some(DeliveryState::Failed) => deliveries.failed = n,
                    Some(DeliveryState::Cancelled) => deliveries.cancelled = n,
                    None => {}
                }
            }
            (seq, EventLogEntry { event, deliveries })
        })
        .collect()
}

/// The start of the oldest hour the health panel shows at `now`.
pub(crate) fn health_window_start(now: UnixMillis) -> UnixMillis {
    now.div_euclid(HOUR_MS) * HOUR_MS - (HEALTH_HOURS - 1) * HOUR_MS
}

/// The condition on an attempt that counts as a success (a 2xx, as the dispatcher
/// judges it) or a failure.
pub(crate) fn outcome_condition(succeeded: bool) -> &'static str {
    if succeeded {
        "status_code BETWEEN 200 AND 299"
    } else {
        "(status_code IS NULL OR status_code NOT BETWEEN 200 AND 299)"
    }
}

/// The select list of the health query (grouped by `hour`): an attempt's hour, and the
/// succeeded and failed counts.
pub(crate) fn hourly_counts() -> String {
    format!(
        "(attempted_at / 3600000) * 3600000 AS hour, COUNT(*) FILTER (WHERE {}), COUNT(*) FILTER (WHERE {})",
        outcome_condition(true),
        outcome_condition(false)
    )
}

/// Every hour of the window, filled from `(hour start, succeeded, failed)` rows.
pub(crate) fn health(
    now: UnixMillis,
    counted: &[(i64, i64, i64)],
    last_success_at: Option<UnixMillis>,
    last_failure_at: Option<UnixMillis>,
    failing_since: Option<UnixMillis>,
) -> EndpointHealth {
    let start = health_window_start(now);
    let hours = (0..HEALTH_HOURS)
        .map(|i| {
            let hour = start + i * HOUR_MS;
            let (succeeded, failed) = counted
                .iter()
                .find(|(at, _, _)| *at == hour)
                .map(|(_, ok, failed)| (*ok, *failed))
                .unwrap_or_default();
            HealthHour {
                start: hour,
                succeeded: u32::try_from(succeeded).unwrap_or(u32::MAX),
                failed: u32::try_from(failed).unwrap_or(u32::MAX),
            }
        })
        .collect();
    EndpointHealth { hours, last_success_at, last_failure_at, failing_since }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_24_whole_hours_ending_with_the_current_one() {
        let now = 10 * HOUR_MS + 1_234;
        let health = health(now, &[(10 * HOUR_MS, 2, 1), (-13 * HOUR_MS, 5, 5)], None, None, None);
        assert_eq!(health.hours.len(), 24);
        assert_eq!(health.hours[0].start, -13 * HOUR_MS);
        assert_eq!((health.hours[0].succeeded, health.hours[0].failed), (5, 5));
        assert_eq!(health.hours[23], HealthHour { start: 10 * HOUR_MS, succeeded: 2, failed: 1 });
        assert_eq!(health.hours[5], HealthHour { start: -8 * HOUR_MS, succeeded: 0, failed: 0 });
    }
}
