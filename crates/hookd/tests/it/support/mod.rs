//! Shared setup: a real hookd on port 0 with its own data directory, a client, and
//! real receivers.

#![allow(dead_code)]

pub mod browser;
pub mod cluster;
pub mod issuer;
pub mod process;
pub mod receiver;
pub mod small_disk;
pub mod tcp_proxy;

use std::path::{Path, PathBuf};

use clap::Parser;
use hookd::{App, Cli, Command};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A running hookd and the credentials of its `default` account.
pub struct TestApp {
    pub base_url: String,
    pub api_key: String,
    pub http: reqwest::Client,
    data_dir: TempDir,
    extra: Vec<String>,
    shutdown: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
}

/// A response read whole: status, headers and parsed JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub raw: String,
}

impl Reply {
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("<none>")
    }

    pub fn error_param(&self) -> Option<&str> {
        self.body["error"]["param"].as_str()
    }

    /// Asserts the contract's error envelope with this status, code and param.
    pub fn assert_error(&self, status: u16, code: &str, param: Option<&str>) {
        assert_eq!(self.status.as_u16(), status, "status of {}", self.raw);
        assert_eq!(self.error_code(), code, "code of {}", self.raw);
        assert_eq!(self.error_param(), param, "param of {}", self.raw);
        assert!(
            self.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "message of {}",
            self.raw
        );
        assert!(self.body["error"]["doc_url"].is_null(), "doc_url of {}", self.raw);
    }

    pub fn assert_ok(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.raw);
        &self.body["data"]
    }
}

/// Flags every test app gets; `DEV` adds what local development uses (http, loopback).
const DEV: &[&str] = &["--allow-http", "--allow-destination", "127.0.0.0/8"];
/// Marks a strict app: the production defaults, no http, no loopback.
pub const STRICT: &str = "--strict-for-test";

pub fn serve_args(data_dir: &Path, extra: &[&str]) -> hookd::ServeArgs {
    let data_dir = data_dir.to_str().expect("utf-8 temp path");
    let mut argv = vec![
        "hookd",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data_dir,
        "--admin-token",
        ADMIN_TOKEN,
    ];
    if !extra.contains(&STRICT) {
        argv.extend_from_slice(DEV);
    }
    argv.extend(extra.iter().filter(|flag| **flag != STRICT));
    match Cli::try_parse_from(argv).expect("test arguments parse").command {
        Command::Serve(args) => args,
        _ => panic!("test arguments are for serve"),
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Starts hookd with extra `serve` flags on a fresh data directory.
    pub async fn spawn_with(extra: &[&str]) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        Self::start(data_dir, extra).await
    }

    /// Starts hookd without its delivery loop: the test sends due deliveries itself
    /// with the returned dispatcher's `step(now)`, at times it chooses, so a retry
    /// schedule is walked without waiting for it.
    pub async fn spawn_stepped(extra: &[&str]) -> (Self, hookd_delivery::Dispatcher) {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let (app, dispatcher) = Self::start_with(data_dir, extra, true).await;
        (app, dispatcher.expect("an instance that delivers"))
    }

    /// Starts hookd with extra `serve` flags on the given data directory.
    pub async fn start(data_dir: TempDir, extra: &[&str]) -> Self {
        Self::start_with(data_dir, extra, false).await.0
    }

    async fn start_with(
        data_dir: TempDir,
        extra: &[&str],
        stepped: bool,
    ) -> (Self, Option<hookd_delivery::Dispatcher>) {
        let mut app = App::build(&serve_args(data_dir.path(), extra)).await.expect("hookd starts");
        let dispatcher = if stepped { app.take_dispatcher() } else { None };
        let base_url = format!("http://{}", app.local_addr().expect("bound"));
        let shutdown = app.shutdown_token();
        let server = tokio::spawn(app.run_until_stopped());
        let api_key =
            std::fs::read_to_string(data_dir.path().join("default-api-key")).expect("default key file");
        let extra = extra.iter().map(|flag| (*flag).to_owned()).collect();
        let http = reqwest::Client::new();
        let app =
            Self { base_url, api_key: api_key.trim().to_owned(), http, data_dir, extra, shutdown, server };
        (app, dispatcher)
    }

    /// Stops the server gracefully and starts a new one on the same data directory.
    pub async fn restart(self) -> Self {
        let extra: Vec<String> = self.extra.clone();
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        self.restart_with(&extra).await
    }

    /// Stops hookd and hands back its data directory, with how the server ended.
    pub async fn stop(self) -> (TempDir, std::io::Result<()>) {
        self.shutdown.cancel();
        let ended = self.server.await.expect("server task");
        (self.data_dir, ended)
    }

    /// Restarts with other flags (the `DEV` flags unless `STRICT` is among them).
    pub async fn restart_with(self, extra: &[&str]) -> Self {
        self.shutdown.cancel();
        self.server.await.expect("server task").expect("server stopped cleanly");
        Self::start(self.data_dir, extra).await
    }

    /// The `default` account's id.
    pub async fn default_account(&self) -> String {
        let store = open_store(self).await;
        let account = account_of(&store, &self.api_key).await;
        store.close().await;
        account.to_string()
    }

    /// Publishes one event through the operator API; returns its id.
    pub async fn publish(&self, body: Value) -> String {
        let reply = send(self.admin(Method::POST, "/admin/v1/events").json(&body)).await;
        assert_eq!(reply.status.as_u16(), 202, "{}", reply.raw);
        reply.body["data"]["event_id"].as_str().expect("event_id").to_owned()
    }

    /// The deliveries of an event, as the customer sees them.
    pub async fn deliveries(&self, event_id: &str) -> Vec<Value> {
        let reply =
            send(self.customer(Method::GET, &format!("/v3/webhooks/events/{event_id}/deliveries"))).await;
        reply.assert_ok().as_array().expect("array").clone()
    }

    /// Waits until every delivery of the event is final (not pending); returns them.
    pub async fn settled_deliveries(&self, event_id: &str) -> Vec<Value> {
        let deadline = std::time::Instant::now() + receiver::PATIENCE;
        loop {
            let deliveries = self.deliveries(event_id).await;
            if !deliveries.is_empty() && deliveries.iter().all(|d| d["status"] != "pending") {
                return deliveries;
            }
            assert!(std::time::Instant::now() < deadline, "deliveries never settled: {deliveries:?}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.path().to_owned()
    }

    /// A customer request with this app's default key.
    pub fn customer(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.as_customer(&self.api_key, method, path)
    }

    pub fn as_customer(&self, api_key: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base_url)).header("X-Api-Key", api_key)
    }

    pub fn admin(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base_url)).bearer_auth(ADMIN_TOKEN)
    }

    pub fn anonymous(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base_url))
    }

    /// Creates an account through the operator API and returns its API key.
    pub async fn new_account(&self, name: &str) -> String {
        let reply = send(self.admin(Method::POST, "/admin/v1/accounts").json(&json!({ "name": name }))).await;
        reply.assert_ok()["api_key"].as_str().expect("api_key").to_owned()
    }

    /// Creates an endpoint for `api_key` and returns its `data`.
    pub async fn create_endpoint_as(&self, api_key: &str, body: Value) -> Value {
        let request = self.as_customer(api_key, Method::POST, "/v3/webhooks/endpoints").json(&body);
        send(request).await.assert_ok().clone()
    }

    pub async fn create_endpoint(&self, body: Value) -> Value {
        self.create_endpoint_as(&self.api_key, body).await
    }
}

/// Sends a request and reads the whole response.
pub async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("request reaches hookd");
    let status = response.status();
    let headers = response.headers().clone();
    let raw = response.text().await.expect("response body");
    let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
    Reply { status, headers, body, raw }
}

/// A URL hookd accepts in tests (http and loopback are allowed by `serve_args`).
pub fn receiver_url(n: usize) -> String {
    format!("http://127.0.0.1:9/hook/{n}")
}

/// Opens the app's SQLite file beside it, to look at what an HTTP response cannot show
/// (secrets after create) or to put in records no API can write yet (events).
pub async fn open_store(app: &TestApp) -> hookd_store::SqliteStore {
    open_store_in(&app.data_dir()).await
}

/// Opens the SQLite database in a data dir with the master key hookd generated there.
pub async fn open_store_in(data_dir: &std::path::Path) -> hookd_store::SqliteStore {
    let key = std::fs::read_to_string(data_dir.join("master-key")).expect("the generated master key");
    let key = hookd_core::MasterKey::from_hex(&key).expect("a well-formed master key");
    hookd_store::SqliteStore::open(&data_dir.join("hookd.db"), hookd_core::SecretSealer::new(&key))
        .await
        .expect("open the app's database")
}

/// The account that owns `api_key`.
pub async fn account_of(store: &hookd_store::SqliteStore, api_key: &str) -> hookd_core::AccountId {
    use hookd_store::AccountStore;
    let key_id = hookd_core::ApiKey::key_id_of(api_key).expect("one of our keys");
    store.find_api_key(&key_id).await.expect("query").expect("key exists").account_id
}
