//! What a publish writes on SQLite: the events, and a pending delivery for each
//! enabled endpoint subscribed to one (and for its callback URL). Written once, run
//! by two executors: [`publish_on`] inside the write engine (publish requests, and the
//! operational events a batch of outcomes causes) and [`publish_in`] inside a sqlx
//! transaction (the cold writers: a video's completion, an owner's status change).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use hookd_core::DeliveryId;
use rusqlite::{Connection, params};
use sqlx::{Sqlite, Transaction};

use crate::{Event, StoreResult};

const INSERT_EVENT: &str = "
    INSERT INTO events (event_id, account_id, event_type, entity_id, event_data, callback_url,
                        callback_id, created_at, traceparent)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/// One pending delivery, due at `?6` (also its creation time).
pub(super) const INSERT_DELIVERY: &str = "
    INSERT INTO deliveries (delivery_id, event_id, account_id, endpoint_id, callback_url, target, state,
                            next_attempt_at, created_at, updated_at)
    VALUES (?1, ?2, ?3, ?4, ?5, COALESCE(?4, ?5), 'pending', ?6, ?6, ?6)";

/// Enabled endpoints of the account subscribed to the event's type and, if scoped, to
/// its entity. Catalog names never contain commas, so the comma-wrapped list is an
/// exact membership test (LIKE would treat '_' as a wildcard).
const MATCHING_ENDPOINTS: &str = "
    SELECT endpoint_id FROM endpoints
    WHERE account_id = ?1 AND deleted_at IS NULL AND status = 'enabled'
      AND (events IS NULL OR instr(',' || events || ',', ',' || ?2 || ',') > 0)
      AND (entity_id IS NULL OR entity_id = ?3)
    ORDER BY seq";

/// The endpoints an event goes to depend on its account, type and entity only, so a
/// batch asks once per distinct triple. Endpoints cannot change meanwhile: the
/// transaction holds the write lock.
type Audience<'a> = (&'a str, &'a str, Option<&'a str>);

fn audience(event: &Event) -> Audience<'_> {
    (event.account_id.as_str(), event.event_type.as_str(), event.entity_id.as_deref())
}

/// A delivery to insert: `(event, endpoint id, callback URL)`.
type NewDelivery<'a> = (&'a Event, Option<&'a str>, Option<&'a str>);

/// The deliveries of `events` given each audience's endpoints, and how many each
/// event got (what the publish answers).
fn deliveries<'a>(
    events: &'a [Event],
    endpoints: &'a HashMap<Audience<'a>, Vec<String>>,
) -> (Vec<NewDelivery<'a>>, Vec<usize>) {
    let mut deliveries = Vec::new();
    let mut counts = Vec::with_capacity(events.len());
    for event in events {
        let targets = endpoints.get(&audience(event)).map(Vec::as_slice).unwrap_or_default();
        deliveries.extend(targets.iter().map(|endpoint_id| (event, Some(endpoint_id.as_str()), None)));
        if let Some(callback_url) = &event.callback_url {
            deliveries.push((event, None, Some(callback_url.as_str())));
        }
        counts.push(targets.len() + usize::from(event.callback_url.is_some()));
    }
    (deliveries, counts)
}

/// Inserts the events and their deliveries in the engine's transaction; returns how
/// many deliveries each event got.
pub(super) fn publish_on(connection: &Connection, events: &[Event]) -> StoreResult<Vec<usize>> {
    let mut insert = connection.prepare_cached(INSERT_EVENT)?;
    let mut endpoints = HashMap::new();
    for event in events {
        insert.execute(params![
            event.event_id.as_str(),
            event.account_id.as_str(),
            event.event_type,
            event.entity_id,
            event.event_data,
            event.callback_url,
            event.callback_id,
            event.created_at,
            event.traceparent,
        ])?;
        if let Entry::Vacant(slot) = endpoints.entry(audience(event)) {
            let (account_id, event_type, entity_id) = *slot.key();
            let mut query = connection.prepare_cached(MATCHING_ENDPOINTS)?;
            let ids = query
                .query_map(params![account_id, event_type, entity_id], |row| row.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            slot.insert(ids);
        }
    }
    let (deliveries, counts) = deliveries(events, &endpoints);
    let mut insert = connection.prepare_cached(INSERT_DELIVERY)?;
    for (event, endpoint_id, callback_url) in deliveries {
        insert.execute(params![
            DeliveryId::new_time_ordered(event.created_at).as_str(),
            event.event_id.as_str(),
            event.account_id.as_str(),
            endpoint_id,
            callback_url,
            event.created_at,
        ])?;
    }
    Ok(counts)
}

/// [`publish_on`] inside a sqlx transaction.
pub(super) async fn publish_in(
    tx: &mut Transaction<'_, Sqlite>,
    events: &[Event],
) -> StoreResult<Vec<usize>> {
    let mut endpoints = HashMap::new();
    for event in events {
        sqlx::query(INSERT_EVENT)
            .bind(event.event_id.as_str())
            .bind(event.account_id.as_str())
            .bind(&event.event_type)
            .bind(&event.entity_id)
            .bind(&event.event_data)
            .bind(&event.callback_url)
            .bind(&event.callback_id)
            .bind(event.created_at)
            .bind(&event.traceparent)
            .execute(&mut **tx)
            .await?;
        if let Entry::Vacant(slot) = endpoints.entry(audience(event)) {
            let (account_id, event_type, entity_id) = *slot.key();
            let ids: Vec<String> = sqlx::query_scalar(MATCHING_ENDPOINTS)
                .bind(account_id)
                .bind(event_type)
                .bind(entity_id)
                .fetch_all(&mut **tx)
                .await?;
            slot.insert(ids);
        }
    }
    let (deliveries, counts) = deliveries(events, &endpoints);
    for (event, endpoint_id, callback_url) in deliveries {
        insert_delivery(tx, event, endpoint_id, callback_url, event.created_at).await?;
    }
    Ok(counts)
}

/// Inserts one pending delivery of `event`, due at `due_at`, in a sqlx transaction.
pub(super) async fn insert_delivery(
    tx: &mut Transaction<'_, Sqlite>,
    event: &Event,
    endpoint_id: Option<&str>,
    callback_url: Option<&str>,
    due_at: i64,
) -> StoreResult<()> {
    sqlx::query(INSERT_DELIVERY)
        .bind(DeliveryId::new_time_ordered(due_at).as_str())
        .bind(event.event_id.as_str())
        .bind(event.account_id.as_str())
        .bind(endpoint_id)
        .bind(callback_url)
        .bind(due_at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
