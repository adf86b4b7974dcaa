//! Whether the database answers, as the callers of a store have seen it: an outage is
//! logged once when it begins and once when it ends, however many requests and claims
//! meet it in between; and a bound on how long any one caller waits for the database.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{StoreError, StoreResult};

/// Outage state shared by everyone using one store.
#[derive(Debug, Default)]
pub struct Availability {
    /// When the current outage began; `None` while the database answers.
    down_since: Mutex<Option<Instant>>,
}

impl Availability {
    /// Takes note of a store call's result: an unavailable database begins an outage
    /// (logged once, at ERROR, with its cause), a success ends one (logged once).
    /// Other errors say nothing about availability.
    pub fn observe<T>(&self, result: &StoreResult<T>) {
        match result {
            Ok(_) => self.answered(),
            Err(error) if error.is_unavailable() => self.unavailable(error),
            Err(_) => {}
        }
    }

    /// Whether the last call that could tell found the database unavailable.
    pub fn is_down(&self) -> bool {
        self.down_since.lock().map(|down| down.is_some()).unwrap_or(false)
    }

    /// The database could not be reached: begins an outage unless one is running.
    pub fn unavailable(&self, error: &dyn std::error::Error) {
        let Ok(mut down) = self.down_since.lock() else { return };
        if down.is_none() {
            *down = Some(Instant::now());
            tracing::error!(
                error = %crate::error_chain(error),
                "the database is unavailable; answering 503 until it answers again"
            );
        }
    }

    /// The database answered: ends the outage, if one was running.
    pub fn answered(&self) {
        let Ok(mut down) = self.down_since.lock() else { return };
        if let Some(since) = down.take() {
            tracing::info!(outage_ms = since.elapsed().as_millis() as u64, "the database answers again");
        }
    }
}

/// Runs a store call, answering [`StoreError::TimedOut`] if it takes longer than
/// `limit`. The call is dropped then: a transaction it had begun is rolled back by the
/// database when the connection closes, or has committed (the caller said 503, so its
/// client retries: the worst case is a repeat, never a loss).
pub async fn within<T>(limit: Duration, call: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
    tokio::time::timeout(limit, call).await.unwrap_or(Err(StoreError::TimedOut(limit)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_begins_with_an_unavailable_error_and_ends_with_a_success() {
        let availability = Availability::default();
        availability.observe::<()>(&Err(StoreError::NotFound));
        assert!(!availability.is_down(), "a missing row says nothing about the database");
        availability.observe::<()>(&Err(StoreError::TimedOut(Duration::from_secs(2))));
        availability.observe::<()>(&Err(StoreError::Unavailable(Box::new(sqlx::Error::PoolTimedOut))));
        assert!(availability.is_down());
        availability.observe(&Ok(()));
        assert!(!availability.is_down());
    }

    #[tokio::test]
    async fn a_call_past_its_limit_is_timed_out() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        };
        let result = within(Duration::from_millis(10), slow).await;
        assert!(matches!(result, Err(StoreError::TimedOut(_))), "{result:?}");
    }
}
