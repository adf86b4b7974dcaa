//! Scenario d's backlog: events written straight through hookd's storage layer while
//! hookd is stopped, in batches of `--batch`, with the same `publish_events` that the
//! operator API commits with (the event and its deliveries in one transaction). A
//! backlog cannot be built through the API: hookd sends as fast as it accepts, and
//! disabled endpoints get no new deliveries.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use hookd_core::{AccountId, EventId, MasterKey, SecretSealer};
use hookd_store::{Event, PostgresOptions, PostgresStore, SqliteStore, Store};

use crate::Args;
use crate::receiver::now_us;

/// Queues `args.events` events for `account`; returns their ids.
pub async fn queue(
    args: &Args,
    data_dir: &Path,
    database_url: Option<&str>,
    account: &str,
) -> anyhow::Result<Vec<String>> {
    // The key hookd generated at its first start, so it can read what is written here.
    let key = std::fs::read_to_string(data_dir.join("master-key")).context("hookd's master key")?;
    let sealer = SecretSealer::new(&MasterKey::from_hex(&key)?);
    let store: Arc<dyn Store> = match database_url {
        Some(url) => Arc::new(PostgresStore::connect(url, &PostgresOptions::default(), sealer).await?),
        None => Arc::new(SqliteStore::open(&data_dir.join("hookd.db"), sealer).await?),
    };
    let account_id = AccountId::parse(account).context("the default account id")?;
    let padding = "x".repeat(args.payload);
    let mut queued = Vec::with_capacity(args.events);
    while queued.len() < args.events {
        let size = (args.events - queued.len()).min(args.batch);
        let events: Vec<Event> = (0..size)
            .map(|_| {
                let sent_at = now_us();
                let created_at = sent_at / 1000;
                Event {
                    event_id: EventId::new_time_ordered(created_at),
                    account_id: account_id.clone(),
                    event_type: "avatar_video.success".into(),
                    entity_id: None,
                    event_data: serde_json::json!({"sent_at_us": sent_at, "pad": padding}).to_string(),
                    callback_url: None,
                    callback_id: None,
                    created_at,
                    traceparent: None,
                }
            })
            .collect();
        store.publish_events(&events).await?;
        queued.extend(events.into_iter().map(|event| event.event_id.to_string()));
        if queued.len() % 100_000 == 0 {
            eprint!("\rqueued {}/{}", queued.len(), args.events);
        }
    }
    store.close().await;
    Ok(queued)
}
