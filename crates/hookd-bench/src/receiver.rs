//! The receiver: answers 200 at once and records each delivery's arrival, keyed by
//! event id and endpoint path, with its publish-to-receive latency (each event carries
//! its publish time in `event_data.sent_at_us`; both clocks are this machine's).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::HeaderMap;
use serde_json::Value;

#[derive(Default)]
pub struct Arrivals {
    pub per_delivery: HashMap<(String, String), u32>,
    pub latencies_us: Vec<i64>,
    pub last: Option<Instant>,
}

pub type SharedArrivals = Arc<Mutex<Arrivals>>;

pub fn now_us() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
}

/// Serves on a loopback port; returns its base URL.
pub async fn start(arrivals: SharedArrivals) -> anyhow::Result<String> {
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
        let arrivals = arrivals.clone();
        async move {
            let arrived = now_us();
            let event_id =
                headers.get("heygen-event-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let sent_at = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["event_data"]["sent_at_us"].as_i64());
            if let Ok(mut arrivals) = arrivals.lock() {
                *arrivals.per_delivery.entry((event_id, uri.path().to_owned())).or_default() += 1;
                if let Some(sent_at) = sent_at {
                    arrivals.latencies_us.push(arrived - sent_at);
                }
                arrivals.last = Some(Instant::now());
            }
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}
