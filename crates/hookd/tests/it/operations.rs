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
