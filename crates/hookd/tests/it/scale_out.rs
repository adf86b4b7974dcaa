//! Several instances on one PostgreSQL database: they split the delivery work, never
//! deliver an event twice without a crash, finish a killed instance's deliveries, and
//! ride out a database restart. Skipped without HOOKD_TEST_DATABASE_URL (not in CI).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::cluster::{Instance, MASTER_KEY, TestDatabase, await_all};
use crate::support::receiver::{Answer, TestReceiver};
use crate::support::{ADMIN_TOKEN, send};

/// A safety net for thousands of deliveries on a busy 2-core machine.
const DRAIN_LIMIT: Duration = Duration::from_secs(240);

#[tokio::test]
async fn two_instances_deliver_each_event_exactly_once_and_both_do_deliveries() {
    let Some(database) = TestDatabase::shared().await else { return };
    let mut receiver = TestReceiver::start().await;
    receiver.always(Answer::Slow(Duration::from_millis(2), 200));
    let a = Instance::start(&database, &[]).await;
    let b = Instance::start(&database, &[]).await;
    let (account, key) = a.new_account().await;
    b.create_endpoint(&key, &receiver.url("/shared")).await;

    let mut acknowledged = HashSet::new();
    for round in 0..50 {
        let through = if round % 2 == 0 { &a } else { &b };
        acknowledged.extend(through.publish_batch(&account, 100).await);
    }
    assert_eq!(acknowledged.len(), 5_000);
    let mut arrivals = HashMap::new();
    await_all(&mut receiver, &acknowledged, &mut arrivals, DRAIN_LIMIT).await;
    // Anything sent twice would arrive close behind; give it a moment to show up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for extra in receiver.drain() {
        *arrivals.entry(extra.header("heygen-event-id").to_owned()).or_default() += 1;
    }
    let repeated: Vec<_> = arrivals.iter().filter(|(_, count)| **count > 1).collect();
    assert!(repeated.is_empty(), "{} events arrived more than once", repeated.len());
    assert_eq!(arrivals.len(), 5_000);

    let (by_a, by_b) = (a.delivered().await, b.delivered().await);
    assert!(by_a > 0 && by_b > 0, "both instances delivered: a={by_a} b={by_b}");
    assert_eq!(by_a + by_b, 5_000, "each delivery was counted by exactly one instance");
    a.binary.stop().await;
    b.binary.stop().await;
    database.finish().await;
}

#[tokio::test]
async fn a_killed_instances_deliveries_are_finished_by_the_survivor() {
    let Some(database) = TestDatabase::shared().await else { return };
    let mut receiver = TestReceiver::start().await;
    receiver.always(Answer::Slow(Duration::from_millis(20), 200));
    // A short attempt timeout keeps the lease (timeout + 15 s) short.
    let flags = ["--attempt-timeout", "1s"];
    let doomed = Instance::start(&database, &flags).await;
    let survivor = Instance::start(&database, &flags).await;
    let (account, key) = doomed.new_account().await;
    doomed.create_endpoint(&key, &receiver.url("/survive")).await;

    let mut acknowledged = HashSet::new();
    for round in 0..10 {
        let through = if round % 2 == 0 { &doomed } else { &survivor };
        acknowledged.extend(through.publish_batch(&account, 100).await);
    }
    let mut arrivals = HashMap::new();
    while arrivals.len() < 50 {
        *arrivals.entry(receiver.next().await.header("heygen-event-id").to_owned()).or_default() += 1;
    }
    doomed.binary.kill().await;
    assert!(arrivals.len() < acknowledged.len(), "the kill came while deliveries were in flight");

    await_all(&mut receiver, &acknowledged, &mut arrivals, DRAIN_LIMIT).await;
    assert!(survivor.delivered().await > 0);
    survivor.binary.stop().await;
    database.finish().await;
}

#[tokio::test]
async fn a_stopping_instance_gives_back_what_it_claimed_but_did_not_send() {
    let Some(database) = TestDatabase::shared().await else { return };
    let mut receiver = TestReceiver::start().await;
    receiver.always(Answer::Slow(Duration::from_millis(20), 200));
    // A five-minute lease: the drain below finishes long before any lease could lapse,
    // so only released claims can explain it.
    let flags = ["--attempt-timeout", "285s"];
    let stopping = Instance::start(&database, &flags).await;
    let (account, key) = stopping.new_account().await;
    stopping.create_endpoint(&key, &receiver.url("/handover")).await;
    let acknowledged: HashSet<String> = stopping.publish_batch(&account, 400).await.into_iter().collect();
    let mut arrivals = HashMap::new();
    *arrivals.entry(receiver.next().await.header("heygen-event-id").to_owned()).or_default() += 1;
    let (status, _, stderr) = stopping.binary.stop().await;
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("claimed deliveries not started were released"), "{stderr}");

    let survivor = Instance::start(&database, &flags).await;
    await_all(&mut receiver, &acknowledged, &mut arrivals, DRAIN_LIMIT).await;
    assert!(survivor.delivered().await > 0);
    survivor.binary.stop().await;
    database.finish().await;
}

#[tokio::test]
async fn an_api_instance_publishes_and_a_worker_instance_delivers_at_once() {
    let Some(database) = TestDatabase::shared().await else { return };
    let mut receiver = TestReceiver::start().await;
    let api = Instance::start(&database, &["--role", "api"]).await;
    let worker = Instance::start(&database, &["--role", "worker"]).await;
    let (account, key) = api.new_account().await;
    api.create_endpoint(&key, &receiver.url("/roles")).await;

    let published = api.publish_batch(&account, 1).await;
    let arrived = receiver.next().await;
    assert_eq!(arrived.header("heygen-event-id"), published[0]);
    assert_eq!(api.delivered().await, 0, "an api instance sends nothing");
    assert_eq!(worker.delivered().await, 1);
    let customer_route =
        reqwest::Client::new().get(worker.url("/v3/webhooks/endpoints")).header("X-Api-Key", &key);
    assert_eq!(send(customer_route).await.status, StatusCode::NOT_FOUND, "a worker serves no customer API");
    assert_eq!(reqwest::get(worker.url("/readyz")).await.expect("readyz").status(), StatusCode::OK);
    api.binary.stop().await;
    worker.binary.stop().await;
    database.finish().await;
}

/// Stops the machine's PostgreSQL; starts it again when dropped, even if the test fails.
struct Outage;

impl Outage {
    fn begin() -> Self {
        pg_ctlcluster("stop");
        Self
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        pg_ctlcluster("start");
    }
}

fn pg_ctlcluster(action: &str) {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("this test needs the machine's PostgreSQL cluster (/etc/postgresql)")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .max()
        .expect("a PostgreSQL version");
    let status = std::process::Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", action])
        .status()
        .expect("run pg_ctlcluster");
    assert!(status.success(), "pg_ctlcluster {action} failed");
}

#[tokio::test]
async fn an_instance_given_another_master_key_refuses_to_start() {
    let Some(database) = TestDatabase::shared().await else { return };
    let first = Instance::start(&database, &[]).await;
    let data_dir = tempfile::tempdir().expect("temp dir");
    let other_key = "ab".repeat(32);
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data_dir.path().to_str().expect("utf-8"),
        "--database-url",
        database.url(),
        "--master-key",
        &other_key,
    ];
    let output = crate::support::process::command(&args, &[]).output().await.expect("run hookd");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "it must not start");
    assert!(stderr.contains("master key does not open"), "{stderr}");
    drop(first);
}

#[tokio::test]
async fn a_database_restart_mid_load_answers_503_and_loses_nothing_acknowledged() {
    let Some(database) = TestDatabase::exclusive().await else { return };
    let mut receiver = TestReceiver::start().await;
    // Slow enough that attempts are in flight, and outcomes waiting to be written,
    // when the database goes away.
    receiver.always(Answer::Slow(Duration::from_millis(50), 200));
    let instance = Instance::start(&database, &[]).await;
    let (account, key) = instance.new_account().await;
    instance.create_endpoint(&key, &receiver.url("/restart")).await;
    let http = reqwest::Client::new();
    let publish = |n: usize| {
        let event = json!({"account_id": account, "event_type": "batch.finished", "event_data": {"n": n}});
        http.post(instance.url("/admin/v1/events")).bearer_auth(ADMIN_TOKEN).json(&event)
    };

    let mut acknowledged = HashSet::new();
    for n in 0..20 {
        let reply = send(publish(n)).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.raw);
        acknowledged.insert(reply.body["data"]["event_id"].as_str().expect("id").to_owned());
    }
    acknowledged.extend(instance.publish_batch(&account, 300).await);
    let mut arrivals = HashMap::new();
    *arrivals.entry(receiver.next().await.header("heygen-event-id").to_owned()).or_default() += 1;

    let outage = Outage::begin();
    for n in 20..22 {
        let reply = send(publish(n)).await;
        reply.assert_error(503, "service_unavailable", None);
        assert!(reply.headers.contains_key("retry-after"));
    }
    let ready = reqwest::get(instance.url("/readyz")).await.expect("readyz");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE, "not ready without its database");
    drop(outage);

    // hookd reconnects by itself: publishing works again without a restart of hookd.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut n = 22;
    while acknowledged.len() < 340 {
        assert!(tokio::time::Instant::now() < deadline, "publishing never recovered");
        let reply = send(publish(n)).await;
        n += 1;
        match reply.status.as_u16() {
            202 => {
                acknowledged.insert(reply.body["data"]["event_id"].as_str().expect("id").to_owned());
            }
            503 => tokio::time::sleep(Duration::from_millis(200)).await,
            other => panic!("unexpected {other} while the database came back: {}", reply.raw),
        }
    }
    await_all(&mut receiver, &acknowledged, &mut arrivals, DRAIN_LIMIT).await;
    instance.binary.stop().await;
    database.finish().await;
}

/// A rollout starts instances together on a new database: every "create if absent" at
/// startup (migrations, the cursor key, the admin token, the `default` account) must
/// hold under that race. Twenty rounds of four, each on a fresh database.
#[tokio::test]
async fn instances_started_together_on_a_new_database_all_start() {
    for round in 0..20 {
        let Some(database) = TestDatabase::shared().await else { return };
        let mut starting = tokio::task::JoinSet::new();
        for instance in 0..4 {
            let data_dir = tempfile::tempdir().expect("temp dir");
            let url = database.url().to_owned();
            starting.spawn(async move {
                // No --admin-token: each instance races to generate and save one.
                let argv = [
                    "hookd",
                    "serve",
                    "--listen",
                    "127.0.0.1:0",
                    "--data-dir",
                    data_dir.path().to_str().expect("utf-8 path"),
                    "--database-url",
                    &url,
                    "--master-key",
                    MASTER_KEY,
                ];
                let args = match <hookd::Cli as clap::Parser>::try_parse_from(argv).expect("flags").command {
                    hookd::Command::Serve(args) => args,
                    _ => unreachable!("serve"),
                };
                let started = hookd::App::build(&args).await.map(drop).map_err(|e| e.to_string());
                (instance, started, data_dir)
            });
        }
        let mut tokens = HashSet::new();
        while let Some(joined) = starting.join_next().await {
            let (instance, started, data_dir) = joined.expect("instance task");
            if let Err(error) = started {
                panic!("round {round}: instance {instance} did not start: {error}");
            }
            if let Ok(token) = std::fs::read_to_string(data_dir.path().join("admin-token")) {
                tokens.insert(token);
            }
        }
        assert_eq!(tokens.len(), 1, "round {round}: exactly one instance generated the admin token");
        database.finish().await;
    }
}
