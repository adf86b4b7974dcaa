//! `hookd-bench`: starts hookd (in a child process, on a fresh SQLite data dir, or
//! with `--postgres SERVER_URL` on a fresh scratch database on that server) and a
//! receiver that answers 200 at once, publishes events through the operator API, waits
//! for every delivery, and reports rates, publish-to-receive latency, hookd's CPU
//! seconds and peak RSS, duplicates and missing deliveries.
//!
//!   cargo run --release -p hookd-bench -- --scenario a     # flat out, 100,000 events
//!   cargo run --release -p hookd-bench -- --scenario b     # 1,000/s for 60 s, latency
//!   cargo run --release -p hookd-bench -- --scenario c     # fan-out to 10 endpoints
//!   cargo run --release -p hookd-bench -- --scenario d     # 1,000,000 queued, then drained
//!   cargo run --release -p hookd-bench -- --scenario g     # 20,000 to a receiver failing 30 %
//!   cargo run --release -p hookd-bench -- --scenario f     # 100,000 single-event requests over 64 connections
//!   cargo run --release -p hookd-bench -- --scenario f --baseline  # and the harness's own limit beside it
//!   cargo run --release -p hookd-bench -- --scenario log   # the portal's event log at 100,000 events
//!   cargo run --release -p hookd-bench -- --scenario outbox \
//!       --postgres postgres://postgres@127.0.0.1:5432/test              # outbox rows published/s
//!   cargo run --release -p hookd-bench -- --events 2000 --rate 0 --fifo  # one FIFO endpoint
//!   cargo run --release -p hookd-bench -- --events 1000 --rate 100     # latency
//!   cargo run --release -p hookd-bench -- --events 20000 --rate 0      # flat out
//!   cargo run --release -p hookd-bench -- --events 20000 --rate 0 \
//!       --postgres postgres://postgres@127.0.0.1:5432/test              # on PostgreSQL

mod backlog;
mod event_log;
mod hookd_process;
mod outbox;
mod receiver;
mod single;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};

use hookd_process::HookdProcess;
use receiver::{Arrivals, now_us};

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";

#[derive(Debug, Parser)]
struct Args {
    /// A preset (docs/benchmarks.md): a = 100,000 events flat out to 1 endpoint;
    /// b = 1,000 events/s for 60 s; c = 20,000 events fanned out to 10 endpoints;
    /// d = 1,000,000 deliveries queued while hookd is stopped, then drained; g = 20,000
    /// events flat out to a receiver failing 30 % of requests at random; f = 100,000
    /// events flat out, one per request, over --connections. It sets
    /// --events, --rate, --endpoints (and --backlog, --fail-percent); add --postgres
    /// for scenario e. log = the portal's event-log queries at 100,000 events, timed at
    /// the store (with --postgres on PostgreSQL). outbox = 100,000 rows committed to
    /// the PostgreSQL outbox as a backlog, then 1,000 rows/s one per transaction for
    /// 30 s (needs --postgres).
    #[arg(long, value_parser = ["a", "b", "c", "d", "f", "g", "log", "outbox"])]
    scenario: Option<String>,
    /// The share of requests, in percent, the receiver answers 500 at random. hookd
    /// then retries every second, 30 times, so retries come within the run and none
    /// runs out (0.3^31 is nil).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    fail_percent: u8,
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
    /// Flat out with one event per request (as producers report one at a time), over
    /// --connections concurrent connections, instead of batches.
    #[arg(long)]
    single: bool,
    /// Concurrent connections for --single.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1024))]
    connections: u16,
    /// First post the same requests straight to the receiver, over the same
    /// connections, and report that rate (the harness's own limit, in this run) beside
    /// hookd's. With --single.
    #[arg(long)]
    baseline: bool,
    /// Endpoints subscribed to every event (fan-out).
    #[arg(long, default_value_t = 1)]
    endpoints: usize,
    /// Give every endpoint `fifo` ordering: one delivery at a time, in publish order,
    /// so throughput is bound by one round trip (claim, send, record) at a time.
    #[arg(long)]
    fifo: bool,
    /// Bytes of padding in each event's data.
    #[arg(long, default_value_t = 1024)]
    payload: usize,
    /// Queue every delivery first, then time the drain: hookd is stopped while the
    /// events are written through its storage layer (the same `publish_events` the
    /// operator API commits with), then started; reports the drain rate and hookd's
    /// memory while draining.
    #[arg(long)]
    backlog: bool,
    /// Run on PostgreSQL: a URL of a server where the user may create databases. A
    /// scratch database is created for the run and dropped after it.
    #[arg(long, value_name = "SERVER_URL")]
    postgres: Option<String>,
}

/// The same allocator as the `hookd` binary: the child runs hookd as that binary would.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Runtime::new()?;
    if argv.get(1).map(String::as_str) == Some(hookd_process::CHILD_MODE) {
        return runtime.block_on(hookd_process::run_child(argv[1..].to_vec()));
    }
    runtime.block_on(bench(Args::parse()))
}

async fn bench(mut args: Args) -> anyhow::Result<()> {
    if args.scenario.as_deref() == Some("log") {
        let scratch = match &args.postgres {
            Some(server) => Some(hookd_store::ScratchDatabase::create(server).await?),
            None => None,
        };
        event_log::run(scratch.as_ref().map(|db| db.url())).await?;
        if let Some(database) = scratch {
            database.drop_database().await?;
        }
        return Ok(());
    }
    if args.scenario.as_deref() == Some("outbox") {
        let server = args.postgres.clone().context("--scenario outbox needs --postgres SERVER_URL")?;
        (args.events, args.rate) = (100_000, 1_000);
        return outbox::run(&args, &server).await;
    }
    match args.scenario.as_deref() {
        Some("a") => (args.events, args.rate, args.endpoints) = (100_000, 0, 1),
        Some("b") => (args.events, args.rate, args.endpoints) = (60_000, 1_000, 1),
        Some("c") => (args.events, args.rate, args.endpoints) = (20_000, 0, 10),
        Some("d") => {
            (args.events, args.rate, args.endpoints, args.batch, args.backlog) = (1_000_000, 0, 1, 1000, true)
        }
        Some("f") => (args.events, args.rate, args.endpoints, args.single) = (100_000, 0, 1, true),
        Some("g") => (args.events, args.rate, args.endpoints, args.fail_percent) = (20_000, 0, 1, 30),
        _ => {}
    }
    let arrivals = Arc::new(Mutex::new(Arrivals::default()));
    let receiver_url = receiver::start(arrivals.clone(), args.fail_percent).await?;
    let hookd_flags: Vec<String> = if args.fail_percent > 0 {
        vec!["--retry-schedule".into(), ["1s"; 30].join(",")]
    } else {
        Vec::new()
    };
    let baseline = if args.baseline && args.single {
        let rate = single::baseline(&args, &receiver_url).await?;
        // What the baseline sent is not a delivery.
        *arrivals.lock().map_err(|_| anyhow::anyhow!("lock"))? = receiver::Arrivals::default();
        Some(rate)
    } else {
        None
    };
    let data_dir = tempfile::tempdir()?;
    let scratch = match &args.postgres {
        Some(server) => Some(hookd_store::ScratchDatabase::create(server).await?),
        None => None,
    };
    let database_url = scratch.as_ref().map(|db| db.url().to_owned());
    let mut hookd =
        HookdProcess::start(data_dir.path(), ADMIN_TOKEN, database_url.as_deref(), &hookd_flags).await?;
    let base = hookd.base_url.clone();
    let http = reqwest::Client::new();
    let key = std::fs::read_to_string(data_dir.path().join("default-api-key"))?.trim().to_owned();
    let account = std::fs::read_to_string(data_dir.path().join("default-account-id"))?.trim().to_owned();
    create_endpoints(&args, &http, &base, &key, &receiver_url).await?;

    let mut cpu_before = hookd.cpu_seconds();
    let mut started = Instant::now();
    let mut drain = None;
    let acknowledged = if args.backlog {
        hookd.stop().await?;
        let acknowledged = backlog::queue(&args, data_dir.path(), database_url.as_deref(), &account).await?;
        let queued_in = started.elapsed();
        started = Instant::now();
        hookd =
            HookdProcess::start(data_dir.path(), ADMIN_TOKEN, database_url.as_deref(), &hookd_flags).await?;
        cpu_before = 0.0; // a new process: all its CPU is the drain's (and its start's)
        drain = Some(Drain { queued_in, peak_rss: hookd.memory_mib("VmRSS:") });
        acknowledged
    } else {
        publish(&args, &http, &base, &account).await?
    };
    let published_in = started.elapsed();
    let expected = args.events * args.endpoints;
    let deadline = Instant::now() + Duration::from_secs(600).max(Duration::from_millis(expected as u64));
    loop {
        let (distinct, last) = {
            let arrivals = arrivals.lock().map_err(|_| anyhow::anyhow!("lock"))?;
            (arrivals.per_delivery.len(), arrivals.last)
        };
        if let Some(drain) = drain.as_mut() {
            drain.peak_rss = drain.peak_rss.max(hookd.memory_mib("VmRSS:"));
        }
        eprint!("\rdelivered {distinct}/{expected}");
        if distinct >= expected {
            let last = last.unwrap_or_else(Instant::now);
            report(&args, &arrivals, &acknowledged, started, published_in, last.duration_since(started))?;
            if let Some(baseline) = baseline {
                let delivered = expected as f64 / last.duration_since(started).as_secs_f64();
                println!(
                    "baseline (the same requests straight to the receiver, same connections): {baseline:.0} requests/s; \
                     hookd delivered at {:.0} % of it",
                    delivered * 100.0 / baseline
                );
            }
            let cpu = hookd.cpu_seconds() - cpu_before;
            println!(
                "hookd CPU: {cpu:.1} s ({:.0} µs per delivery)  hookd peak RSS: {:.0} MiB",
                cpu * 1e6 / expected as f64,
                hookd.memory_mib("VmHWM:")
            );
            if let Some(drain) = drain {
                let drained_in = last.duration_since(started);
                println!(
                    "backlog: {expected} deliveries queued in {:.1} s; drained from hookd's start at {:.0} \
                     deliveries/s ({:.1} s); hookd RSS at most {:.0} MiB while draining (sampled every 100 ms)",
                    drain.queued_in.as_secs_f64(),
                    expected as f64 / drained_in.as_secs_f64(),
                    drained_in.as_secs_f64(),
                    drain.peak_rss,
                );
            }
            hookd.stop().await?;
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

/// Creates `--endpoints` endpoints on the receiver (FIFO with `--fifo`).
async fn create_endpoints(
    args: &Args,
    http: &reqwest::Client,
    base: &str,
    key: &str,
    receiver_url: &str,
) -> anyhow::Result<()> {
    for n in 0..args.endpoints {
        let created = http
            .post(format!("{base}/v3/webhooks/endpoints"))
            .header("X-Api-Key", key)
            .json(&json!({"url": format!("{receiver_url}/endpoint/{n}")}))
            .send()
            .await?;
        if !created.status().is_success() {
            bail!("creating an endpoint failed: {}", created.text().await?);
        }
        if args.fifo {
            let endpoint: Value = created.json().await?;
            let id = endpoint["data"]["endpoint_id"].as_str().context("the endpoint's id")?;
            let settings = http
                .put(format!("{base}/v3/webhooks/endpoints/{id}/settings"))
                .header("X-Api-Key", key)
                .json(&json!({"ordering": "fifo", "rate_limit_per_second": null}))
                .send()
                .await?;
            if !settings.status().is_success() {
                bail!("setting FIFO ordering failed: {}", settings.text().await?);
            }
        }
    }
    Ok(())
}

/// What scenario d watches while hookd drains the backlog.
struct Drain {
    queued_in: Duration,
    peak_rss: f64,
}

/// Publishes every event, at the rate or flat out in batches; returns the event ids
/// hookd acknowledged.
async fn publish(
    args: &Args,
    http: &reqwest::Client,
    base: &str,
    account: &str,
) -> anyhow::Result<Vec<String>> {
    let padding = "x".repeat(args.payload);
    let event = |sent_at: i64| {
        json!({"account_id": account, "event_type": "avatar_video.success",
               "event_data": {"sent_at_us": sent_at, "pad": padding}})
    };
    let mut acknowledged = Vec::with_capacity(args.events);
    if args.single {
        return single::publish(args, http, base, account).await;
    }
    if args.rate > 0 {
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut publishing = tokio::task::JoinSet::new();
        for _ in 0..args.events {
            ticks.tick().await;
            let (http, base, body) = (http.clone(), base.to_owned(), event(now_us()));
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
            let reply = admin_post(http, base, "/admin/v1/events/batch", json!({"events": events})).await?;
            for published in reply["data"]["events"].as_array().context("events")? {
                acknowledged.push(published["event_id"].as_str().context("event_id")?.to_owned());
            }
            remaining -= size;
        }
    }
    Ok(acknowledged)
}

async fn admin_post(http: &reqwest::Client, base: &str, path: &str, body: Value) -> anyhow::Result<Value> {
    let reply = http.post(format!("{base}{path}")).bearer_auth(ADMIN_TOKEN).json(&body).send().await?;
    if reply.status().as_u16() != 202 {
        bail!("publishing failed: {}", reply.text().await?);
    }
    Ok(reply.json().await?)
}

fn report(
    args: &Args,
    arrivals: &Mutex<Arrivals>,
    acknowledged: &[String],
    started: Instant,
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
        } else if args.single {
            format!("flat out, one event per request over {} connections", args.connections)
        } else {
            format!("flat out, batches of {}", args.batch)
        }
    );
    if args.fail_percent > 0 {
        let attempts: u32 = arrivals.attempts.values().sum();
        println!(
            "receiver failing {} % at random: {attempts} attempts, {} answered 500",
            args.fail_percent, arrivals.failed_on_purpose
        );
    }
    if let Some(last) = arrivals.last_first_attempt {
        let took = last.duration_since(started).as_secs_f64();
        println!(
            "first attempts: {:.0} deliveries/s ({deliveries} in {took:.2} s from the first publish)",
            deliveries as f64 / took
        );
    }
    if args.backlog {
        // Queued before hookd started: acceptance and publish-to-receive latency say
        // nothing here; the backlog line below reports the drain.
        println!("duplicates: {duplicates}  missing: {missing}");
        return Ok(());
    }
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
        "latency publish→first attempt: p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        pick(0.5) as f64 / 1000.0,
        pick(0.9) as f64 / 1000.0,
        pick(0.99) as f64 / 1000.0,
        pick(1.0) as f64 / 1000.0
    );
    println!("duplicates: {duplicates}  missing: {missing}");
    Ok(())
}
