//! Customer portal sessions (issue 13's access layer): the operator mints a one-time
//! link, the page redeems it for a bearer credential, and that credential acts on the
//! customer API for its account only, read-only if minted so.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, send};

/// Mints a link for `account` and returns (session id, link token, expires_at).
async fn mint(app: &TestApp, account: &str, body: Option<Value>) -> (String, String, i64) {
    let mut request = app.admin(Method::POST, &format!("/admin/v1/accounts/{account}/portal-sessions"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let reply = send(request).await;
    let data = reply.assert_ok().clone();
    let url = data["url"].as_str().expect("url");
    let (page, token) = url.split_once('#').expect("the token is in the fragment");
    assert_eq!(page, format!("{}/portal/", app.base_url), "built from the public URL");
    (
        data["session_id"].as_str().expect("id").to_owned(),
        token.to_owned(),
        data["expires_at"].as_i64().expect("expiry"),
    )
}

async fn redeem(app: &TestApp, token: &str) -> crate::support::Reply {
    send(app.anonymous(Method::POST, "/portal/api/session").json(&json!({"token": token}))).await
}

fn as_session(app: &TestApp, credential: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    app.anonymous(method, path).bearer_auth(credential)
}

#[tokio::test]
async fn a_portal_link_opens_one_session_that_acts_for_its_account() {
    let app = TestApp::spawn().await;
    let account = app.default_account().await;
    let (_, token, expires_at) = mint(&app, &account, None).await;
    let now = hookd_store::now_millis() / 1000;
    assert!((now + 3_590..=now + 3_600).contains(&expires_at), "an hour by default: {expires_at}");

    let redeemed = redeem(&app, &token).await;
    let session = redeemed.assert_ok().clone();
    assert_eq!(
        (session["account_id"].as_str(), session["read_only"].as_bool()),
        (Some(account.as_str()), Some(false))
    );
    let credential = session["session_token"].as_str().expect("credential").to_owned();
    redeem(&app, &token).await.assert_error(401, "authentication_failed", None);

    let created = send(
        as_session(&app, &credential, Method::POST, "/v3/webhooks/endpoints")
            .json(&json!({"url": "https://example.com/from-the-portal"})),
    )
    .await;
    let endpoint_id = created.assert_ok()["endpoint_id"].as_str().expect("id").to_owned();
    let listed = send(app.customer(Method::GET, "/v3/webhooks/endpoints")).await;
    assert_eq!(listed.body["data"][0]["endpoint_id"], endpoint_id.as_str(), "the account's own endpoint");

    let other_key = app.new_account("other").await;
    let theirs =
        app.create_endpoint_as(&other_key, json!({"url": "https://example.com/theirs"})).await["endpoint_id"]
            .as_str()
            .expect("id")
            .to_owned();
    let path = format!("/v3/webhooks/endpoints/{theirs}");
    let reach =
        send(as_session(&app, &credential, Method::PATCH, &path).json(&json!({"status": "disabled"}))).await;
    reach.assert_error(404, "not_found", None);

    send(as_session(&app, &credential, Method::DELETE, "/portal/api/session")).await.assert_ok();
    let after = send(as_session(&app, &credential, Method::GET, "/v3/webhooks/endpoints")).await;
    after.assert_error(401, "authentication_failed", None);
}

#[tokio::test]
async fn a_read_only_session_reads_everything_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let account = app.default_account().await;
    let endpoint = app.create_endpoint(json!({"url": "https://example.com/watched"})).await;
    let id = endpoint["endpoint_id"].as_str().expect("id");
    let (_, token, _) = mint(&app, &account, Some(json!({"read_only": true, "ttl_seconds": 60}))).await;
    let credential =
        redeem(&app, &token).await.assert_ok()["session_token"].as_str().expect("credential").to_owned();

    let listed = send(as_session(&app, &credential, Method::GET, "/v3/webhooks/endpoints")).await;
    assert_eq!(listed.body["data"][0]["endpoint_id"], id);
    for (method, path, body) in [
        (Method::POST, "/v3/webhooks/endpoints".to_owned(), json!({"url": "https://example.com/new"})),
        (Method::PATCH, format!("/v3/webhooks/endpoints/{id}"), json!({"status": "disabled"})),
        (Method::DELETE, format!("/v3/webhooks/endpoints/{id}"), json!({})),
        (Method::POST, format!("/v3/webhooks/endpoints/{id}/rotate-secret"), json!({})),
        (
            Method::PUT,
            format!("/v3/webhooks/endpoints/{id}/settings"),
            json!({"ordering": "fifo", "rate_limit_per_second": null}),
        ),
    ] {
        let refused = send(as_session(&app, &credential, method.clone(), &path).json(&body)).await;
        refused.assert_error(403, "read_only_session", None);
    }
    let unchanged = send(app.customer(Method::GET, "/v3/webhooks/endpoints")).await;
    let endpoints = unchanged.body["data"].as_array().expect("list");
    assert_eq!(
        (endpoints.len(), endpoints[0]["status"].as_str()),
        (1, Some("enabled")),
        "the server refused, nothing changed"
    );
}

#[tokio::test]
async fn revoked_unknown_and_malformed_links_are_refused_clearly() {
    let app = TestApp::spawn().await;
    let account = app.default_account().await;
    let (session_id, token, _) = mint(&app, &account, None).await;
    send(app.admin(Method::DELETE, &format!("/admin/v1/portal-sessions/{session_id}"))).await.assert_ok();
    redeem(&app, &token).await.assert_error(401, "authentication_failed", None);
    redeem(&app, "pl_not-a-session_x").await.assert_error(401, "authentication_failed", None);
    let forged = format!("{}{}", &token[..token.len() - 4], "AAAA");
    let (_, fresh, _) = mint(&app, &account, None).await;
    let forged_fresh =
        format!("{}{}", &fresh[..fresh.len() - 4], if fresh.ends_with("AAAA") { "BBBB" } else { "AAAA" });
    redeem(&app, &forged_fresh).await.assert_error(401, "authentication_failed", None);
    redeem(&app, &fresh).await.assert_ok();
    redeem(&app, &forged).await.assert_error(401, "authentication_failed", None);

    let unknown = hookd_core::AccountId::new_random();
    let path = format!("/admin/v1/accounts/{unknown}/portal-sessions");
    send(app.admin(Method::POST, &path)).await.assert_error(404, "not_found", None);
    let ops =
        format!("/admin/v1/accounts/{}/portal-sessions", hookd_core::operational::OPERATIONS_ACCOUNT_ID);
    send(app.admin(Method::POST, &ops)).await.assert_error(404, "not_found", None);
    for ttl in [59, 86_401] {
        let path = format!("/admin/v1/accounts/{account}/portal-sessions");
        let refused = send(app.admin(Method::POST, &path).json(&json!({"ttl_seconds": ttl}))).await;
        refused.assert_error(400, "invalid_parameter", Some("ttl_seconds"));
    }
    let customer_mint =
        send(app.customer(Method::POST, &format!("/admin/v1/accounts/{account}/portal-sessions"))).await;
    customer_mint.assert_error(401, "authentication_failed", None);
}

#[tokio::test]
async fn portal_pages_carry_a_strict_content_security_policy_and_refuse_framing_by_default() {
    let app = TestApp::spawn().await;
    let page = send(app.anonymous(Method::GET, "/portal/")).await;
    assert_eq!(page.status, 200);
    let header =
        |name: &str| page.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(header("content-type").starts_with("text/html"));
    let csp = header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe"), "no unsafe-inline or unsafe-eval: {csp}");
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert!(!page.raw.contains("<script>") && !page.raw.contains(" on"), "no inline script or handler");
    for asset in ["/portal/portal.js", "/portal/examples.js", "/portal/portal.css"] {
        let served = send(app.anonymous(Method::GET, asset)).await;
        assert_eq!(served.status, 200, "{asset}");
        assert!(served.headers.contains_key("content-security-policy"), "{asset}");
    }

    let allowed =
        TestApp::spawn_with(&["--portal-frame-ancestors", "https://dash.example.com,https://*.example.org"])
            .await;
    let page = send(allowed.anonymous(Method::GET, "/portal/")).await;
    let csp = page.headers.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(csp.ends_with("frame-ancestors https://dash.example.com https://*.example.org"), "{csp}");
    assert!(!page.headers.contains_key("x-frame-options"), "X-Frame-Options cannot list origins");
}

#[tokio::test]
async fn a_portal_session_shares_its_accounts_rate_limit() {
    let app = TestApp::spawn_with(&["--rate-limit", "1"]).await;
    let account = app.default_account().await;
    let (_, token, _) = mint(&app, &account, None).await;
    let redeemed = redeem(&app, &token).await;
    let credential = redeemed.assert_ok()["session_token"].as_str().expect("credential").to_owned();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            send(as_session(&app, &credential, Method::GET, "/v3/webhooks/endpoints")).await.status.as_u16(),
        );
    }
    assert!(statuses.contains(&429), "the customer API's limit applies to portal sessions: {statuses:?}");
}
