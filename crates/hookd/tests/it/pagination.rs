//! Pagination: opaque, tamper-evident cursors; newest first; each item exactly once.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, receiver_url, send};

const PATH: &str = "/v3/webhooks/endpoints";

async fn page(app: &TestApp, api_key: &str, query: &str) -> crate::support::Reply {
    send(app.as_customer(api_key, Method::GET, &format!("{PATH}?{query}"))).await
}

async fn create_n(app: &TestApp, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let data = app.create_endpoint(json!({"url": receiver_url(i)})).await;
        ids.push(data["endpoint_id"].as_str().expect("id").to_owned());
    }
    ids
}

#[tokio::test]
async fn walking_57_endpoints_by_10_returns_each_once_newest_first_in_6_pages() {
    let app = TestApp::spawn().await;
    let mut created = create_n(&app, 57).await;
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut token: Option<String> = None;
    loop {
        let query = match &token {
            Some(token) => format!("limit=10&token={token}"),
            None => "limit=10".to_owned(),
        };
        let reply = page(&app, &app.api_key, &query).await;
        let items = reply.assert_ok().as_array().expect("array").clone();
        pages += 1;
        seen.extend(items.iter().map(|e| e["endpoint_id"].as_str().expect("id").to_owned()));
        // Inserts during the walk must not disturb it.
        app.create_endpoint(json!({"url": receiver_url(1000 + pages)})).await;
        if reply.body["has_more"] == json!(true) {
            assert_eq!(items.len(), 10);
            token = Some(reply.body["next_token"].as_str().expect("next_token").to_owned());
        } else {
            assert!(reply.body["next_token"].is_null(), "last page has next_token null");
            assert_eq!(items.len(), 7);
            break;
        }
    }
    assert_eq!(pages, 6);
    created.reverse();
    assert_eq!(seen, created, "every endpoint exactly once, newest first");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 57);
}

#[tokio::test]
async fn default_limit_is_10_and_a_short_list_has_no_token() {
    let app = TestApp::spawn().await;
    create_n(&app, 12).await;
    let reply = page(&app, &app.api_key, "").await;
    assert_eq!(reply.assert_ok().as_array().expect("array").len(), 10);
    assert_eq!(reply.body["has_more"], true);
    let all = page(&app, &app.api_key, "limit=100").await;
    assert_eq!(all.assert_ok().as_array().expect("array").len(), 12);
    assert_eq!(all.body["has_more"], false);
    assert!(all.body["next_token"].is_null());
}

#[tokio::test]
async fn limit_outside_1_to_100_gets_400_naming_limit() {
    let app = TestApp::spawn().await;
    for limit in ["0", "101", "-1", "abc", "1.5", "99999999999999999999", ""] {
        page(&app, &app.api_key, &format!("limit={limit}")).await.assert_error(
            400,
            "invalid_parameter",
            Some("limit"),
        );
    }
    page(&app, &app.api_key, "limit=1").await.assert_ok();
    page(&app, &app.api_key, "limit=100").await.assert_ok();
}

#[tokio::test]
async fn an_empty_token_is_the_first_page() {
    let app = TestApp::spawn().await;
    create_n(&app, 3).await;
    let first = page(&app, &app.api_key, "limit=2").await;
    let empty = page(&app, &app.api_key, "limit=2&token=").await;
    assert_eq!(empty.assert_ok(), first.assert_ok());
}

async fn first_token(app: &TestApp, api_key: &str) -> String {
    let reply = page(app, api_key, "limit=1").await;
    reply.body["next_token"].as_str().expect("a next_token").to_owned()
}

#[tokio::test]
async fn tampered_truncated_or_garbage_tokens_get_400_naming_token() {
    let app = TestApp::spawn().await;
    create_n(&app, 3).await;
    let token = first_token(&app, &app.api_key).await;
    let mut flipped = token.clone().into_bytes();
    flipped[2] = if flipped[2] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("ascii");
    for bad in [flipped.as_str(), &token[..token.len() - 3], "garbage", "%%%", &format!("{token}AA")] {
        let query = format!("token={}", bad.replace('%', "%25"));
        page(&app, &app.api_key, &query).await.assert_error(400, "invalid_parameter", Some("token"));
    }
}

#[tokio::test]
async fn another_accounts_token_gets_400() {
    let app = TestApp::spawn().await;
    create_n(&app, 3).await;
    let other_key = app.new_account("other").await;
    for i in 0..3 {
        app.create_endpoint_as(&other_key, json!({"url": receiver_url(i)})).await;
    }
    let foreign = first_token(&app, &other_key).await;
    page(&app, &app.api_key, &format!("token={foreign}")).await.assert_error(
        400,
        "invalid_parameter",
        Some("token"),
    );
}

#[tokio::test]
async fn a_token_survives_a_restart() {
    let app = TestApp::spawn().await;
    create_n(&app, 3).await;
    let token = first_token(&app, &app.api_key).await;
    let app = app.restart().await;
    let reply = page(&app, &app.api_key, &format!("limit=10&token={token}")).await;
    let items: &Value = reply.assert_ok();
    assert_eq!(items.as_array().expect("array").len(), 2);
}
