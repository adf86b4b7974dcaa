//! The event history.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use async_trait::async_trait;
use hookd_core::{AccountId, DeliveryId};
use sqlx::{Sqlite, Transaction};

use super::{SqliteStore, json_array};
use crate::rows::{self, fetch_limit, into_page};
use crate::{Event, EventQuery, EventStore, Page, PageRequest, Pruned, StoreResult, UnixMillis};

#[async_trait]
impl EventStore for SqliteStore {
    async fn publish_events(&self, events: &[Event]) -> StoreResult<Vec<usize>> {
        let mut tx = self.writer.begin().await?;
        let counts = publish_in(&mut tx, events).await?;
        tx.commit().await?;
        Ok(counts)
    }

    async fn list_events(
        &self,
        account_id: &AccountId,
        query: &EventQuery,
        page: PageRequest,
    ) -> StoreResult<Page<Event>> {
        let rows = sqlx::query(
            "SELECT seq, event_id, account_id, event_type, entity_id, event_data, callback_url, callback_id, created_at
             FROM events
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

/// Inserts the events and their deliveries inside the caller's transaction, one
/// statement for all events and one for all deliveries (rows passed as one JSON array:
/// each statement is a round trip to SQLite's thread). Returns how many deliveries
/// each event got.
pub(super) async fn publish_in(
    tx: &mut Transaction<'_, Sqlite>,
    events: &[Event],
) -> StoreResult<Vec<usize>> {
    let event_rows: Vec<serde_json::Value> = events
        .iter()
        .map(|e| {
            serde_json::json!([
                e.event_id.as_str(),
                e.account_id.as_str(),
                e.event_type,
                e.entity_id,
                e.event_data,
                e.callback_url,
                e.callback_id,
                e.created_at,
                e.traceparent,
            ])
        })
        .collect();
    sqlx::query(
        "INSERT INTO events (event_id, account_id, event_type, entity_id, event_data, callback_url,
                             callback_id, created_at, traceparent)
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6,
                value ->> 7, value ->> 8
         FROM json_each(?)",
    )
    .bind(serde_json::Value::Array(event_rows).to_string())
    .execute(&mut **tx)
    .await?;
    // The endpoints of each (account, type, entity), asked once per batch. Endpoints
    // cannot change meanwhile: the transaction holds the only writer.
    let mut matches: HashMap<(&AccountId, &str, Option<&str>), Vec<String>> = HashMap::new();
    let mut delivery_rows = Vec::new();
    let mut counts = Vec::with_capacity(events.len());
    for event in events {
        let key = (&event.account_id, event.event_type.as_str(), event.entity_id.as_deref());
        if let Entry::Vacant(slot) = matches.entry(key) {
            slot.insert(matching_endpoints(tx, event).await?);
        }
        let targets = matches.get(&key).map(Vec::as_slice).unwrap_or_default();
        for endpoint_id in targets {
            delivery_rows.push(delivery_row(event, Some(endpoint_id), None));
        }
        if let Some(callback_url) = &event.callback_url {
            delivery_rows.push(delivery_row(event, None, Some(callback_url)));
        }
        counts.push(targets.len() + usize::from(event.callback_url.is_some()));
    }
    if !delivery_rows.is_empty() {
        sqlx::query(
            "INSERT INTO deliveries (delivery_id, event_id, account_id, endpoint_id, callback_url, target, state,
                                     next_attempt_at, created_at, updated_at)
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4,
                    COALESCE(value ->> 3, value ->> 4), 'pending', value ->> 5, value ->> 5, value ->> 5
             FROM json_each(?)",
        )
        .bind(serde_json::Value::Array(delivery_rows).to_string())
        .execute(&mut **tx)
        .await?;
    }
    Ok(counts)
}

fn delivery_row(event: &Event, endpoint_id: Option<&str>, callback_url: Option<&str>) -> serde_json::Value {
    serde_json::json!([
        DeliveryId::new_time_ordered(event.created_at).as_str(),
        event.event_id.as_str(),
        event.account_id.as_str(),
        endpoint_id,
        callback_url,
        event.created_at,
    ])
}

/// Enabled endpoints of the account subscribed to the event's type and, if scoped, to
/// its entity. Catalog names never contain commas, so the comma-wrapped list is an
/// exact membership test (LIKE would treat '_' as a wildcard).
async fn matching_endpoints(tx: &mut Transaction<'_, Sqlite>, event: &Event) -> StoreResult<Vec<String>> {
    let targets = sqlx::query_scalar(
        "SELECT endpoint_id FROM endpoints
         WHERE account_id = ? AND deleted_at IS NULL AND status = 'enabled'
           AND (events IS NULL OR instr(',' || events || ',', ',' || ? || ',') > 0)
           AND (entity_id IS NULL OR entity_id = ?)
         ORDER BY seq",
    )
    .bind(event.account_id.as_str())
    .bind(&event.event_type)
    .bind(event.entity_id.as_deref())
    .fetch_all(&mut **tx)
    .await?;
    Ok(targets)
}
