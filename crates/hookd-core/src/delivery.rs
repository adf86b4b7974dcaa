//! Delivery rules: the states a delivery moves through, what an attempt's result
//! means, and when the next attempt is due.

use std::time::Duration;

use crate::retry::RetrySchedule;

/// The longest `Retry-After` hookd honours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// Jitter applied to each scheduled delay: ±10 %.
pub const JITTER_FRACTION: f64 = 0.10;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its next attempt (or in flight).
    Pending,
    /// A 2xx was seen.
    Delivered,
    /// Every attempt of the schedule failed.
    Failed,
    /// Its endpoint was deleted before it was delivered.
    Cancelled,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptVerdict {
    Delivered,
    /// Try again after this long.
    RetryAfter(Duration),
    /// The schedule is exhausted.
    GiveUp,
}

/// The retry schedule plus the rules around it.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub schedule: RetrySchedule,
}

impl RetryPolicy {
    /// Judges attempt number `attempt` (1-based) that answered `status` (None: no
    /// HTTP response at all) with an optional `Retry-After` header value. `jitter` is
    /// a number in [-1, 1] drawn by the caller, so tests can fix it.
    pub fn judge(
        &self,
        attempt: u32,
        status: Option<u16>,
        retry_after: Option<&str>,
        jitter: f64,
    ) -> AttemptVerdict {
        if status.is_some_and(|code| (200..300).contains(&code)) {
            return AttemptVerdict::Delivered;
        }
        let Some(scheduled) = self.schedule.delays().get(attempt.saturating_sub(1) as usize) else {
            return AttemptVerdict::GiveUp;
        };
        let factor = 1.0 + JITTER_FRACTION * jitter.clamp(-1.0, 1.0);
        let delay = scheduled.mul_f64(factor);
        let asked = match status {
            Some(429 | 503) => retry_after.and_then(parse_retry_after),
            _ => None,
        };
        // A receiver that asks for more time gets it (up to an hour), never less than
        // the schedule gives.
        AttemptVerdict::RetryAfter(asked.map_or(delay, |asked| delay.max(asked)))
    }
}

/// `Retry-After` in delta-seconds, capped at [`MAX_RETRY_AFTER`]. The HTTP-date form is
/// not honoured (the schedule applies).
fn parse_retry_after(raw: &str) -> Option<Duration> {
    let seconds: u64 = raw.trim().parse().ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(schedule: &str) -> RetryPolicy {
        RetryPolicy { schedule: RetrySchedule::parse(schedule).expect("schedule") }
    }

    #[test]
    fn any_2xx_is_delivered() {
        for status in [200, 201, 204, 299] {
            assert_eq!(policy("1s").judge(1, Some(status), None, 0.0), AttemptVerdict::Delivered);
        }
    }

    #[test]
    fn failures_follow_the_schedule_then_give_up() {
        let policy = policy("5s,1m");
        for status in [None, Some(301), Some(400), Some(500)] {
            assert_eq!(
                policy.judge(1, status, None, 0.0),
                AttemptVerdict::RetryAfter(Duration::from_secs(5))
            );
            assert_eq!(
                policy.judge(2, status, None, 0.0),
                AttemptVerdict::RetryAfter(Duration::from_secs(60))
            );
            assert_eq!(policy.judge(3, status, None, 0.0), AttemptVerdict::GiveUp);
        }
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let policy = policy("10s");
        assert_eq!(policy.judge(1, None, None, 1.0), AttemptVerdict::RetryAfter(Duration::from_secs(11)));
        assert_eq!(policy.judge(1, None, None, -1.0), AttemptVerdict::RetryAfter(Duration::from_secs(9)));
        assert_eq!(policy.judge(1, None, None, 7.0), AttemptVerdict::RetryAfter(Duration::from_secs(11)));
    }

    #[test]
    fn retry_after_on_429_and_503_is_honoured_and_capped() {
        let policy = policy("1s,1s");
        let two = AttemptVerdict::RetryAfter(Duration::from_secs(2));
        assert_eq!(policy.judge(1, Some(429), Some("2"), 0.0), two);
        assert_eq!(policy.judge(1, Some(503), Some(" 2 "), 0.0), two);
        assert_eq!(
            policy.judge(1, Some(429), Some("86400"), 0.0),
            AttemptVerdict::RetryAfter(MAX_RETRY_AFTER)
        );
        let scheduled = AttemptVerdict::RetryAfter(Duration::from_secs(1));
        assert_eq!(policy.judge(1, Some(500), Some("2"), 0.0), scheduled, "only 429 and 503");
        assert_eq!(policy.judge(1, Some(429), Some("Wed, 21 Oct 2015 07:28:00 GMT"), 0.0), scheduled);
        assert_eq!(policy.judge(2, Some(429), Some("2"), 0.0), two);
        assert_eq!(policy.judge(3, Some(429), Some("2"), 0.0), AttemptVerdict::GiveUp);
    }
}
