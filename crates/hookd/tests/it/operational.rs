//! Operational webhooks (extension): the operator registers endpoints for hookd's own
//! events, and each event arrives, signed, when its cause happens. The dispatcher is
//! stepped with a chosen clock, so an hour-long failure run takes no time.

use hookd_signature::{verify_heygen, verify_webhook};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::receiver::{Answer, Received, TestReceiver};
use crate::support::{TestApp, send};

const HOUR: i64 = 3_600_000;

fn event(account: &str, n: usize) -> Value {
    json!({"account_id": account, "event_type": "batch.finished", "event_data": {"n": n}})
}

/// The next operational event at the operator's receiver, its signatures checked.
async fn next_operational(receiver: &mut TestReceiver, secret: &str) -> (String, Value) {
    let request: Received = receiver.next().await;
    assert_eq!(verify_heygen(secret, &request.body, request.header("heygen-signature")), Ok(()));
    let timestamp: i64 = request.header("webhook-timestamp").parse().expect("timestamp");
    let signature = request.header("webhook-signature");
    assert_eq!(
        verify_webhook(secret, request.header("webhook-id"), timestamp, &request.body, signature),
        Ok(())
    );
    let body = request.json();
    (body["event_type"].as_str().expect("type").to_owned(), body["event_data"].clone())
}

#[tokio::test]
async fn each_operational_event_arrives_signed_when_its_cause_happens() {
    let (app, dispatcher) =
        TestApp::spawn_stepped(&["--retry-schedule", "1h", "--disable-after", "3h"]).await;
    let mut operator = TestReceiver::start().await;
    let created = send(
        app.admin(Method::POST, "/admin/v1/operational-endpoints")
            .json(&json!({"url": operator.url("/ops")})),
    )
    .await;
    let ops = created.assert_ok().clone();
    let secret = ops["secret"].as_str().expect("secret shown once").to_owned();
    assert_eq!(ops["status"], "enabled");

    let customer = TestReceiver::start().await;
    customer.always(Answer::Status(500));
    let endpoint = app.create_endpoint(json!({"url": customer.url("/hook")})).await;
    let endpoint_id = endpoint["endpoint_id"].as_str().expect("id").to_owned();
    let account = app.default_account().await;

    // delivery.exhausted: both attempts of the schedule fail.
    let first = app.publish(event(&account, 0)).await;
    let start = hookd_store::now_millis();
    // The one retry comes an hour (±10 %) after the first attempt.
    dispatcher.step(start).await.expect("step");
    dispatcher.step(start + 2 * HOUR).await.expect("step: the retry fails for good");
    dispatcher.step(start + 2 * HOUR).await.expect("step: the operator is told");
    let (kind, data) = next_operational(&mut operator, &secret).await;
    assert_eq!(kind, "delivery.exhausted");
    assert_eq!(
        (data["event_id"].as_str(), data["endpoint_id"].as_str()),
        (Some(first.as_str()), Some(endpoint_id.as_str()))
    );
    assert_eq!((data["attempts"].as_i64(), data["last_status_code"].as_i64()), (Some(2), Some(500)));
    assert_eq!(data["account_id"], account.as_str());

    // endpoint.recovered: a success three hours into the failure run.
    customer.always(Answer::Status(200));
    app.publish(event(&account, 1)).await;
    dispatcher.step(start + 3 * HOUR).await.expect("step: delivered");
    dispatcher.step(start + 3 * HOUR).await.expect("step: the operator is told");
    let (kind, data) = next_operational(&mut operator, &secret).await;
    assert_eq!(kind, "endpoint.recovered");
    assert_eq!(data["failing_since"], start / 1000);
    assert_eq!(data["recovered_at"], (start + 3 * HOUR) / 1000);

    // endpoint.disabled: failing with no success for the 3 hours of --disable-after.
    customer.always(Answer::Status(500));
    app.publish(event(&account, 2)).await;
    dispatcher.step(start + 4 * HOUR).await.expect("step: fails");
    dispatcher.step(start + 8 * HOUR).await.expect("step: fails for good, past the threshold");
    dispatcher.step(start + 8 * HOUR).await.expect("step: the operator is told");
    let mut told: Vec<(String, Value)> =
        vec![next_operational(&mut operator, &secret).await, next_operational(&mut operator, &secret).await];
    told.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(told[0].0, "delivery.exhausted");
    assert_eq!(told[1].0, "endpoint.disabled");
    assert_eq!(told[1].1["reason"], "failing");
    assert_eq!(told[1].1["failing_since"], (start + 4 * HOUR) / 1000);
    assert_eq!(told[1].1["url"], customer.url("/hook"));

    // endpoint.enabled: the customer turns it back on.
    let path = format!("/v3/webhooks/endpoints/{endpoint_id}");
    send(app.customer(Method::PATCH, &path).json(&json!({"status": "enabled"}))).await.assert_ok();
    dispatcher.step(start + 8 * HOUR).await.expect("step: the operator is told");
    let (kind, data) = next_operational(&mut operator, &secret).await;
    assert_eq!(
        (kind.as_str(), data["endpoint_id"].as_str()),
        ("endpoint.enabled", Some(endpoint_id.as_str()))
    );

    let metrics = send(app.anonymous(Method::GET, "/metrics")).await.raw;
    for (kind, count) in [
        ("delivery.exhausted", 2),
        ("endpoint.recovered", 1),
        ("endpoint.disabled", 1),
        ("endpoint.enabled", 1),
    ] {
        let series = format!("hookd_operational_events{{event_type=\"{kind}\"}} {count}");
        assert!(metrics.contains(&series), "{series} in\n{metrics}");
    }
}

#[tokio::test]
async fn operational_endpoints_are_the_operators_alone_and_filter_by_type() {
    let app = TestApp::spawn().await;
    let path = "/admin/v1/operational-endpoints";
    let only = json!({"url": "https://ops.example.com/hook", "events": ["delivery.exhausted"]});
    let created = send(app.admin(Method::POST, path).json(&only)).await;
    let id = created.assert_ok()["endpoint_id"].as_str().expect("id").to_owned();
    assert_eq!(created.body["data"]["events"], json!(["delivery.exhausted"]));

    for (body, param) in [
        (json!({"url": "https://ops.example.com", "events": ["avatar_video.success"]}), "events"),
        (json!({"url": "https://ops.example.com", "events": []}), "events"),
        (json!({"url": "ftp://ops.example.com"}), "url"),
        (json!({"url": "https://ops.example.com", "entity_id": "x"}), "entity_id"),
    ] {
        send(app.admin(Method::POST, path).json(&body)).await.assert_error(
            400,
            "invalid_parameter",
            Some(param),
        );
    }
    send(app.anonymous(Method::POST, path).json(&only)).await.assert_error(
        401,
        "authentication_failed",
        None,
    );
    let customer_key = app.new_account("tenant").await;
    let as_customer = send(app.as_customer(&customer_key, Method::GET, path)).await;
    as_customer.assert_error(401, "authentication_failed", None);

    let listed = send(app.admin(Method::GET, path)).await;
    let ids: Vec<&str> = listed.body["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|e| e["endpoint_id"].as_str())
        .collect();
    assert_eq!(ids, [id.as_str()]);
    assert_eq!(listed.body["data"][0]["secret"], Value::Null, "the secret is shown once");
    let customers = send(app.customer(Method::GET, "/v3/webhooks/endpoints")).await;
    assert_eq!(customers.body["data"], json!([]), "no customer sees it");
    let theirs = send(app.customer(Method::DELETE, &format!("/v3/webhooks/endpoints/{id}"))).await;
    theirs.assert_error(404, "not_found", None);

    send(app.admin(Method::DELETE, &format!("{path}/{id}"))).await.assert_ok();
    send(app.admin(Method::DELETE, &format!("{path}/{id}"))).await.assert_error(404, "not_found", None);
}
