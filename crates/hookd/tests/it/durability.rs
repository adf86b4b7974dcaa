//! Durability: a 2xx from hookd means the event is on disk, whatever happens next.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::process::RunningBinary;
use crate::support::receiver::{Answer, TestReceiver};
use crate::support::{ADMIN_TOKEN, send};

const EVENTS: usize = 2000;
/// Longer than the usual safety net: 2,000 slow deliveries have to drain after a restart.
const DRAIN_LIMIT: Duration = Duration::from_secs(180);

#[tokio::test]
async fn every_acknowledged_event_arrives_after_a_sigkill_mid_delivery() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut receiver = TestReceiver::start().await;
    receiver.always(Answer::Slow(Duration::from_millis(20), 200));
    let flags = ["--allow-http", "--allow-destination", "127.0.0.0/8", "--admin-token", ADMIN_TOKEN];
    let first = RunningBinary::start(dir.path(), &flags, &[]).await;
    let http = reqwest::Client::new();
    let key = std::fs::read_to_string(dir.path().join("default-api-key")).expect("key").trim().to_owned();
    let endpoint = http
        .post(format!("{}/v3/webhooks/endpoints", first.base_url))
        .header("X-Api-Key", &key)
        .json(&json!({"url": receiver.url("/durable")}));
    send(endpoint).await.assert_ok();
    let store = crate::support::open_store_in(dir.path()).await;
    let account = crate::support::account_of(&store, &key).await.to_string();
    store.close().await;

    let mut acknowledged = HashSet::new();
    for _ in 0..EVENTS / 1000 {
        let events: Vec<Value> = (0..1000)
            .map(|n| json!({"account_id": account, "event_type": "batch.finished", "event_data": {"n": n}}))
            .collect();
        let batch = http.post(format!("{}/admin/v1/events/batch", first.base_url)).bearer_auth(ADMIN_TOKEN);
        let reply = send(batch.json(&json!({ "events": events }))).await;
        assert_eq!(reply.status.as_u16(), 202, "{}", reply.raw);
        for published in reply.body["data"]["events"].as_array().expect("events") {
            acknowledged.insert(published["event_id"].as_str().expect("id").to_owned());
        }
    }
    assert_eq!(acknowledged.len(), EVENTS);

    let mut arrived = HashSet::new();
    while arrived.len() < 50 {
        arrived.insert(receiver.next().await.header("heygen-event-id").to_owned());
    }
    first.kill().await;
    arrived.extend(receiver.drain().into_iter().map(|r| r.header("heygen-event-id").to_owned()));
    assert!(arrived.len() < EVENTS, "the kill came while deliveries were still in flight");

    let second = RunningBinary::start(dir.path(), &flags, &[]).await;
    let deadline = tokio::time::Instant::now() + DRAIN_LIMIT;
    while !acknowledged.is_subset(&arrived) {
        let next = tokio::time::timeout_at(deadline, receiver.next()).await;
        let received = next.unwrap_or_else(|_| {
            panic!("{} acknowledged events never arrived", acknowledged.difference(&arrived).count())
        });
        arrived.insert(received.header("heygen-event-id").to_owned());
    }
    second.kill().await;
}
