//! Wire compatibility: hookd's real responses validate against HeyGen's own OpenAPI
//! document for these routes (`tests/fixtures/heygen-openapi-subset.json`, a verbatim
//! copy of the contract's `heygen-openapi-subset.json`).

use hookd_core::EventId;
use hookd_store::{Event, EventStore};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Reply, TestApp, account_of, open_store, receiver_url, send};

const HEYGEN_OPENAPI: &str = include_str!("../fixtures/heygen-openapi-subset.json");

/// Validates `reply` against the schema HeyGen documents for `method path` and its status.
fn assert_matches_heygen(reply: &Reply, path: &str, method: &str) {
    let document: Value = serde_json::from_str(HEYGEN_OPENAPI).expect("the fixture is JSON");
    let status = reply.status.as_u16().to_string();
    let response = &document["paths"][path][method]["responses"][&status];
    assert!(response.is_object(), "HeyGen documents no {status} for {method} {path}");
    let mut schema = response["content"]["application/json"]["schema"].clone();
    // Let `#/components/...` references resolve inside this one schema document.
    schema["components"] = document["components"].clone();
    let validator = jsonschema::validator_for(&schema).expect("HeyGen's schema compiles");
    let errors: Vec<String> = validator.iter_errors(&reply.body).map(|error| error.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status} does not match HeyGen's schema: {errors:?}\n{}",
        reply.raw
    );
}

#[tokio::test]
async fn endpoint_responses_match_heygens_schema() {
    let app = TestApp::spawn().await;
    let body = json!({"url": receiver_url(1), "events": ["avatar_video.success"], "entity_id": "p"});
    let created = send(app.customer(Method::POST, "/v3/webhooks/endpoints").json(&body)).await;
    assert_matches_heygen(&created, "/v3/webhooks/endpoints", "post");
    let id = created.body["data"]["endpoint_id"].as_str().expect("id").to_owned();
    let item = format!("/v3/webhooks/endpoints/{id}");

    let listed = send(app.customer(Method::GET, "/v3/webhooks/endpoints?limit=1")).await;
    assert_matches_heygen(&listed, "/v3/webhooks/endpoints", "get");
    let patched = send(app.customer(Method::PATCH, &item).json(&json!({"events": null}))).await;
    assert_matches_heygen(&patched, "/v3/webhooks/endpoints/{endpoint_id}", "patch");
    let rotated = send(app.customer(Method::POST, &format!("{item}/rotate-secret"))).await;
    assert_matches_heygen(&rotated, "/v3/webhooks/endpoints/{endpoint_id}/rotate-secret", "post");
    let deleted = send(app.customer(Method::DELETE, &item)).await;
    assert_matches_heygen(&deleted, "/v3/webhooks/endpoints/{endpoint_id}", "delete");
}

#[tokio::test]
async fn error_responses_match_heygens_schema() {
    let app = TestApp::spawn().await;
    let invalid = send(app.customer(Method::POST, "/v3/webhooks/endpoints").json(&json!({"url": 1}))).await;
    assert_matches_heygen(&invalid, "/v3/webhooks/endpoints", "post");
    let bad_limit = send(app.customer(Method::GET, "/v3/webhooks/endpoints?limit=0")).await;
    assert_matches_heygen(&bad_limit, "/v3/webhooks/endpoints", "get");
    let unauthenticated = send(app.anonymous(Method::GET, "/v3/webhooks/endpoints")).await;
    assert_matches_heygen(&unauthenticated, "/v3/webhooks/endpoints", "get");
    let missing = send(
        app.customer(Method::PATCH, &format!("/v3/webhooks/endpoints/{}", "0".repeat(32)))
            .json(&json!({"events": null})),
    )
    .await;
    assert_matches_heygen(&missing, "/v3/webhooks/endpoints/{endpoint_id}", "patch");
    let no_change = send(
        app.customer(Method::PATCH, &format!("/v3/webhooks/endpoints/{}", "0".repeat(32))).json(&json!({})),
    )
    .await;
    assert_eq!(no_change.status.as_u16(), 400);
    assert_matches_heygen(&no_change, "/v3/webhooks/endpoints/{endpoint_id}", "patch");
}

#[tokio::test]
async fn catalog_and_history_responses_match_heygens_schema() {
    let app = TestApp::spawn().await;
    let store = open_store(&app).await;
    let event = Event {
        event_id: EventId::new_random(),
        account_id: account_of(&store, &app.api_key).await,
        event_type: "avatar_video.success".into(),
        entity_id: None,
        event_data: r#"{"video_id":"v1","url":null}"#.into(),
        callback_url: None,
        callback_id: None,
        created_at: 1_764_180_000_000,
        traceparent: None,
    };
    store.publish_events(&[event]).await.expect("seed");
    store.close().await;
    let types = send(app.customer(Method::GET, "/v3/webhooks/event-types")).await;
    assert_matches_heygen(&types, "/v3/webhooks/event-types", "get");
    let events = send(app.customer(Method::GET, "/v3/webhooks/events")).await;
    assert_eq!(events.body["data"].as_array().map(Vec::len), Some(1));
    assert_matches_heygen(&events, "/v3/webhooks/events", "get");
}

#[test]
#[should_panic(expected = "does not match HeyGen's schema")]
fn the_schema_check_rejects_a_wrong_shape() {
    let wrong = json!({"data": {"endpoint_id": 5, "url": "https://x", "status": "enabled"}});
    let reply = Reply {
        status: reqwest::StatusCode::OK,
        headers: Default::default(),
        raw: wrong.to_string(),
        body: wrong,
    };
    assert_matches_heygen(&reply, "/v3/webhooks/endpoints", "post");
}

#[tokio::test]
async fn video_responses_match_heygens_schema() {
    let app = TestApp::spawn().await;
    let body = json!({"type": "avatar", "avatar_id": "a1", "callback_url": receiver_url(1)});
    let created = send(app.customer(Method::POST, "/v3/videos").json(&body)).await;
    assert_matches_heygen(&created, "/v3/videos", "post");
    let id = created.body["data"]["video_id"].as_str().expect("id").to_owned();
    let detail = send(app.customer(Method::GET, &format!("/v3/videos/{id}"))).await;
    assert_matches_heygen(&detail, "/v3/videos/{video_id}", "get");
    let report =
        json!({"status": "completed", "video_url": "https://cdn.example.com/v.mp4", "duration": 3.0});
    send(app.admin(Method::POST, &format!("/admin/v1/videos/{id}/status")).json(&report)).await.assert_ok();
    let completed = send(app.customer(Method::GET, &format!("/v3/videos/{id}"))).await;
    assert_matches_heygen(&completed, "/v3/videos/{video_id}", "get");
}
