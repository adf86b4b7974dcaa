//! OAuth access tokens on the customer API: JWTs from the operator's identity
//! provider, checked against its JWKS (served here over real HTTP), beside API keys.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::issuer::{self, KeyKind, SigningKey, TestIssuer};
use crate::support::{TestApp, send};

async fn hookd_trusting(issuer: &TestIssuer) -> TestApp {
    let flags = issuer.hookd_flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    TestApp::spawn_with(&flags).await
}

/// An issuer with keys of `kind`, hookd trusting it, and an account's id.
async fn trusted_account(kind: KeyKind) -> (TestIssuer, TestApp, String) {
    let issuer = TestIssuer::start(kind).await;
    let app = hookd_trusting(&issuer).await;
    let (account_id, _) = account(&app, "acme").await;
    (issuer, app, account_id)
}

/// A new account's id and API key.
async fn account(app: &TestApp, name: &str) -> (String, String) {
    let reply = send(app.admin(Method::POST, "/admin/v1/accounts").json(&json!({ "name": name }))).await;
    let data = reply.assert_ok();
    (data["account_id"].as_str().expect("id").to_owned(), data["api_key"].as_str().expect("key").to_owned())
}

fn with_token(app: &TestApp, token: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    app.anonymous(method, path).bearer_auth(token)
}

async fn list_endpoints(app: &TestApp, token: &str) -> crate::support::Reply {
    send(with_token(app, token, Method::GET, "/v3/webhooks/endpoints")).await
}

const ALL_SCOPES: &str = "webhooks:read webhooks:write videos:read videos:write";

#[tokio::test]
async fn tokens_signed_with_rs256_es256_and_eddsa_keys_act_for_their_account() {
    for kind in [KeyKind::Rs256, KeyKind::Es256, KeyKind::EdDsa] {
        let issuer = TestIssuer::start(kind).await;
        let app = hookd_trusting(&issuer).await;
        let (account_id, _) = account(&app, "acme").await;
        let token = issuer.token(&account_id, ALL_SCOPES);
        let created = send(
            with_token(&app, &token, Method::POST, "/v3/webhooks/endpoints")
                .json(&json!({"url": "https://example.com/hook", "events": ["avatar_video.success"]})),
        )
        .await;
        let endpoint_id = created.assert_ok()["endpoint_id"].as_str().expect("id").to_owned();
        let listed = list_endpoints(&app, &token).await;
        let ids: Vec<&str> = listed
            .assert_ok()
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|endpoint| endpoint["endpoint_id"].as_str())
            .collect();
        assert_eq!(ids, vec![endpoint_id.as_str()], "{kind:?}");
    }
}

#[tokio::test]
async fn expired_early_foreign_issuer_and_foreign_audience_tokens_get_401() {
    let (issuer, app, account_id) = trusted_account(KeyKind::Es256).await;
    let now = issuer::now_seconds();
    let with = |change: Value| {
        let mut claims = issuer::claims(&account_id, ALL_SCOPES);
        for (name, value) in change.as_object().expect("object") {
            claims[name] = value.clone();
        }
        issuer.key.sign(&claims)
    };
    let refused = [
        ("expired beyond the 60 s skew", with(json!({"exp": now - 120}))),
        ("not valid before two minutes from now", with(json!({"nbf": now + 120}))),
        ("another issuer", with(json!({"iss": "https://elsewhere.example.test"}))),
        ("another audience", with(json!({"aud": "another-api"}))),
        ("no account claim", with(json!({"hookd_account": null}))),
        ("an account that does not exist", with(json!({"hookd_account": "0".repeat(32)}))),
        ("a signature that does not match", format!("{}x", issuer.token(&account_id, ALL_SCOPES))),
    ];
    for (what, token) in refused {
        let reply = list_endpoints(&app, &token).await;
        assert_eq!(reply.status, 401, "{what}");
        reply.assert_error(401, "authentication_failed", None);
    }
    // Within the skew, a token just expired still works.
    assert_eq!(list_endpoints(&app, &with(json!({"exp": now - 30}))).await.status, 200);
}

#[tokio::test]
async fn alg_none_and_hs256_signed_with_the_public_key_get_401() {
    let (issuer, app, account_id) = trusted_account(KeyKind::Es256).await;
    let claims = issuer::claims(&account_id, ALL_SCOPES);
    let encode = |value: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
    };
    let unsigned =
        format!("{}.{}.", encode(&json!({"alg": "none", "typ": "JWT", "kid": "key-1"})), encode(&claims));
    // The classic confusion: HMAC keyed with the public key the JWKS publishes.
    let public = serde_json::to_vec(&issuer.key.jwk).expect("jwk");
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(issuer.key.kid.clone());
    let hs256 = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&public)).expect("sign");
    for token in [unsigned, hs256] {
        list_endpoints(&app, &token).await.assert_error(401, "authentication_failed", None);
    }
}

#[tokio::test]
async fn an_unknown_key_id_is_refused_until_the_issuer_publishes_the_key() {
    let (issuer, app, account_id) = trusted_account(KeyKind::EdDsa).await;
    let next = SigningKey::new(KeyKind::EdDsa, "key-2");
    let token = next.sign(&issuer::claims(&account_id, ALL_SCOPES));
    list_endpoints(&app, &token).await.assert_error(401, "authentication_failed", None);
    issuer.rotate_to(&next);
    // hookd refetches on an unknown key id, at most once a second.
    let mut status = 0;
    for _ in 0..50 {
        status = list_endpoints(&app, &token).await.status.as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status, 200, "the rotated-in key is fetched without a restart");
    let retired = issuer.token(&account_id, ALL_SCOPES);
    list_endpoints(&app, &retired).await.assert_error(401, "authentication_failed", None);
}

#[tokio::test]
async fn a_token_without_the_needed_scope_gets_403_and_changes_nothing() {
    let (issuer, app, account_id) = trusted_account(KeyKind::Es256).await;
    let reader = issuer.token(&account_id, "webhooks:read");
    let create = with_token(&app, &reader, Method::POST, "/v3/webhooks/endpoints")
        .json(&json!({"url": "https://example.com/hook", "events": ["avatar_video.success"]}));
    send(create).await.assert_error(403, "insufficient_scope", None);
    let listed = list_endpoints(&app, &reader).await;
    assert_eq!(listed.assert_ok().as_array().map(Vec::len), Some(0));
    let videos_only = issuer.token(&account_id, "videos:read videos:write");
    list_endpoints(&app, &videos_only).await.assert_error(403, "insufficient_scope", None);
    let video =
        send(with_token(&app, &reader, Method::GET, "/v3/videos/0123456789abcdef0123456789abcdef")).await;
    video.assert_error(403, "insufficient_scope", None);
}

#[tokio::test]
async fn a_token_holder_sees_and_touches_only_its_own_account() {
    let issuer = TestIssuer::start(KeyKind::Es256).await;
    let app = hookd_trusting(&issuer).await;
    let (_, key_a) = account(&app, "a").await;
    let (account_b, _) = account(&app, "b").await;
    let theirs = app
        .create_endpoint_as(
            &key_a,
            json!({"url": "https://example.com/a", "events": ["avatar_video.success"]}),
        )
        .await;
    let endpoint_id = theirs["endpoint_id"].as_str().expect("id");
    let token_b = issuer.token(&account_b, ALL_SCOPES);
    assert_eq!(list_endpoints(&app, &token_b).await.assert_ok().as_array().map(Vec::len), Some(0));
    let path = format!("/v3/webhooks/endpoints/{endpoint_id}");
    send(with_token(&app, &token_b, Method::DELETE, &path)).await.assert_error(404, "not_found", None);
    let patch =
        with_token(&app, &token_b, Method::PATCH, &path).json(&json!({"url": "https://example.com/b"}));
    send(patch).await.assert_error(404, "not_found", None);
    let still = send(app.as_customer(&key_a, Method::GET, "/v3/webhooks/endpoints")).await;
    assert_eq!(still.assert_ok()[0]["url"], "https://example.com/a");
}

#[tokio::test]
async fn api_keys_work_as_before_beside_access_tokens() {
    let issuer = TestIssuer::start(KeyKind::Es256).await;
    let app = hookd_trusting(&issuer).await;
    assert_eq!(send(app.customer(Method::GET, "/v3/webhooks/endpoints")).await.status, 200);
    let as_bearer = app.anonymous(Method::GET, "/v3/webhooks/endpoints").bearer_auth(&app.api_key);
    assert_eq!(send(as_bearer).await.status, 200);
}

#[tokio::test]
async fn an_unreachable_jwks_lets_no_token_through() {
    let issuer = TestIssuer::start(KeyKind::Es256).await;
    // A port nothing listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let jwks_url = format!("http://{}/jwks", closed.local_addr().expect("address"));
    drop(closed);
    let flags = [
        "--oauth-issuer",
        issuer::ISSUER,
        "--oauth-audience",
        issuer::AUDIENCE,
        "--oauth-jwks-url",
        &jwks_url,
    ];
    let app = TestApp::spawn_with(&flags).await;
    let (account_id, _) = account(&app, "acme").await;
    let token = issuer.token(&account_id, ALL_SCOPES);
    list_endpoints(&app, &token).await.assert_error(401, "authentication_failed", None);
}

#[tokio::test]
async fn the_openapi_document_lists_insufficient_scope_on_customer_routes_when_oauth_is_on() {
    let issuer = TestIssuer::start(KeyKind::Es256).await;
    let with = hookd_trusting(&issuer).await;
    let without = TestApp::spawn().await;
    let document = |app: &TestApp| send(app.anonymous(Method::GET, "/openapi.json"));
    let (with, without) = (document(&with).await.body, document(&without).await.body);
    let forbidden =
        |doc: &Value, path: &str, method: &str| doc["paths"][path][method]["responses"]["403"].clone();
    let listed = forbidden(&with, "/v3/webhooks/endpoints", "get");
    assert!(listed["description"].as_str().is_some_and(|d| d.contains("insufficient_scope")), "{listed}");
    assert!(forbidden(&without, "/v3/webhooks/endpoints", "get").is_null());
    assert!(forbidden(&with, "/admin/v1/events", "post").is_null(), "operator routes take no access token");
}
