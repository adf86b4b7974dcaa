//! The dispatcher loop: claim due deliveries, attempt each, report outcomes.
//!
//! A delivery is claimed with a lease stored in the database, so a crash at any
//! instant loses nothing: an unfinished attempt's delivery becomes due again when its
//! lease lapses. New deliveries are sent at once: publishing wakes the loop through
//! [`Dispatcher::waker`]; otherwise it sleeps until the next due time (at most a
//! second). A slow destination cannot hold up others: each has an in-flight cap
//! inside the global one.

use std::sync::Arc;
use std::time::Duration;

use hookd_core::{AttemptVerdict, DestinationPolicy, RetryPolicy};
use hookd_signature::Signer;
use hookd_store::{AttemptOutcome, AttemptRecord, ClaimedDelivery, NextStep, Store, now_millis};
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::client::{AttemptReport, DeliveryClient};
use crate::{payload, writer};

const MAX_IDLE_SLEEP: Duration = Duration::from_secs(1);
/// The shortest wait between claims that found nothing to take although rows are due
/// (every due row's destination is at its cap, or its endpoint is disabled), so such
/// a state costs a few queries a second rather than a busy loop.
const MIN_IDLE_SLEEP: Duration = Duration::from_millis(25);
/// Beyond the attempt timeout, how long a claim stays valid before another worker
/// (or this one after a restart) may take the delivery again.
const LEASE_MARGIN: Duration = Duration::from_secs(15);

/// How the dispatcher runs.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    pub retry: RetryPolicy,
    pub attempt_timeout: Duration,
    pub destinations: DestinationPolicy,
    /// Attempts in flight at once, over all destinations.
    pub max_in_flight: usize,
    /// Attempts in flight at once to one endpoint (or callback URL).
    pub max_in_flight_per_endpoint: u32,
    /// An endpoint failing without a success for this long is disabled.
    pub disable_after: Duration,
}

/// Sends due deliveries until shut down.
pub struct Dispatcher {
    store: Arc<dyn Store>,
    client: DeliveryClient,
    config: DispatcherConfig,
    wake: Arc<Notify>,
}

impl Dispatcher {
    pub fn new(store: Arc<dyn Store>, config: DispatcherConfig) -> Result<Self, reqwest::Error> {
        let client = DeliveryClient::new(config.destinations.clone(), config.attempt_timeout)?;
        Ok(Self { store, client, config, wake: Arc::new(Notify::new()) })
    }

    /// Notify it after committing new deliveries to send them at once.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// The client, for one-off attempts (the endpoint `test` route).
    pub fn client(&self) -> DeliveryClient {
        self.client.clone()
    }

    /// Claims and sends until `shutdown`, then lets attempts in flight finish (they
    /// are bounded by the attempt timeout) and their outcomes be written.
    pub async fn run(self, shutdown: CancellationToken) {
        let (outcome_sender, outcomes) = mpsc::unbounded_channel();
        let recorded = Arc::new(Notify::new());
        let writer = tokio::spawn(writer::run(
            self.store.clone(),
            outcomes,
            self.config.disable_after,
            recorded.clone(),
        ));
        let feed = tokio::spawn(forward_signals(self.store.clone(), self.wake.clone(), shutdown.clone()));
        let slots = Arc::new(Semaphore::new(self.config.max_in_flight));
        let mut attempts = JoinSet::new();
        let lease = self.config.attempt_timeout + LEASE_MARGIN;
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);

        while !shutdown.is_cancelled() {
            while attempts.try_join_next().is_some() {}
            let free = slots.available_permits();
            let mut claimed_all_we_could = false;
            if free > 0 {
                let now = now_millis();
                let limit = u32::try_from(free).unwrap_or(u32::MAX);
                match self
                    .store
                    .claim_due(now, limit, self.config.max_in_flight_per_endpoint, now + lease_ms)
                    .await
                {
                    Ok(claimed) => {
                        claimed_all_we_could = claimed.len() == free;
                        for delivery in claimed {
                            let Ok(slot) = slots.clone().try_acquire_owned() else { break };
                            let attempt = self.attempt(delivery, outcome_sender.clone());
                            attempts.spawn(async move {
                                attempt.await;
                                drop(slot);
                            });
                        }
                    }
                    Err(error) => tracing::warn!(error = %error, "could not claim due deliveries"),
                }
            }
            if claimed_all_we_could && slots.available_permits() > 0 {
                // There may be more due right now.
                continue;
            }
            // Wait for something that can make more claimable: new deliveries, recorded
            // outcomes (which release leases and slots), or the next due time.
            let idle = self.time_until_next_due().await.max(MIN_IDLE_SLEEP);
            tokio::select! {
                () = self.wake.notified() => {}
                () = recorded.notified() => {}
                () = tokio::time::sleep(idle) => {}
                () = shutdown.cancelled() => {}
            }
        }
        while attempts.join_next().await.is_some() {}
        drop(outcome_sender);
        let _ = writer.await;
        let _ = feed.await;
    }

    async fn time_until_next_due(&self) -> Duration {
        match self.store.next_due_at().await {
            Ok(Some(due_at)) => {
                let wait = u64::try_from(due_at.saturating_sub(now_millis())).unwrap_or(0);
                Duration::from_millis(wait).min(MAX_IDLE_SLEEP)
            }
            Ok(None) => MAX_IDLE_SLEEP,
            Err(error) => {
                tracing::warn!(error = %error, "could not read the next due time");
                MAX_IDLE_SLEEP
            }
        }
    }

    fn attempt(
        &self,
        delivery: ClaimedDelivery,
        outcomes: mpsc::UnboundedSender<AttemptOutcome>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let client = self.client.clone();
        let retry = self.config.retry.clone();
        async move {
            let outcome = attempt_delivery(&client, &retry, delivery).await;
            // The writer only stops after every sender is gone, so this cannot fail
            // while the dispatcher runs.
            let _ = outcomes.send(outcome);
        }
    }
}

/// One attempt of one claimed delivery, judged by the retry policy.
#[tracing::instrument(skip_all, fields(delivery_id = %delivery.delivery_id, event_id = %delivery.event_id))]
async fn attempt_delivery(
    client: &DeliveryClient,
    retry: &RetryPolicy,
    delivery: ClaimedDelivery,
) -> AttemptOutcome {
    let attempted_at = now_millis();
    let body = payload::body(&delivery.event_type, &delivery.event_data);
    let report = match delivery.secret.as_ref().map(|secret| Signer::new(secret.expose())).transpose() {
        Ok(signer) => {
            let headers =
                payload::headers(delivery.event_id.as_str(), attempted_at / 1000, &body, signer.as_ref());
            client.attempt(&delivery.url, &headers, body).await
        }
        // Never send an endpoint's delivery unsigned; hookd only stores well-formed
        // secrets, so this means the database was edited by hand.
        Err(_) => AttemptReport::refused("the endpoint's secret is unusable; rotate it"),
    };
    let attempt_number = delivery.attempts_made + 1;
    let verdict = retry.judge(attempt_number, report.status, report.retry_after.as_deref(), jitter());
    let next = match verdict {
        AttemptVerdict::Delivered => NextStep::Delivered,
        AttemptVerdict::RetryAfter(delay) => {
            NextStep::RetryAt(now_millis() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX))
        }
        AttemptVerdict::GiveUp => NextStep::Failed,
    };
    record_metrics(&report, next);
    if let Some(error) = &report.error {
        tracing::info!(attempt = attempt_number, error = %error, "delivery attempt failed");
    }
    AttemptOutcome {
        delivery_id: delivery.delivery_id,
        endpoint_id: delivery.endpoint_id,
        attempt: AttemptRecord {
            attempted_at,
            status_code: report.status,
            duration_ms: i64::try_from(report.duration.as_millis()).unwrap_or(i64::MAX),
            error: report.error,
            response_body: report.response_body,
        },
        next,
    }
}

fn record_metrics(report: &AttemptReport, next: NextStep) {
    let result = match report.status {
        Some(status) if (200..300).contains(&status) => "success",
        Some(_) => "http_error",
        None => "no_response",
    };
    metrics::counter!("hookd_attempts_total", "result" => result).increment(1);
    metrics::histogram!("hookd_attempt_duration_seconds").record(report.duration.as_secs_f64());
    let outcome = match next {
        NextStep::Delivered => "delivered",
        NextStep::Failed => "failed",
        NextStep::RetryAt(_) => return,
    };
    metrics::counter!("hookd_deliveries_total", "outcome" => outcome).increment(1);
}

/// A number in [-1, 1] from the OS CSPRNG, for retry jitter.
fn jitter() -> f64 {
    let bytes = hookd_core::random::random_bytes::<4>();
    f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX) * 2.0 - 1.0
}

/// On a shared database, wakes the loop when another instance commits new deliveries,
/// so they are sent at once rather than at the next poll.
async fn forward_signals(store: Arc<dyn Store>, wake: Arc<Notify>, shutdown: CancellationToken) {
    let mut feed = loop {
        match store.watch_new_deliveries().await {
            Ok(Some(feed)) => break feed,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(error = %error, "could not listen for new deliveries; polling meanwhile");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(MAX_IDLE_SLEEP) => {}
                }
            }
        }
    };
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            signal = feed.next() => {
                if let Err(error) = signal {
                    tracing::warn!(error = %error, "lost the new-deliveries feed; reconnecting");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(MAX_IDLE_SLEEP) => {}
                    }
                }
                wake.notify_one();
            }
        }
    }
}
