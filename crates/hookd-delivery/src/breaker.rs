//! Per-destination circuit breakers: how a failing destination slows only itself.
//!
//! A destination (an endpoint, or a callback URL) is *closed* while it answers: its
//! claimed deliveries start at once, up to its in-flight cap. A failed attempt does not
//! hold up the others: the delivery that failed follows its own retry schedule, and
//! the rest go on. Only a run of [`TRIP_AFTER`] failures in a row with no success
//! between them *opens* the breaker for a cooldown (1 s, doubling with each trip in a
//! row, at most [`MAX_COOLDOWN`]). While open, the destination is sent nothing and
//! holds no run-queue room: the dispatcher hands its claimed deliveries back to the
//! database, due when the cooldown ends. Then it is *half-open*: one attempt at a
//! time probes it. A success closes it; a failure opens it again for longer.
//!
//! A receiver failing 30 % of requests at random trips it about once in 15,000
//! attempts (0.3⁸); one that is down trips it after one round of in-flight attempts
//! and then sees one request per cooldown from each instance.
//!
//! Plain state and arithmetic: the caller passes the time in, so it is tested without
//! a clock.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// Failures in a row, with no success between them, that open a breaker. As large as
/// the default in-flight cap, so one round of concurrent attempts to a dead
/// destination trips it, while random failures almost never do.
pub(crate) const TRIP_AFTER: u32 = 8;
/// The first cooldown; each trip in a row doubles it.
const FIRST_COOLDOWN: Duration = Duration::from_secs(1);
/// The longest cooldown: a destination that comes back is noticed within this.
pub(crate) const MAX_COOLDOWN: Duration = Duration::from_secs(30);

/// What the dispatcher may do with a destination now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Send as usual.
    Closed,
    /// Send nothing until then.
    Open { until: Instant },
    /// One attempt at a time.
    HalfOpen,
}

/// What one failure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Below the threshold: the others go on.
    Tolerated,
    /// The breaker opened (or opened again) until then.
    Tripped { until: Instant },
}

#[derive(Debug)]
struct Health {
    failures_in_a_row: u32,
    /// Trips since the last success; sets the next cooldown.
    trips: u32,
    open_until: Option<Instant>,
    last_failure: Instant,
}

/// A destination with no failure for this long is forgotten (its next failure starts
/// a new count): it was deleted, or nothing is sent to it any more.
const FORGET_AFTER: Duration = Duration::from_secs(600);

/// The breakers of every destination that has failed since its last success.
#[derive(Debug, Default)]
pub(crate) struct Breakers {
    health: HashMap<String, Health>,
    last_sweep: Option<Instant>,
}

impl Breakers {
    pub(crate) fn gate(&self, target: &str, now: Instant) -> Gate {
        match self.health.get(target) {
            None => Gate::Closed,
            Some(Health { open_until: Some(until), .. }) if *until > now => Gate::Open { until: *until },
            Some(Health { trips: 0, .. }) => Gate::Closed,
            Some(_) => Gate::HalfOpen,
        }
    }

    /// A delivery to `target` succeeded: it is healthy again. Returns whether it had
    /// tripped (its breaker closes now).
    pub(crate) fn succeeded(&mut self, target: &str) -> bool {
        self.health.remove(target).is_some_and(|health| health.trips > 0)
    }

    /// A delivery to `target` failed.
    pub(crate) fn failed(&mut self, target: &str, now: Instant) -> Failure {
        self.forget_idle(now);
        let health = self.health.entry(target.to_owned()).or_insert(Health {
            failures_in_a_row: 0,
            trips: 0,
            open_until: None,
            last_failure: now,
        });
        health.last_failure = now;
        if health.open_until.is_some_and(|until| until > now) {
            // An attempt started before the trip; the breaker is already open.
            return Failure::Tolerated;
        }
        health.failures_in_a_row += 1;
        let probing = health.trips > 0;
        if !probing && health.failures_in_a_row < TRIP_AFTER {
            return Failure::Tolerated;
        }
        health.trips += 1;
        let until = now + cooldown(health.trips);
        health.open_until = Some(until);
        Failure::Tripped { until }
    }

    /// Drops destinations that have not failed for [`FORGET_AFTER`] (at most one sweep a
    /// minute), so ones that fail and then go away do not stay in memory.
    fn forget_idle(&mut self, now: Instant) {
        if self.last_sweep.is_some_and(|swept| now.saturating_duration_since(swept) < Duration::from_secs(60))
        {
            return;
        }
        self.last_sweep = Some(now);
        self.health.retain(|_, health| now.saturating_duration_since(health.last_failure) < FORGET_AFTER);
    }

    /// Destinations whose breaker is open now (for the metric).
    pub(crate) fn open_count(&self, now: Instant) -> usize {
        self.health.values().filter(|h| h.open_until.is_some_and(|until| until > now)).count()
    }
}

fn cooldown(trips: u32) -> Duration {
    let doublings = trips.saturating_sub(1).min(16);
    FIRST_COOLDOWN.saturating_mul(1 << doublings).min(MAX_COOLDOWN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail_times(breakers: &mut Breakers, target: &str, times: u32, now: Instant) -> Vec<Failure> {
        (0..times).map(|_| breakers.failed(target, now)).collect()
    }

    #[test]
    fn failures_short_of_the_threshold_do_not_hold_the_destination() {
        let mut breakers = Breakers::default();
        let now = Instant::now();
        let results = fail_times(&mut breakers, "flaky", TRIP_AFTER - 1, now);
        assert!(results.iter().all(|r| *r == Failure::Tolerated));
        assert_eq!(breakers.gate("flaky", now), Gate::Closed);
    }

    #[test]
    fn a_success_between_failures_starts_the_count_again() {
        let mut breakers = Breakers::default();
        let now = Instant::now();
        for _ in 0..10 {
            fail_times(&mut breakers, "flaky", TRIP_AFTER - 1, now);
            assert!(!breakers.succeeded("flaky"), "it never tripped");
        }
        assert_eq!(breakers.gate("flaky", now), Gate::Closed);
    }

    #[test]
    fn a_run_of_failures_opens_it_for_a_second() {
        let mut breakers = Breakers::default();
        let now = Instant::now();
        let results = fail_times(&mut breakers, "down", TRIP_AFTER, now);
        let until = now + Duration::from_secs(1);
        assert_eq!(results.last(), Some(&Failure::Tripped { until }));
        assert_eq!(breakers.gate("down", now), Gate::Open { until });
        assert_eq!(breakers.gate("other", now), Gate::Closed, "only the failing destination");
    }

    #[test]
    fn after_the_cooldown_one_probe_decides() {
        let mut breakers = Breakers::default();
        let start = Instant::now();
        fail_times(&mut breakers, "down", TRIP_AFTER, start);
        let later = start + Duration::from_secs(1);
        assert_eq!(breakers.gate("down", later), Gate::HalfOpen);
        assert!(breakers.succeeded("down"), "a successful probe closes a tripped breaker");
        assert_eq!(breakers.gate("down", later), Gate::Closed);
    }

    #[test]
    fn a_failed_probe_opens_it_again_for_twice_as_long_up_to_the_cap() {
        let mut breakers = Breakers::default();
        let mut now = Instant::now();
        fail_times(&mut breakers, "down", TRIP_AFTER, now);
        let mut cooldowns = Vec::new();
        for _ in 0..8 {
            let Gate::Open { until } = breakers.gate("down", now) else { panic!("open") };
            now = until;
            assert_eq!(breakers.gate("down", now), Gate::HalfOpen);
            let Failure::Tripped { until } = breakers.failed("down", now) else {
                panic!("a failed probe trips")
            };
            cooldowns.push((until - now).as_secs());
        }
        assert_eq!(cooldowns, vec![2, 4, 8, 16, 30, 30, 30, 30]);
    }

    #[test]
    fn a_destination_that_stops_failing_for_ten_minutes_is_forgotten() {
        let mut breakers = Breakers::default();
        let start = Instant::now();
        fail_times(&mut breakers, "gone", TRIP_AFTER, start);
        let later = start + FORGET_AFTER + Duration::from_secs(61);
        breakers.failed("other", later);
        assert_eq!(breakers.gate("gone", later), Gate::Closed, "forgotten: a fresh count");
        assert_eq!(breakers.health.len(), 1);
    }

    #[test]
    fn failures_of_attempts_started_before_the_trip_do_not_extend_it() {
        let mut breakers = Breakers::default();
        let now = Instant::now();
        fail_times(&mut breakers, "down", TRIP_AFTER, now);
        let late = fail_times(&mut breakers, "down", 5, now + Duration::from_millis(10));
        assert!(late.iter().all(|r| *r == Failure::Tolerated));
        assert_eq!(breakers.gate("down", now), Gate::Open { until: now + Duration::from_secs(1) });
    }
}
