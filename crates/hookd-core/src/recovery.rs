//! The window a customer recovers failed deliveries from (`POST .../recover`): after an
//! outage, every delivery to one endpoint that ended `failed` between `since` and
//! `until` goes back to pending.

/// The longest window one recovery may cover.
pub const MAX_WINDOW_SECS: i64 = 30 * 24 * 3600;

/// A checked window, in unix milliseconds, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryWindow {
    pub since_ms: i64,
    pub until_ms: i64,
}

/// Why a window was refused, and which field is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryWindowError {
    #[error("'since' must not be in the future")]
    SinceInFuture,
    #[error("'until' must not be before 'since'")]
    UntilBeforeSince,
    #[error("the window from 'since' to 'until' must be at most 30 days")]
    TooLong,
}

impl RecoveryWindowError {
    /// The request field the error names.
    pub fn field(&self) -> &'static str {
        match self {
            Self::SinceInFuture | Self::TooLong => "since",
            Self::UntilBeforeSince => "until",
        }
    }
}

impl RecoveryWindow {
    /// `since` and `until` in unix seconds; `until` defaults to `now_secs`.
    pub fn new(since: i64, until: Option<i64>, now_secs: i64) -> Result<Self, RecoveryWindowError> {
        if since > now_secs {
            return Err(RecoveryWindowError::SinceInFuture);
        }
        let until = until.unwrap_or(now_secs);
        if until < since {
            return Err(RecoveryWindowError::UntilBeforeSince);
        }
        if until.saturating_sub(since) > MAX_WINDOW_SECS {
            return Err(RecoveryWindowError::TooLong);
        }
        // Whole seconds: `until` covers its last millisecond.
        Ok(Self {
            since_ms: since.saturating_mul(1000),
            until_ms: until.saturating_mul(1000).saturating_add(999),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn until_defaults_to_now_and_covers_its_whole_second() {
        let window = RecoveryWindow::new(NOW - 60, None, NOW).expect("valid");
        assert_eq!(window, RecoveryWindow { since_ms: (NOW - 60) * 1000, until_ms: NOW * 1000 + 999 });
    }

    #[test]
    fn bad_windows_name_their_field() {
        let refused = |since, until| RecoveryWindow::new(since, until, NOW).expect_err("refused");
        assert_eq!(refused(NOW + 1, None).field(), "since");
        assert_eq!(refused(NOW - 10, Some(NOW - 20)).field(), "until");
        assert_eq!(refused(NOW - MAX_WINDOW_SECS - 1, None).field(), "since");
        assert_eq!(refused(i64::MIN, Some(i64::MAX)), RecoveryWindowError::TooLong, "no overflow");
    }

    #[test]
    fn exactly_thirty_days_is_allowed() {
        assert!(RecoveryWindow::new(NOW - MAX_WINDOW_SECS, None, NOW).is_ok());
    }
}
