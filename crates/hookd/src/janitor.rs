//! Periodic housekeeping: forgets idempotency records past their 24-hour window and
//! prunes history past `--retention`. On a shared database every instance runs it;
//! the store's advisory locks make one of them do each duty per round.

use std::sync::Arc;
use std::time::Duration;

use hookd_store::{Store, StoreResult, now_millis};
use tokio_util::sync::CancellationToken;

const EVERY: Duration = Duration::from_secs(300);
const IDEMPOTENCY_RETENTION_MS: i64 = 24 * 3_600_000;
/// Ended portal sessions are kept this long past their end.
const PORTAL_SESSION_RETENTION_MS: i64 = 24 * 3_600_000;
/// Rows per retention transaction: small enough that no lock is held for long.
const PRUNE_BATCH: u32 = 1_000;
/// A breath between batches, so pruning a large backlog does not crowd out deliveries.
const BETWEEN_BATCHES: Duration = Duration::from_millis(20);

pub struct Janitor {
    pub store: Arc<dyn Store>,
    /// Zero keeps history forever.
    pub retention: Duration,
}

impl Janitor {
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(EVERY) => {}
            }
            let expire_before = now_millis() - IDEMPOTENCY_RETENTION_MS;
            match self.store.prune_idempotency(expire_before).await {
                Ok(0) => {}
                Ok(pruned) => tracing::debug!(pruned, "expired idempotency records removed"),
                Err(error) => tracing::warn!(error = %error, "could not prune idempotency records"),
            }
            // A portal session is kept a day past its end, so a revocation or an
            // expired link can still be told apart from an unknown one meanwhile.
            match self.store.prune_portal_sessions(now_millis() - PORTAL_SESSION_RETENTION_MS).await {
                Ok(0) => {}
                Ok(pruned) => tracing::debug!(pruned, "ended portal sessions removed"),
                Err(error) => tracing::warn!(error = %error, "could not prune portal sessions"),
            }
            if self.retention.is_zero() {
                continue;
            }
            if let Err(error) = self.prune_history(&shutdown).await {
                tracing::warn!(error = %error, "could not prune old history");
            }
        }
    }

    async fn prune_history(&self, shutdown: &CancellationToken) -> StoreResult<()> {
        let retention_ms = i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX);
        let (mut events, mut deliveries) = (0, 0);
        while !shutdown.is_cancelled() {
            let now = now_millis();
            let pruned = self.store.prune_history(now.saturating_sub(retention_ms), now, PRUNE_BATCH).await?;
            events += pruned.events;
            deliveries += pruned.deliveries;
            if pruned.is_less_than(PRUNE_BATCH) {
                break;
            }
            tokio::time::sleep(BETWEEN_BATCHES).await;
        }
        if events + deliveries > 0 {
            tracing::info!(events, deliveries, "history older than the retention period pruned");
            metrics::counter!("hookd_pruned_events_total").increment(events);
            metrics::counter!("hookd_pruned_deliveries_total").increment(deliveries);
        }
        Ok(())
    }
}
