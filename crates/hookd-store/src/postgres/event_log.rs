//! The event log, one event and endpoint health (the portal's reads).

use async_trait::async_trait;
use hookd_core::{AccountId, EndpointId, EventId};

use super::PostgresStore;
use crate::event_log::{self, COUNT_COLUMNS, HOURLY_COUNTS};
use crate::rows::{self, fetch_limit, into_page};
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
        let sql = format!(
            "SELECT e.seq, e.event_id, e.account_id, e.event_type, e.entity_id, e.event_data, e.callback_url,
                    e.callback_id, e.created_at, {COUNT_COLUMNS}
             FROM events e
             WHERE e.account_id = $1 AND e.seq < $2
               AND ($3::text IS NULL OR e.event_type = $3)
               AND ($4::text IS NULL OR e.entity_id = $4)
               AND ($5::bigint IS NULL OR e.created_at >= $5)
               AND ($6::bigint IS NULL OR e.created_at <= $6)
               {}
             ORDER BY e.seq DESC LIMIT $7",
            event_log::status_condition(query.status)
        );
        let rows = sqlx::query(&sql)
            .bind(account_id.as_str())
            .bind(page.before.unwrap_or(i64::MAX))
            .bind(query.history.event_type.as_deref())
            .bind(query.history.entity_id.as_deref())
            .bind(query.since)
            .bind(query.until)
            .bind(fetch_limit(page))
            .fetch_all(&self.pool)
            .await?;
        let rows = rows.iter().map(event_log::entry).collect::<StoreResult<Vec<_>>>()?;
        Ok(into_page(rows, page))
    }

    async fn get_event(&self, account_id: &AccountId, event_id: &EventId) -> StoreResult<Event> {
        let row = sqlx::query(
            "SELECT seq, event_id, account_id, event_type, entity_id, event_data, callback_url, callback_id, created_at
             FROM events WHERE account_id = $1 AND event_id = $2",
        )
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
            "SELECT {HOURLY_COUNTS}
             FROM delivery_attempts WHERE endpoint_id = $1 AND attempted_at >= $2 GROUP BY hour"
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
}
