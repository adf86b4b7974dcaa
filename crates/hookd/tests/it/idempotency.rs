//! `Idempotency-Key`: one effect per key, replays identical, across restarts.

use reqwest::Method;
use serde_json::json;

use crate::support::{TestApp, receiver_url, send};

const PATH: &str = "/v3/webhooks/endpoints";

async fn endpoint_count(app: &TestApp) -> usize {
    let reply = send(app.customer(Method::GET, &format!("{PATH}?limit=100"))).await;
    reply.assert_ok().as_array().expect("array").len()
}

fn create_with_key(app: &TestApp, key: &str, n: usize) -> reqwest::RequestBuilder {
    app.customer(Method::POST, PATH).header("Idempotency-Key", key).json(&json!({"url": receiver_url(n)}))
}

#[tokio::test]
async fn same_key_twice_creates_one_endpoint_and_replays_the_same_body() {
    let app = TestApp::spawn().await;
    let first = send(create_with_key(&app, "create-1", 1)).await;
    let second = send(create_with_key(&app, "create-1", 1)).await;
    first.assert_ok();
    assert_eq!(second.status, first.status);
    assert_eq!(second.raw, first.raw, "byte-identical replay, secret included");
    assert_eq!(second.headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    assert!(!first.headers.contains_key("idempotent-replayed"));
    assert_eq!(endpoint_count(&app).await, 1);
}

#[tokio::test]
async fn replay_survives_a_restart() {
    let app = TestApp::spawn().await;
    let first = send(create_with_key(&app, "survives", 1)).await;
    first.assert_ok();
    let app = app.restart().await;
    let again = send(create_with_key(&app, "survives", 1)).await;
    assert_eq!(again.raw, first.raw);
    assert_eq!(endpoint_count(&app).await, 1);
}

#[tokio::test]
async fn a_repeat_with_a_different_body_replays_the_first_response() {
    let app = TestApp::spawn().await;
    let first = send(create_with_key(&app, "k", 1)).await;
    let different = send(create_with_key(&app, "k", 2)).await;
    assert_eq!(different.raw, first.raw);
    assert_eq!(endpoint_count(&app).await, 1);
}

#[tokio::test]
async fn concurrent_first_requests_never_create_two_endpoints() {
    let app = TestApp::spawn().await;
    let mut racing = tokio::task::JoinSet::new();
    for _ in 0..8 {
        racing.spawn(send(create_with_key(&app, "race", 1)));
    }
    let replies = racing.join_all().await;
    let successes: Vec<_> = replies.iter().filter(|r| r.status.as_u16() == 200).collect();
    assert!(!successes.is_empty());
    for reply in &replies {
        match reply.status.as_u16() {
            200 => assert_eq!(reply.raw, successes[0].raw, "every success is the same response"),
            409 => reply.assert_error(409, "request_in_progress", None),
            other => panic!("unexpected status {other}: {}", reply.raw),
        }
    }
    assert_eq!(endpoint_count(&app).await, 1);
}

#[tokio::test]
async fn the_same_key_on_another_path_or_account_is_independent() {
    let app = TestApp::spawn().await;
    let other_key = app.new_account("other").await;
    send(create_with_key(&app, "shared", 1)).await.assert_ok();
    let other_account = app
        .as_customer(&other_key, Method::POST, PATH)
        .header("Idempotency-Key", "shared")
        .json(&json!({"url": receiver_url(1)}));
    let reply = send(other_account).await;
    reply.assert_ok();
    assert!(!reply.headers.contains_key("idempotent-replayed"));
    assert_eq!(endpoint_count(&app).await, 1, "the other account's endpoint is not ours");
}

#[tokio::test]
async fn a_failed_request_does_not_consume_the_key() {
    let app = TestApp::spawn().await;
    let invalid =
        app.customer(Method::POST, PATH).header("Idempotency-Key", "retry-me").json(&json!({"url": 1}));
    send(invalid).await.assert_error(400, "invalid_parameter", Some("url"));
    let corrected = send(create_with_key(&app, "retry-me", 1)).await;
    corrected.assert_ok();
    assert!(!corrected.headers.contains_key("idempotent-replayed"));
    assert_eq!(endpoint_count(&app).await, 1);
}

#[tokio::test]
async fn delete_with_a_key_replays_its_success() {
    let app = TestApp::spawn().await;
    let id = app.create_endpoint(json!({"url": receiver_url(1)})).await["endpoint_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let delete = || app.customer(Method::DELETE, &format!("{PATH}/{id}")).header("Idempotency-Key", "del");
    let first = send(delete()).await;
    let second = send(delete()).await;
    assert_eq!(first.status.as_u16(), 200);
    assert_eq!(second.status.as_u16(), 200);
    assert_eq!(second.raw, first.raw);
}

#[tokio::test]
async fn malformed_keys_get_400_naming_the_header() {
    let app = TestApp::spawn().await;
    for key in ["", "has space", "slash/inside", "semi;colon", &"k".repeat(256)] {
        let request = app
            .customer(Method::POST, PATH)
            .header("Idempotency-Key", key)
            .json(&json!({"url": receiver_url(1)}));
        send(request).await.assert_error(400, "invalid_parameter", Some("Idempotency-Key"));
    }
    let longest = "k".repeat(255);
    send(create_with_key(&app, &longest, 1)).await.assert_ok();
    assert_eq!(endpoint_count(&app).await, 1);
}
