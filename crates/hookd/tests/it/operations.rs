//! Health, readiness and the generated OpenAPI document.

use reqwest::Method;
use serde_json::Value;

use crate::support::{TestApp, send};

#[tokio::test]
async fn healthz_and_readyz_answer_without_auth() {
    let app = TestApp::spawn().await;
    assert_eq!(send(app.anonymous(Method::GET, "/healthz")).await.body["status"], "ok");
    assert_eq!(send(app.anonymous(Method::GET, "/readyz")).await.body["status"], "ready");
}

#[tokio::test]
async fn openapi_document_describes_every_route_with_its_errors() {
    let app = TestApp::spawn().await;
    let doc: Value = send(app.anonymous(Method::GET, "/openapi.json")).await.body;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")));
    let expected = [
        ("/v3/webhooks/endpoints", "post", "createWebhookEndpoint"),
        ("/v3/webhooks/endpoints", "get", "listWebhookEndpoints"),
        ("/v3/webhooks/endpoints/{endpoint_id}", "patch", "updateWebhookEndpoint"),
        ("/v3/webhooks/endpoints/{endpoint_id}", "delete", "deleteWebhookEndpoint"),
        ("/v3/webhooks/endpoints/{endpoint_id}/rotate-secret", "post", "rotateWebhookSecret"),
        ("/v3/webhooks/event-types", "get", "listWebhookEventTypes"),
        ("/v3/webhooks/events", "get", "listWebhookEvents"),
        ("/admin/v1/accounts", "post", "createAccount"),
        ("/admin/v1/accounts/{account_id}/api-keys", "post", "createApiKey"),
        ("/admin/v1/api-keys/{key_id}", "delete", "revokeApiKey"),
        ("/v3/webhooks/events/{event_id}/deliveries", "get", "listEventDeliveries"),
        ("/v3/webhooks/events/{event_id}/resend", "post", "resendEvent"),
        ("/v3/webhooks/endpoints/{endpoint_id}/test", "post", "testWebhookEndpoint"),
        ("/admin/v1/events", "post", "publishEvent"),
        ("/admin/v1/events/batch", "post", "publishEventBatch"),
        ("/metrics", "get", "metrics"),
        ("/v3/videos", "post", "createVideo"),
        ("/v3/videos/{video_id}", "get", "getVideo"),
        ("/admin/v1/videos/{video_id}/status", "post", "reportVideoStatus"),
        ("/admin/v1/videos", "get", "listVideos"),
        ("/healthz", "get", "healthz"),
        ("/readyz", "get", "readyz"),
    ];
    for (path, method, operation_id) in expected {
        let operation = &doc["paths"][path][method];
        assert_eq!(operation["operationId"], operation_id, "{method} {path}");
        let takes_a_key = operation["parameters"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"));
        let write = matches!(method, "post" | "patch" | "delete");
        assert_eq!(takes_a_key, write, "{method} {path}: Idempotency-Key documented on writes only");
        let responses = &operation["responses"];
        assert!(
            responses["200"].is_object() || responses["202"].is_object(),
            "{method} {path} documents its success"
        );
    }
    let create = &doc["paths"]["/v3/webhooks/endpoints"]["post"];
    assert!(create["responses"]["400"].is_object() && create["responses"]["401"].is_object());
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["ApiKeyAuth"]["name"], "x-api-key");
    assert_eq!(schemes["BearerAuth"]["scheme"], "bearer");
}

#[tokio::test]
async fn the_document_calls_an_update_that_changes_nothing_invalid_as_the_server_does() {
    let app = TestApp::spawn().await;
    let doc: Value = send(app.anonymous(Method::GET, "/openapi.json")).await.body;
    let mut schema = doc["components"]["schemas"]["UpdateEndpointRequest"].clone();
    // Resolve the schema's references against the whole document.
    schema["components"] = doc["components"].clone();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    for body in [serde_json::json!({}), serde_json::json!({"url": null}), serde_json::json!({"status": null})]
    {
        assert!(!validator.is_valid(&body), "{body} changes nothing: the server answers 400");
    }
    for body in [
        serde_json::json!({"events": null}),
        serde_json::json!({"status": "disabled"}),
        serde_json::json!({"url": "https://example.com/hook"}),
    ] {
        assert!(validator.is_valid(&body), "{body} is a change");
    }
}

/// The names a file of `deploy/` queries: `hookd_...` (recording rules, `hookd:...`,
/// are defined there, and `up` is Prometheus's own).
pub(crate) fn metrics_queried_in(file: &str) -> std::collections::BTreeSet<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join(file)).unwrap_or_else(|_| panic!("{file}"));
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("hookd_"))
        .map(|word| word.strip_suffix("_bucket").unwrap_or(word).to_owned())
        .collect()
}

#[tokio::test]
async fn every_metric_the_alert_rules_and_the_dashboard_query_is_one_hookd_exports() {
    use crate::support::receiver::{Answer, TestReceiver};
    // Activity that creates every series: a delivery, a failed attempt, a delivery
    // failed for good, a published event, a scrape.
    let (app, dispatcher) = TestApp::spawn_stepped(&["--retry-schedule", "1s"]).await;
    let receiver = TestReceiver::start().await;
    receiver.script([Answer::Status(500), Answer::Status(500), Answer::Status(500)]);
    app.create_endpoint(serde_json::json!({"url": receiver.url("/metrics-test")})).await;
    let account = app.default_account().await;
    for n in 0..2 {
        app.publish(serde_json::json!({"account_id": account, "event_type": "batch.finished", "event_data": {"n": n}}))
            .await;
    }
    let start = hookd_store::now_millis();
    dispatcher.step(start).await.expect("first attempts: both fail");
    dispatcher.step(start + 2_000).await.expect("retries: one succeeds, one is out of retries");
    let text = send(app.anonymous(Method::GET, "/metrics")).await.raw;
    let exported: std::collections::BTreeSet<String> = text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(|name| name.strip_suffix("_bucket").unwrap_or(name).to_owned())
        .collect();
    for file in ["deploy/prometheus/hookd-rules.yml", "deploy/grafana/hookd.json"] {
        let queried = metrics_queried_in(file);
        assert!(queried.len() >= 5, "{file} was read: {queried:?}");
        // The outbox's exist only on PostgreSQL: `outbox::the_outbox_alerts_query_metrics_hookd_exports`.
        let missing: Vec<&String> =
            queried.difference(&exported).filter(|name| !name.starts_with("hookd_outbox_")).collect();
        assert!(missing.is_empty(), "{file} queries metrics hookd does not export: {missing:?}\n{text}");
    }
}
