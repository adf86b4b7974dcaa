//! The event history.

use async_trait::async_trait;
use hookd_core::{AccountId, EventId};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{SqliteStore, fetch_limit, into_page};
use crate::{Event, EventQuery, EventStore, Page, PageRequest, StoreError, StoreResult};

#[async_trait]
impl EventStore for SqliteStore {
    async fn insert_events(&self, events: &[Event]) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        for event in events {
            sqlx::query(
                "INSERT INTO events (event_id, account_id, event_type, entity_id, event_data, created_at)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(event.event_id.as_str())
            .bind(event.account_id.as_str())
            .bind(&event.event_type)
            .bind(event.entity_id.as_deref())
            .bind(&event.event_data)
            .bind(event.created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_events(
        &self,
        account_id: &AccountId,
        query: &EventQuery,
        page: PageRequest,
    ) -> StoreResult<Page<Event>> {
        let rows = sqlx::query(
            "SELECT seq, event_id, account_id, event_type, entity_id, event_data, created_at FROM events
             WHERE account_id = ? AND seq < ?
               AND (? IS NULL OR event_type = ?)
               AND (? IS NULL OR entity_id = ?)
             ORDER BY seq DESC LIMIT ?",
        )
        .bind(account_id.as_str())
        .bind(page.before.unwrap_or(i64::MAX))
        .bind(query.event_type.as_deref())
        .bind(query.event_type.as_deref())
        .bind(query.entity_id.as_deref())
        .bind(query.entity_id.as_deref())
        .bind(fetch_limit(page))
        .fetch_all(&self.reader)
        .await?;
        let rows = rows.iter().map(event_from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(into_page(rows, page))
    }
}

fn event_from_row(row: &SqliteRow) -> StoreResult<(i64, Event)> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("event {what}"));
    let event = Event {
        event_id: EventId::parse(row.get("event_id")).map_err(|_| corrupt("id"))?,
        account_id: AccountId::parse(row.get("account_id")).map_err(|_| corrupt("account"))?,
        event_type: row.get("event_type"),
        entity_id: row.get("entity_id"),
        event_data: row.get("event_data"),
        created_at: row.get("created_at"),
    };
    Ok((row.get("seq"), event))
}
