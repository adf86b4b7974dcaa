//! Request limits on the customer API: each account's request rate (`--rate-limit`).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{Reply, TestApp, receiver_url, send};

const ENDPOINTS: &str = "/v3/webhooks/endpoints";

/// `n` list requests with `key`, each sent when the last one is answered.
async fn burst(app: &TestApp, key: &str, n: usize) -> Vec<Reply> {
    let mut replies = Vec::with_capacity(n);
    for _ in 0..n {
        replies.push(send(app.as_customer(key, Method::GET, ENDPOINTS)).await);
    }
    replies
}

fn retry_after(reply: &Reply) -> u64 {
    let value = reply.headers.get("retry-after").expect("a 429 carries Retry-After");
    value.to_str().expect("ascii").parse().expect("whole seconds")
}

#[tokio::test]
async fn requests_beyond_the_accounts_rate_get_429_with_retry_after() {
    // One request a second: the second of ten sent back to back is over it.
    let app = TestApp::spawn_with(&["--rate-limit", "1"]).await;
    let key = app.new_account("busy").await;
    let replies = burst(&app, &key, 10).await;
    assert_eq!(replies[0].status, StatusCode::OK);
    let limited: Vec<&Reply> = replies.iter().filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS).collect();
    assert!(!limited.is_empty(), "ten requests back to back against one a second");
    for reply in limited {
        reply.assert_error(429, "rate_limit_exceeded", None);
        assert_eq!(retry_after(reply), 1, "the wait rounded up to whole seconds");
    }
}

#[tokio::test]
async fn one_accounts_limit_leaves_other_accounts_alone() {
    let app = TestApp::spawn_with(&["--rate-limit", "1"]).await;
    let busy = app.new_account("busy").await;
    let quiet = app.new_account("quiet").await;
    assert!(burst(&app, &busy, 5).await.iter().any(|r| r.status == StatusCode::TOO_MANY_REQUESTS));
    send(app.as_customer(&quiet, Method::GET, ENDPOINTS)).await.assert_ok();
}

#[tokio::test]
async fn a_refused_request_changes_nothing() {
    let app = TestApp::spawn_with(&["--rate-limit", "1"]).await;
    let key = app.new_account("busy").await;
    let create =
        |n: usize| app.as_customer(&key, Method::POST, ENDPOINTS).json(&json!({"url": receiver_url(n)}));
    send(create(1)).await.assert_ok();
    let refused = send(create(2)).await;
    refused.assert_error(429, "rate_limit_exceeded", None);
    tokio::time::sleep(Duration::from_secs(retry_after(&refused))).await;
    let listed = send(app.as_customer(&key, Method::GET, ENDPOINTS)).await;
    let urls: Vec<&str> =
        listed.assert_ok().as_array().expect("list").iter().filter_map(|e| e["url"].as_str()).collect();
    assert_eq!(urls, vec![receiver_url(1).as_str()], "only the endpoint created within the limit");
}

#[tokio::test]
async fn a_rate_limit_of_zero_turns_it_off() {
    let app = TestApp::spawn_with(&["--rate-limit", "0"]).await;
    let key = app.new_account("busy").await;
    assert!(burst(&app, &key, 30).await.iter().all(|r| r.status == StatusCode::OK));
}
