//! The error rows of contract section 1: each produced where the contract says, in
//! the envelope, with nothing changed.

use reqwest::Method;
use reqwest::header::{ALLOW, CONTENT_TYPE};
use serde_json::json;

use crate::support::{TestApp, receiver_url, send};

const PATH: &str = "/v3/webhooks/endpoints";

async fn endpoint_count(app: &TestApp) -> usize {
    let reply = send(app.customer(Method::GET, &format!("{PATH}?limit=100"))).await;
    reply.assert_ok().as_array().expect("array").len()
}

#[tokio::test]
async fn requests_without_a_valid_key_get_401() {
    let app = TestApp::spawn().await;
    let url = format!("{}{PATH}", app.base_url);
    let malformed = format!("hk_{}_x", "0".repeat(32));
    let wrong_secret = format!("{}x", &app.api_key);
    let requests = [
        ("no key", app.http.get(&url)),
        ("empty key", app.http.get(&url).header("X-Api-Key", "")),
        ("garbage key", app.http.get(&url).header("X-Api-Key", "hello")),
        ("unknown key id", app.http.get(&url).header("X-Api-Key", &malformed)),
        ("right id, wrong secret", app.http.get(&url).header("X-Api-Key", &wrong_secret)),
        ("basic scheme", app.http.get(&url).header("Authorization", format!("Basic {}", app.api_key))),
        ("admin token as key", app.http.get(&url).bearer_auth(crate::support::ADMIN_TOKEN)),
    ];
    for (case, request) in requests {
        let reply = send(request).await;
        assert_eq!(reply.status.as_u16(), 401, "{case}");
        reply.assert_error(401, "authentication_failed", None);
    }
}

#[tokio::test]
async fn both_auth_headers_are_accepted_case_insensitively() {
    let app = TestApp::spawn().await;
    let url = format!("{}{PATH}", app.base_url);
    for request in [
        app.http.get(&url).header("x-api-key", &app.api_key),
        app.http.get(&url).header("X-API-KEY", &app.api_key),
        app.http.get(&url).bearer_auth(&app.api_key),
        app.http.get(&url).header("authorization", format!("bearer {}", app.api_key)),
    ] {
        send(request).await.assert_ok();
    }
}

#[tokio::test]
async fn unauthenticated_writes_change_nothing() {
    let app = TestApp::spawn().await;
    let reply = send(app.anonymous(Method::POST, PATH).json(&json!({"url": receiver_url(1)}))).await;
    reply.assert_error(401, "authentication_failed", None);
    assert_eq!(endpoint_count(&app).await, 0);
}

#[tokio::test]
async fn unknown_routes_get_404_in_the_envelope() {
    let app = TestApp::spawn().await;
    for path in ["/v3/nope", "/v3/webhooks/endpoints/abc/unknown", "/"] {
        send(app.customer(Method::GET, path)).await.assert_error(404, "not_found", None);
    }
}

#[tokio::test]
async fn wrong_method_gets_405_with_an_allow_header() {
    let app = TestApp::spawn().await;
    let cases = [
        (Method::PUT, PATH.to_owned(), ["GET", "POST"].as_slice()),
        (Method::GET, format!("{PATH}/{}", "0".repeat(32)), ["PATCH", "DELETE"].as_slice()),
        (Method::GET, format!("{PATH}/{}/rotate-secret", "0".repeat(32)), ["POST"].as_slice()),
    ];
    for (method, path, allowed) in cases {
        let reply = send(app.customer(method.clone(), &path)).await;
        reply.assert_error(405, "method_not_allowed", None);
        let allow = reply.headers.get(ALLOW).and_then(|v| v.to_str().ok()).unwrap_or_default();
        for expected in allowed {
            assert!(allow.contains(expected), "{method} {path}: Allow {allow:?} lacks {expected}");
        }
    }
}

#[tokio::test]
async fn body_over_one_mebibyte_gets_413_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let padding = "x".repeat(1024 * 1024 + 10);
    let body = json!({"url": receiver_url(1), "entity_id": padding}).to_string();
    let request = app.customer(Method::POST, PATH).header(CONTENT_TYPE, "application/json").body(body);
    send(request).await.assert_error(413, "payload_too_large", None);
    assert_eq!(endpoint_count(&app).await, 0);
}

#[tokio::test]
async fn body_that_is_not_a_json_object_gets_invalid_request() {
    let app = TestApp::spawn().await;
    let cases = [
        ("application/json", "{\"url\": "),
        ("application/json", "[]"),
        ("application/json", "\"https://example.com\""),
        ("application/json", ""),
        ("text/plain", "{\"url\": \"https://example.com\"}"),
        ("application/x-www-form-urlencoded", "url=https://example.com"),
    ];
    for (content_type, body) in cases {
        let request = app.customer(Method::POST, PATH).header(CONTENT_TYPE, content_type).body(body);
        let reply = send(request).await;
        assert_eq!(reply.status.as_u16(), 400, "{content_type} {body:?}: {}", reply.raw);
        reply.assert_error(400, "invalid_request", None);
    }
    let no_content_type = app.customer(Method::POST, PATH).body("{\"url\": \"https://example.com\"}");
    send(no_content_type).await.assert_error(400, "invalid_request", None);
    assert_eq!(endpoint_count(&app).await, 0);
}

#[tokio::test]
async fn json_content_type_with_charset_is_accepted() {
    let app = TestApp::spawn().await;
    let body = json!({"url": receiver_url(1)}).to_string();
    let request =
        app.customer(Method::POST, PATH).header(CONTENT_TYPE, "application/json; charset=utf-8").body(body);
    send(request).await.assert_ok();
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn().await;
    let generated = send(app.customer(Method::GET, PATH)).await;
    let id = generated.headers.get("x-request-id").and_then(|v| v.to_str().ok()).expect("x-request-id");
    assert_eq!(id.len(), 32);
    let echoed = send(app.anonymous(Method::GET, PATH).header("X-Request-Id", "client-chosen-42")).await;
    assert_eq!(echoed.status.as_u16(), 401);
    assert_eq!(echoed.headers.get("x-request-id").and_then(|v| v.to_str().ok()), Some("client-chosen-42"));
    let not_found = send(app.anonymous(Method::GET, "/nowhere")).await;
    assert!(not_found.headers.contains_key("x-request-id"));
}
