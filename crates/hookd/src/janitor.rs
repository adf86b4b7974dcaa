//! Periodic housekeeping: forgets idempotency records past their 24-hour window.

use std::sync::Arc;
use std::time::Duration;

use hookd_store::Store;
use tokio_util::sync::CancellationToken;

const EVERY: Duration = Duration::from_secs(600);
const IDEMPOTENCY_RETENTION_MS: i64 = 24 * 3_600_000;

pub async fn run(store: Arc<dyn Store>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(EVERY) => {}
        }
        let expire_before = hookd_store::now_millis() - IDEMPOTENCY_RETENTION_MS;
        match store.prune_idempotency(expire_before).await {
            Ok(0) => {}
            Ok(pruned) => tracing::debug!(pruned, "expired idempotency records removed"),
            Err(error) => tracing::warn!(error = %error, "could not prune idempotency records"),
        }
    }
}
