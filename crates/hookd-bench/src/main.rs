//! `hookd-bench`: starts hookd (in this process, on a fresh SQLite data dir, or with
//! `--postgres SERVER_URL` on a fresh scratch database on that server) and a
//! receiver that answers 200 at once, publishes events through the operator API, waits
//! for every delivery, and reports rates, publish-to-receive latency, duplicates and
//! missing deliveries.
//!
//! Latency: each event carries its publish time (`sent_at_us`); the receiver subtracts
//! it from its arrival time. Both clocks are this process's wall clock.
//!
//! hookd runs on a runtime of its own whose threads are named `hookd` (plus SQLite's
//! worker thread), so its CPU seconds are read from /proc apart from the tool's and the
//! receiver's. Peak RSS (VmHWM) is the whole process's: an upper bound for hookd.
//!
//!   cargo run --release -p hookd-bench -- --scenario a     # flat out, 100,000 events
//!   cargo run --release -p hookd-bench -- --scenario b     # 1,000/s for 60 s, latency
//!   cargo run --release -p hookd-bench -- --scenario c     # fan-out to 10 endpoints
//!   cargo run --release -p hookd-bench -- --events 1000 --rate 100     # latency
//!   cargo run --release -p hookd-bench -- --events 20000 --rate 0      # flat out
//!   cargo run --release -p hookd-bench -- --events 20000 --rate 0 \
//!       --postgres postgres://postgres@127.0.0.1:5432/test              # on PostgreSQL

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use axum::body::Bytes;
use axum::http::HeaderMap;
use clap::Parser;
use serde_json::{Value, json};

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";

#[derive(Debug, Parser)]
struct Args {
    /// A preset (docs/benchmarks.md): a = 100,000 events flat out to 1 endpoint;
    /// b = 1,000 events/s for 60 s; c = 20,000 events fanned out to 10 endpoints. It
    /// sets --events, --rate and --endpoints; add --postgres for scenario e.
    #[arg(long, value_parser = ["a", "b", "c"])]
    scenario: Option<String>,
    /// Events to publish.
    #[arg(long, default_value_t = 1000)]
    events: usize,
    /// Events per second, published one per request (concurrently, so a slow answer
    /// does not lower the rate); 0 publishes flat out in batches.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Events per batch request when flat out.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Endpoints subscribed to every event (fan-out).
    #[arg(long, default_value_t = 1)]
    endpoints: usize,
    /// Bytes of padding in each event's data.
    #[arg(long, default_value_t = 1024)]
    payload: usize,
    /// Run on PostgreSQL: a URL of a server where the user may create databases. A
    /// scratch database is created for the run and dropped after it.
    #[arg(long, value_name = "SERVER_URL")]
    postgres: Option<String>,
}

#[derive(Default)]
struct Arrivals {
    per_delivery: HashMap<(String, String), u32>,
    latencies_us: Vec<i64>,
    last: Option<Instant>,
}

fn now_us() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    match args.scenario.as_deref() {
        Some("a") => (args.events, args.rate, args.endpoints) = (100_000, 0, 1),
        Some("b") => (args.events, args.rate, args.endpoints) = (60_000, 1_000, 1),
        Some("c") => (args.events, args.rate, args.endpoints) = (20_000, 0, 10),
        _ => {}
    }
    let hookd_cpu_before = hookd_cpu_seconds();
    let arrivals = Arc::new(Mutex::new(Arrivals::default()));
    let receiver_url = start_receiver(arrivals.clone()).await?;
    let data_dir = tempfile::tempdir()?;
    let scratch = match &args.postgres {
        Some(server) => Some(hookd_store::ScratchDatabase::create(server).await?),
        None => None,
    };
    let base = start_hookd(data_dir.path(), scratch.as_ref().map(|db| db.url())).await?;
    let http = reqwest::Client::new();
    let key = std::fs::read_to_string(data_dir.path().join("default-api-key"))?.trim().to_owned();
    let account = std::fs::read_to_string(data_dir.path().join("default-account-id"))?.trim().to_owned();
    for n in 0..args.endpoints {
        let created = http
            .post(format!("{base}/v3/webhooks/endpoints"))
            .header("X-Api-Key", &key)
            .json(&json!({"url": format!("{receiver_url}/endpoint/{n}")}))
            .send()
            .await?;
        if !created.status().is_success() {
            bail!("creating an endpoint failed: {}", created.text().await?);
        }
    }

    let padding = "x".repeat(args.payload);
    let event = |sent_at: i64| {
        json!({"account_id": account, "event_type": "avatar_video.success",
               "event_data": {"sent_at_us": sent_at, "pad": padding}})
    };
    let started = Instant::now();
    let mut acknowledged = Vec::with_capacity(args.events);
    if args.rate > 0 {
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut publishing = tokio::task::JoinSet::new();
        for _ in 0..args.events {
            ticks.tick().await;
            let (http, base, body) = (http.clone(), base.clone(), event(now_us()));
            publishing.spawn(async move { admin_post(&http, &base, "/admin/v1/events", body).await });
        }
        while let Some(reply) = publishing.join_next().await {
            let reply = reply??;
            acknowledged.push(reply["data"]["event_id"].as_str().context("event_id")?.to_owned());
        }
    } else {
        let mut remaining = args.events;
        while remaining > 0 {
            let size = remaining.min(args.batch);
            let events: Vec<Value> = (0..size).map(|_| event(now_us())).collect();
            let reply = admin_post(&http, &base, "/admin/v1/events/batch", json!({"events": events})).await?;
            for published in reply["data"]["events"].as_array().context("events")? {
                acknowledged.push(published["event_id"].as_str().context("event_id")?.to_owned());
            }
            remaining -= size;
        }
    }
    let published_in = started.elapsed();
    let expected = args.events * args.endpoints;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (distinct, last) = {
            let arrivals = arrivals.lock().map_err(|_| anyhow::anyhow!("lock"))?;
            (arrivals.per_delivery.len(), arrivals.last)
        };
        eprint!("\rdelivered {distinct}/{expected}");
        if distinct >= expected {
            let delivered_in = last.unwrap_or_else(Instant::now).duration_since(started);
            report(&args, &arrivals, &acknowledged, published_in, delivered_in)?;
            println!(
                "hookd CPU: {:.1} s ({:.0} µs per delivery)  peak RSS (whole bench process): {:.0} MiB",
                hookd_cpu_seconds() - hookd_cpu_before,
                (hookd_cpu_seconds() - hookd_cpu_before) * 1e6 / expected as f64,
                peak_rss_kib() as f64 / 1024.0
            );
            if let Some(database) = scratch {
                database.drop_database().await?;
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {distinct} of {expected} deliveries arrived");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn admin_post(http: &reqwest::Client, base: &str, path: &str, body: Value) -> anyhow::Result<Value> {
    let reply = http.post(format!("{base}{path}")).bearer_auth(ADMIN_TOKEN).json(&body).send().await?;
    if reply.status().as_u16() != 202 {
        bail!("publishing failed: {}", reply.text().await?);
    }
    Ok(reply.json().await?)
}

async fn start_receiver(arrivals: Arc<Mutex<Arrivals>>) -> anyhow::Result<String> {
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

async fn start_hookd(data_dir: &std::path::Path, database_url: Option<&str>) -> anyhow::Result<String> {
    let data_dir = data_dir.to_str().context("utf-8 temp path")?;
    let mut argv = vec![
        "hookd",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data_dir,
        "--admin-token",
        ADMIN_TOKEN,
        "--allow-http",
        "--allow-destination",
        "127.0.0.0/8",
    ];
    if let Some(url) = database_url {
        argv.extend_from_slice(&["--database-url", url]);
    }
    let hookd::Command::Serve(serve) = hookd::Cli::try_parse_from(argv)?.command else { bail!("not serve") };
    // hookd gets a runtime (and threads) of its own, so its CPU time can be told apart.
    let (ready, started) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hookd")
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                let _ = ready.send(Err(anyhow::Error::from(error)));
                return;
            }
        };
        runtime.block_on(async move {
            match hookd::App::build(&serve).await {
                Ok(app) => {
                    let address =
                        app.local_addr().map(|a| format!("http://{a}")).map_err(anyhow::Error::from);
                    let _ = ready.send(address);
                    let _ = app.run_until_stopped().await;
                }
                Err(error) => {
                    let _ = ready.send(Err(error.into()));
                }
            }
        });
    });
    started.await?
}

/// CPU seconds (user + system) of hookd's threads: its runtime's and SQLite's worker.
fn hookd_cpu_seconds() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    let ticks_per_second = 100.0; // USER_HZ on Linux
    tasks
        .filter_map(|task| {
            let path = task.ok()?.path();
            let name = std::fs::read_to_string(path.join("comm")).ok()?;
            if !(name.starts_with("hookd") || name.starts_with("sqlx-sqlite")) {
                return None;
            }
            let stat = std::fs::read_to_string(path.join("stat")).ok()?;
            // Fields after the command name (which is in parentheses): utime is the 12th.
            let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split(' ').collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / ticks_per_second)
        })
        .sum()
}

/// The process's peak resident set (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

fn report(
    args: &Args,
    arrivals: &Mutex<Arrivals>,
    acknowledged: &[String],
    published_in: Duration,
    delivered_in: Duration,
) -> anyhow::Result<()> {
    let arrivals = arrivals.lock().map_err(|_| anyhow::anyhow!("lock"))?;
    let mut latencies = arrivals.latencies_us.clone();
    latencies.sort_unstable();
    let pick =
        |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0);
    let duplicates: u32 = arrivals.per_delivery.values().map(|n| n - 1).sum();
    let missing = acknowledged
        .iter()
        .map(|id| {
            (0..args.endpoints)
                .filter(|n| !arrivals.per_delivery.contains_key(&(id.clone(), format!("/endpoint/{n}"))))
                .count()
        })
        .sum::<usize>();
    let deliveries = args.events * args.endpoints;
    eprintln!();
    println!(
        "events: {}  endpoints: {}  payload: {} B  mode: {}",
        args.events,
        args.endpoints,
        args.payload,
        if args.rate > 0 {
            format!("{} events/s, one per request", args.rate)
        } else {
            format!("flat out, batches of {}", args.batch)
        }
    );
    println!(
        "accepted:  {:.0} events/s ({:.2} s)",
        args.events as f64 / published_in.as_secs_f64(),
        published_in.as_secs_f64()
    );
    println!(
        "delivered: {:.0} deliveries/s ({deliveries} in {:.2} s from the first publish)",
        deliveries as f64 / delivered_in.as_secs_f64(),
        delivered_in.as_secs_f64()
    );
    println!(
        "latency publish→receive: p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        pick(0.5) as f64 / 1000.0,
        pick(0.9) as f64 / 1000.0,
        pick(0.99) as f64 / 1000.0,
        pick(1.0) as f64 / 1000.0
    );
    println!("duplicates: {duplicates}  missing: {missing}");
    Ok(())
}
