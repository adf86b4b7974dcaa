//! The portal's reads, as extensions of the customer API: the event log with its
//! filters, one event, an endpoint's health and example payloads.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::receiver::{Answer, TestReceiver};
use crate::support::{TestApp, send};

fn event(account: &str, event_type: &str, entity_id: &str) -> Value {
    json!({"account_id": account, "event_type": event_type, "entity_id": entity_id,
           "event_data": {"video_id": "v1", "url": "https://example.com/v.mp4"}})
}

async fn log(app: &TestApp, query: &str) -> Value {
    send(app.customer(Method::GET, &format!("/v3/webhooks/event-log{query}"))).await.body.clone()
}

fn ids(page: &Value) -> Vec<&str> {
    page["data"].as_array().expect("data").iter().map(|e| e["event_id"].as_str().expect("id")).collect()
}

/// One delivered event and one failed, newest last.
async fn delivered_and_failed(app: &TestApp, receiver: &mut TestReceiver) -> (String, String) {
    let account = app.default_account().await;
    receiver.always(Answer::Status(200));
    let delivered = app.publish(event(&account, "avatar_video.success", "e1")).await;
    app.settled_deliveries(&delivered).await;
    receiver.always(Answer::Status(500));
    let failed = app.publish(event(&account, "avatar_video.fail", "e2")).await;
    app.settled_deliveries(&failed).await;
    (delivered, failed)
}

#[tokio::test]
async fn the_event_log_shows_how_each_events_deliveries_stand_and_filters_by_it() {
    let mut receiver = TestReceiver::start().await;
    let app = TestApp::spawn_with(&["--retry-schedule", "20ms"]).await;
    app.create_endpoint(json!({"url": receiver.url("/log")})).await;
    let (delivered, failed) = delivered_and_failed(&app, &mut receiver).await;

    let all = log(&app, "").await;
    assert_eq!(ids(&all), vec![failed.as_str(), delivered.as_str()], "newest first");
    assert_eq!(
        all["data"][0]["deliveries"],
        json!({"pending": 0, "delivered": 0, "failed": 1, "cancelled": 0})
    );
    assert_eq!(all["data"][1]["deliveries"]["delivered"], 1);
    assert_eq!(all["data"][1]["entity_id"], "e1");
    assert_eq!(ids(&log(&app, "?status=failed").await), vec![failed.as_str()]);
    assert_eq!(ids(&log(&app, "?status=delivered").await), vec![delivered.as_str()]);
    assert_eq!(ids(&log(&app, "?entity_id=e1").await), vec![delivered.as_str()]);
    assert_eq!(ids(&log(&app, "?event_type=avatar_video.fail").await), vec![failed.as_str()]);
    let created = all["data"][1]["created_at"].as_i64().expect("unix seconds");
    assert!(ids(&log(&app, &format!("?until={}", created - 1)).await).is_empty());
    assert_eq!(ids(&log(&app, &format!("?since={created}")).await).len(), 2);

    let first = log(&app, "?limit=1").await;
    let token = first["next_token"].as_str().expect("more");
    assert_eq!(ids(&log(&app, &format!("?limit=1&token={token}")).await), vec![delivered.as_str()]);
    let reply =
        send(app.customer(Method::GET, &format!("/v3/webhooks/event-log?status=failed&token={token}"))).await;
    reply.assert_error(400, "invalid_parameter", Some("token"));

    let other = app.new_account("other").await;
    let theirs = send(app.as_customer(&other, Method::GET, "/v3/webhooks/event-log")).await;
    assert_eq!(theirs.assert_ok(), &json!([]), "another account sees none of it");
}

#[tokio::test]
async fn the_event_log_refuses_bad_filters_by_name() {
    let app = TestApp::spawn().await;
    for (query, param) in [
        ("status=lost", "status"),
        ("since=yesterday", "since"),
        ("until=-5", "until"),
        ("since=200&until=100", "until"),
        ("event_type=no.such", "event_type"),
        ("limit=0", "limit"),
        ("token=forged", "token"),
    ] {
        let reply = send(app.customer(Method::GET, &format!("/v3/webhooks/event-log?{query}"))).await;
        reply.assert_error(400, "invalid_parameter", Some(param));
    }
}

#[tokio::test]
async fn an_event_is_shown_whole_to_its_account_only() {
    let app = TestApp::spawn().await;
    let account = app.default_account().await;
    let event_id = app.publish(event(&account, "avatar_video.success", "e1")).await;
    let path = format!("/v3/webhooks/events/{event_id}");
    let reply = send(app.customer(Method::GET, &path)).await;
    let shown = reply.assert_ok();
    assert_eq!(shown["event_data"], json!({"video_id": "v1", "url": "https://example.com/v.mp4"}));
    assert_eq!(
        (shown["event_type"].as_str(), shown["entity_id"].as_str()),
        (Some("avatar_video.success"), Some("e1"))
    );

    let other = app.new_account("other").await;
    send(app.as_customer(&other, Method::GET, &path)).await.assert_error(404, "not_found", None);
    send(app.customer(Method::GET, "/v3/webhooks/events/not-an-id")).await.assert_error(
        404,
        "not_found",
        None,
    );
}

#[tokio::test]
async fn endpoint_health_counts_the_last_days_attempts() {
    let mut receiver = TestReceiver::start().await;
    let app = TestApp::spawn_with(&["--retry-schedule", "20ms"]).await;
    let endpoint = app.create_endpoint(json!({"url": receiver.url("/health")})).await;
    let endpoint_id = endpoint["endpoint_id"].as_str().expect("id");
    delivered_and_failed(&app, &mut receiver).await;

    let path = format!("/v3/webhooks/endpoints/{endpoint_id}/health");
    let reply = send(app.customer(Method::GET, &path)).await;
    let health = reply.assert_ok();
    let hours = health["hours"].as_array().expect("hours");
    assert_eq!(hours.len(), 24);
    let total = |field: &str| hours.iter().map(|h| h[field].as_u64().expect("count")).sum::<u64>();
    // One success, then the failing event's two attempts (the schedule has one retry).
    assert_eq!((total("succeeded"), total("failed")), (1, 2));
    assert!((health["success_rate"].as_f64().expect("rate") - 1.0 / 3.0).abs() < 1e-9);
    assert!(health["last_failure_at"].as_i64() >= health["last_success_at"].as_i64());
    assert!(health["failing_since"].is_i64(), "failing since the first failure after the success");

    let other = app.new_account("other").await;
    send(app.as_customer(&other, Method::GET, &path)).await.assert_error(404, "not_found", None);
}

#[tokio::test]
async fn an_example_payload_comes_from_history_else_from_hookds_own_events() {
    let app = TestApp::spawn().await;
    let example = |event_type: &str| {
        let path = format!("/v3/webhooks/event-types/{event_type}/example");
        send(app.customer(Method::GET, &path))
    };
    let sample = example("avatar_video.success").await;
    assert_eq!(sample.assert_ok()["source"], "sample");
    assert!(sample.assert_ok()["event_data"]["video_id"].is_string(), "the fields hookd's own event carries");
    assert_eq!(example("batch.finished").await.assert_ok()["source"], "none");

    let account = app.default_account().await;
    app.publish(
        json!({"account_id": account, "event_type": "batch.finished", "event_data": {"batch_id": "b7"}}),
    )
    .await;
    let from_history = example("batch.finished").await;
    assert_eq!(from_history.assert_ok()["source"], "history");
    assert_eq!(from_history.assert_ok()["event_data"], json!({"batch_id": "b7"}));
    example("no.such.type").await.assert_error(404, "not_found", None);
}

#[tokio::test]
async fn a_page_of_endpoints_gets_its_health_in_one_request() {
    let mut receiver = TestReceiver::start().await;
    let app = TestApp::spawn_with(&["--retry-schedule", "20ms"]).await;
    let busy = app.create_endpoint(json!({"url": receiver.url("/busy")})).await;
    let quiet =
        app.create_endpoint(json!({"url": receiver.url("/quiet"), "events": ["batch.finished"]})).await;
    delivered_and_failed(&app, &mut receiver).await;
    let other = app.new_account("other").await;
    let theirs = app.create_endpoint_as(&other, json!({"url": receiver.url("/theirs")})).await;
    let id = |endpoint: &Value| endpoint["endpoint_id"].as_str().expect("id").to_owned();

    let path =
        format!("/v3/webhooks/endpoint-health?endpoint_ids={},{},{}", id(&busy), id(&quiet), id(&theirs));
    let reply = send(app.customer(Method::GET, &path)).await;
    let listed = reply.assert_ok().as_array().expect("list").clone();
    assert_eq!(listed.len(), 1, "only the account's endpoint that had attempts: {listed:?}");
    assert_eq!(listed[0]["endpoint_id"], id(&busy));
    assert_eq!((listed[0]["succeeded"].as_u64(), listed[0]["failed"].as_u64()), (Some(1), Some(2)));

    let many = vec![id(&busy); 101].join(",");
    for query in ["", "endpoint_ids=", "endpoint_ids=nope", &format!("endpoint_ids={many}")] {
        let reply = send(app.customer(Method::GET, &format!("/v3/webhooks/endpoint-health?{query}"))).await;
        reply.assert_error(400, "invalid_parameter", Some("endpoint_ids"));
    }
}
