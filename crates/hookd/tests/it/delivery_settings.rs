//! Per-endpoint delivery settings (extensions): FIFO ordering with a visible, skippable
//! head, and rate limits measured where they matter, at the receiver.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::cluster::{Instance, TestDatabase};
use crate::support::receiver::{Answer, PATIENCE, Received, TestReceiver};
use crate::support::{TestApp, send};

fn event(account: &str, n: usize) -> Value {
    json!({"account_id": account, "event_type": "batch.finished", "event_data": {"n": n}})
}

async fn put_settings(app: &TestApp, endpoint_id: &str, body: Value) -> crate::support::Reply {
    let path = format!("/v3/webhooks/endpoints/{endpoint_id}/settings");
    send(app.customer(Method::PUT, &path).json(&body)).await
}

async fn get(app: &TestApp, path: &str) -> crate::support::Reply {
    send(app.customer(Method::GET, path)).await
}

/// The most requests that arrived within any one second.
fn busiest_second(arrivals: &[Instant]) -> usize {
    arrivals
        .iter()
        .map(|from| {
            arrivals
                .iter()
                .filter(|at| **at >= *from && at.duration_since(*from) <= Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// Each request's event, by its place in publish order (`n` in the body).
fn publish_order_of(requests: &[Received]) -> Vec<u64> {
    requests.iter().map(|r| r.json()["event_data"]["n"].as_u64().expect("n")).collect()
}

#[tokio::test]
async fn settings_read_back_and_bad_values_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let endpoint = app.create_endpoint(json!({"url": "https://example.com/settings"})).await;
    let id = endpoint["endpoint_id"].as_str().expect("id");
    let path = format!("/v3/webhooks/endpoints/{id}/settings");
    assert_eq!(
        *get(&app, &path).await.assert_ok(),
        json!({"ordering": "none", "rate_limit_per_second": null})
    );

    let wanted = json!({"ordering": "fifo", "rate_limit_per_second": 50});
    assert_eq!(*put_settings(&app, id, wanted.clone()).await.assert_ok(), wanted);
    assert_eq!(*get(&app, &path).await.assert_ok(), wanted);
    let whole = put_settings(&app, id, json!({"ordering": "none", "rate_limit_per_second": 7.0})).await;
    assert_eq!(whole.assert_ok()["rate_limit_per_second"], 7, "7.0 is an integer to JSON Schema");

    for (body, param) in [
        (json!({"ordering": "lifo", "rate_limit_per_second": null}), "ordering"),
        (json!({"ordering": "fifo", "rate_limit_per_second": 0}), "rate_limit_per_second"),
        (json!({"ordering": "fifo", "rate_limit_per_second": 10_001}), "rate_limit_per_second"),
        (json!({"ordering": "fifo", "rate_limit_per_second": 2.5}), "rate_limit_per_second"),
        (json!({"ordering": "fifo", "rate_limit_per_second": "5"}), "rate_limit_per_second"),
        (json!({"ordering": "fifo"}), "rate_limit_per_second"),
        (json!({"rate_limit_per_second": null}), "ordering"),
        (json!({"ordering": "fifo", "rate_limit_per_second": null, "burst": 3}), "burst"),
    ] {
        put_settings(&app, id, body.clone()).await.assert_error(400, "invalid_parameter", Some(param));
    }
    let unchanged = get(&app, &path).await;
    assert_eq!(
        *unchanged.assert_ok(),
        json!({"ordering": "none", "rate_limit_per_second": 7}),
        "refusals change nothing"
    );

    // HeyGen's shapes do not grow: the endpoint reads back with exactly its fields.
    let listed = get(&app, "/v3/webhooks/endpoints").await;
    let keys: Vec<&String> = listed.body["data"][0].as_object().expect("endpoint").keys().collect();
    assert!(!keys.iter().any(|key| key.contains("ordering") || key.contains("rate")), "{keys:?}");

    let other_key = app.new_account("other").await;
    let theirs = send(app.as_customer(&other_key, Method::GET, &path)).await;
    theirs.assert_error(404, "not_found", None);
    let skip =
        send(app.as_customer(&other_key, Method::POST, &format!("/v3/webhooks/endpoints/{id}/skip-head")))
            .await;
    skip.assert_error(404, "not_found", None);
    get(&app, "/v3/webhooks/endpoints/not-an-id/settings").await.assert_error(404, "not_found", None);
}

#[tokio::test]
async fn fifo_order_holds_while_the_receiver_fails_every_third_request() {
    let mut receiver = TestReceiver::start().await;
    receiver.every(3, Answer::Status(503));
    let app = TestApp::spawn_with(&["--retry-schedule", "20ms,20ms,20ms,20ms,20ms"]).await;
    let endpoint = app.create_endpoint(json!({"url": receiver.url("/fifo")})).await;
    let id = endpoint["endpoint_id"].as_str().expect("id");
    put_settings(&app, id, json!({"ordering": "fifo", "rate_limit_per_second": null})).await.assert_ok();
    let account = app.default_account().await;
    let published = 30;
    for n in 0..published {
        app.publish(event(&account, n)).await;
    }

    let mut requests = Vec::new();
    let mut delivered = 0;
    while delivered < published {
        let request = receiver.next().await;
        // Every third request failed (and was retried); the others were delivered.
        if requests.len() % 3 != 2 {
            delivered += 1;
        }
        requests.push(request);
    }
    let order = publish_order_of(&requests);
    assert!(order.windows(2).all(|pair| pair[1] == pair[0] || pair[1] == pair[0] + 1), "{order:?}");
    assert_eq!(order.last(), Some(&(published as u64 - 1)));
    assert!(order.windows(2).any(|pair| pair[1] == pair[0]), "some were retried, and held the rest back");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(receiver.drain().is_empty(), "nothing sent twice");
}

#[tokio::test]
async fn a_stuck_head_is_visible_and_skipping_it_lets_the_next_go() {
    let mut receiver = TestReceiver::start().await;
    receiver.always(Answer::Status(500));
    let app = TestApp::spawn_with(&["--retry-schedule", "1h"]).await;
    let endpoint = app.create_endpoint(json!({"url": receiver.url("/stuck")})).await;
    let id = endpoint["endpoint_id"].as_str().expect("id");
    put_settings(&app, id, json!({"ordering": "fifo", "rate_limit_per_second": null})).await.assert_ok();
    let account = app.default_account().await;
    let first = app.publish(event(&account, 0)).await;
    let second = app.publish(event(&account, 1)).await;
    assert_eq!(receiver.next().await.header("heygen-event-id"), first);

    let head_path = format!("/v3/webhooks/endpoints/{id}/head");
    let head = loop {
        let head = get(&app, &head_path).await.assert_ok()["head"].clone();
        if head["attempts"] == 1 {
            break head;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(head["event_id"], first.as_str());
    let wait = head["next_attempt_at"].as_i64().expect("next attempt") - hookd_store::now_millis() / 1000;
    assert!(wait > 3_000, "the head waits an hour for its retry: {wait} s");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(receiver.drain().is_empty(), "the second waits behind the stuck head");

    receiver.always(Answer::Status(200));
    let skip_path = format!("/v3/webhooks/endpoints/{id}/skip-head");
    let skipped = send(app.customer(Method::POST, &skip_path)).await;
    assert_eq!(skipped.assert_ok()["skipped"]["event_id"], first.as_str());
    assert_eq!(receiver.next().await.header("heygen-event-id"), second, "the next goes at once");
    assert_eq!(app.settled_deliveries(&first).await[0]["status"], "failed");
    assert_eq!(app.settled_deliveries(&second).await[0]["status"], "delivered");
    assert_eq!(get(&app, &head_path).await.assert_ok()["head"], Value::Null);
    let nothing = send(app.customer(Method::POST, &skip_path)).await;
    assert_eq!(nothing.assert_ok()["skipped"], Value::Null);
}

#[tokio::test]
async fn three_instances_share_one_rate_limit_measured_at_the_receiver() {
    let Some(database) = TestDatabase::shared().await else { return };
    let mut receiver = TestReceiver::start().await;
    let instances = [
        Instance::start(&database, &[]).await,
        Instance::start(&database, &[]).await,
        Instance::start(&database, &[]).await,
    ];
    let (account, key) = instances[0].new_account().await;
    let endpoint_id = instances[0].create_endpoint(&key, &receiver.url("/limited")).await;
    let limit = 20;
    let http = reqwest::Client::new();
    let settings = http
        .put(instances[1].url(&format!("/v3/webhooks/endpoints/{endpoint_id}/settings")))
        .header("X-Api-Key", &key)
        .json(&json!({"ordering": "none", "rate_limit_per_second": limit}));
    send(settings).await.assert_ok();
    // Published through every instance, so each one's dispatcher is woken and claims.
    let mut expected = 0;
    for instance in &instances {
        expected += instance.publish_batch(&account, 30).await.len();
    }

    let mut arrivals = Vec::new();
    let mut by_event: HashMap<String, usize> = HashMap::new();
    while arrivals.len() < expected {
        let request = tokio::time::timeout(PATIENCE, receiver.next()).await.expect("deliveries keep coming");
        arrivals.push(request.at);
        *by_event.entry(request.header("heygen-event-id").to_owned()).or_default() += 1;
    }
    let busiest = busiest_second(&arrivals);
    let span = arrivals.last().expect("last").duration_since(arrivals[0]);
    eprintln!("rate limit {limit}/s over 3 instances: {expected} in {span:?}, busiest second {busiest}");
    // The limit plus its burst (one twentieth, at least one); one more for the
    // scheduling between a claim and its request.
    assert!(busiest <= limit + 1 + 1, "{busiest} requests within one second");
    assert!(by_event.values().all(|count| *count == 1), "each event once");
    for instance in instances {
        instance.binary.stop().await;
    }
    database.finish().await;
}

#[tokio::test]
async fn fifo_order_holds_across_instances_when_one_is_killed() {
    let Some(database) = TestDatabase::shared().await else { return };
    let mut receiver = TestReceiver::start().await;
    receiver.always(Answer::Slow(Duration::from_millis(10), 200));
    // A short attempt timeout keeps the killed instance's lease (timeout + 15 s) short.
    let flags = ["--attempt-timeout", "1s"];
    let doomed = Instance::start(&database, &flags).await;
    let survivor = Instance::start(&database, &flags).await;
    let (account, key) = doomed.new_account().await;
    let endpoint_id = doomed.create_endpoint(&key, &receiver.url("/ordered")).await;
    let settings = reqwest::Client::new()
        .put(survivor.url(&format!("/v3/webhooks/endpoints/{endpoint_id}/settings")))
        .header("X-Api-Key", &key)
        .json(&json!({"ordering": "fifo", "rate_limit_per_second": null}));
    send(settings).await.assert_ok();
    let mut published = doomed.publish_batch(&account, 20).await;
    published.extend(survivor.publish_batch(&account, 20).await);

    let mut requests = Vec::new();
    while requests.len() < 10 {
        requests.push(receiver.next().await);
    }
    doomed.binary.kill().await;
    let mut arrived: std::collections::HashSet<String> =
        requests.iter().map(|r| r.header("heygen-event-id").to_owned()).collect();
    while arrived.len() < published.len() {
        let request = tokio::time::timeout(PATIENCE, receiver.next()).await.expect("the survivor goes on");
        arrived.insert(request.header("heygen-event-id").to_owned());
        requests.push(request);
    }
    let position: HashMap<&str, usize> =
        published.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    let order: Vec<usize> = requests.iter().map(|r| position[r.header("heygen-event-id")]).collect();
    // The attempt in flight when the instance died may be sent again (its lease lapsed,
    // the worst case the contract allows), but nothing overtakes it.
    assert!(order.windows(2).all(|pair| pair[1] == pair[0] || pair[1] == pair[0] + 1), "{order:?}");
    survivor.binary.stop().await;
    database.finish().await;
}
