//! The event catalog and the event history (contract section 3).
//!
//! No API publishes events yet (that is the delivery engine's), so the history tests
//! write events into the app's database file and read them back over HTTP.

use hookd_core::EventId;
use hookd_store::{Event, EventStore};
use reqwest::Method;
use serde_json::json;

use crate::support::{TestApp, account_of, open_store, send};

const CATALOG: [&str; 30] = [
    "avatar_video.success",
    "avatar_video.fail",
    "avatar_video_gif.success",
    "avatar_video_gif.fail",
    "video_translate.success",
    "video_translate.fail",
    "video_translate.preflight.validation_failed",
    "video_translate.preflight.download_failed",
    "personalized_video",
    "instant_avatar.success",
    "instant_avatar.fail",
    "photo_avatar_generation.success",
    "photo_avatar_generation.fail",
    "photo_avatar_train.success",
    "photo_avatar_train.fail",
    "photo_avatar_add_motion.success",
    "photo_avatar_add_motion.fail",
    "proofread_creation.success",
    "proofread_creation.fail",
    "live_avatar.success",
    "live_avatar.fail",
    "avatar_video_caption.success",
    "avatar_video_caption.fail",
    "video_agent.success",
    "video_agent.fail",
    "hyperframes_video.success",
    "hyperframes_video.fail",
    "ai_clipping.success",
    "ai_clipping.fail",
    "batch.finished",
];

#[tokio::test]
async fn event_types_lists_the_whole_catalog_in_order_in_one_page() {
    let app = TestApp::spawn().await;
    let reply = send(app.customer(Method::GET, "/v3/webhooks/event-types")).await;
    let items = reply.assert_ok().as_array().expect("array").clone();
    let names: Vec<&str> = items.iter().map(|i| i["event_type"].as_str().expect("name")).collect();
    assert_eq!(names, CATALOG);
    assert!(items.iter().all(|i| i["description"].as_str().is_some_and(|d| d.len() > 10)));
    assert_eq!(reply.body["has_more"], false);
    assert!(reply.body["next_token"].is_null());
}

#[tokio::test]
async fn operator_event_types_join_the_catalog_and_subscriptions() {
    let app = TestApp::spawn_with(&["--event-type", "render.queued=A render was queued."]).await;
    let reply = send(app.customer(Method::GET, "/v3/webhooks/event-types")).await;
    let items = reply.assert_ok().as_array().expect("array").clone();
    assert_eq!(items.len(), 31);
    assert_eq!(items[30], json!({"event_type": "render.queued", "description": "A render was queued."}));
    let data = app
        .create_endpoint(json!({"url": crate::support::receiver_url(1), "events": ["render.queued"]}))
        .await;
    assert_eq!(data["events"], json!(["render.queued"]));
}

#[tokio::test]
async fn event_types_requires_a_key() {
    let app = TestApp::spawn().await;
    send(app.anonymous(Method::GET, "/v3/webhooks/event-types")).await.assert_error(
        401,
        "authentication_failed",
        None,
    );
}

async fn seed_events(app: &TestApp, api_key: &str, events: &[(&str, Option<&str>)]) -> Vec<String> {
    let store = open_store(app).await;
    let account_id = account_of(&store, api_key).await;
    let records: Vec<Event> = events
        .iter()
        .enumerate()
        .map(|(n, (event_type, entity_id))| Event {
            event_id: EventId::new_random(),
            account_id: account_id.clone(),
            event_type: (*event_type).to_owned(),
            entity_id: entity_id.map(str::to_owned),
            event_data: format!("{{\"n\":{n},\"video_id\":\"v{n}\"}}"),
            callback_url: None,
            callback_id: None,
            created_at: 1_764_180_000_000 + n as i64 * 1000,
            traceparent: None,
        })
        .collect();
    store.publish_events(&records).await.expect("seed events");
    store.close().await;
    records.iter().map(|e| e.event_id.to_string()).collect()
}

async fn listed_ids(app: &TestApp, query: &str) -> Vec<String> {
    let reply = send(app.customer(Method::GET, &format!("/v3/webhooks/events?{query}"))).await;
    let items = reply.assert_ok().as_array().expect("array").clone();
    items.iter().map(|e| e["event_id"].as_str().expect("id").to_owned()).collect()
}

#[tokio::test]
async fn events_history_is_empty_for_a_new_account() {
    let app = TestApp::spawn().await;
    let reply = send(app.customer(Method::GET, "/v3/webhooks/events")).await;
    assert_eq!(reply.body, json!({"data": [], "has_more": false, "next_token": null}));
}

#[tokio::test]
async fn events_history_lists_newest_first_with_the_contracts_fields() {
    let app = TestApp::spawn().await;
    let ids =
        seed_events(&app, &app.api_key, &[("avatar_video.success", None), ("avatar_video.fail", Some("p"))])
            .await;
    let reply = send(app.customer(Method::GET, "/v3/webhooks/events")).await;
    let items = reply.assert_ok().as_array().expect("array").clone();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["event_id"], ids[1].as_str());
    assert_eq!(items[0]["event_type"], "avatar_video.fail");
    assert_eq!(items[0]["event_data"], json!({"n": 1, "video_id": "v1"}));
    assert_eq!(items[0]["created_at"], "2025-11-26T18:00:01Z");
    let keys: Vec<&String> = items[0].as_object().expect("object").keys().collect();
    assert_eq!(keys.len(), 4, "event_id, event_type, event_data, created_at: {keys:?}");
}

#[tokio::test]
async fn events_history_filters_by_type_and_entity() {
    let app = TestApp::spawn().await;
    let ids = seed_events(
        &app,
        &app.api_key,
        &[
            ("avatar_video.success", Some("p1")),
            ("avatar_video.fail", Some("p1")),
            ("avatar_video.success", None),
        ],
    )
    .await;
    assert_eq!(
        listed_ids(&app, "event_type=avatar_video.success").await,
        vec![ids[2].clone(), ids[0].clone()]
    );
    assert_eq!(listed_ids(&app, "entity_id=p1").await, vec![ids[1].clone(), ids[0].clone()]);
    assert_eq!(listed_ids(&app, "event_type=avatar_video.success&entity_id=p1").await, vec![ids[0].clone()]);
}

#[tokio::test]
async fn events_history_refuses_an_unknown_event_type() {
    let app = TestApp::spawn().await;
    let reply = send(app.customer(Method::GET, "/v3/webhooks/events?event_type=nope.nothing")).await;
    reply.assert_error(400, "invalid_parameter", Some("event_type"));
}

#[tokio::test]
async fn events_history_refuses_a_filter_no_event_can_match() {
    let app = TestApp::spawn().await;
    let long = "e".repeat(256);
    let reply = send(app.customer(Method::GET, &format!("/v3/webhooks/events?entity_id={long}"))).await;
    reply.assert_error(400, "invalid_parameter", Some("entity_id"));
    let reply = send(app.customer(Method::GET, "/v3/webhooks/events?event_type=")).await;
    reply.assert_error(400, "invalid_parameter", Some("event_type"));
}

#[tokio::test]
async fn events_history_pages_and_binds_tokens_to_their_filter() {
    let app = TestApp::spawn().await;
    let seeded = vec![("avatar_video.success", None); 5];
    let mut ids = seed_events(&app, &app.api_key, &seeded).await;
    ids.reverse();
    let first = send(app.customer(Method::GET, "/v3/webhooks/events?limit=3")).await;
    let token = first.body["next_token"].as_str().expect("token").to_owned();
    assert_eq!(listed_ids(&app, &format!("limit=3&token={token}")).await, ids[3..].to_vec());
    let other_filter = send(
        app.customer(Method::GET, &format!("/v3/webhooks/events?event_type=avatar_video.fail&token={token}")),
    )
    .await;
    other_filter.assert_error(400, "invalid_parameter", Some("token"));
    let endpoints_list =
        send(app.customer(Method::GET, &format!("/v3/webhooks/endpoints?token={token}"))).await;
    endpoints_list.assert_error(400, "invalid_parameter", Some("token"));
}

#[tokio::test]
async fn events_history_never_shows_another_accounts_events() {
    let app = TestApp::spawn().await;
    let other_key = app.new_account("other").await;
    seed_events(&app, &other_key, &[("avatar_video.success", None)]).await;
    assert!(listed_ids(&app, "").await.is_empty());
}
