//! Scenario `log`: how fast the portal's message log reads at 100,000 events. Writes
//! the history straight through hookd's storage layer (one endpoint; five event types;
//! a hundred entities; thirty days of events; 1 in 200 deliveries failed, 1 in 100
//! pending, the rest delivered), then times each kind of event-log query the portal
//! makes, at the store, 20 times each.

use std::time::{Duration, Instant};

use hookd_core::{
    AccountId, ApiKey, DeliveryState, EndpointId, EndpointSecret, EndpointStatus, EndpointUrl, EventFilter,
    EventId, MasterKey, SecretSealer, UrlRules,
};
use hookd_store::{
    AttemptOutcome, AttemptRecord, ClaimLimits, Endpoint, Event, EventLogQuery, NextStep, PageRequest,
    PostgresOptions, PostgresStore, SqliteStore, Store,
};

const EVENTS: usize = 100_000;
const DAY_MS: i64 = 86_400_000;
const TYPES: [&str; 5] = [
    "avatar_video.success",
    "avatar_video.fail",
    "video_translate.success",
    "batch.finished",
    "video_agent.success",
];

pub async fn run(database_url: Option<&str>) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let sealer = SecretSealer::new(&MasterKey::generate());
    let store: Box<dyn Store> = match database_url {
        Some(url) => Box::new(PostgresStore::connect(url, &PostgresOptions::default(), sealer).await?),
        None => Box::new(SqliteStore::open(&dir.path().join("hookd.db"), sealer).await?),
    };
    let now = hookd_store::now_millis();
    let account = store.create_account("bench", &ApiKey::generate(), now).await?.account_id;
    let endpoint = endpoint(&account, now)?;
    store.create_endpoint(&endpoint, &EndpointSecret::generate()).await?;

    let started = Instant::now();
    seed(store.as_ref(), &account, now).await?;
    eprintln!("\rseeded {EVENTS} events and their deliveries in {:.1} s", started.elapsed().as_secs_f64());

    let query = |f: fn(&mut EventLogQuery)| {
        let mut query = EventLogQuery::default();
        f(&mut query);
        query
    };
    let cases: Vec<(&str, EventLogQuery, Option<i64>)> = vec![
        ("newest page", EventLogQuery::default(), None),
        ("a page halfway down (token)", EventLogQuery::default(), Some(EVENTS as i64 / 2)),
        ("one event type", query(|q| q.history.event_type = Some(TYPES[2].into())), None),
        ("one entity (1 in 100)", query(|q| q.history.entity_id = Some("entity-42".into())), None),
        ("status failed (1 in 200)", query(|q| q.status = Some(DeliveryState::Failed)), None),
        ("status pending (1 in 100)", query(|q| q.status = Some(DeliveryState::Pending)), None),
        ("status delivered", query(|q| q.status = Some(DeliveryState::Delivered)), None),
        ("status cancelled (none: worst case)", query(|q| q.status = Some(DeliveryState::Cancelled)), None),
        ("one day, 20 days ago", window(now, 20), None),
        (
            "one day, 29 days ago, failed",
            {
                let mut q = window(now, 29);
                q.status = Some(DeliveryState::Failed);
                q
            },
            None,
        ),
    ];
    println!(
        "event log at {EVENTS} events ({}), 50 per page, 20 runs each:",
        if database_url.is_some() { "PostgreSQL" } else { "SQLite" }
    );
    println!("{:<32} {:>10} {:>10} {:>6}", "query", "median", "max", "rows");
    for (name, query, before) in cases {
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..20 {
            let started = Instant::now();
            let page = store.event_log(&account, &query, PageRequest { before, limit: 50 }).await?;
            times.push(started.elapsed());
            rows = page.items.len();
        }
        times.sort();
        println!(
            "{name:<32} {:>10} {:>10} {rows:>6}",
            millis(times[times.len() / 2]),
            millis(times[times.len() - 1])
        );
    }
    store.close().await;
    Ok(())
}

fn window(now: i64, days_ago: i64) -> EventLogQuery {
    EventLogQuery {
        since: Some(now - days_ago * DAY_MS),
        until: Some(now - (days_ago - 1) * DAY_MS),
        ..Default::default()
    }
}

fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

fn endpoint(account: &AccountId, now: i64) -> anyhow::Result<Endpoint> {
    let rules = UrlRules { allow_http: true, ..UrlRules::default() };
    Ok(Endpoint {
        endpoint_id: EndpointId::new_random(),
        account_id: account.clone(),
        url: EndpointUrl::parse("http://receiver.example/hook", &rules)?,
        events: EventFilter::All,
        entity_id: None,
        status: EndpointStatus::Enabled,
        created_at: now,
    })
}

/// Thirty days of events, oldest first, then every delivery claimed and settled.
async fn seed(store: &dyn Store, account: &AccountId, now: i64) -> anyhow::Result<()> {
    let step = 30 * DAY_MS / EVENTS as i64;
    for batch in 0..EVENTS / 1000 {
        let events: Vec<Event> = (0..1000)
            .map(|i| {
                let n = batch * 1000 + i;
                let created_at = now - 30 * DAY_MS + n as i64 * step;
                Event {
                    event_id: EventId::new_time_ordered(created_at),
                    account_id: account.clone(),
                    event_type: TYPES[n % TYPES.len()].into(),
                    entity_id: Some(format!("entity-{}", n % 100)),
                    event_data: serde_json::json!({"video_id": format!("v{n}")}).to_string(),
                    callback_url: None,
                    callback_id: None,
                    created_at,
                    traceparent: None,
                }
            })
            .collect();
        store.publish_events(&events).await?;
        eprint!("\rpublished {}", (batch + 1) * 1000);
    }
    let mut settled = 0usize;
    loop {
        let claimed = store.claim_due(now, ClaimLimits::new(2_000, 1_000_000), now + 600_000).await?;
        if claimed.is_empty() {
            break;
        }
        let outcomes: Vec<AttemptOutcome> = claimed
            .iter()
            .map(|delivery| {
                settled += 1;
                let (status, next) = match settled % 200 {
                    0 => (500, NextStep::Failed),
                    n if n % 100 == 1 => (500, NextStep::RetryAt(now + 30 * DAY_MS)),
                    _ => (200, NextStep::Delivered),
                };
                AttemptOutcome {
                    delivery_id: delivery.delivery_id.clone(),
                    endpoint_id: delivery.endpoint_id.clone(),
                    attempt: AttemptRecord {
                        attempted_at: now,
                        status_code: Some(status),
                        duration_ms: 3,
                        error: None,
                        response_body: None,
                    },
                    next,
                }
            })
            .collect();
        store.record_outcomes(&outcomes, 0).await?;
        eprint!("\rsettled {settled}");
    }
    Ok(())
}
