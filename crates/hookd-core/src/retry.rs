//! The retry schedule: the delays between delivery attempts (`--retry-schedule`).

use std::time::Duration;

/// The contract's default: 11 attempts over about 24 hours.
pub const DEFAULT_RETRY_SCHEDULE: &str = "5s,30s,2m,10m,30m,1h,2h,4h,8h,8h";

/// Delays after each failed attempt; the first attempt is immediate, so a schedule of
/// N delays allows N + 1 attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

/// A `--retry-schedule` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetryScheduleError {
    #[error("the retry schedule {0:?} has an entry that is not a duration like 5s, 10m or 2h")]
    BadDuration(String),
    #[error("the retry schedule must not contain a zero delay")]
    ZeroDelay,
    #[error("the retry schedule may hold at most 50 delays")]
    TooLong,
}

impl RetrySchedule {
    /// Parses `5s,1m,10m`. An empty string means no retries (one attempt only).
    pub fn parse(raw: &str) -> Result<Self, RetryScheduleError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(Self { delays: Vec::new() });
        }
        let delays = raw
            .split(',')
            .map(|part| {
                let part = part.trim();
                humantime::parse_duration(part).map_err(|_| RetryScheduleError::BadDuration(part.to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if delays.iter().any(Duration::is_zero) {
            return Err(RetryScheduleError::ZeroDelay);
        }
        if delays.len() > 50 {
            return Err(RetryScheduleError::TooLong);
        }
        Ok(Self { delays })
    }

    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    pub fn max_attempts(&self) -> usize {
        self.delays.len() + 1
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        #[allow(clippy::expect_used)] // A constant, covered by a unit test.
        Self::parse(DEFAULT_RETRY_SCHEDULE).expect("the default schedule parses")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_allows_11_attempts_over_about_a_day() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.max_attempts(), 11);
        let total: Duration = schedule.delays().iter().sum();
        assert_eq!(total, Duration::from_secs(5 + 30 + 120 + 600 + 1800 + 3600 * (1 + 2 + 4 + 8 + 8)));
    }

    #[test]
    fn parse_refuses_bad_entries() {
        assert_eq!(RetrySchedule::parse("5s,soon"), Err(RetryScheduleError::BadDuration("soon".into())));
        assert_eq!(RetrySchedule::parse("0s"), Err(RetryScheduleError::ZeroDelay));
        assert_eq!(RetrySchedule::parse("").map(|s| s.max_attempts()), Ok(1));
    }
}
