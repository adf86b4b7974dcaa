//! What both backends share for [`crate::EventLogStore`]: the rows of an event-log
//! line, the status filter's SQL, and the day of hours an endpoint's health covers.

use crate::rows::{self, RecordRow};
use crate::{DeliveryCounts, EndpointHealth, Event, HealthHour, StoreResult, UnixMillis};
use hookd_core::DeliveryState;

const HOUR_MS: i64 = 3_600_000;
/// How many hours the health panel shows, the current one last.
pub(crate) const HEALTH_HOURS: i64 = 24;

/// The per-state counts selected beside an event (`e` is the event's alias). Each
/// count probes the deliveries-by-event index.
pub(crate) const COUNT_COLUMNS: &str = "
    (SELECT COUNT(*) FROM deliveries d WHERE d.event_id = e.event_id AND d.state = 'pending') AS n_pending,
    (SELECT COUNT(*) FROM deliveries d WHERE d.event_id = e.event_id AND d.state = 'delivered') AS n_delivered,
    (SELECT COUNT(*) FROM deliveries d WHERE d.event_id = e.event_id AND d.state = 'failed') AS n_failed,
    (SELECT COUNT(*) FROM deliveries d WHERE d.event_id = e.event_id AND d.state = 'cancelled') AS n_cancelled";

/// The status filter as a condition on the event `e`, or nothing. The state names are
/// the core's, never the caller's text, so they are written into the SQL.
pub(crate) fn status_condition(status: Option<DeliveryState>) -> String {
    let has = |state: &str| {
        format!("EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.event_id AND d.state = '{state}')")
    };
    match status {
        None => String::new(),
        Some(DeliveryState::Delivered) => format!(
            "AND {} AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.event_id
                                    AND d.state IN ('pending', 'failed'))",
            has("delivered")
        ),
        Some(state) => format!("AND {}", has(state.as_str())),
    }
}

/// An event-log row: the event's columns and the counts of [`COUNT_COLUMNS`].
pub(crate) fn entry(row: &impl RecordRow) -> StoreResult<(i64, crate::EventLogEntry)> {
    let (seq, event): (i64, Event) = rows::event(row)?;
    let count = |column: &str| row.int(column).map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    let deliveries = DeliveryCounts {
        pending: count("n_pending")?,
        delivered: count("n_delivered")?,
        failed: count("n_failed")?,
        cancelled: count("n_cancelled")?,
    };
    Ok((seq, crate::EventLogEntry { event, deliveries }))
}

/// The start of the oldest hour the health panel shows at `now`.
pub(crate) fn health_window_start(now: UnixMillis) -> UnixMillis {
    now.div_euclid(HOUR_MS) * HOUR_MS - (HEALTH_HOURS - 1) * HOUR_MS
}

/// An attempt's hour, succeeded and failed counts: the select list of the health query
/// (grouped by `hour`). Success is a 2xx, as the dispatcher judges it.
pub(crate) const HOURLY_COUNTS: &str = "(attempted_at / 3600000) * 3600000 AS hour,
    COUNT(*) FILTER (WHERE status_code BETWEEN 200 AND 299),
    COUNT(*) FILTER (WHERE status_code IS NULL OR status_code NOT BETWEEN 200 AND 299)";

/// The condition on an attempt that [`HOURLY_COUNTS`] counts as a success or a failure.
pub(crate) fn outcome_condition(succeeded: bool) -> &'static str {
    if succeeded {
        "status_code BETWEEN 200 AND 299"
    } else {
        "(status_code IS NULL OR status_code NOT BETWEEN 200 AND 299)"
    }
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
