//! The delivery engine over real HTTP: publish → fan out → signed POST → retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hookd_signature::{verify_heygen, verify_webhook};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::receiver::{
    Answer, RawAnswer, TestReceiver, raw_receiver, resetting_receiver, untrusted_tls_receiver,
};
use crate::support::{TestApp, send};

async fn endpoint_to(app: &TestApp, url: String, extra: Value) -> (String, String) {
    let mut body = json!({ "url": url });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let data = app.create_endpoint(body).await;
    (
        data["endpoint_id"].as_str().expect("id").to_owned(),
        data["secret"].as_str().expect("secret").to_owned(),
    )
}

fn event(account: &str, event_type: &str) -> Value {
    json!({"account_id": account, "event_type": event_type, "event_data": {"video_id": "v1", "url": null}})
}

#[tokio::test]
async fn a_delivery_is_signed_twice_and_carries_exactly_the_documented_body() {
    let app = TestApp::spawn().await;
    let mut receiver = TestReceiver::start().await;
    let (_, secret) = endpoint_to(&app, receiver.url("/hook"), json!({})).await;
    let event_id = app.publish(event(&app.default_account().await, "avatar_video.success")).await;

    let delivery = receiver.next().await;
    assert_eq!(delivery.header("content-type"), "application/json");
    assert!(delivery.header("user-agent").starts_with("hookd/"));
    assert_eq!(delivery.header("heygen-event-id"), event_id);
    assert_eq!(delivery.header("webhook-id"), event_id);
    let timestamp: i64 = delivery.header("heygen-timestamp").parse().expect("unix seconds");
    assert_eq!(delivery.header("webhook-timestamp"), timestamp.to_string());
    assert_eq!(verify_heygen(&secret, &delivery.body, delivery.header("heygen-signature")), Ok(()));
    let standard =
        verify_webhook(&secret, &event_id, timestamp, &delivery.body, delivery.header("webhook-signature"));
    assert_eq!(standard, Ok(()));
    assert_eq!(
        &delivery.body[..],
        br#"{"event_type":"avatar_video.success","event_data":{"video_id":"v1","url":null}}"#,
        "compact, exactly event_type and event_data, the producer's key order"
    );

    let history = send(app.customer(Method::GET, "/v3/webhooks/events")).await;
    assert_eq!(
        history.assert_ok()[0]["event_id"],
        event_id.as_str(),
        "Heygen-Event-Id is the history's event_id"
    );
    let settled = app.settled_deliveries(&event_id).await;
    assert_eq!(settled[0]["status"], "delivered");
}

#[tokio::test]
async fn fan_out_follows_event_lists_entity_scope_status_and_accounts() {
    let app = TestApp::spawn().await;
    let mut receiver = TestReceiver::start().await;
    let (all, _) = endpoint_to(&app, receiver.url("/all"), json!({})).await;
    let (listed, _) =
        endpoint_to(&app, receiver.url("/listed"), json!({"events": ["avatar_video.success"]})).await;
    endpoint_to(&app, receiver.url("/other-type"), json!({"events": ["avatar_video.fail"]})).await;
    let (scoped, _) = endpoint_to(&app, receiver.url("/scoped"), json!({"entity_id": "p1"})).await;
    endpoint_to(&app, receiver.url("/scoped-elsewhere"), json!({"entity_id": "p2"})).await;
    let (disabled, _) = endpoint_to(&app, receiver.url("/disabled"), json!({})).await;
    let path = format!("/v3/webhooks/endpoints/{disabled}");
    send(app.customer(Method::PATCH, &path).json(&json!({"status": "disabled"}))).await.assert_ok();
    let (deleted, _) = endpoint_to(&app, receiver.url("/deleted"), json!({})).await;
    send(app.customer(Method::DELETE, &format!("/v3/webhooks/endpoints/{deleted}"))).await.assert_ok();
    let other_key = app.new_account("other").await;
    app.create_endpoint_as(&other_key, json!({"url": receiver.url("/other-account")})).await;

    let mut body = event(&app.default_account().await, "avatar_video.success");
    body["entity_id"] = json!("p1");
    let reply = send(app.admin(Method::POST, "/admin/v1/events").json(&body)).await;
    assert_eq!(reply.body["data"]["deliveries"], 3, "{}", reply.raw);
    let event_id = reply.body["data"]["event_id"].as_str().expect("id").to_owned();

    let settled = app.settled_deliveries(&event_id).await;
    let mut targets: Vec<&str> =
        settled.iter().map(|d| d["endpoint_id"].as_str().expect("endpoint")).collect();
    targets.sort_unstable();
    let mut expected = vec![all.as_str(), listed.as_str(), scoped.as_str()];
    expected.sort_unstable();
    assert_eq!(targets, expected, "only matching endpoints got a delivery");
    let mut paths: Vec<String> = receiver.drain().into_iter().map(|r| r.path).collect();
    paths.sort();
    assert_eq!(paths, vec!["/all", "/listed", "/scoped"]);
}

#[tokio::test]
async fn a_receiver_failing_twice_gets_a_third_identical_attempt() {
    // The default schedule (5 s, then 30 s, ±10 %), walked by stepping the dispatcher.
    let (app, dispatcher) = TestApp::spawn_stepped(&[]).await;
    let mut receiver = TestReceiver::start().await;
    receiver.script([Answer::Status(500), Answer::Status(503)]);
    endpoint_to(&app, receiver.url("/flaky"), json!({})).await;
    let event_id = app.publish(event(&app.default_account().await, "avatar_video.fail")).await;

    let start = hookd_store::now_millis();
    let dispatcher = &dispatcher;
    let step = |at: i64| async move { dispatcher.step(start + at).await.expect("step") };
    assert_eq!(step(0).await, 1, "the first attempt is immediate");
    assert_eq!(step(4_000).await, 0, "no retry before the first delay (5 s - 10 %)");
    assert_eq!(step(6_000).await, 1, "the second attempt after it");
    assert_eq!(step(6_000 + 26_000).await, 0, "nor before the second (30 s - 10 %)");
    assert_eq!(step(6_000 + 34_000).await, 1);
    assert_eq!(step(24 * 3_600_000).await, 0, "delivered: nothing more");

    let attempts = [receiver.next().await, receiver.next().await, receiver.next().await];
    for attempt in &attempts[1..] {
        assert_eq!(attempt.body, attempts[0].body, "the same body bytes every time");
        assert_eq!(attempt.header("heygen-event-id"), event_id);
    }
    let settled = app.settled_deliveries(&event_id).await;
    assert_eq!(settled[0]["status"], "delivered");
    let codes: Vec<&Value> =
        settled[0]["attempts"].as_array().expect("attempts").iter().map(|a| &a["status_code"]).collect();
    assert_eq!(codes, vec![&json!(500), &json!(503), &json!(200)]);
    assert_eq!(settled[0]["attempts"][0]["error"], "HTTP 500");
    assert_eq!(settled[0]["attempts"][0]["response_body"], "");
    assert!(settled[0]["next_attempt_at"].is_null());
}

#[tokio::test]
async fn retry_after_on_429_holds_the_next_attempt_back() {
    let (app, dispatcher) = TestApp::spawn_stepped(&["--retry-schedule", "100ms"]).await;
    let mut receiver = TestReceiver::start().await;
    receiver.script([Answer::StatusWith(429, vec![("retry-after", "120".into())])]);
    endpoint_to(&app, receiver.url("/limited"), json!({})).await;
    app.publish(event(&app.default_account().await, "avatar_video.success")).await;
    let start = hookd_store::now_millis();
    assert_eq!(dispatcher.step(start).await.expect("step"), 1);
    assert_eq!(
        dispatcher.step(start + 119_000).await.expect("step"),
        0,
        "Retry-After beats the 100 ms schedule"
    );
    assert_eq!(dispatcher.step(start + 120_000).await.expect("step"), 1, "and the retry comes when it says");
    assert_eq!(receiver.drain().len(), 2);
}

#[tokio::test]
async fn hangs_redirects_and_resets_are_failed_attempts_with_their_reason() {
    let app = TestApp::spawn_with(&["--retry-schedule", "", "--attempt-timeout", "1s"]).await;
    let hanging = TestReceiver::start().await;
    hanging.always(Answer::Hang);
    let redirecting = TestReceiver::start().await;
    redirecting.always(Answer::StatusWith(302, vec![("location", "http://127.0.0.1:1/elsewhere".into())]));
    let (reset_url, _) = resetting_receiver().await;
    let (hang_id, _) = endpoint_to(&app, hanging.url("/hang"), json!({})).await;
    let (redirect_id, _) = endpoint_to(&app, redirecting.url("/redirect"), json!({})).await;
    let (reset_id, _) = endpoint_to(&app, reset_url, json!({})).await;

    let event_id = app.publish(event(&app.default_account().await, "avatar_video.success")).await;
    let settled = app.settled_deliveries(&event_id).await;
    let attempt_of = |endpoint: &str| {
        let delivery = settled.iter().find(|d| d["endpoint_id"] == endpoint).expect("delivery");
        assert_eq!(delivery["status"], "failed", "one attempt allowed: {delivery}");
        assert_eq!(delivery["attempts"].as_array().map(Vec::len), Some(1));
        delivery["attempts"][0].clone()
    };
    let hang = attempt_of(&hang_id);
    assert!(hang["status_code"].is_null());
    assert_eq!(hang["error"], "timed out after 1s");
    let redirect = attempt_of(&redirect_id);
    assert_eq!(redirect["status_code"], 302);
    let redirect_error = redirect["error"].as_str().expect("error");
    assert!(redirect_error.starts_with("redirect not followed"), "{redirect_error}");
    let reset = attempt_of(&reset_id);
    assert!(reset["status_code"].is_null());
    let reset_error = reset["error"].as_str().expect("error");
    assert!(
        reset_error.starts_with("request failed") || reset_error.starts_with("connection"),
        "{reset_error}"
    );
}

#[tokio::test]
async fn misbehaving_receivers_are_recorded_with_their_reason_and_hold_nothing() {
    let app = TestApp::spawn_with(&["--retry-schedule", "", "--attempt-timeout", "1s"]).await;
    let garbage = raw_receiver("/garbage", RawAnswer::Bytes(b"SMTP READY\r\n\r\n".to_vec())).await;
    let trickle = raw_receiver(
        "/trickle",
        RawAnswer::Trickle(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec()),
    )
    .await;
    let huge = raw_receiver("/huge", RawAnswer::HugeBody(10 * 1024 * 1024)).await;
    let looping = TestReceiver::start().await;
    looping.always(Answer::StatusWith(307, vec![("location", looping.url("/loop"))]));
    let mut endpoints = Vec::new();
    for url in [garbage, trickle, huge, looping.url("/loop")] {
        endpoints.push(endpoint_to(&app, url, json!({})).await.0);
    }

    let event_id = app.publish(event(&app.default_account().await, "avatar_video.success")).await;
    let settled = app.settled_deliveries(&event_id).await;
    let attempt_of = |endpoint: &str| {
        let delivery = settled.iter().find(|d| d["endpoint_id"] == endpoint).expect("delivery");
        assert_eq!(delivery["attempts"].as_array().map(Vec::len), Some(1), "{delivery}");
        (delivery["status"].clone(), delivery["attempts"][0].clone())
    };
    let (status, garbage) = attempt_of(&endpoints[0]);
    assert_eq!(status, "failed");
    assert!(garbage["status_code"].is_null());
    assert!(garbage["error"].as_str().is_some_and(|e| e.starts_with("request failed")), "{garbage}");

    let (status, trickle) = attempt_of(&endpoints[1]);
    assert_eq!(status, "failed", "a head trickled past the attempt timeout is a failure");
    assert_eq!(trickle["error"], "timed out after 1s");

    // A 2xx is a delivery however much body follows; only 1 KiB of it is read.
    let (status, huge) = attempt_of(&endpoints[2]);
    assert_eq!(status, "delivered");
    assert_eq!(huge["status_code"], 200);
    assert_eq!(huge["response_body"].as_str().map(str::len), Some(1024));

    let (status, looping) = attempt_of(&endpoints[3]);
    assert_eq!(status, "failed");
    assert_eq!(looping["status_code"], 307);
    assert!(looping["error"].as_str().is_some_and(|e| e.starts_with("redirect not followed")), "{looping}");

    // Nothing is stuck: a healthy endpoint still gets the next event.
    let mut healthy = TestReceiver::start().await;
    endpoint_to(&app, healthy.url("/after"), json!({"events": ["avatar_video.fail"]})).await;
    app.publish(event(&app.default_account().await, "avatar_video.fail")).await;
    assert_eq!(healthy.next().await.path, "/after");
}

/// The one attempt of the only delivery of a new event to a new endpoint at `url`.
async fn only_attempt(app: &TestApp, url: String) -> (Value, Value) {
    let (endpoint_id, _) = endpoint_to(app, url, json!({})).await;
    let event_id = app.publish(event(&app.default_account().await, "avatar_video.success")).await;
    let settled = app.settled_deliveries(&event_id).await;
    let delivery = settled.iter().find(|d| d["endpoint_id"] == endpoint_id.as_str()).expect("delivery");
    assert_eq!(delivery["attempts"].as_array().map(Vec::len), Some(1), "{delivery}");
    (delivery["status"].clone(), delivery["attempts"][0].clone())
}

#[tokio::test]
async fn an_endless_response_body_is_read_only_up_to_the_cap() {
    let app = TestApp::spawn_with(&["--retry-schedule", "", "--attempt-timeout", "30s"]).await;
    let taken = Arc::new(AtomicUsize::new(0));
    let endless = raw_receiver("/endless", RawAnswer::EndlessBody(taken.clone())).await;
    let (status, attempt) = only_attempt(&app, endless).await;
    // Reading the whole body would never end; the attempt would time out instead.
    assert_eq!(status, "delivered", "{attempt}");
    assert_eq!(attempt["response_body"].as_str().map(str::len), Some(1024));
    // hookd hung up after the cap: the receiver could only push what the socket
    // buffers hold, not the gigabytes 30 s of loopback would carry.
    let taken = taken.load(Ordering::Relaxed);
    assert!(taken < 64 * 1024 * 1024, "the receiver pushed {taken} bytes into hookd");
}

#[tokio::test]
async fn a_reset_after_a_2xx_head_keeps_the_receivers_answer() {
    let app = TestApp::spawn_with(&["--retry-schedule", "", "--attempt-timeout", "5s"]).await;
    let resetting = raw_receiver("/reset-mid-body", RawAnswer::ResetMidBody).await;
    let (status, attempt) = only_attempt(&app, resetting).await;
    assert_eq!(status, "delivered", "the receiver said 200 before the reset: {attempt}");
    assert_eq!(attempt["status_code"], 200);
    assert_eq!(attempt["response_body"], "0123456789");
}

#[tokio::test]
async fn a_receiver_with_an_untrusted_certificate_is_a_failed_attempt_that_sends_nothing() {
    let app = TestApp::spawn_with(&["--retry-schedule", "", "--attempt-timeout", "5s"]).await;
    let (url, served) = untrusted_tls_receiver("/tls").await;
    let (status, attempt) = only_attempt(&app, url).await;
    assert_eq!(status, "failed");
    assert!(attempt["status_code"].is_null(), "{attempt}");
    let error = attempt["error"].as_str().unwrap_or_default();
    assert!(error.contains("certificate"), "the reason names the certificate: {error}");
    assert_eq!(served.load(Ordering::Relaxed), 0, "no request crossed an untrusted connection");
}

#[tokio::test]
async fn an_exhausted_schedule_fails_the_delivery_and_stops() {
    let (app, dispatcher) = TestApp::spawn_stepped(&["--retry-schedule", "1h"]).await;
    let mut receiver = TestReceiver::start().await;
    receiver.always(Answer::Status(500));
    endpoint_to(&app, receiver.url("/down"), json!({})).await;
    let event_id = app.publish(event(&app.default_account().await, "avatar_video.success")).await;
    let start = hookd_store::now_millis();
    assert_eq!(dispatcher.step(start).await.expect("step"), 1);
    assert_eq!(dispatcher.step(start + 7_000_000).await.expect("step"), 1, "the one retry, an hour on");
    assert_eq!(dispatcher.step(start + 30 * 86_400_000).await.expect("step"), 0, "then nothing");
    let settled = app.settled_deliveries(&event_id).await;
    assert_eq!(settled[0]["status"], "failed");
    assert_eq!(settled[0]["attempts"].as_array().map(Vec::len), Some(2));
    assert!(settled[0]["next_attempt_at"].is_null(), "nothing further is scheduled");
    assert_eq!(receiver.drain().len(), 2);
}

#[tokio::test]
async fn a_retry_after_rotation_is_signed_with_the_new_secret_only() {
    let app = TestApp::spawn_with(&["--retry-schedule", "1s"]).await;
    let mut receiver = TestReceiver::start().await;
    receiver.script([Answer::Status(500)]);
    let (endpoint_id, old_secret) = endpoint_to(&app, receiver.url("/rotating"), json!({})).await;
    let event_id = app.publish(event(&app.default_account().await, "avatar_video.success")).await;
    let first = receiver.next().await;
    assert_eq!(verify_heygen(&old_secret, &first.body, first.header("heygen-signature")), Ok(()));

    let rotated =
        send(app.customer(Method::POST, &format!("/v3/webhooks/endpoints/{endpoint_id}/rotate-secret")))
            .await;
    let new_secret = rotated.assert_ok()["secret"].as_str().expect("secret").to_owned();
    let retry = receiver.next().await;
    let timestamp: i64 = retry.header("webhook-timestamp").parse().expect("timestamp");
    assert_eq!(verify_heygen(&new_secret, &retry.body, retry.header("heygen-signature")), Ok(()));
    assert!(verify_heygen(&old_secret, &retry.body, retry.header("heygen-signature")).is_err());
    let signature = retry.header("webhook-signature");
    assert_eq!(verify_webhook(&new_secret, &event_id, timestamp, &retry.body, signature), Ok(()));
    assert!(verify_webhook(&old_secret, &event_id, timestamp, &retry.body, signature).is_err());
}

#[tokio::test]
async fn deleting_an_endpoint_cancels_its_pending_retries() {
    let app = TestApp::spawn_with(&["--retry-schedule", "2s"]).await;
    let mut receiver = TestReceiver::start().await;
    receiver.always(Answer::Status(500));
    let (endpoint_id, _) = endpoint_to(&app, receiver.url("/gone"), json!({})).await;
    let event_id = app.publish(event(&app.default_account().await, "avatar_video.success")).await;
    receiver.next().await;
    send(app.customer(Method::DELETE, &format!("/v3/webhooks/endpoints/{endpoint_id}"))).await.assert_ok();
    let settled = app.settled_deliveries(&event_id).await;
    assert_eq!(settled[0]["status"], "cancelled");
    assert!(settled[0]["next_attempt_at"].is_null());
}

#[tokio::test]
async fn a_hanging_endpoint_does_not_hold_up_a_healthy_one() {
    let app = TestApp::spawn().await;
    let hanging = TestReceiver::start().await;
    hanging.always(Answer::Hang);
    let mut healthy = TestReceiver::start().await;
    let (hanging_id, _) = endpoint_to(&app, hanging.url("/hang"), json!({})).await;
    endpoint_to(&app, healthy.url("/ok"), json!({})).await;
    let account = app.default_account().await;
    let events: Vec<Value> = (0..200).map(|_| event(&account, "avatar_video.success")).collect();
    let reply =
        send(app.admin(Method::POST, "/admin/v1/events/batch").json(&json!({"events": events}))).await;
    assert_eq!(reply.status.as_u16(), 202, "{}", reply.raw);
    let first_event = reply.body["data"]["events"][0]["event_id"].as_str().expect("id").to_owned();

    for _ in 0..200 {
        healthy.next().await;
    }
    // The hanging endpoint's first attempt has not even timed out yet (10 s default):
    // no attempt of it is recorded, yet every healthy delivery arrived.
    let deliveries = app.deliveries(&first_event).await;
    let stuck =
        deliveries.iter().find(|d| d["endpoint_id"] == hanging_id.as_str()).expect("hanging delivery");
    assert_eq!(stuck["attempts"], json!([]), "{stuck}");
}
