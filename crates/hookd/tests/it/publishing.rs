//! Publishing through the operator API, and the customer extensions built on it:
//! delivery history, resend, test send, endpoint health, the destination policy at
//! connect time, and metrics.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::receiver::PATIENCE;
use crate::support::receiver::{Answer, TestReceiver};
use crate::support::{STRICT, TestApp, send};

fn event(account: &str) -> Value {
    json!({"account_id": account, "event_type": "avatar_video.success", "event_data": {"video_id": "v1"}})
}

async fn publish_reply(app: &TestApp, body: Value) -> crate::support::Reply {
    send(app.admin(Method::POST, "/admin/v1/events").json(&body)).await
}

async fn history_len(app: &TestApp) -> usize {
    let reply = send(app.customer(Method::GET, "/v3/webhooks/events?limit=100")).await;
    reply.assert_ok().as_array().expect("array").len()
}

#[tokio::test]
async fn publish_validates_every_field_and_stores_nothing_on_error() {
    let app = TestApp::spawn().await;
    let account = app.default_account().await;
    let big = "x".repeat(256 * 1024);
    let with = |field: &str, value: Value| {
        let mut body = event(&account);
        body[field] = value;
        body
    };
    let cases = [
        (with("event_type", json!("no.such_type")), "event_type"),
        (with("event_type", json!(7)), "event_type"),
        (with("event_data", json!([1, 2])), "event_data"),
        (with("event_data", json!("text")), "event_data"),
        (with("event_data", json!({"blob": big})), "event_data"),
        (with("account_id", json!("0".repeat(32))), "account_id"),
        (with("account_id", json!("not-an-id")), "account_id"),
        (with("entity_id", json!("e".repeat(256))), "entity_id"),
        (with("callback_id", json!("c".repeat(256))), "callback_id"),
        (with("callback_url", json!("ftp://example.com/cb")), "callback_url"),
        (with("callback_url", json!("http://10.0.0.1/cb")), "callback_url"),
        (with("surprise", json!(1)), "surprise"),
        (json!({"account_id": account, "event_type": "batch.finished"}), "event_data"),
    ];
    for (body, param) in cases {
        publish_reply(&app, body).await.assert_error(400, "invalid_parameter", Some(param));
    }
    assert_eq!(history_len(&app).await, 0);
}

#[tokio::test]
async fn publish_requires_the_admin_token() {
    let app = TestApp::spawn().await;
    let account = app.default_account().await;
    let as_customer =
        app.customer(Method::POST, "/admin/v1/events").bearer_auth(&app.api_key).json(&event(&account));
    send(as_customer).await.assert_error(401, "authentication_failed", None);
    assert_eq!(history_len(&app).await, 0);
}

#[tokio::test]
async fn a_batch_is_all_or_nothing_and_answers_in_order() {
    let app = TestApp::spawn().await;
    let receiver = TestReceiver::start().await;
    app.create_endpoint(json!({"url": receiver.url("/b")})).await;
    let account = app.default_account().await;
    let mut bad = event(&account);
    bad["event_type"] = json!("nope");
    let batch = json!({"events": [event(&account), bad, event(&account)]});
    let reply = send(app.admin(Method::POST, "/admin/v1/events/batch").json(&batch)).await;
    reply.assert_error(400, "invalid_parameter", Some("events[1].event_type"));
    assert_eq!(history_len(&app).await, 0, "nothing of a refused batch is stored");

    let batch = json!({"events": [event(&account), event(&account), event(&account)]});
    let reply = send(app.admin(Method::POST, "/admin/v1/events/batch").json(&batch)).await;
    assert_eq!(reply.status.as_u16(), 202, "{}", reply.raw);
    let published = reply.body["data"]["events"].as_array().expect("events").clone();
    assert_eq!(published.len(), 3);
    assert!(published.iter().all(|p| p["deliveries"] == 1));
    let history = send(app.customer(Method::GET, "/v3/webhooks/events")).await;
    let newest_first: Vec<&Value> =
        history.assert_ok().as_array().expect("array").iter().map(|e| &e["event_id"]).collect();
    let given_order: Vec<&Value> = published.iter().rev().map(|p| &p["event_id"]).collect();
    assert_eq!(newest_first, given_order);
}

#[tokio::test]
async fn concurrent_publishes_are_each_answered_with_their_own_event_and_deliveries() {
    let app = TestApp::spawn().await;
    let account = app.default_account().await;
    app.create_endpoint(json!({"url": crate::support::receiver_url(1)})).await;
    app.create_endpoint(json!({"url": crate::support::receiver_url(2), "events": ["avatar_video.fail"]}))
        .await;
    // Sent at once, so that many share one group commit; each answer must still be
    // that request's own.
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..40 {
        let event_type = if n % 2 == 0 { "avatar_video.success" } else { "avatar_video.fail" };
        let body = json!({"account_id": account, "event_type": event_type, "event_data": {"n": n}});
        let request = send(app.admin(Method::POST, "/admin/v1/events").json(&body));
        requests.spawn(async move { (n, request.await) });
    }
    let mut ids = std::collections::HashSet::new();
    while let Some(done) = requests.join_next().await {
        let (n, reply) = done.expect("request task");
        assert_eq!(reply.status.as_u16(), 202, "{}", reply.raw);
        let expected = if n % 2 == 0 { 1 } else { 2 };
        assert_eq!(reply.body["data"]["deliveries"], expected, "request {n}: {}", reply.raw);
        ids.insert(reply.body["data"]["event_id"].as_str().expect("id").to_owned());
    }
    assert_eq!(ids.len(), 40, "every request got an event of its own");
    assert_eq!(history_len(&app).await, 40);
}

#[tokio::test]
async fn a_batch_holds_1_to_1000_events() {
    let app = TestApp::spawn().await;
    let account = app.default_account().await;
    let too_many: Vec<Value> = (0..1001).map(|_| event(&account)).collect();
    for events in [json!([]), json!(too_many)] {
        let reply =
            send(app.admin(Method::POST, "/admin/v1/events/batch").json(&json!({"events": events}))).await;
        reply.assert_error(400, "invalid_parameter", Some("events"));
    }
}

#[tokio::test]
async fn resend_delivers_the_same_event_again() {
    let app = TestApp::spawn().await;
    let mut receiver = TestReceiver::start().await;
    let endpoint = app.create_endpoint(json!({"url": receiver.url("/again")})).await;
    let event_id = app.publish(event(&app.default_account().await)).await;
    let first = receiver.next().await;
    app.settled_deliveries(&event_id).await;

    let path = format!("/v3/webhooks/events/{event_id}/resend");
    let reply = send(app.customer(Method::POST, &path)).await;
    assert_eq!(reply.status.as_u16(), 202, "{}", reply.raw);
    assert_eq!(reply.body["data"]["deliveries"], 1);
    let again = receiver.next().await;
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("heygen-event-id"), event_id);

    // An optional body may also be JSON null, as the OpenAPI document allows.
    let reply = send(app.customer(Method::POST, &path).json(&Value::Null)).await;
    assert_eq!(reply.body["data"]["deliveries"], 1, "{}", reply.raw);
    receiver.next().await;

    let to_one = json!({"endpoint_id": endpoint["endpoint_id"]});
    let reply = send(app.customer(Method::POST, &path).json(&to_one)).await;
    assert_eq!(reply.body["data"]["deliveries"], 1);
    receiver.next().await;
    let settled = app.settled_deliveries(&event_id).await;
    assert_eq!(settled.len(), 4, "the original and three resends");
}

#[tokio::test]
async fn another_account_cannot_see_or_resend_an_event() {
    let app = TestApp::spawn().await;
    let event_id = app.publish(event(&app.default_account().await)).await;
    let other = app.new_account("other").await;
    let deliveries = format!("/v3/webhooks/events/{event_id}/deliveries");
    send(app.as_customer(&other, Method::GET, &deliveries)).await.assert_error(404, "not_found", None);
    let resend = format!("/v3/webhooks/events/{event_id}/resend");
    send(app.as_customer(&other, Method::POST, &resend)).await.assert_error(404, "not_found", None);
    let history = send(app.as_customer(&other, Method::GET, "/v3/webhooks/events")).await;
    assert_eq!(history.assert_ok(), &json!([]));
}

#[tokio::test]
async fn test_send_reports_what_the_endpoint_answered() {
    let app = TestApp::spawn().await;
    let mut receiver = TestReceiver::start().await;
    receiver.script([Answer::Status(200), Answer::Status(500)]);
    let endpoint = app.create_endpoint(json!({"url": receiver.url("/test")})).await;
    let secret = endpoint["secret"].as_str().expect("secret");
    let path = format!("/v3/webhooks/endpoints/{}/test", endpoint["endpoint_id"].as_str().expect("id"));

    let ok = send(app.customer(Method::POST, &path).json(&json!({"event_type": "batch.finished"}))).await;
    let data = ok.assert_ok();
    assert_eq!(data["delivered"], true);
    assert_eq!(data["status_code"], 200);
    let sample = receiver.next().await;
    assert_eq!(sample.json()["event_type"], "batch.finished");
    assert_eq!(
        hookd_signature::verify_heygen(secret, &sample.body, sample.header("heygen-signature")),
        Ok(())
    );

    let failing = send(app.customer(Method::POST, &path)).await;
    assert_eq!(failing.assert_ok()["delivered"], false);
    assert_eq!(failing.body["data"]["error"], "HTTP 500");
    let bad_type = send(app.customer(Method::POST, &path).json(&json!({"event_type": "nope"}))).await;
    bad_type.assert_error(400, "invalid_parameter", Some("event_type"));
    assert_eq!(history_len(&app).await, 0, "test sends are not events");
}

#[tokio::test]
async fn loopback_destinations_are_refused_at_connect_time_without_the_allow_list() {
    let app = TestApp::spawn().await;
    let mut receiver = TestReceiver::start().await;
    let port = receiver.base_url.rsplit(':').next().expect("port").to_owned();
    app.create_endpoint(json!({"url": format!("http://127.0.0.1:{port}/literal")})).await;
    app.create_endpoint(json!({"url": format!("http://localhost:{port}/name")})).await;
    // The same endpoints, but the operator no longer allows loopback.
    let app = app.restart_with(&[STRICT, "--allow-http", "--retry-schedule", ""]).await;
    let event_id = app.publish(event(&app.default_account().await)).await;
    let settled = app.settled_deliveries(&event_id).await;
    assert_eq!(settled.len(), 2);
    for delivery in &settled {
        assert_eq!(delivery["status"], "failed");
        let error = delivery["attempts"][0]["error"].as_str().expect("error");
        assert!(
            error.contains("127.0.0.1") && error.contains("refused") && error.contains("loopback"),
            "{error}"
        );
    }
    assert!(receiver.drain().is_empty(), "nothing ever connected to the receiver");
}

#[tokio::test]
async fn an_endpoint_that_keeps_failing_is_disabled_paused_and_resumes_when_re_enabled() {
    let app = TestApp::spawn_with(&[
        "--retry-schedule",
        "300ms,300ms,300ms,300ms,300ms",
        "--disable-after",
        "500ms",
    ])
    .await;
    let mut receiver = TestReceiver::start().await;
    receiver.always(Answer::Status(500));
    let endpoint = app.create_endpoint(json!({"url": receiver.url("/dying")})).await;
    let endpoint_path = format!("/v3/webhooks/endpoints/{}", endpoint["endpoint_id"].as_str().expect("id"));
    let event_id = app.publish(event(&app.default_account().await)).await;

    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let listed = send(app.customer(Method::GET, "/v3/webhooks/endpoints")).await;
        if listed.assert_ok()[0]["status"] == "disabled" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the endpoint was never disabled");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let reply = publish_reply(&app, event(&app.default_account().await)).await;
    assert_eq!(reply.body["data"]["deliveries"], 0, "a disabled endpoint gets no new deliveries");
    let paused = app.deliveries(&event_id).await;
    assert_eq!(paused[0]["status"], "pending", "its unfinished delivery waits");

    receiver.always(Answer::Status(200));
    receiver.drain();
    send(app.customer(Method::PATCH, &endpoint_path).json(&json!({"status": "enabled"}))).await.assert_ok();
    let resumed = receiver.next().await;
    assert_eq!(resumed.header("heygen-event-id"), event_id);
    assert_eq!(app.settled_deliveries(&event_id).await[0]["status"], "delivered");
}

#[tokio::test]
async fn metrics_count_published_events_and_attempts() {
    let app = TestApp::spawn().await;
    let mut receiver = TestReceiver::start().await;
    app.create_endpoint(json!({"url": receiver.url("/m")})).await;
    let event_id = app.publish(event(&app.default_account().await)).await;
    receiver.next().await;
    app.settled_deliveries(&event_id).await;
    let metrics =
        app.anonymous(Method::GET, "/metrics").send().await.expect("metrics").text().await.expect("text");
    for name in [
        "hookd_events_published_total",
        "hookd_attempts_total{result=\"success\"}",
        "hookd_deliveries_total{outcome=\"delivered\"}",
        "hookd_attempt_duration_seconds_bucket",
        "hookd_deliveries_due",
        "hookd_deliveries_in_flight",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}:\n{metrics}");
    }
}
