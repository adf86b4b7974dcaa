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

async fn rotate(app: &TestApp, endpoint_id: &str, body: Option<Value>) -> crate::support::Reply {
    let request = app.customer(Method::POST, &format!("/v3/webhooks/endpoints/{endpoint_id}/rotate-secret"));
    send(match body {
        Some(body) => request.json(&body),
        None => request,
    })
    .await
}

/// Which of `secrets` each signature header of a delivery verifies with.
fn verifying(request: &crate::support::receiver::Received, secrets: &[&str]) -> (Vec<bool>, Vec<bool>) {
    let id = request.header("webhook-id");
    let timestamp: i64 = request.header("webhook-timestamp").parse().expect("timestamp");
    let standard = secrets
        .iter()
        .map(|secret| {
            hookd_signature::verify_webhook(
                secret,
                id,
                timestamp,
                &request.body,
                request.header("webhook-signature"),
            )
            .is_ok()
        })
        .collect();
    let heygen = secrets
        .iter()
        .map(|secret| {
            hookd_signature::verify_heygen(secret, &request.body, request.header("heygen-signature")).is_ok()
        })
        .collect();
    (standard, heygen)
}

#[tokio::test]
async fn a_rotation_with_overlap_signs_with_both_secrets_until_it_ends() {
    let mut receiver = TestReceiver::start().await;
    let app = TestApp::spawn().await;
    let created = app.create_endpoint(json!({"url": receiver.url("/overlap")})).await;
    let (id, old) =
        (created["endpoint_id"].as_str().expect("id"), created["secret"].as_str().expect("secret"));
    let account = app.default_account().await;

    let rotated = rotate(&app, id, Some(json!({"grace_period_seconds": 3}))).await;
    let data = rotated.assert_ok();
    assert_eq!(data.as_object().expect("object").len(), 2, "HeyGen's answer, unchanged: {}", rotated.raw);
    let new = data["secret"].as_str().expect("secret").to_owned();

    app.publish(event(&account, 1)).await;
    let during = receiver.next().await;
    assert_eq!(during.header("webhook-signature").split(' ').count(), 2, "v1,<new> v1,<old>");
    let (standard, heygen) = verifying(&during, &[&new, old]);
    assert_eq!(standard, [true, true], "Standard Webhooks verifiers accept either secret");
    assert_eq!(heygen, [true, false], "Heygen-Signature is the new secret's");
    let tested = send(app.customer(Method::POST, &format!("/v3/webhooks/endpoints/{id}/test"))).await;
    assert_eq!(tested.assert_ok()["delivered"], true);
    let (standard, _) = verifying(&receiver.next().await, &[&new, old]);
    assert_eq!(standard, [true, true], "a test send is signed as a delivery sent now would be");

    tokio::time::sleep(Duration::from_millis(3_500)).await;
    app.publish(event(&account, 2)).await;
    let after = receiver.next().await;
    let (standard, heygen) = verifying(&after, &[&new, old]);
    assert_eq!(standard, [true, false], "after the overlap only the new secret signs");
    assert_eq!(heygen, [true, false]);

    let third = rotate(&app, id, None).await.assert_ok()["secret"].as_str().expect("secret").to_owned();
    app.publish(event(&account, 3)).await;
    let (standard, _) = verifying(&receiver.next().await, &[&third, &new]);
    assert_eq!(standard, [true, false], "without a body, HeyGen's rotation: the old secret stops at once");
}

#[tokio::test]
async fn a_rotation_refuses_an_overlap_out_of_range() {
    let app = TestApp::spawn().await;
    let created = app.create_endpoint(json!({"url": crate::support::receiver_url(1)})).await;
    let id = created["endpoint_id"].as_str().expect("id");
    for body in [
        json!({"grace_period_seconds": 0}),
        json!({"grace_period_seconds": 604_801}),
        json!({"grace_period_seconds": "1h"}),
        json!({"grace_period_seconds": -1}),
    ] {
        rotate(&app, id, Some(body)).await.assert_error(
            400,
            "invalid_parameter",
            Some("grace_period_seconds"),
        );
    }
    rotate(&app, id, Some(json!({"grace": 5}))).await.assert_error(400, "invalid_parameter", Some("grace"));
    let listed = send(app.customer(Method::GET, "/v3/webhooks/endpoints")).await;
    assert!(listed.assert_ok()[0]["secret"].is_null());
}
