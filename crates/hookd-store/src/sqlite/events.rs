//! The event history.

use async_trait::async_trait;
use hookd_core::AccountId;

use super::engine::Durability;
use super::publish::publish_on;
use super::{SqliteStore, json_array};
use crate::rows::{self, fetch_limit, into_page};
use crate::schema::EVENT_COLUMNS;
use crate::{Event, EventQuery, EventStore, Page, PageRequest, Pruned, StoreResult, UnixMillis};

#[async_trait]
impl EventStore for SqliteStore {
    async fn publish_events(&self, events: &[Event]) -> StoreResult<Vec<usize>> {
        // The engine may run the work twice (a group that could not commit), so it
        // owns a copy of the events; the copy is cheaper than the hand-offs it saves.
        let events = events.to_vec();
        self.engine.write(Durability::PowerLoss, move |connection| publish_on(connection, &events)).await
    }

    async fn list_events(
        &self,
        account_id: &AccountId,
        query: &EventQuery,
        page: PageRequest,
    ) -> StoreResult<Page<Event>> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS}
             FROM events
             WHERE account_id = ? AND seq < ?
               AND (? IS NULL OR event_type = ?)
               AND (? IS NULL OR entity_id = ?)
             ORDER BY seq DESC LIMIT ?"
        ))
        .bind(account_id.as_str())
        .bind(page.before.unwrap_or(i64::MAX))
        .bind(query.event_type.as_deref())
        .bind(query.event_type.as_deref())
        .bind(query.entity_id.as_deref())
        .bind(query.entity_id.as_deref())
        .bind(fetch_limit(page))
        .fetch_all(&self.reader)
        .await?;
        let rows = rows.iter().map(rows::event).collect::<StoreResult<Vec<_>>>()?;
        Ok(into_page(rows, page))
    }

    async fn count_events_by_type(&self, account_id: &AccountId) -> StoreResult<Vec<(String, i64)>> {
        let counts = sqlx::query_as(
            "SELECT event_type, COUNT(*) FROM events WHERE account_id = ? GROUP BY event_type ORDER BY event_type",
        )
        .bind(account_id.as_str())
        .fetch_all(&self.reader)
        .await?;
        Ok(counts)
    }

    async fn prune_history(&self, before: UnixMillis, now: UnixMillis, batch: u32) -> StoreResult<Pruned> {
        let mut tx = self.writer.begin().await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT delivery_id FROM deliveries
             WHERE created_at < ?1 AND (lease_until IS NULL OR lease_until <= ?2)
             ORDER BY created_at LIMIT ?3",
        )
        .bind(before)
        .bind(now)
        .bind(i64::from(batch))
        .fetch_all(&mut *tx)
        .await?;
        let id_list = json_array(ids.iter());
        let attempts = sqlx::query(
            "DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT value FROM json_each(?))",
        )
        .bind(&id_list)
        .execute(&mut *tx)
        .await?;
        let deliveries =
            sqlx::query("DELETE FROM deliveries WHERE delivery_id IN (SELECT value FROM json_each(?))")
                .bind(&id_list)
                .execute(&mut *tx)
                .await?;
        let events = sqlx::query(
            "DELETE FROM events WHERE seq IN (
                 SELECT seq FROM events e
                 WHERE e.created_at < ?1 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.event_id)
                 ORDER BY e.created_at LIMIT ?2)",
        )
        .bind(before)
        .bind(i64::from(batch))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Pruned {
            events: events.rows_affected(),
            deliveries: deliveries.rows_affected(),
            attempts: attempts.rows_affected(),
        })
    }
}
