//! The delivery controls customers call on their endpoints (extensions): recovering
//! what failed during an outage, and rotating a secret with an overlap.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::receiver::{Answer, TestReceiver};
use crate::support::{TestApp, send};

fn event(account: &str, n: usize) -> Value {
    json!({"account_id": account, "event_type": "avatar_video.success",
           "event_data": {"video_id": format!("v{n}"), "url": "https://example.com/v.mp4"}})
}

fn unix_now() -> i64 {
    hookd_store::now_millis() / 1000
}

async fn recover(app: &TestApp, endpoint_id: &str, body: Value) -> crate::support::Reply {
    let path = format!("/v3/webhooks/endpoints/{endpoint_id}/recover");
    send(app.customer(Method::POST, &path).json(&body)).await
}

#[tokio::test]
async fn recover_after_an_outage_resends_exactly_the_failed_deliveries() {
    let mut receiver = TestReceiver::start().await;
    receiver.always(Answer::Status(500));
    // Two attempts, a moment apart: deliveries fail for good during the outage.
    let app = TestApp::spawn_with(&["--retry-schedule", "50ms"]).await;
    let endpoint = app.create_endpoint(json!({"url": receiver.url("/recover")})).await;
    let endpoint_id = endpoint["endpoint_id"].as_str().expect("id");
    let account = app.default_account().await;
    let since = unix_now();

    // Fewer failures in a row than open the destination's circuit breaker, which would
    // pause it rather than let the schedule run out.
    let mut failed = HashSet::new();
    for n in 0..3 {
        failed.insert(app.publish(event(&account, n)).await);
    }
    for event_id in &failed {
        assert_eq!(app.settled_deliveries(event_id).await[0]["status"], "failed");
    }
    receiver.always(Answer::Status(200));
    let mut delivered = HashSet::new();
    for n in 10..15 {
        delivered.insert(app.publish(event(&account, n)).await);
    }
    for event_id in &delivered {
        assert_eq!(app.settled_deliveries(event_id).await[0]["status"], "delivered");
    }
    receiver.drain();

    let counted = recover(&app, endpoint_id, json!({"since": since, "dry_run": true})).await;
    assert_eq!(counted.assert_ok()["deliveries"], 3, "a dry run counts the failed ones");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.drain().is_empty(), "and sends nothing");

    let recovered = recover(&app, endpoint_id, json!({"since": since, "until": unix_now()})).await;
    assert_eq!(recovered.assert_ok()["deliveries"], 3);
    let again = recover(&app, endpoint_id, json!({"since": since})).await;
    assert_eq!(again.assert_ok()["deliveries"], 0, "running it twice does not double-send");

    let mut arrivals: HashMap<String, usize> = HashMap::new();
    while arrivals.len() < failed.len() {
        *arrivals.entry(receiver.next().await.header("heygen-event-id").to_owned()).or_default() += 1;
    }
    for event_id in &failed {
        let settled = app.settled_deliveries(event_id).await;
        assert_eq!(settled[0]["status"], "delivered");
        assert_eq!(settled[0]["attempts"].as_array().expect("attempts").len(), 3, "two failed, then one");
    }
    arrivals.extend(receiver.drain().into_iter().map(|r| (r.header("heygen-event-id").to_owned(), 2)));
    assert_eq!(arrivals.keys().cloned().collect::<HashSet<_>>(), failed, "exactly the failed ones");
    assert!(arrivals.values().all(|count| *count == 1), "each once: {arrivals:?}");
}

#[tokio::test]
async fn recover_refuses_bad_windows_naming_the_field_and_other_accounts_endpoints() {
    let app = TestApp::spawn().await;
    let endpoint = app.create_endpoint(json!({"url": crate::support::receiver_url(1)})).await;
    let id = endpoint["endpoint_id"].as_str().expect("id");
    let now = unix_now();
    for (body, param) in [
        (json!({"since": now + 3600}), "since"),
        (json!({"since": now - 60, "until": now - 120}), "until"),
        (json!({"since": now - 31 * 86_400}), "since"),
        (json!({}), "since"),
        (json!({"since": "yesterday"}), "since"),
        (json!({"since": now, "dry_run": "yes"}), "dry_run"),
        (json!({"since": now, "endpoint_id": id}), "endpoint_id"),
    ] {
        recover(&app, id, body).await.assert_error(400, "invalid_parameter", Some(param));
    }
    let other = app.new_account("other").await;
    let path = format!("/v3/webhooks/endpoints/{id}/recover");
    let foreign = send(app.as_customer(&other, Method::POST, &path).json(&json!({"since": now}))).await;
    foreign.assert_error(404, "not_found", None);
    recover(&app, "not-an-id", json!({"since": now})).await.assert_error(404, "not_found", None);
}
