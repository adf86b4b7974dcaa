//! Scenario `outbox` (PostgreSQL): how fast hookd publishes the rows producers commit
//! to `hookd_outbox`, in two parts.
//!
//! - Backlog: `--events` rows committed (1,000 per transaction) while hookd's outbox
//!   consumer is off; then hookd starts with it on, and the time until the table is
//!   empty gives rows published per second, and until every delivery arrived.
//! - Live: a producer commits one row per transaction at `--rate` for 30 s, and each
//!   delivery's first attempt is timed from the row's INSERT (its `sent_at_us`, read
//!   from the database clock, which is this machine's).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::PgPool;

use crate::hookd_process::HookdProcess;
use crate::receiver::{self, Arrivals};
use crate::{ADMIN_TOKEN, Args, create_endpoints};

const ROWS_PER_TRANSACTION: usize = 1_000;
const LIVE_FOR: Duration = Duration::from_secs(30);

pub async fn run(args: &Args, server: &str) -> anyhow::Result<()> {
    let arrivals = Arc::new(Mutex::new(Arrivals::default()));
    let receiver_url = receiver::start(arrivals.clone(), 0).await?;
    let scratch = hookd_store::ScratchDatabase::create(server).await?;
    let data_dir = tempfile::tempdir()?;
    let off = vec!["--outbox".to_owned(), "false".to_owned()];
    let mut hookd = HookdProcess::start(data_dir.path(), ADMIN_TOKEN, Some(scratch.url()), &off).await?;
    let key = std::fs::read_to_string(data_dir.path().join("default-api-key"))?.trim().to_owned();
    let account = std::fs::read_to_string(data_dir.path().join("default-account-id"))?.trim().to_owned();
    create_endpoints(args, &reqwest::Client::new(), &hookd.base_url, &key, &receiver_url).await?;
    let pool = PgPool::connect(scratch.url()).await?;

    // Backlog.
    let started = Instant::now();
    let mut remaining = args.events;
    while remaining > 0 {
        let rows = remaining.min(ROWS_PER_TRANSACTION);
        insert(&pool, &account, rows, args.payload).await?;
        remaining -= rows;
    }
    let queued_in = started.elapsed();
    hookd.stop().await?;
    let hookd_flags = Vec::new();
    hookd = HookdProcess::start(data_dir.path(), ADMIN_TOKEN, Some(scratch.url()), &hookd_flags).await?;
    let started = Instant::now();
    let cpu_before = hookd.cpu_seconds();
    let deadline = started + Duration::from_secs(600);
    while waiting(&pool).await? > 0 {
        if Instant::now() > deadline {
            bail!("the outbox did not drain in 600 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let published_in = started.elapsed();
    let expected = args.events * args.endpoints;
    let delivered_in = wait_for(&arrivals, expected, started).await?;
    let cpu = hookd.cpu_seconds() - cpu_before;
    println!(
        "outbox backlog: {} rows ({} B of padding each) committed in {:.1} s; published from hookd's start at \
         {:.0} rows/s ({:.2} s, polled every 20 ms); all {expected} deliveries arrived at {:.0}/s ({:.2} s); \
         hookd CPU {:.1} s",
        args.events,
        args.payload,
        queued_in.as_secs_f64(),
        args.events as f64 / published_in.as_secs_f64(),
        published_in.as_secs_f64(),
        expected as f64 / delivered_in.as_secs_f64(),
        delivered_in.as_secs_f64(),
        cpu,
    );
    report_duplicates(&arrivals)?;

    // Live.
    *arrivals.lock().map_err(|_| anyhow::anyhow!("lock"))? = Arrivals::default();
    let rate = args.rate.max(1);
    let rows = (f64::from(rate) * LIVE_FOR.as_secs_f64()) as usize;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut producing = tokio::task::JoinSet::new();
    for _ in 0..rows {
        ticks.tick().await;
        let (pool, account, payload) = (pool.clone(), account.clone(), args.payload);
        producing.spawn(async move { insert(&pool, &account, 1, payload).await });
    }
    while let Some(done) = producing.join_next().await {
        done??;
    }
    wait_for(&arrivals, rows * args.endpoints, started).await?;
    let mut latencies = arrivals.lock().map_err(|_| anyhow::anyhow!("lock"))?.latencies_us.clone();
    latencies.sort_unstable();
    let pick = |q: f64| {
        let at = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(at).copied().unwrap_or(0) as f64 / 1000.0
    };
    println!(
        "outbox live: {rows} rows, one per transaction at {rate}/s; INSERT→first attempt p50 {:.1} ms  \
         p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        pick(0.5),
        pick(0.9),
        pick(0.99),
        pick(1.0)
    );
    report_duplicates(&arrivals)?;
    hookd.stop().await?;
    pool.close().await;
    scratch.drop_database().await?;
    Ok(())
}

/// Commits `rows` outbox rows in one transaction, as a producer would.
async fn insert(pool: &PgPool, account: &str, rows: usize, payload: usize) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO hookd_outbox (account_id, event_type, event_data)
         SELECT $1, 'avatar_video.success',
                jsonb_build_object('sent_at_us', (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::bigint,
                                   'n', n, 'pad', repeat('x', $3))
         FROM generate_series(1, $2) AS n",
    )
    .bind(account)
    .bind(i64::try_from(rows)?)
    .bind(i32::try_from(payload)?)
    .execute(pool)
    .await
    .context("inserting outbox rows")?;
    Ok(())
}

async fn waiting(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM hookd_outbox").fetch_one(pool).await?)
}

/// Waits until `expected` deliveries arrived; returns when the last one did, from `started`.
async fn wait_for(arrivals: &Mutex<Arrivals>, expected: usize, started: Instant) -> anyhow::Result<Duration> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (distinct, last) = {
            let arrivals = arrivals.lock().map_err(|_| anyhow::anyhow!("lock"))?;
            (arrivals.per_delivery.len(), arrivals.last)
        };
        eprint!("\rdelivered {distinct}/{expected}");
        if distinct >= expected {
            eprintln!();
            return Ok(last.unwrap_or_else(Instant::now).duration_since(started));
        }
        if Instant::now() > deadline {
            bail!("only {distinct} of {expected} deliveries arrived");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn report_duplicates(arrivals: &Mutex<Arrivals>) -> anyhow::Result<()> {
    let arrivals = arrivals.lock().map_err(|_| anyhow::anyhow!("lock"))?;
    let duplicates: u32 = arrivals.per_delivery.values().map(|n| n - 1).sum();
    println!("duplicates: {duplicates}");
    Ok(())
}
