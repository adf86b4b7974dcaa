//! The operator API: accounts and API keys, behind the admin token.

use reqwest::Method;
use serde_json::json;

use crate::support::{TestApp, send};

#[tokio::test]
async fn create_account_returns_a_key_that_works_at_once() {
    let app = TestApp::spawn().await;
    let reply = send(app.admin(Method::POST, "/admin/v1/accounts").json(&json!({"name": "acme"}))).await;
    let data = reply.assert_ok().clone();
    assert_eq!(data["name"], "acme");
    assert_eq!(data["account_id"].as_str().map(str::len), Some(32));
    assert_eq!(data["key_id"].as_str().map(str::len), Some(32));
    let key = data["api_key"].as_str().expect("api_key");
    send(app.as_customer(key, Method::GET, "/v3/webhooks/endpoints")).await.assert_ok();
}

#[tokio::test]
async fn create_account_validates_its_name() {
    let app = TestApp::spawn().await;
    for (body, param) in [
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "   "}), "name"),
        (json!({"name": 5}), "name"),
        (json!({"name": "x".repeat(256)}), "name"),
        (json!({"name": "ok", "plan": "gold"}), "plan"),
    ] {
        let reply = send(app.admin(Method::POST, "/admin/v1/accounts").json(&body)).await;
        reply.assert_error(400, "invalid_parameter", Some(param));
    }
}

#[tokio::test]
async fn a_second_key_works_and_revoking_one_leaves_the_other() {
    let app = TestApp::spawn().await;
    let created = send(app.admin(Method::POST, "/admin/v1/accounts").json(&json!({"name": "acme"}))).await;
    let data = created.assert_ok().clone();
    let account_id = data["account_id"].as_str().expect("id");
    let first_key = data["api_key"].as_str().expect("key");
    let added = send(app.admin(Method::POST, &format!("/admin/v1/accounts/{account_id}/api-keys"))).await;
    let second = added.assert_ok().clone();
    let second_key = second["api_key"].as_str().expect("key");
    let endpoint = app.create_endpoint_as(second_key, json!({"url": crate::support::receiver_url(1)})).await;

    let revoked = send(
        app.admin(Method::DELETE, &format!("/admin/v1/api-keys/{}", data["key_id"].as_str().expect("id"))),
    )
    .await;
    assert_eq!(revoked.body, json!({"data": {}, "error": null}));
    let refused = send(app.as_customer(first_key, Method::GET, "/v3/webhooks/endpoints")).await;
    refused.assert_error(401, "authentication_failed", None);
    let listed = send(app.as_customer(second_key, Method::GET, "/v3/webhooks/endpoints")).await;
    assert_eq!(listed.assert_ok()[0]["endpoint_id"], endpoint["endpoint_id"], "same account, other key");
}

#[tokio::test]
async fn unknown_accounts_and_keys_get_404() {
    let app = TestApp::spawn().await;
    for (method, path) in [
        (Method::POST, format!("/admin/v1/accounts/{}/api-keys", "0".repeat(32))),
        (Method::POST, "/admin/v1/accounts/not-an-id/api-keys".to_owned()),
        (Method::DELETE, format!("/admin/v1/api-keys/{}", "0".repeat(32))),
        (Method::DELETE, "/admin/v1/api-keys/xyz".to_owned()),
    ] {
        send(app.admin(method, &path)).await.assert_error(404, "not_found", None);
    }
}

#[tokio::test]
async fn operator_routes_refuse_anything_but_the_admin_token() {
    let app = TestApp::spawn().await;
    let url = format!("{}/admin/v1/accounts", app.base_url);
    let body = json!({"name": "x"});
    for request in [
        app.http.post(&url).json(&body),
        app.http.post(&url).bearer_auth("wrong-token-wrong-token").json(&body),
        app.http.post(&url).bearer_auth(&app.api_key).json(&body),
        app.http.post(&url).header("X-Api-Key", crate::support::ADMIN_TOKEN).json(&body),
    ] {
        send(request).await.assert_error(401, "authentication_failed", None);
    }
}
