//! The outbox consumer (docs/outbox.md): on PostgreSQL, every instance publishes the
//! rows producers commit to `hookd_outbox`, woken by the table's `NOTIFY` and polling
//! once a second in case a notification was missed (a lost `LISTEN` connection). The
//! store's transaction makes each row published exactly once, whichever instance takes
//! it and whenever one dies.

use std::sync::Arc;
use std::time::Duration;

use hookd_core::PublicationRules;
use hookd_store::{OutboxDrained, OutboxStore, Store, now_millis};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Rows per transaction: large enough that round trips are shared, small enough that
/// a transaction holds its row locks briefly.
const BATCH: u32 = 500;
/// The safety net under `NOTIFY`.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// How long to wait after the database failed before trying again.
const AFTER_FAILURE: Duration = Duration::from_secs(1);

pub struct OutboxConsumer {
    pub store: Arc<dyn Store>,
    pub outbox: Arc<dyn OutboxStore>,
    pub rules: PublicationRules,
    /// The dispatcher's waker: the new deliveries are sent at once.
    pub wake_dispatcher: Arc<Notify>,
}

impl OutboxConsumer {
    pub async fn run(self, shutdown: CancellationToken) {
        let committed = Arc::new(Notify::new());
        tokio::spawn(relay_commits(self.outbox.clone(), committed.clone(), shutdown.clone()));
        while !shutdown.is_cancelled() {
            match self.outbox.drain_outbox(&self.rules, BATCH, now_millis()).await {
                Ok(drained) => {
                    self.store.availability().answered();
                    record(&drained);
                    if drained.published > 0 {
                        self.wake_dispatcher.notify_one();
                    }
                    // A full batch means more rows may be waiting behind it.
                    if drained.taken == BATCH as usize {
                        continue;
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = committed.notified() => {}
                        () = tokio::time::sleep(POLL_EVERY) => {}
                    }
                }
                Err(error) => {
                    if error.is_unavailable() {
                        // Part of an outage, which is logged once.
                        self.store.availability().unavailable(&error);
                    } else {
                        tracing::warn!(error = %hookd_store::error_chain(&error), "could not drain the outbox");
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(AFTER_FAILURE) => {}
                    }
                }
            }
        }
    }
}

fn record(drained: &OutboxDrained) {
    let rows = |result: &'static str, count: usize| {
        metrics::counter!("hookd_outbox_rows_total", "result" => result).increment(count as u64);
    };
    rows("published", drained.published);
    rows("duplicate", drained.duplicates);
    rows("rejected", drained.rejected.len());
    if drained.published > 0 {
        metrics::counter!("hookd_events_published_total").increment(drained.published as u64);
    }
    for rejected in &drained.rejected {
        tracing::warn!(outbox_id = rejected.id, reason = %rejected.reason, "outbox row rejected");
    }
    if drained.duplicates > 0 {
        tracing::info!(
            rows = drained.duplicates,
            "outbox rows repeating a published idempotency key removed"
        );
    }
}

/// Turns each producer's commit into a wake-up of the drain loop. While `LISTEN`
/// cannot be set up, the drain loop's polling carries on alone.
async fn relay_commits(outbox: Arc<dyn OutboxStore>, committed: Arc<Notify>, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let mut feed = match outbox.watch_outbox().await {
            Ok(feed) => feed,
            Err(error) => {
                tracing::debug!(error = %error, "could not listen for outbox rows; polling meanwhile");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(AFTER_FAILURE) => continue,
                }
            }
        };
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                signal = feed.next() => {
                    committed.notify_one();
                    if signal.is_err() {
                        // Reconnect after a pause rather than spin on a dead server.
                        tokio::time::sleep(AFTER_FAILURE).await;
                        break;
                    }
                }
            }
        }
    }
}
