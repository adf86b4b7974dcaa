//! Tenancy: another account's endpoint is answered exactly like a missing one, on
//! every route, and is never changed.

use hookd_store::EndpointStore;
use reqwest::Method;
use serde_json::json;

use crate::support::{TestApp, account_of, open_store, receiver_url, send};

#[tokio::test]
async fn another_account_gets_404_on_every_route_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let key_b = app.new_account("b").await;
    let created =
        app.create_endpoint(json!({"url": receiver_url(1), "events": ["avatar_video.success"]})).await;
    let id = created["endpoint_id"].as_str().expect("id");
    let path = format!("/v3/webhooks/endpoints/{id}");

    let attempts = [
        app.as_customer(&key_b, Method::PATCH, &path).json(&json!({"url": receiver_url(2)})),
        app.as_customer(&key_b, Method::PATCH, &path).json(&json!({"status": "disabled"})),
        app.as_customer(&key_b, Method::POST, &format!("{path}/rotate-secret")),
        app.as_customer(&key_b, Method::DELETE, &path),
    ];
    for request in attempts {
        send(request).await.assert_error(404, "not_found", None);
    }
    let b_list = send(app.as_customer(&key_b, Method::GET, "/v3/webhooks/endpoints?limit=100")).await;
    assert_eq!(b_list.assert_ok(), &json!([]), "B never sees A's endpoint");

    let a_list = send(app.customer(Method::GET, "/v3/webhooks/endpoints?limit=100")).await;
    let mine = &a_list.assert_ok()[0];
    assert_eq!(mine["endpoint_id"], id);
    assert_eq!(mine["url"], receiver_url(1));
    assert_eq!(mine["events"], json!(["avatar_video.success"]));
    assert_eq!(mine["status"], "enabled");

    let store = open_store(&app).await;
    let account_a = account_of(&store, &app.api_key).await;
    let endpoint_id = hookd_core::EndpointId::parse(id).expect("id");
    let stored = store.endpoint_secret(&account_a, &endpoint_id).await.expect("A's endpoint");
    assert_eq!(
        stored.current.expose(),
        created["secret"].as_str().expect("secret"),
        "B's rotate did not land"
    );
    store.close().await;
}

#[tokio::test]
async fn a_missing_id_and_another_accounts_id_get_identical_answers() {
    let app = TestApp::spawn().await;
    let key_b = app.new_account("b").await;
    let created = app.create_endpoint(json!({"url": receiver_url(1)})).await;
    let theirs = format!("/v3/webhooks/endpoints/{}", created["endpoint_id"].as_str().expect("id"));
    let missing = format!("/v3/webhooks/endpoints/{}", "a".repeat(32));
    let body = json!({"status": "disabled"});
    let for_theirs = send(app.as_customer(&key_b, Method::PATCH, &theirs).json(&body)).await;
    let for_missing = send(app.as_customer(&key_b, Method::PATCH, &missing).json(&body)).await;
    assert_eq!(for_theirs.status, for_missing.status);
    assert_eq!(for_theirs.body, for_missing.body);
}
