//! The receiver: answers 200 at once (or, with a failure share, 500 to that share of
//! requests at random) and records each attempt's arrival, keyed by event id and
//! endpoint path, with the first attempt's publish-to-receive latency (each event
//! carries its publish time in `event_data.sent_at_us`; both clocks are this
//! machine's).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

#[derive(Default)]
pub struct Arrivals {
    /// Attempts answered 2xx, per (event, endpoint path): more than one is a duplicate.
    pub per_delivery: HashMap<(String, String), u32>,
    /// Attempts of any outcome, per (event, endpoint path).
    pub attempts: HashMap<(String, String), u32>,
    /// Publish to first attempt, one per delivery.
    pub latencies_us: Vec<i64>,
    /// Attempts answered 500 on purpose.
    pub failed_on_purpose: u64,
    /// When the last 2xx was answered.
    pub last: Option<Instant>,
    /// When the last delivery's first attempt arrived: new work's throughput, apart
    /// from the retries that follow their schedule.
    pub last_first_attempt: Option<Instant>,
}

pub type SharedArrivals = Arc<Mutex<Arrivals>>;

pub fn now_us() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
}

/// Serves on a loopback port; answers 500 to `fail_percent` % of requests at random.
/// Returns its base URL.
pub async fn start(arrivals: SharedArrivals, fail_percent: u8) -> anyhow::Result<String> {
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
        let arrivals = arrivals.clone();
        async move {
            let arrived = now_us();
            let event_id =
                headers.get("heygen-event-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let sent_at = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["event_data"]["sent_at_us"].as_i64());
            let roll = u16::from_le_bytes(hookd_core::random::random_bytes::<2>()) % 100;
            let fail = roll < u16::from(fail_percent);
            if let Ok(mut arrivals) = arrivals.lock() {
                let key = (event_id, uri.path().to_owned());
                let attempts = arrivals.attempts.entry(key.clone()).or_default();
                *attempts += 1;
                if *attempts == 1 {
                    if let Some(sent_at) = sent_at {
                        arrivals.latencies_us.push(arrived - sent_at);
                    }
                    arrivals.last_first_attempt = Some(Instant::now());
                }
                if fail {
                    arrivals.failed_on_purpose += 1;
                } else {
                    *arrivals.per_delivery.entry(key).or_default() += 1;
                    arrivals.last = Some(Instant::now());
                }
            }
            if fail { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}
