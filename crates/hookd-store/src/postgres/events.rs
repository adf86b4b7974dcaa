//! The event history, and publishing: events and their deliveries are inserted with
//! one `UNNEST` statement each per batch, not one statement per row, and the
//! transaction sends `NOTIFY` so every instance's dispatcher wakes when it commits.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use async_trait::async_trait;
use hookd_core::{AccountId, DeliveryId};
use sqlx::{Postgres, Transaction};

use super::{Duty, NEW_DELIVERIES_CHANNEL, PostgresStore, try_duty};
use crate::rows::{self, fetch_limit, into_page};
use crate::schema::EVENT_COLUMNS;
use crate::{Event, EventQuery, EventStore, Page, PageRequest, Pruned, StoreResult, UnixMillis};

#[async_trait]
impl EventStore for PostgresStore {
    async fn publish_events(&self, events: &[Event]) -> StoreResult<Vec<usize>> {
        let mut tx = self.pool.begin().await?;
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
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS}
             FROM events
             WHERE account_id = $1 AND seq < $2
               AND ($3::text IS NULL OR event_type = $3)
               AND ($4::text IS NULL OR entity_id = $4)
             ORDER BY seq DESC LIMIT $5"
        ))
        .bind(account_id.as_str())
        .bind(page.before.unwrap_or(i64::MAX))
        .bind(query.event_type.as_deref())
        .bind(query.entity_id.as_deref())
        .bind(fetch_limit(page))
        .fetch_all(&self.pool)
        .await?;
        let rows = rows.iter().map(rows::event).collect::<StoreResult<Vec<_>>>()?;
        Ok(into_page(rows, page))
    }

    async fn count_events_by_type(&self, account_id: &AccountId) -> StoreResult<Vec<(String, i64)>> {
        let counts = sqlx::query_as(
            "SELECT event_type, COUNT(*) FROM events WHERE account_id = $1 GROUP BY event_type ORDER BY event_type",
        )
        .bind(account_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(counts)
    }

    async fn prune_history(&self, before: UnixMillis, now: UnixMillis, batch: u32) -> StoreResult<Pruned> {
        let mut tx = self.pool.begin().await?;
        if !try_duty(&mut tx, Duty::PruneHistory).await? {
            // Another instance is pruning right now.
            return Ok(Pruned::default());
        }
        // SKIP LOCKED: a row a dispatcher is claiming this instant is left for later.
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT delivery_id FROM deliveries
             WHERE created_at < $1 AND (lease_until IS NULL OR lease_until <= $2)
             ORDER BY created_at LIMIT $3
             FOR UPDATE SKIP LOCKED",
        )
        .bind(before)
        .bind(now)
        .bind(i64::from(batch))
        .fetch_all(&mut *tx)
        .await?;
        let attempts = sqlx::query("DELETE FROM delivery_attempts WHERE delivery_id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        let deliveries = sqlx::query("DELETE FROM deliveries WHERE delivery_id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        let events = sqlx::query(
            "DELETE FROM events WHERE seq IN (
                 SELECT seq FROM events e
                 WHERE e.created_at < $1 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.event_id)
                 ORDER BY e.created_at LIMIT $2
                 FOR UPDATE SKIP LOCKED)",
        )
        .bind(before)
        .bind(i64::from(batch))
        .execute(&mut *tx)
        .await?;
        // An outbox idempotency key is remembered as long as the history it guards.
        sqlx::query("DELETE FROM hookd_outbox_keys WHERE published_at < $1")
            .bind(before)
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

/// Deliveries to insert, as columns for `UNNEST`.
#[derive(Default)]
pub(super) struct NewDeliveries {
    delivery_ids: Vec<String>,
    event_ids: Vec<String>,
    account_ids: Vec<String>,
    endpoint_ids: Vec<Option<String>>,
    callback_urls: Vec<Option<String>>,
    due_at: Vec<i64>,
}

impl NewDeliveries {
    pub(super) fn push(
        &mut self,
        event: &Event,
        endpoint_id: Option<&str>,
        callback_url: Option<&str>,
        due_at: i64,
    ) {
        self.delivery_ids.push(DeliveryId::new_time_ordered(due_at).to_string());
        self.event_ids.push(event.event_id.to_string());
        self.account_ids.push(event.account_id.to_string());
        self.endpoint_ids.push(endpoint_id.map(str::to_owned));
        self.callback_urls.push(callback_url.map(str::to_owned));
        self.due_at.push(due_at);
    }

    pub(super) fn len(&self) -> usize {
        self.delivery_ids.len()
    }

    /// Inserts them all with one statement and wakes every instance's dispatcher at commit.
    pub(super) async fn insert(self, tx: &mut Transaction<'_, Postgres>) -> StoreResult<()> {
        if self.delivery_ids.is_empty() {
            return Ok(());
        }
        // The notification rides in the insert's statement: one round trip fewer per
        // publish. It is delivered at commit, once per transaction.
        sqlx::query(
            "WITH inserted AS (
                 INSERT INTO deliveries (delivery_id, event_id, account_id, endpoint_id, callback_url, target,
                                         state, next_attempt_at, created_at, updated_at)
                 SELECT d.delivery_id, d.event_id, d.account_id, d.endpoint_id, d.callback_url,
                        COALESCE(d.endpoint_id, d.callback_url), 'pending', d.due_at, d.due_at, d.due_at
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])
                      AS d (delivery_id, event_id, account_id, endpoint_id, callback_url, due_at)
                 RETURNING 1)
             SELECT pg_notify($7, '') WHERE EXISTS (SELECT 1 FROM inserted)",
        )
        .bind(&self.delivery_ids)
        .bind(&self.event_ids)
        .bind(&self.account_ids)
        .bind(&self.endpoint_ids)
        .bind(&self.callback_urls)
        .bind(&self.due_at)
        .bind(NEW_DELIVERIES_CHANNEL)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// Inserts the events and their deliveries inside the caller's transaction; returns
/// how many deliveries each event got.
pub(super) async fn publish_in(
    tx: &mut Transaction<'_, Postgres>,
    events: &[Event],
) -> StoreResult<Vec<usize>> {
    sqlx::query(
        "INSERT INTO events (event_id, account_id, event_type, entity_id, event_data, callback_url,
                             callback_id, created_at, traceparent)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                              $7::text[], $8::bigint[], $9::text[])",
    )
    .bind(events.iter().map(|e| e.event_id.to_string()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.account_id.to_string()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.entity_id.as_deref()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.event_data.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.callback_url.as_deref()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.callback_id.as_deref()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.created_at).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.traceparent.as_deref()).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    // The endpoints of each (account, type, entity), asked once per batch.
    let mut matches: HashMap<(&AccountId, &str, Option<&str>), Vec<String>> = HashMap::new();
    let mut deliveries = NewDeliveries::default();
    let mut counts = Vec::with_capacity(events.len());
    for event in events {
        let key = (&event.account_id, event.event_type.as_str(), event.entity_id.as_deref());
        if let Entry::Vacant(slot) = matches.entry(key) {
            slot.insert(matching_endpoints(tx, event).await?);
        }
        let targets = matches.get(&key).map(Vec::as_slice).unwrap_or_default();
        for endpoint_id in targets {
            deliveries.push(event, Some(endpoint_id), None, event.created_at);
        }
        if let Some(callback_url) = &event.callback_url {
            deliveries.push(event, None, Some(callback_url), event.created_at);
        }
        counts.push(targets.len() + usize::from(event.callback_url.is_some()));
    }
    deliveries.insert(tx).await?;
    Ok(counts)
}

/// Enabled endpoints of the account subscribed to the event's type and, if scoped, to
/// its entity. Catalog names never contain commas, so the comma-wrapped list is an
/// exact membership test. `FOR SHARE` makes a concurrent delete (on any instance)
/// wait for this transaction, so its cancelling of pending deliveries sees ours.
async fn matching_endpoints(tx: &mut Transaction<'_, Postgres>, event: &Event) -> StoreResult<Vec<String>> {
    let targets = sqlx::query_scalar(
        "SELECT endpoint_id FROM endpoints
         WHERE account_id = $1 AND deleted_at IS NULL AND status = 'enabled'
           AND (events IS NULL OR strpos(',' || events || ',', ',' || $2 || ',') > 0)
           AND (entity_id IS NULL OR entity_id = $3)
         ORDER BY seq
         FOR SHARE",
    )
    .bind(event.account_id.as_str())
    .bind(&event.event_type)
    .bind(event.entity_id.as_deref())
    .fetch_all(&mut **tx)
    .await?;
    Ok(targets)
}
