//! The dispatcher loop: claim due deliveries, attempt each, report outcomes.
//!
//! A delivery is claimed with a lease stored in the database, so a crash at any
//! instant loses nothing: an unfinished attempt's delivery becomes due again when its
//! lease lapses. Claims run ahead of the attempts: claimed deliveries wait in a
//! [`RunQueue`] that releases at most `--max-in-flight-per-endpoint` at a time per
//! destination, so when an attempt finishes the next one to the same endpoint starts
//! at once, without a database round trip, and a slow destination cannot hold up the
//! others. New deliveries are claimed at once: publishing wakes the loop through
//! [`Dispatcher::waker`] (and, on a shared database, through the store's feed);
//! otherwise it looks again at the next due time, at least once a second.
//!
//! A failed attempt holds up nothing but its own delivery, which waits for its retry
//! time: the destination's other deliveries go on. Only a destination that fails again
//! and again is set aside, by its circuit breaker ([`crate::breaker`]): its claims are
//! handed back to the database, due when the cooldown ends, and then one probe at a
//! time decides whether it is back.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hookd_core::{AttemptVerdict, DestinationPolicy, RetryPolicy};
use hookd_store::{
    AttemptOutcome, AttemptRecord, ClaimLimits, ClaimedDelivery, NextStep, Store, StoreResult, UnixMillis,
    now_millis,
};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::breaker::{Breakers, Failure, Gate};
use crate::client::{AttemptReport, DeliveryClient};
use crate::queue::RunQueue;
use crate::send::Outgoing;
use crate::writer;

const MAX_IDLE_SLEEP: Duration = Duration::from_secs(1);
/// The shortest wait between claims that found nothing to take although rows are due
/// (every due row's destination is at its cap, or its endpoint is disabled), so such
/// a state costs a few queries a second rather than a busy loop.
const MIN_IDLE_SLEEP: Duration = Duration::from_millis(25);
/// Beyond the attempt timeout, how long a claim stays valid before another worker
/// (or this one after a restart) may take the delivery again.
const LEASE_MARGIN: Duration = Duration::from_secs(15);
/// A claimed delivery is started only if its lease outlasts a whole attempt by this
/// much; otherwise it is left to lapse and be claimed again, so two attempts of one
/// delivery never overlap.
const LEASE_SAFETY: Duration = Duration::from_secs(2);
/// Claimed deliveries per in-flight slot (the run queue's depth).
const CLAIM_AHEAD: usize = 16;
/// How many deliveries one destination may have claimed (waiting or in flight), per
/// unit of its in-flight cap (512 at the default 8). With the defaults it takes 8
/// destinations that are slow but succeeding to fill the queue; one whose breaker
/// opens has its waiting deliveries handed back, so it holds no room.
const CLAIM_AHEAD_PER_DESTINATION: u32 = 64;

/// Gives every series the dispatcher exports a value from the start, so dashboards
/// and alert rules find it before the first event that moves it (a breaker's first
/// trip, say). Call once the metrics recorder is installed.
pub fn register_metrics() {
    metrics::gauge!("hookd_destinations_paused").set(0.0);
    metrics::counter!("hookd_breaker_trips_total").increment(0);
    metrics::counter!("hookd_claims_deferred_total").increment(0);
    metrics::counter!("hookd_claims_expired_total").increment(0);
    for outcome in ["delivered", "failed"] {
        metrics::counter!("hookd_deliveries_total", "outcome" => outcome).increment(0);
    }
    for result in ["success", "http_error", "no_response"] {
        metrics::counter!("hookd_attempts_total", "result" => result).increment(0);
    }
}

/// How the dispatcher runs.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    pub retry: RetryPolicy,
    pub attempt_timeout: Duration,
    pub destinations: DestinationPolicy,
    /// Attempts in flight at once, over all destinations.
    pub max_in_flight: usize,
    /// Attempts in flight at once to one endpoint (or callback URL), per instance.
    pub max_in_flight_per_endpoint: u32,
    /// An endpoint failing without a success for this long is disabled.
    pub disable_after: Duration,
    /// Send receivers a `traceparent` naming the attempt's span (when traces are
    /// exported). Off by default: a receiver learns nothing of hookd's traces.
    pub send_traceparent: bool,
}

/// Sends due deliveries until shut down.
pub struct Dispatcher {
    store: Arc<dyn Store>,
    client: DeliveryClient,
    config: DispatcherConfig,
    wake: Arc<Notify>,
}

/// A claimed delivery waiting in the run queue, with when its lease lapses.
struct Claimed {
    delivery: ClaimedDelivery,
    lease_until: UnixMillis,
}

type Claim = Pin<Box<dyn Future<Output = (StoreResult<Vec<ClaimedDelivery>>, UnixMillis, usize)> + Send>>;

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

    /// One pass driven by the caller instead of the clock: claims every delivery due
    /// at `now`, attempts each in turn (real HTTP), and records the outcomes, with
    /// `now` as the attempts' time and the base of their retry times. For tests about
    /// what happens rather than when: calling it again with a later `now` walks a
    /// retry schedule without waiting for it. Not to be mixed with [`Self::run`] on
    /// the same database. Returns how many attempts it made.
    pub async fn step(&self, now: UnixMillis) -> StoreResult<usize> {
        let lease = self.config.attempt_timeout + LEASE_MARGIN;
        let lease_until = now + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let claimed = self.store.claim_due(now, self.claim_limits(u32::MAX), lease_until).await?;
        let mut outcomes = Vec::with_capacity(claimed.len());
        for delivery in claimed {
            outcomes.push(attempt_delivery(&self.client, &self.config, delivery, Clock::Fixed(now)).await);
        }
        if !outcomes.is_empty() {
            let disable_after = i64::try_from(self.config.disable_after.as_millis()).unwrap_or(i64::MAX);
            self.store.record_outcomes(&outcomes, now.saturating_sub(disable_after)).await?;
        }
        Ok(outcomes.len())
    }

    /// Claims and sends until `shutdown`, then lets attempts in flight finish (they
    /// are bounded by the attempt timeout) and their outcomes be written. Claimed
    /// deliveries not yet started are released.
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
        let mut queue: RunQueue<Claimed> = RunQueue::new(self.config.max_in_flight_per_endpoint);
        let mut breakers = Breakers::default();
        let mut attempts: JoinSet<(String, bool)> = JoinSet::new();
        let mut claim: Option<Claim> = None;
        let mut claim_at = Instant::now();
        let queue_depth = self.config.max_in_flight * CLAIM_AHEAD;

        while !shutdown.is_cancelled() {
            self.start_attempts(&mut queue, &mut attempts, &outcome_sender);
            let room = queue_depth.saturating_sub(queue.waiting() + queue.in_flight());
            // Claim when a batch's worth of room is free (or the queue is idle), so
            // claims stay large while the queue drains.
            let worth_it = room >= queue_depth / 4 || queue.waiting() == 0;
            let wants_claim = claim.is_none() && worth_it && room > 0;
            if wants_claim && Instant::now() >= claim_at {
                claim = Some(self.claim(room));
            }
            tokio::select! {
                Some(finished) = attempts.join_next(), if !attempts.is_empty() => {
                    if let Ok((target, succeeded)) = finished {
                        queue.finish(&target);
                        self.judge_destination(&target, succeeded, &mut breakers, &mut queue);
                    }
                }
                (claimed, lease_until, asked) = async { claim.as_mut().expect("guarded").await }, if claim.is_some() => {
                    claim = None;
                    self.store.availability().observe(&claimed);
                    claim_at = match claimed {
                        Ok(claimed) => {
                            let got = claimed.len();
                            let now = Instant::now();
                            let mut set_aside: Vec<(Instant, Claimed)> = Vec::new();
                            for delivery in claimed {
                                let target = target_of(&delivery);
                                let claimed = Claimed { delivery, lease_until };
                                match breakers.gate(&target, now) {
                                    Gate::Closed => queue.push(target, claimed),
                                    Gate::HalfOpen => {
                                        queue.set_cap(&target, Some(1));
                                        queue.push(target, claimed);
                                    }
                                    Gate::Open { until } => set_aside.push((until, claimed)),
                                }
                            }
                            self.hand_back(set_aside);
                            // A full claim means more may be due right now.
                            if got == asked { Instant::now() } else { Instant::now() + self.idle().await }
                        }
                        Err(error) => {
                            // An outage is logged once, by `availability`; anything else
                            // each time.
                            if !error.is_unavailable() {
                                tracing::warn!(error = %error, "could not claim due deliveries");
                            }
                            Instant::now() + MAX_IDLE_SLEEP
                        }
                    };
                }
                () = self.wake.notified() => claim_at = Instant::now(),
                // Recorded outcomes release leases, and with them room under the caps.
                () = recorded.notified() => claim_at = Instant::now(),
                // Only while a claim is wanted: with the queue full, a due time in the
                // past would make this arm ready at once and the loop spin.
                () = tokio::time::sleep_until(claim_at), if wants_claim && claim.is_none() => {}
                () = shutdown.cancelled() => {}
            }
        }
        // Claimed but never started: give them back, so another instance (or the next
        // start) sends them now rather than when the leases lapse.
        let unstarted: Vec<_> =
            queue.drain_waiting().into_iter().map(|c| (c.delivery.delivery_id, c.lease_until)).collect();
        if !unstarted.is_empty() {
            match self.store.release_claims(&unstarted, now_millis()).await {
                Ok(released) => tracing::info!(released, "claimed deliveries not started were released"),
                Err(error) => {
                    tracing::warn!(error = %error, "could not release claims; they lapse with their leases")
                }
            }
        }
        while attempts.join_next().await.is_some() {}
        drop(outcome_sender);
        let _ = writer.await;
        let _ = feed.await;
    }

    /// Feeds an attempt's result to its destination's breaker; when the breaker opens,
    /// the destination's waiting deliveries go back to the database, due when the
    /// cooldown ends, so they hold no room and nothing is sent to it meanwhile.
    fn judge_destination(
        &self,
        target: &str,
        succeeded: bool,
        breakers: &mut Breakers,
        queue: &mut RunQueue<Claimed>,
    ) {
        let now = Instant::now();
        if succeeded {
            if breakers.succeeded(target) {
                queue.set_cap(target, None);
                tracing::info!(destination = %target, "destination answers again; sending at full speed");
                metrics::gauge!("hookd_destinations_paused").set(breakers.open_count(now) as f64);
            }
            return;
        }
        if let Failure::Tripped { until } = breakers.failed(target, now) {
            tracing::info!(
                destination = %target,
                cooldown_ms = until.duration_since(now).as_millis() as u64,
                "destination keeps failing; pausing it, then probing one attempt at a time"
            );
            metrics::counter!("hookd_breaker_trips_total").increment(1);
            queue.set_cap(target, Some(1));
            let waiting = queue.purge(target).into_iter().map(|claimed| (until, claimed)).collect();
            self.hand_back(waiting);
        }
        metrics::gauge!("hookd_destinations_paused").set(breakers.open_count(now) as f64);
    }

    /// Releases claims whose destination's breaker is open, each due when its cooldown
    /// ends. In a task of its own: the loop does not wait for the database. If it
    /// fails, the leases lapse and the deliveries are due then, which is later but
    /// loses nothing.
    fn hand_back(&self, set_aside: Vec<(Instant, Claimed)>) {
        if set_aside.is_empty() {
            return;
        }
        metrics::counter!("hookd_claims_deferred_total").increment(set_aside.len() as u64);
        let (now, now_ms) = (Instant::now(), now_millis());
        let mut by_due: std::collections::BTreeMap<UnixMillis, Vec<_>> = std::collections::BTreeMap::new();
        for (until, claimed) in set_aside {
            let wait = i64::try_from(until.saturating_duration_since(now).as_millis()).unwrap_or(i64::MAX);
            let due_at = now_ms.saturating_add(wait);
            by_due.entry(due_at).or_default().push((claimed.delivery.delivery_id, claimed.lease_until));
        }
        let store = self.store.clone();
        tokio::spawn(async move {
            for (due_at, claims) in by_due {
                if let Err(error) = store.release_claims(&claims, due_at).await {
                    tracing::warn!(error = %error, "could not hand back claims; they are due when their leases lapse");
                }
            }
        });
    }

    /// Starts what the run queue releases, within the global cap.
    fn start_attempts(
        &self,
        queue: &mut RunQueue<Claimed>,
        attempts: &mut JoinSet<(String, bool)>,
        outcomes: &mpsc::UnboundedSender<AttemptOutcome>,
    ) {
        let must_outlast = self.config.attempt_timeout + LEASE_SAFETY;
        let must_outlast_ms = i64::try_from(must_outlast.as_millis()).unwrap_or(i64::MAX);
        while attempts.len() < self.config.max_in_flight {
            let Some((target, claimed)) = queue.start_next() else { break };
            if claimed.lease_until - now_millis() < must_outlast_ms {
                // Waited too long behind its destination's other deliveries: the lease
                // could lapse mid-attempt. Leave it to be claimed again.
                metrics::counter!("hookd_claims_expired_total").increment(1);
                queue.finish(&target);
                continue;
            }
            let attempt = self.attempt(claimed.delivery, outcomes.clone());
            attempts.spawn(async move { (target, attempt.await) });
        }
    }

    fn claim(&self, room: usize) -> Claim {
        let store = self.store.clone();
        let lease = self.config.attempt_timeout + LEASE_MARGIN;
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let limits = self.claim_limits(u32::try_from(room).unwrap_or(u32::MAX));
        Box::pin(async move {
            let now = now_millis();
            let lease_until = now + lease_ms;
            (store.claim_due(now, limits, lease_until).await, lease_until, room)
        })
    }

    /// Claims run ahead of attempts, except to a rate-limited endpoint: what its limit
    /// admits now must start now, not wait in the run queue and go out in a bunch
    /// later, so it gets no more claims than it may have in flight.
    fn claim_limits(&self, total: u32) -> ClaimLimits {
        let in_flight_cap = self.config.max_in_flight_per_endpoint;
        ClaimLimits {
            total,
            per_target: in_flight_cap.saturating_mul(CLAIM_AHEAD_PER_DESTINATION),
            per_rate_limited_target: in_flight_cap,
        }
    }

    /// How long to wait before looking again when nothing more could be claimed.
    async fn idle(&self) -> Duration {
        self.time_until_next_due().await.max(MIN_IDLE_SLEEP)
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
    ) -> impl Future<Output = bool> + Send + 'static {
        let client = self.client.clone();
        let config = self.config.clone();
        async move {
            let outcome = attempt_delivery(&client, &config, delivery, Clock::Wall).await;
            let succeeded = outcome.next == NextStep::Delivered;
            // The writer only stops after every sender is gone, so this cannot fail
            // while the dispatcher runs.
            let _ = outcomes.send(outcome);
            succeeded
        }
    }
}

/// What an attempt reads the time from: the wall clock, or (in [`Dispatcher::step`]) a
/// time the caller chose, so a test can move through a retry schedule at once.
#[derive(Debug, Clone, Copy)]
enum Clock {
    Wall,
    Fixed(UnixMillis),
}

impl Clock {
    fn now(self) -> UnixMillis {
        match self {
            Self::Wall => now_millis(),
            Self::Fixed(at) => at,
        }
    }
}

/// One attempt of one claimed delivery, judged by the retry policy, in a span of its
/// own: a child of the publish that stored the event, when traces are exported.
async fn attempt_delivery(
    client: &DeliveryClient,
    config: &DispatcherConfig,
    delivery: ClaimedDelivery,
    clock: Clock,
) -> AttemptOutcome {
    let span = tracing::info_span!(
        "delivery attempt",
        delivery_id = %delivery.delivery_id,
        event_id = %delivery.event_id,
        endpoint_id = delivery.endpoint_id.as_ref().map(ToString::to_string),
        attempt = delivery.attempts_made + 1,
        status_code = tracing::field::Empty,
        error = tracing::field::Empty,
        duration_ms = tracing::field::Empty,
    );
    crate::trace_context::set_parent(&span, delivery.traceparent.as_deref());
    let outcome = attempt_in_span(client, config, delivery, clock).instrument(span.clone()).await;
    if let Some(status) = outcome.attempt.status_code {
        span.record("status_code", status);
    }
    if let Some(error) = &outcome.attempt.error {
        span.record("error", error.as_str());
    }
    span.record("duration_ms", outcome.attempt.duration_ms);
    outcome
}

async fn attempt_in_span(
    client: &DeliveryClient,
    config: &DispatcherConfig,
    delivery: ClaimedDelivery,
    clock: Clock,
) -> AttemptOutcome {
    let attempted_at = clock.now();
    let traceparent = config.send_traceparent.then(crate::trace_context::current_traceparent).flatten();
    let outgoing = Outgoing {
        url: &delivery.url,
        event_id: delivery.event_id.as_str(),
        event_type: &delivery.event_type,
        event_data: &delivery.event_data,
        secret: delivery.secret.as_ref(),
        // Signed now, so the overlap is judged now, not when the delivery was claimed.
        previous_secret: delivery
            .previous_secret
            .as_ref()
            .filter(|(_, until)| *until > attempted_at)
            .map(|(secret, _)| secret),
        traceparent: traceparent.as_deref(),
    };
    let report = client.send(outgoing, attempted_at / 1000).await;
    let attempt_number = delivery.attempts_made + 1;
    let verdict = config.retry.judge(attempt_number, report.status, report.retry_after.as_deref(), jitter());
    let next = match verdict {
        AttemptVerdict::Delivered => NextStep::Delivered,
        AttemptVerdict::RetryAfter(delay) => {
            NextStep::RetryAt(clock.now() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX))
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

/// Who shares a per-destination cap: the endpoint, or the callback URL.
fn target_of(delivery: &ClaimedDelivery) -> String {
    match &delivery.endpoint_id {
        Some(endpoint_id) => endpoint_id.to_string(),
        None => delivery.url.clone(),
    }
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
                    if error.is_unavailable() {
                        // Part of an outage, which is logged once.
                        store.availability().unavailable(&error);
                    } else {
                        tracing::warn!(error = %error, "lost the new-deliveries feed; reconnecting");
                    }
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
