//! The event history.

use std::collections::HashMap;

use async_trait::async_trait;
use hookd_core::AccountId;
use sqlx::{Sqlite, Transaction};

use super::{SqliteStore, json_array};
use crate::rows::{self, fetch_limit, into_page};
use crate::{Event, EventQuery, EventStore, Page, PageRequest, Pruned, StoreResult, UnixMillis};

#[async_trait]
impl EventStore for SqliteStore {
    async fn publish_events(&self, events: &[Event]) -> StoreResult<Vec<usize>> {
        let mut tx = self.writer.begin().await?;
        let mut counts = Vec::with_capacity(events.len());
        let mut matches = EndpointMatches::default();
        for event in events {
            counts.push(publish_in(&mut tx, event, &mut matches).await?);
        }
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

/// The endpoints an event goes to, by (account, event type, entity), remembered for
/// one transaction: a batch of 1000 events for one account asks the database once.
/// Endpoints cannot change meanwhile, since the transaction holds the only writer.
#[derive(Default)]
pub(super) struct EndpointMatches(HashMap<(String, String, Option<String>), Vec<String>>);

/// Inserts the event and its deliveries inside the caller's transaction; returns how
/// many deliveries it scheduled.
pub(super) async fn publish_in(
    tx: &mut Transaction<'_, Sqlite>,
    event: &Event,
    matches: &mut EndpointMatches,
) -> StoreResult<usize> {
    sqlx::query(
        "INSERT INTO events (event_id, account_id, event_type, entity_id, event_data, callback_url,
                             callback_id, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(event.event_id.as_str())
    .bind(event.account_id.as_str())
    .bind(&event.event_type)
    .bind(event.entity_id.as_deref())
    .bind(&event.event_data)
    .bind(event.callback_url.as_deref())
    .bind(event.callback_id.as_deref())
    .bind(event.created_at)
    .execute(&mut **tx)
    .await?;
    let key = (event.account_id.to_string(), event.event_type.clone(), event.entity_id.clone());
    let targets = match matches.0.get(&key) {
        Some(targets) => targets.clone(),
        None => {
            let targets = matching_endpoints(tx, event).await?;
            matches.0.insert(key, targets.clone());
            targets
        }
    };
    for endpoint_id in &targets {
        super::deliveries::insert_delivery(tx, event, Some(endpoint_id), None, event.created_at).await?;
    }
    if let Some(callback_url) = &event.callback_url {
        super::deliveries::insert_delivery(tx, event, None, Some(callback_url), event.created_at).await?;
    }
    Ok(targets.len() + usize::from(event.callback_url.is_some()))
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
