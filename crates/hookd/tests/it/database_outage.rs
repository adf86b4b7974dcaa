//! The network between hookd and PostgreSQL fails (a TCP proxy in between is cut):
//! readiness and publishing answer 503 promptly rather than hang, nothing
//! acknowledged is lost, and both recover by themselves when the network does.
//! Skipped without HOOKD_TEST_DATABASE_URL (not in CI).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::cluster::{MASTER_KEY, TestDatabase, await_all};
use crate::support::receiver::TestReceiver;
use crate::support::tcp_proxy::TcpProxy;
use crate::support::{TestApp, send};

/// What a readiness probe usually allows (Kubernetes' default timeoutSeconds).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
const DATABASE_TIMEOUT: &str = "1s";

/// The database URL with its host and port replaced by the proxy's.
async fn through(proxy_of: &str) -> (TcpProxy, String) {
    let mut url = url::Url::parse(proxy_of).expect("a database URL");
    let host = url.host_str().expect("a host").to_owned();
    let port = url.port().unwrap_or(5432);
    let upstream = tokio::net::lookup_host((host.as_str(), port))
        .await
        .expect("resolve the database host")
        .next()
        .expect("an address");
    let proxy = TcpProxy::start(upstream).await;
    url.set_host(Some("127.0.0.1")).expect("host");
    url.set_port(Some(proxy.address.port())).expect("port");
    (proxy, url.to_string())
}

fn event(account: &str, n: usize) -> Value {
    json!({"account_id": account, "event_type": "avatar_video.success",
           "event_data": {"video_id": format!("v{n}"), "url": "https://example.com/v.mp4"}})
}

#[tokio::test]
async fn a_cut_database_answers_503_promptly_loses_nothing_and_recovers_by_itself() {
    let Some(database) = TestDatabase::shared().await else { return };
    let (proxy, url) = through(database.url()).await;
    let mut receiver = TestReceiver::start().await;
    let app = TestApp::spawn_with(&[
        "--database-url",
        &url,
        "--master-key",
        MASTER_KEY,
        "--database-timeout",
        DATABASE_TIMEOUT,
    ])
    .await;
    app.create_endpoint(json!({"url": receiver.url("/outage")})).await;
    let account = std::fs::read_to_string(app.data_dir().join("default-account-id")).expect("account id");
    let account = account.trim();
    let mut acknowledged = HashSet::new();
    for n in 0..20 {
        acknowledged.insert(app.publish(event(account, n)).await);
    }
    let probe = reqwest::Client::builder().timeout(PROBE_TIMEOUT).build().expect("probe client");
    let ready = || probe.get(format!("{}/readyz", app.base_url)).send();
    assert_eq!(ready().await.expect("ready").status(), 200);

    proxy.cut();
    for _ in 0..3 {
        // A timeout here is what the probe must never see.
        let answer = ready().await.expect("/readyz answers within a probe's timeout");
        assert_eq!(answer.status(), 503);
    }
    let started = Instant::now();
    let refused = send(app.admin(Method::POST, "/admin/v1/events").json(&event(account, 100))).await;
    let took = started.elapsed();
    refused.assert_error(503, "service_unavailable", None);
    assert_eq!(refused.headers["retry-after"], "1");
    println!("while cut: publish answered 503 after {took:?} (--database-timeout {DATABASE_TIMEOUT})");

    proxy.restore();
    let restored = Instant::now();
    loop {
        if ready().await.is_ok_and(|answer| answer.status() == 200) {
            break;
        }
        assert!(restored.elapsed() < crate::support::receiver::PATIENCE, "never ready again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("ready again {:?} after the restore", restored.elapsed());
    for n in 20..40 {
        acknowledged.insert(app.publish(event(account, n)).await);
    }
    let mut arrivals = HashMap::new();
    await_all(&mut receiver, &acknowledged, &mut arrivals, Duration::from_secs(60)).await;
    let (_, stopped) = app.stop().await;
    stopped.expect("stopped cleanly");
    database.finish().await;
}
