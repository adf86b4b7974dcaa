//! Scenario f: one event per request, flat out, over `--connections` concurrent
//! connections (producers report one event at a time), and `--baseline`: the same
//! requests straight to the receiver, the harness's own limit in the same run.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context;
use serde_json::{Value, json};

use crate::receiver::now_us;
use crate::{ADMIN_TOKEN, Args};

/// Runs `send(n)` for n in 0..events on `connections` workers; returns the results in
/// no particular order.
async fn over_connections<F, Fut, T>(events: usize, connections: u16, send: F) -> anyhow::Result<Vec<T>>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<T>> + Send,
    T: Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (next, send) = (next.clone(), send.clone());
        workers.spawn(async move {
            let mut done = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= events {
                    return anyhow::Ok(done);
                }
                done.push(send(n).await?);
            }
        });
    }
    let mut all = Vec::with_capacity(events);
    while let Some(worker) = workers.join_next().await {
        all.extend(worker??);
    }
    Ok(all)
}

fn body(account: &str, payload: &str) -> Value {
    json!({"account_id": account, "event_type": "avatar_video.success",
           "event_data": {"sent_at_us": now_us(), "pad": payload}})
}

/// Publishes every event with its own `POST /admin/v1/events`; returns the ids hookd
/// acknowledged.
pub async fn publish(
    args: &Args,
    http: &reqwest::Client,
    base: &str,
    account: &str,
) -> anyhow::Result<Vec<String>> {
    let padding: Arc<str> = "x".repeat(args.payload).into();
    let (http, url, account) = (http.clone(), format!("{base}/admin/v1/events"), Arc::<str>::from(account));
    over_connections(args.events, args.connections, move |_| {
        let (http, url, account, padding) = (http.clone(), url.clone(), account.clone(), padding.clone());
        async move {
            let reply =
                http.post(&url).bearer_auth(ADMIN_TOKEN).json(&body(&account, &padding)).send().await?;
            if reply.status().as_u16() != 202 {
                anyhow::bail!("publishing failed: {}", reply.text().await?);
            }
            let reply: Value = reply.json().await?;
            Ok(reply["data"]["event_id"].as_str().context("event_id")?.to_owned())
        }
    })
    .await
}

/// The same number of requests, of the same size, straight to the receiver; returns
/// requests per second.
pub async fn baseline(args: &Args, receiver_url: &str) -> anyhow::Result<f64> {
    let http = reqwest::Client::new();
    let padding: Arc<str> = "x".repeat(args.payload).into();
    let url = format!("{receiver_url}/baseline");
    let started = Instant::now();
    over_connections(args.events, args.connections, move |_| {
        let (http, url, padding) = (http.clone(), url.clone(), padding.clone());
        async move {
            let reply = http.post(&url).json(&body("baseline", &padding)).send().await?;
            anyhow::ensure!(reply.status().is_success(), "the receiver answered {}", reply.status());
            Ok(())
        }
    })
    .await?;
    let rate = args.events as f64 / started.elapsed().as_secs_f64();
    eprintln!("baseline: {rate:.0} requests/s straight to the receiver");
    Ok(rate)
}
