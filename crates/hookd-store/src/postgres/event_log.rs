//! The event log, one event and endpoint health (the portal's reads).

use async_trait::async_trait;
use hookd_core::{AccountId, EndpointId, EventId};

use super::PostgresStore;
use crate::event_log;
use crate::rows::{self, into_page};
use crate::schema::EVENT_COLUMNS;
use crate::{
    EndpointHealth, Event, EventLogEntry, EventLogQuery, EventLogStore, Page, PageRequest, StoreError,
    StoreResult, UnixMillis,
};

#[async_trait]
impl EventLogStore for PostgresStore {
    async fn event_log(
        &self,
        account_id: &AccountId,
        query: &EventLogQuery,
        page: PageRequest,
    ) -> StoreResult<Page<EventLogEntry>> {
        let rows =
            event_log::log_query(account_id.as_str(), query, page).build().fetch_all(&self.pool).await?;
        let events = rows.iter().map(rows::event).collect::<StoreResult<Vec<_>>>()?;
        // The page's counts by the deliveries-by-event index, in one statement.
        let counts: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT event_id, state, COUNT(*) FROM deliveries WHERE event_id = ANY($1) GROUP BY event_id, state",
        )
        .bind(events.iter().map(|(_, e)| e.event_id.to_string()).collect::<Vec<_>>())
        .fetch_all(&self.pool)
        .await?;
        let rows = event_log::with_counts(events, &counts);
        Ok(into_page(rows, page))
    }

    async fn get_event(&self, account_id: &AccountId, event_id: &EventId) -> StoreResult<Event> {
        let row = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS}
             FROM events WHERE account_id = $1 AND event_id = $2"
        ))
        .bind(account_id.as_str())
        .bind(event_id.as_str())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        Ok(rows::event(&row)?.1)
    }

    async fn endpoint_health(
        &self,
        account_id: &AccountId,
        endpoint_id: &EndpointId,
        now: UnixMillis,
    ) -> StoreResult<EndpointHealth> {
        // One transaction (REPEATABLE READ would be stricter; a moment's skew between the
        // hours and the last times is harmless on a health panel).
        let mut tx = self.pool.begin().await?;
        let failing_since: Option<i64> = sqlx::query_scalar(
            "SELECT failing_since FROM endpoints WHERE account_id = $1 AND endpoint_id = $2 AND deleted_at IS NULL",
        )
        .bind(account_id.as_str())
        .bind(endpoint_id.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let counted: Vec<(i64, i64, i64)> = sqlx::query_as(&format!(
            "SELECT {}
             FROM delivery_attempts WHERE endpoint_id = $1 AND attempted_at >= $2 GROUP BY hour",
            event_log::hourly_counts()
        ))
        .bind(endpoint_id.as_str())
        .bind(event_log::health_window_start(now))
        .fetch_all(&mut *tx)
        .await?;
        let last = |succeeded: bool| {
            format!(
                "SELECT attempted_at FROM delivery_attempts WHERE endpoint_id = $1 AND {}
                 ORDER BY attempted_at DESC LIMIT 1",
                event_log::outcome_condition(succeeded)
            )
        };
        let last_success_at: Option<i64> =
            sqlx::query_scalar(&last(true)).bind(endpoint_id.as_str()).fetch_optional(&mut *tx).await?;
        let last_failure_at: Option<i64> =
            sqlx::query_scalar(&last(false)).bind(endpoint_id.as_str()).fetch_optional(&mut *tx).await?;
        tx.commit().await?;
        Ok(event_log::health(now, &counted, last_success_at, last_failure_at, failing_since))
    }

    async fn recent_outcomes(
        &self,
        account_id: &AccountId,
        endpoint_ids: &[EndpointId],
        now: UnixMillis,
    ) -> StoreResult<Vec<(EndpointId, u32, u32)>> {
        if endpoint_ids.is_empty() {
            return Ok(Vec::new());
        }
        let since = now - event_log::HEALTH_HOURS * 3_600_000;
        let rows: Vec<(String, i64, i64)> =
            event_log::recent_outcomes_query(account_id.as_str(), endpoint_ids, since)
                .build_query_as()
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(event_log::recent_outcome).collect()
    }
}
