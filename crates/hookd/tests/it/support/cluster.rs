//! Several real `hookd serve` processes on one PostgreSQL database.
//!
//! Each test gets a scratch database of its own. A test that stops the PostgreSQL
//! server takes the server exclusively (no other test of this binary uses it
//! meanwhile); the others share it.

use std::collections::HashSet;
use std::time::Duration;

use hookd_store::ScratchDatabase;
use serde_json::{Value, json};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::process::RunningBinary;
use super::{ADMIN_TOKEN, send};

static SERVER: RwLock<()> = RwLock::const_new(());

enum ServerGuard {
    Shared(#[allow(dead_code)] RwLockReadGuard<'static, ()>),
    Exclusive(#[allow(dead_code)] RwLockWriteGuard<'static, ()>),
}

/// A scratch database, dropped by [`TestDatabase::finish`].
pub struct TestDatabase {
    scratch: ScratchDatabase,
    _server: ServerGuard,
}

impl TestDatabase {
    /// `None` (the test is skipped) without `HOOKD_TEST_DATABASE_URL`, outside CI.
    pub async fn shared() -> Option<Self> {
        let server = hookd_store::test_server_url()?;
        let guard = ServerGuard::Shared(SERVER.read().await);
        Some(Self::create(&server, guard).await)
    }

    /// For a test that stops and starts the server.
    pub async fn exclusive() -> Option<Self> {
        let server = hookd_store::test_server_url()?;
        let guard = ServerGuard::Exclusive(SERVER.write().await);
        Some(Self::create(&server, guard).await)
    }

    async fn create(server: &str, guard: ServerGuard) -> Self {
        let scratch = ScratchDatabase::create(server).await.expect("create a scratch database");
        Self { scratch, _server: guard }
    }

    pub fn url(&self) -> &str {
        self.scratch.url()
    }

    pub async fn finish(self) {
        self.scratch.drop_database().await.expect("drop the scratch database");
    }
}

/// The master key every instance of a test cluster is given, as operators must.
pub const MASTER_KEY: &str = "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";

/// One `hookd serve` on the shared database, with a data directory of its own.
pub struct Instance {
    pub binary: RunningBinary,
    _data_dir: tempfile::TempDir,
}

impl Instance {
    pub async fn start(database: &TestDatabase, extra: &[&str]) -> Self {
        Self::start_with_env(database, extra, &[]).await
    }

    /// [`Instance::start`] with environment variables (the `OTEL_*` ones, say).
    pub async fn start_with_env(database: &TestDatabase, extra: &[&str], envs: &[(&str, &str)]) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut flags = vec![
            "--database-url",
            database.url(),
            "--admin-token",
            ADMIN_TOKEN,
            "--master-key",
            MASTER_KEY,
            "--allow-http",
            "--allow-destination",
            "127.0.0.0/8",
        ];
        flags.extend_from_slice(extra);
        let binary = RunningBinary::start(data_dir.path(), &flags, envs).await;
        Self { binary, _data_dir: data_dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.binary.base_url)
    }

    /// A new account's id and API key, through the operator API.
    pub async fn new_account(&self) -> (String, String) {
        let http = reqwest::Client::new();
        let request = http.post(self.url("/admin/v1/accounts")).bearer_auth(ADMIN_TOKEN);
        let reply = send(request.json(&json!({"name": "tenant"}))).await;
        let data = reply.assert_ok();
        (
            data["account_id"].as_str().expect("id").to_owned(),
            data["api_key"].as_str().expect("key").to_owned(),
        )
    }

    /// Returns the endpoint's id.
    pub async fn create_endpoint(&self, api_key: &str, url: &str) -> String {
        let http = reqwest::Client::new();
        let request = http.post(self.url("/v3/webhooks/endpoints")).header("X-Api-Key", api_key);
        let reply = send(request.json(&json!({ "url": url }))).await;
        reply.assert_ok()["endpoint_id"].as_str().expect("id").to_owned()
    }

    /// Publishes `count` events in one batch; returns their ids.
    pub async fn publish_batch(&self, account_id: &str, count: usize) -> Vec<String> {
        let events: Vec<Value> = (0..count)
            .map(
                |n| json!({"account_id": account_id, "event_type": "batch.finished", "event_data": {"n": n}}),
            )
            .collect();
        let http = reqwest::Client::new();
        let request = http.post(self.url("/admin/v1/events/batch")).bearer_auth(ADMIN_TOKEN);
        let reply = send(request.json(&json!({ "events": events }))).await;
        assert_eq!(reply.status.as_u16(), 202, "{}", reply.raw);
        let published = reply.body["data"]["events"].as_array().expect("events");
        published.iter().map(|e| e["event_id"].as_str().expect("id").to_owned()).collect()
    }

    /// This instance's count of deliveries it completed, from its `/metrics`.
    pub async fn delivered(&self) -> u64 {
        self.metric("hookd_deliveries_total{outcome=\"delivered\"}").await as u64
    }

    /// One series' value in this instance's `/metrics` (0 if absent).
    pub async fn metric(&self, series: &str) -> f64 {
        let text = reqwest::get(self.url("/metrics")).await.expect("metrics").text().await.expect("text");
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|value| value.parse::<f64>().ok())
            .unwrap_or(0.0)
    }
}

/// Waits until every one of `expected` has arrived at the receiver, counting arrivals
/// per event id (`arrivals` may already hold some). Panics with the number missing
/// after `limit`.
pub async fn await_all(
    receiver: &mut super::receiver::TestReceiver,
    expected: &HashSet<String>,
    arrivals: &mut std::collections::HashMap<String, usize>,
    limit: Duration,
) {
    let deadline = tokio::time::Instant::now() + limit;
    while !expected.iter().all(|id| arrivals.contains_key(id)) {
        let missing = expected.iter().filter(|id| !arrivals.contains_key(*id)).count();
        let next = tokio::time::timeout_at(deadline, receiver.next())
            .await
            .unwrap_or_else(|_| panic!("{missing} acknowledged events never arrived"));
        *arrivals.entry(next.header("heygen-event-id").to_owned()).or_default() += 1;
    }
}
