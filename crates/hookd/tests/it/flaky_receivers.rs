//! Receivers that fail part of the time or all of it: a failure holds up only the
//! delivery that failed; a destination that keeps failing is paused and probed, not
//! hammered, and is drained when it comes back.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::receiver::{Answer, TestReceiver};
use crate::support::{TestApp, send};

fn event(account: &str, n: usize) -> Value {
    json!({"account_id": account, "event_type": "avatar_video.success",
           "event_data": {"video_id": format!("v{n}"), "url": "https://example.com/v.mp4"}})
}

/// Publishes events `range` in one batch; returns their ids in order.
async fn publish_batch(app: &TestApp, account: &str, range: std::ops::Range<usize>) -> Vec<String> {
    let batch: Vec<Value> = range.map(|n| event(account, n)).collect();
    let reply =
        send(app.admin(Method::POST, "/admin/v1/events/batch").json(&json!({ "events": batch }))).await;
    assert_eq!(reply.status.as_u16(), 202, "{}", reply.raw);
    let events = reply.body["data"]["events"].as_array().expect("events");
    events.iter().map(|e| e["event_id"].as_str().expect("id").to_owned()).collect()
}

#[tokio::test]
async fn a_receiver_failing_every_third_request_holds_up_only_the_failed_deliveries() {
    let mut receiver = TestReceiver::start().await;
    // A few milliseconds each, so deliveries queue behind the in-flight cap.
    receiver.always(Answer::Slow(Duration::from_millis(5), 200));
    receiver.every(3, Answer::Slow(Duration::from_millis(5), 500));
    // A long attempt timeout makes a long lease (timeout + 15 s): a delivery set
    // aside with its lease after another one failed would arrive only after 75 s,
    // past the receiver's safety net (60 s), so that would fail this test.
    let app = TestApp::spawn_with(&[
        "--retry-schedule",
        "1s,1s,1s,1s,1s,1s",
        "--attempt-timeout",
        "60s",
        // The test reads 300 events' deliveries back through the customer API.
        "--rate-limit",
        "0",
    ])
    .await;
    app.create_endpoint(json!({"url": receiver.url("/flaky")})).await;
    let account = app.default_account().await;

    let mut published_at = HashMap::new();
    for round in 0..10 {
        let sent = Instant::now();
        for event_id in publish_batch(&app, &account, round * 30..(round + 1) * 30).await {
            published_at.insert(event_id, sent);
        }
    }
    let mut first_attempt_after = HashMap::new();
    let mut received = 0;
    while first_attempt_after.len() < published_at.len() {
        let request = receiver.next().await;
        received += 1;
        let event_id = request.header("heygen-event-id").to_owned();
        let published = published_at.get(&event_id).expect("an event this test published");
        first_attempt_after.entry(event_id).or_insert(request.at.duration_since(*published));
    }

    let mut recorded = 0;
    for event_id in published_at.keys() {
        let settled = app.settled_deliveries(event_id).await;
        assert_eq!(settled[0]["status"], "delivered", "{settled:?}");
        recorded += settled[0]["attempts"].as_array().expect("attempts").len();
    }
    received += receiver.drain().len();
    assert_eq!(received, recorded, "every attempt the receiver saw is recorded, and no other");
    assert!(recorded > 300, "some attempts failed and were retried");

    let mut delays: Vec<Duration> = first_attempt_after.into_values().collect();
    delays.sort();
    // Reported, not asserted (machines are noisy); hookd-bench scenario g measures it.
    println!(
        "first attempt after publish: p50 {:?}, p99 {:?}, max {:?}",
        delays[delays.len() / 2],
        delays[delays.len() * 99 / 100],
        delays[delays.len() - 1]
    );
}

#[tokio::test]
async fn a_receiver_that_is_down_is_probed_not_hammered_and_drained_when_it_returns() {
    let mut receiver = TestReceiver::start().await;
    receiver.always(Answer::Status(503));
    let app = TestApp::spawn_with(&["--retry-schedule", "1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s"]).await;
    app.create_endpoint(json!({"url": receiver.url("/down")})).await;
    let account = app.default_account().await;
    let published: HashSet<String> = publish_batch(&app, &account, 0..300).await.into_iter().collect();

    // One round of concurrent attempts (at most twice the in-flight cap: those that
    // started while the first failures came back) opens the breaker; then one probe
    // per cooldown (1 s, 2 s, ...). Without a breaker 300 would arrive at once.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let while_down = receiver.drain().len();
    assert!(while_down >= 8, "the first round reached the receiver: {while_down}");
    assert!(while_down <= 2 * 8 + 3, "a down receiver is probed, not hammered: {while_down} requests");

    receiver.always(Answer::Status(200));
    let mut delivered = HashSet::new();
    while delivered.len() < published.len() {
        delivered.insert(receiver.next().await.header("heygen-event-id").to_owned());
    }
    assert_eq!(delivered, published, "every event arrives once the receiver is back");
}
