//! `/v3/webhooks/endpoints`: every rule of contract section 2.

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{STRICT, TestApp, receiver_url, send};

const PATH: &str = "/v3/webhooks/endpoints";

async fn create(app: &TestApp, body: Value) -> crate::support::Reply {
    send(app.customer(Method::POST, PATH).json(&body)).await
}

async fn patch(app: &TestApp, endpoint_id: &str, body: Value) -> crate::support::Reply {
    send(app.customer(Method::PATCH, &format!("{PATH}/{endpoint_id}")).json(&body)).await
}

async fn list_all(app: &TestApp) -> Vec<Value> {
    let reply = send(app.customer(Method::GET, &format!("{PATH}?limit=100"))).await;
    reply.assert_ok().as_array().expect("array").clone()
}

fn assert_is_hex_id(value: &Value) {
    let id = value.as_str().expect("id string");
    assert_eq!(id.len(), 32, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{id}");
}

fn assert_is_secret(value: &Value) {
    let secret = value.as_str().expect("secret string");
    let encoded = secret.strip_prefix("whsec_").expect("whsec_ prefix");
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).expect("standard base64");
    assert_eq!(decoded.len(), 32);
}

#[tokio::test]
async fn create_endpoint_returns_the_endpoint_with_its_secret() {
    let app = TestApp::spawn().await;
    let url = receiver_url(1);
    let reply =
        create(&app, json!({"url": url, "events": ["avatar_video.success"], "entity_id": "proj-1"})).await;
    let data = reply.assert_ok();
    assert_is_hex_id(&data["endpoint_id"]);
    assert_eq!(data["url"], url);
    assert_eq!(data["events"], json!(["avatar_video.success"]));
    assert_eq!(data["status"], "enabled");
    assert_eq!(data["entity_id"], "proj-1");
    assert_is_secret(&data["secret"]);
    let created_at = data["created_at"].as_str().expect("created_at");
    assert!(created_at.ends_with('Z') && created_at.len() == 20, "{created_at}");
}

#[tokio::test]
async fn endpoint_secrets_are_never_stored_in_clear() {
    let app = TestApp::spawn().await;
    let created = app.create_endpoint(json!({"url": receiver_url(1)})).await;
    let id = created["endpoint_id"].as_str().expect("id");
    let rotated = send(app.customer(Method::POST, &format!("{PATH}/{id}/rotate-secret"))).await;
    let secrets = [created["secret"].clone(), rotated.assert_ok()["secret"].clone()];
    let files: Vec<Vec<u8>> = ["hookd.db", "hookd.db-wal"]
        .iter()
        .map(|name| std::fs::read(app.data_dir().join(name)).unwrap_or_default())
        .collect();
    let holds = |needle: &str| files.iter().any(|f| f.windows(needle.len()).any(|w| w == needle.as_bytes()));
    assert!(holds(id), "the search finds what is stored in clear");
    for secret in &secrets {
        let body = secret.as_str().expect("secret").trim_start_matches("whsec_");
        assert!(!holds(body), "a secret is in the database files in clear");
    }
}

#[tokio::test]
async fn create_endpoint_without_events_subscribes_to_all() {
    let app = TestApp::spawn().await;
    for body in [json!({"url": receiver_url(1)}), json!({"url": receiver_url(2), "events": null})] {
        let data = create(&app, body).await.assert_ok().clone();
        assert!(data["events"].is_null());
        assert!(data["entity_id"].is_null());
    }
}

#[tokio::test]
async fn create_endpoint_generates_a_different_secret_each_time() {
    let app = TestApp::spawn().await;
    let first = app.create_endpoint(json!({"url": receiver_url(1)})).await;
    let second = app.create_endpoint(json!({"url": receiver_url(1)})).await;
    assert_ne!(first["secret"], second["secret"]);
    assert_ne!(first["endpoint_id"], second["endpoint_id"]);
}

#[tokio::test]
async fn create_endpoint_collapses_duplicate_events_keeping_order() {
    let app = TestApp::spawn().await;
    let events = json!(["avatar_video.fail", "batch.finished", "avatar_video.fail"]);
    let data = app.create_endpoint(json!({"url": receiver_url(1), "events": events})).await;
    assert_eq!(data["events"], json!(["avatar_video.fail", "batch.finished"]));
}

#[tokio::test]
async fn create_endpoint_returns_400_for_each_invalid_url() {
    let app = TestApp::spawn_with(&[STRICT]).await;
    let long = format!("https://example.com/{}", "a".repeat(2040));
    let cases = [
        (json!({}), "url is missing"),
        (json!({"url": null}), "url is null"),
        (json!({"url": 42}), "url is not a string"),
        (json!({"url": "not a url"}), "url does not parse"),
        (json!({"url": "/relative"}), "url is relative"),
        (json!({"url": "http://example.com/hook"}), "http is not allowed by default"),
        (json!({"url": "ftp://example.com/hook"}), "scheme is not https"),
        (json!({"url": long}), "url is longer than 2048"),
        (json!({"url": "https://user:pw@example.com/"}), "url has credentials"),
        (json!({"url": "https://example.com/#part"}), "url has a fragment"),
        (json!({"url": "https://example.com/a b"}), "url has a space"),
        (json!({"url": "https://example.com/\u{7}"}), "url has a control character"),
        (json!({"url": "https://127.0.0.1/"}), "loopback literal"),
        (json!({"url": "https://2130706433/"}), "loopback in decimal"),
        (json!({"url": "https://0x7f.0.0.1/"}), "loopback in hex"),
        (json!({"url": "https://10.0.0.5/"}), "private literal"),
        (json!({"url": "https://169.254.169.254/latest"}), "metadata address"),
        (json!({"url": "https://[::1]/"}), "IPv6 loopback"),
        (json!({"url": "https://[::ffff:192.168.0.1]/"}), "IPv4-mapped private"),
        (json!({"url": "https://localhost/"}), "localhost"),
        (json!({"url": "https://localhost./"}), "localhost with a trailing dot"),
    ];
    for (body, case) in cases {
        let reply = create(&app, body).await;
        assert_eq!(reply.status.as_u16(), 400, "{case}: {}", reply.raw);
        assert_eq!(reply.error_code(), "invalid_parameter", "{case}");
        assert_eq!(reply.error_param(), Some("url"), "{case}");
    }
    assert!(list_all(&app).await.is_empty(), "no invalid request created anything");
}

#[tokio::test]
async fn url_errors_name_the_field_in_their_message() {
    let app = TestApp::spawn_with(&[STRICT]).await;
    for (url, message) in [
        ("http://example.com/hook", "'url' must use https."),
        ("/relative", "'url' is not a valid absolute URL."),
        ("https://10.0.0.5/", "'url' must be a publicly accessible URL"),
    ] {
        let reply = create(&app, json!({ "url": url })).await;
        reply.assert_error(400, "invalid_parameter", Some("url"));
        let said = reply.body["error"]["message"].as_str().expect("message");
        assert!(said.starts_with(message), "{url}: {said}");
    }
}

#[tokio::test]
async fn patch_with_no_change_is_refused_as_heygen_does() {
    let app = TestApp::spawn().await;
    let id = app.create_endpoint(json!({"url": receiver_url(1)})).await["endpoint_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let reply = patch(&app, &id, json!({})).await;
    reply.assert_error(400, "invalid_parameter", None);
    assert_eq!(reply.body["error"]["message"], "At least one of 'url' or 'events' must be provided.");
}

#[tokio::test]
async fn create_endpoint_accepts_http_and_loopback_only_where_the_operator_allowed_them() {
    let app = TestApp::spawn().await;
    let data = app.create_endpoint(json!({"url": "http://localhost:9000/hook"})).await;
    assert_eq!(data["url"], "http://localhost:9000/hook");
    let strict = TestApp::spawn_with(&[STRICT]).await;
    let data = strict.create_endpoint(json!({"url": "https://example.com/hook"})).await;
    assert_eq!(data["url"], "https://example.com/hook");
}

#[tokio::test]
async fn create_endpoint_returns_400_for_invalid_events() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!([]), "empty list"),
        (json!(["avatar_video.success", "no_such.event"]), "unknown name"),
        (json!("avatar_video.success"), "not an array"),
        (json!([1]), "not strings"),
        (json!({"type": "avatar_video.success"}), "an object"),
    ];
    for (events, case) in cases {
        let reply = create(&app, json!({"url": receiver_url(1), "events": events})).await;
        reply.assert_error(400, "invalid_parameter", Some("events"));
        if case == "unknown name" {
            assert!(reply.raw.contains("no_such.event"), "the message names the unknown type: {}", reply.raw);
        }
    }
    assert!(list_all(&app).await.is_empty());
}

#[tokio::test]
async fn create_endpoint_returns_400_when_entity_id_is_too_long_or_not_a_string() {
    let app = TestApp::spawn().await;
    for entity_id in [json!("x".repeat(256)), json!(7)] {
        let reply = create(&app, json!({"url": receiver_url(1), "entity_id": entity_id})).await;
        reply.assert_error(400, "invalid_parameter", Some("entity_id"));
    }
    let ok = create(&app, json!({"url": receiver_url(1), "entity_id": "x".repeat(255)})).await;
    ok.assert_ok();
}

#[tokio::test]
async fn create_endpoint_returns_400_naming_an_unknown_field() {
    let app = TestApp::spawn().await;
    let reply = create(&app, json!({"url": receiver_url(1), "secret": "whsec_mine"})).await;
    reply.assert_error(400, "invalid_parameter", Some("secret"));
    let reply = create(&app, json!({"url": receiver_url(1), "status": "enabled"})).await;
    reply.assert_error(400, "invalid_parameter", Some("status"));
    assert!(list_all(&app).await.is_empty());
}

#[tokio::test]
async fn secret_is_null_in_list_and_patch_responses() {
    let app = TestApp::spawn().await;
    let created = app.create_endpoint(json!({"url": receiver_url(1)})).await;
    let id = created["endpoint_id"].as_str().expect("id");
    let listed = list_all(&app).await;
    assert_eq!(listed.len(), 1);
    assert!(listed[0]["secret"].is_null());
    let patched = patch(&app, id, json!({"url": receiver_url(2)})).await;
    assert!(patched.assert_ok()["secret"].is_null());
}

#[tokio::test]
async fn patch_leaves_missing_fields_and_replaces_events_whole() {
    let app = TestApp::spawn().await;
    let events = json!(["avatar_video.success", "avatar_video.fail"]);
    let created =
        app.create_endpoint(json!({"url": receiver_url(1), "events": events, "entity_id": "e"})).await;
    let id = created["endpoint_id"].as_str().expect("id");

    let data = patch(&app, id, json!({"url": receiver_url(2)})).await.assert_ok().clone();
    assert_eq!(data["url"], receiver_url(2));
    assert_eq!(data["events"], events, "events untouched when the key is missing");
    assert_eq!(data["entity_id"], "e");

    let data = patch(&app, id, json!({"events": ["batch.finished"]})).await.assert_ok().clone();
    assert_eq!(data["events"], json!(["batch.finished"]), "an array replaces the list, never merges");
    assert_eq!(data["url"], receiver_url(2), "url untouched when the key is missing");

    let data = patch(&app, id, json!({"events": null})).await.assert_ok().clone();
    assert!(data["events"].is_null(), "null means all events");
    assert_eq!(data["url"], receiver_url(2));
    assert_eq!(data["created_at"], created["created_at"]);
}

#[tokio::test]
async fn patch_status_pauses_and_re_enables_an_endpoint() {
    let app = TestApp::spawn().await;
    let id = app.create_endpoint(json!({"url": receiver_url(1)})).await["endpoint_id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(patch(&app, &id, json!({"status": "disabled"})).await.assert_ok()["status"], "disabled");
    assert_eq!(list_all(&app).await[0]["status"], "disabled");
    assert_eq!(patch(&app, &id, json!({"status": "enabled"})).await.assert_ok()["status"], "enabled");
}

#[tokio::test]
async fn patch_validates_like_create_and_changes_nothing_on_error() {
    let app = TestApp::spawn_with(&[STRICT]).await;
    let created = app.create_endpoint(json!({"url": "https://example.com/a"})).await;
    let id = created["endpoint_id"].as_str().expect("id");
    let cases = [
        (json!({"url": "https://10.0.0.1/"}), "url"),
        (json!({"url": "http://example.com/"}), "url"),
        (json!({"url": 3}), "url"),
        (json!({"events": []}), "events"),
        (json!({"events": ["nope"]}), "events"),
        (json!({"status": "paused"}), "status"),
        (json!({"entity_id": "e"}), "entity_id"),
        (json!({"url": "https://example.com/b", "bogus": true}), "bogus"),
    ];
    for (body, param) in cases {
        patch(&app, id, body).await.assert_error(400, "invalid_parameter", Some(param));
    }
    let listed = list_all(&app).await;
    assert_eq!(listed[0]["url"], "https://example.com/a");
    assert!(listed[0]["events"].is_null());
    assert_eq!(listed[0]["status"], "enabled");
}

#[tokio::test]
async fn patch_returns_404_for_unknown_or_malformed_ids() {
    let app = TestApp::spawn().await;
    for id in ["0123456789abcdef0123456789abcdef", "not-an-id", "0123456789ABCDEF0123456789ABCDEF"] {
        patch(&app, id, json!({"url": receiver_url(1)})).await.assert_error(404, "not_found", None);
    }
}

#[tokio::test]
async fn delete_endpoint_removes_it_everywhere() {
    let app = TestApp::spawn().await;
    let id = app.create_endpoint(json!({"url": receiver_url(1)})).await["endpoint_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("{PATH}/{id}");
    let reply = send(app.customer(Method::DELETE, &path)).await;
    assert_eq!(reply.status.as_u16(), 200);
    assert_eq!(reply.body, json!({"data": {}, "error": null}));
    assert!(list_all(&app).await.is_empty());
    send(app.customer(Method::DELETE, &path)).await.assert_error(404, "not_found", None);
    patch(&app, &id, json!({"status": "enabled"})).await.assert_error(404, "not_found", None);
    let rotate = send(app.customer(Method::POST, &format!("{path}/rotate-secret"))).await;
    rotate.assert_error(404, "not_found", None);
}

#[tokio::test]
async fn rotate_secret_returns_a_new_secret_once() {
    let app = TestApp::spawn().await;
    let created = app.create_endpoint(json!({"url": receiver_url(1)})).await;
    let id = created["endpoint_id"].as_str().expect("id");
    let reply = send(app.customer(Method::POST, &format!("{PATH}/{id}/rotate-secret"))).await;
    let data = reply.assert_ok();
    assert_eq!(data["endpoint_id"], id);
    assert_is_secret(&data["secret"]);
    assert_ne!(data["secret"], created["secret"]);
    assert_eq!(data.as_object().expect("object").len(), 2, "only endpoint_id and secret: {}", reply.raw);
    assert!(list_all(&app).await[0]["secret"].is_null());
}
