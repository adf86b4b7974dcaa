//! Group commit of attempt outcomes: whatever has queued up while the previous batch
//! was being written goes into the next single transaction, so throughput is not bound
//! by one disk sync per attempt.

use std::sync::Arc;
use std::time::Duration;

use hookd_store::{AttemptOutcome, Store};
use tokio::sync::{Notify, mpsc};

const MAX_BATCH: usize = 512;
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Runs until every sender is dropped and the queue is drained. Notifies `recorded`
/// after each commit: that is when the recorded deliveries' leases are released, so
/// the dispatcher can claim more for the same destinations.
pub(crate) async fn run(
    store: Arc<dyn Store>,
    mut outcomes: mpsc::UnboundedReceiver<AttemptOutcome>,
    disable_after: Duration,
    recorded: Arc<Notify>,
) {
    let disable_after_ms = i64::try_from(disable_after.as_millis()).unwrap_or(i64::MAX);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while outcomes.recv_many(&mut batch, MAX_BATCH).await > 0 {
        loop {
            let disable_before = hookd_store::now_millis().saturating_sub(disable_after_ms);
            let recorded = store.record_outcomes(&batch, disable_before).await;
            store.availability().observe(&recorded);
            match recorded {
                Ok(()) => break,
                Err(error) => {
                    // Keep the batch and try again: until it is written the leases
                    // protect these deliveries, and once they lapse the worst case is
                    // a repeated attempt, never a lost one. An outage is logged once,
                    // by `availability`.
                    if !error.is_unavailable() {
                        tracing::warn!(error = %error, batch = batch.len(), "could not record attempt outcomes; retrying");
                    }
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
        metrics::histogram!("hookd_outcome_batch_size").record(batch.len() as f64);
        batch.clear();
        recorded.notify_one();
    }
}
