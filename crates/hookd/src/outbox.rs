//! The outbox consumer (docs/outbox.md): on PostgreSQL, every instance publishes the
//! rows producers commit to `hookd_outbox`. It drains until the table is empty and
//! keeps looking every 10 ms for a second after the last row; then it asks for a
//! `NOTIFY` (the table's trigger sends one only while some consumer asked, since a
//! notifying commit is serialized with every other) and sleeps until one comes,
//! polling every 250 ms in case one was missed. The store's transaction makes
//! each row published exactly once, whichever instance takes it and whenever one dies.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hookd_core::PublicationRules;
use hookd_store::{OutboxDrained, OutboxStore, Store, now_millis};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Rows per transaction: large enough that round trips are shared, small enough that
/// a transaction holds its row locks briefly.
const BATCH: u32 = 500;
/// The safety net under `NOTIFY`: a row whose producer read "nobody waits" just
/// before a consumer went to sleep is found by the next poll.
const POLL_EVERY: Duration = Duration::from_millis(250);
/// After rows were found, how long the consumer keeps polling, and how often, before
/// it asks producers to notify it again. A busy outbox is drained without any
/// producer paying for a notification; a quiet one wakes the consumer at once.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_POLL: Duration = Duration::from_millis(10);
/// Rows this instance takes between two vacuums of the table (`vacuum_outbox`).
const VACUUM_AFTER_ROWS: usize = 2_000;
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
        let mut pace = Pace::default();
        let mut taken_since_vacuum = 0;
        let vacuuming = Arc::new(AtomicBool::new(false));
        while !shutdown.is_cancelled() {
            let drained = match self.outbox.drain_outbox(&self.rules, BATCH, now_millis()).await {
                Ok(drained) => drained,
                Err(error) => {
                    self.failed(&error);
                    pace.database_failed();
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(AFTER_FAILURE) => continue,
                    }
                }
            };
            self.store.availability().answered();
            record(&drained);
            if drained.published > 0 {
                self.wake_dispatcher.notify_one();
            }
            taken_since_vacuum += drained.taken;
            if taken_since_vacuum >= VACUUM_AFTER_ROWS && !vacuuming.swap(true, Ordering::AcqRel) {
                taken_since_vacuum = 0;
                tokio::spawn(vacuum(self.outbox.clone(), vacuuming.clone()));
            }
            match pace.after_drain(drained.taken, Instant::now()) {
                Step::DrainAgain => {}
                Step::SetWaiting(waiting) => {
                    if self.set_waiting(waiting).await {
                        pace.waiting = waiting;
                    }
                }
                Step::Poll => tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(LINGER_POLL) => {}
                },
                Step::Sleep => tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = committed.notified() => {}
                    () = tokio::time::sleep(POLL_EVERY) => {}
                },
            }
        }
    }

    /// Whether the flag was written.
    async fn set_waiting(&self, waiting: bool) -> bool {
        match self.outbox.set_outbox_waiting(waiting).await {
            Ok(()) => true,
            Err(error) => {
                self.failed(&error);
                false
            }
        }
    }

    fn failed(&self, error: &hookd_store::StoreError) {
        if error.is_unavailable() {
            // Part of an outage, which is logged once.
            self.store.availability().unavailable(error);
        } else {
            tracing::warn!(error = %hookd_store::error_chain(error), "the outbox consumer's database call failed");
        }
    }
}

/// What the drain loop does next.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    DrainAgain,
    /// Write the shared "a consumer waits" flag, then drain again.
    SetWaiting(bool),
    /// Look again after [`LINGER_POLL`].
    Poll,
    /// Until a producer's commit notifies, or [`POLL_EVERY`].
    Sleep,
}

/// When to drain again, poll, or ask producers to notify and sleep.
#[derive(Debug)]
struct Pace {
    /// Whether producers may have been told that this consumer waits for a
    /// notification. At start it is unknown (another instance, or this one before a
    /// restart, may have said so), hence true.
    waiting: bool,
    /// When a drain last took rows.
    rows_seen: Option<Instant>,
}

impl Default for Pace {
    fn default() -> Self {
        Self { waiting: true, rows_seen: None }
    }
}

impl Pace {
    fn after_drain(&mut self, taken: usize, now: Instant) -> Step {
        let lingering = self.rows_seen.is_some_and(|seen| now.duration_since(seen) < LINGER);
        if taken > 0 {
            self.rows_seen = Some(now);
            // Busy: producers may commit without waking anyone. The flag is shared, so
            // another instance may have set it: clear it at the start of each busy
            // spell, not only when this consumer set it.
            return if self.waiting || !lingering { Step::SetWaiting(false) } else { Step::DrainAgain };
        }
        if lingering {
            // Rows came a moment ago, so more are likely: look again soon rather than
            // have every producer's commit notify.
            return Step::Poll;
        }
        if !self.waiting {
            // Ask for a notification, then look once more: a producer that read
            // "nobody waits" just before would not notify.
            return Step::SetWaiting(true);
        }
        Step::Sleep
    }

    /// After an outage the flag may say anything: ask again before sleeping.
    fn database_failed(&mut self) {
        self.waiting = false;
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

/// Vacuums the outbox in the background, so the drain loop goes on meanwhile.
async fn vacuum(outbox: Arc<dyn OutboxStore>, running: Arc<AtomicBool>) {
    if let Err(error) = outbox.vacuum_outbox().await {
        tracing::warn!(error = %hookd_store::error_chain(&error), "could not vacuum the outbox");
    }
    running.store(false, Ordering::Release);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_spell_clears_the_flag_once_then_drains_without_writing_it() {
        let mut pace = Pace { waiting: false, rows_seen: None };
        let start = Instant::now();
        assert_eq!(pace.after_drain(10, start), Step::SetWaiting(false), "another instance may have set it");
        pace.waiting = false;
        assert_eq!(pace.after_drain(10, start + Duration::from_millis(5)), Step::DrainAgain);
    }

    #[test]
    fn an_empty_table_is_polled_for_a_while_before_producers_are_asked_to_notify() {
        let mut pace = Pace { waiting: false, rows_seen: None };
        let start = Instant::now();
        pace.after_drain(1, start);
        assert_eq!(pace.after_drain(0, start + LINGER / 2), Step::Poll);
        assert_eq!(pace.after_drain(0, start + LINGER), Step::SetWaiting(true));
        pace.waiting = true;
        assert_eq!(pace.after_drain(0, start + LINGER * 2), Step::Sleep);
    }

    #[test]
    fn a_consumer_starts_by_assuming_producers_notify_and_stops_them_when_busy() {
        let mut pace = Pace::default();
        let now = Instant::now();
        assert_eq!(pace.after_drain(0, now), Step::Sleep, "no rows yet: wait for a notification");
        assert_eq!(pace.after_drain(3, now), Step::SetWaiting(false));
    }

    #[test]
    fn after_a_database_failure_the_consumer_asks_again_before_it_sleeps() {
        let mut pace = Pace::default();
        pace.database_failed();
        assert_eq!(pace.after_drain(0, Instant::now()), Step::SetWaiting(true));
    }
}
