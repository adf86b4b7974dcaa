//! Videos and per-request callbacks (contract §4 and the video bullets of §6).

use hookd_signature::verify_heygen;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::receiver::TestReceiver;
use crate::support::{Reply, TestApp, send};

async fn create_video(app: &TestApp, body: Value) -> Reply {
    send(app.customer(Method::POST, "/v3/videos").json(&body)).await
}

async fn report(app: &TestApp, video_id: &str, body: Value) -> Reply {
    send(app.admin(Method::POST, &format!("/admin/v1/videos/{video_id}/status")).json(&body)).await
}

async fn detail(app: &TestApp, video_id: &str) -> Value {
    send(app.customer(Method::GET, &format!("/v3/videos/{video_id}"))).await.assert_ok().clone()
}

async fn new_video(app: &TestApp, callback_url: &str) -> String {
    let body = json!({"type": "avatar", "avatar_id": "a1", "title": "Launch", "callback_url": callback_url,
                      "callback_id": "order-1", "script": "Hello", "voice_id": "v1"});
    let created = create_video(app, body).await;
    let data = created.assert_ok();
    assert_eq!(data["status"], "waiting");
    assert_eq!(data["output_format"], "mp4");
    data["video_id"].as_str().expect("video_id").to_owned()
}

#[tokio::test]
async fn a_completed_video_notifies_the_endpoint_signed_and_the_callback_unsigned() {
    let app = TestApp::spawn().await;
    let mut receiver = TestReceiver::start().await;
    let endpoint = app.create_endpoint(json!({"url": receiver.url("/endpoint")})).await;
    let secret = endpoint["secret"].as_str().expect("secret").to_owned();
    let video_id = new_video(&app, &receiver.url("/callback")).await;
    assert_eq!(video_id.len(), 32);

    let pending = detail(&app, &video_id).await;
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["title"], "Launch");
    assert!(pending["created_at"].is_i64(), "unix seconds: {pending}");
    assert!(pending["completed_at"].is_null());

    report(&app, &video_id, json!({"status": "processing"})).await.assert_ok();
    assert_eq!(detail(&app, &video_id).await["status"], "processing");

    let completed = json!({"status": "completed", "video_url": "https://cdn.example.com/v.mp4",
                           "thumbnail_url": "https://cdn.example.com/t.jpg", "duration": 12.5});
    let outcome = report(&app, &video_id, completed).await;
    assert_eq!(outcome.assert_ok()["deliveries"], 2, "{}", outcome.raw);
    let done = detail(&app, &video_id).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["video_url"], "https://cdn.example.com/v.mp4");
    assert_eq!(done["duration"], 12.5);
    assert!(
        done["completed_at"].as_i64().is_some_and(|at| at >= done["created_at"].as_i64().unwrap_or(i64::MAX))
    );

    let mut arrivals = [receiver.next().await, receiver.next().await];
    arrivals.sort_by(|a, b| a.path.cmp(&b.path));
    let [callback, signed] = arrivals;
    assert_eq!(callback.path, "/callback");
    assert_eq!(signed.path, "/endpoint");
    assert_eq!(verify_heygen(&secret, &signed.body, signed.header("heygen-signature")), Ok(()));
    assert_eq!(callback.header("heygen-signature"), "", "callbacks are not signed");
    assert_eq!(callback.header("webhook-signature"), "");
    assert!(!callback.header("heygen-timestamp").is_empty());
    assert_eq!(callback.header("heygen-event-id"), signed.header("heygen-event-id"));
    assert_eq!(callback.body, signed.body, "the same document to both");
    let body = signed.json();
    assert_eq!(body["event_type"], "avatar_video.success");
    assert_eq!(body["event_data"]["video_id"], video_id.as_str());
    assert_eq!(body["event_data"]["url"], "https://cdn.example.com/v.mp4");
    assert_eq!(body["event_data"]["callback_id"], "order-1");
    let keys: Vec<&String> = body["event_data"].as_object().expect("object").keys().collect();
    let expected = [
        "video_id",
        "url",
        "gif_download_url",
        "video_page_url",
        "video_share_page_url",
        "folder_id",
        "callback_id",
    ];
    assert_eq!(keys, expected);
}

#[tokio::test]
async fn a_failed_video_sends_msg_failure_code_and_failure_message() {
    let app = TestApp::spawn().await;
    let mut receiver = TestReceiver::start().await;
    let video_id = new_video(&app, &receiver.url("/callback")).await;
    let failed = json!({"status": "failed", "failure_code": "rendering_failed", "failure_message": "Avatar timed out"});
    report(&app, &video_id, failed).await.assert_ok();
    let data = detail(&app, &video_id).await;
    assert_eq!(data["status"], "failed");
    assert_eq!(data["failure_code"], "rendering_failed");
    assert_eq!(data["failure_message"], "Avatar timed out");
    let body = receiver.next().await.json();
    assert_eq!(body["event_type"], "avatar_video.fail");
    assert_eq!(
        body["event_data"],
        json!({"video_id": video_id, "msg": "Avatar timed out", "callback_id": "order-1",
               "failure_code": "rendering_failed", "failure_message": "Avatar timed out"})
    );
}

#[tokio::test]
async fn a_repeated_final_report_emits_nothing_and_a_conflicting_one_gets_409() {
    let app = TestApp::spawn().await;
    let receiver = TestReceiver::start().await;
    let video_id = new_video(&app, &receiver.url("/callback")).await;
    let completed = json!({"status": "completed", "video_url": "https://cdn.example.com/v.mp4"});
    let first = report(&app, &video_id, completed.clone()).await;
    assert!(first.assert_ok()["event_id"].is_string());
    let repeat = report(&app, &video_id, completed).await;
    assert!(repeat.assert_ok()["event_id"].is_null(), "{}", repeat.raw);
    assert_eq!(repeat.body["data"]["deliveries"], 0);
    let conflict =
        report(&app, &video_id, json!({"status": "failed", "failure_code": "x", "failure_message": "y"}))
            .await;
    conflict.assert_error(409, "conflict", None);
    report(&app, &video_id, json!({"status": "processing"})).await.assert_error(409, "conflict", None);
    let history = send(app.customer(Method::GET, "/v3/webhooks/events")).await;
    assert_eq!(history.assert_ok().as_array().map(Vec::len), Some(1), "one event for the video");
    assert_eq!(detail(&app, &video_id).await["status"], "completed");
}

#[tokio::test]
async fn reports_are_validated() {
    let app = TestApp::spawn().await;
    let video_id = new_video(&app, "https://example.com/cb").await;
    for (body, param) in [
        (json!({}), "status"),
        (json!({"status": "done"}), "status"),
        (json!({"status": "pending"}), "status"),
        (json!({"status": "completed"}), "video_url"),
        (json!({"status": "failed", "failure_message": "m"}), "failure_code"),
        (json!({"status": "failed", "failure_code": "c"}), "failure_message"),
        (json!({"status": "processing", "progress": 50}), "progress"),
    ] {
        report(&app, &video_id, body).await.assert_error(400, "invalid_parameter", Some(param));
    }
    report(&app, &"0".repeat(32), json!({"status": "processing"})).await.assert_error(404, "not_found", None);
    assert_eq!(detail(&app, &video_id).await["status"], "pending");
}

#[tokio::test]
async fn create_video_enforces_the_rules_of_each_type() {
    let app = TestApp::spawn_with(&[crate::support::STRICT]).await;
    let cases = [
        (json!({"avatar_id": "a"}), "type"),
        (json!({"type": "hologram"}), "type"),
        (json!({"type": "avatar"}), "avatar_id"),
        (json!({"type": "avatar", "avatar_id": ""}), "avatar_id"),
        (json!({"type": "image"}), "image"),
        (json!({"type": "image", "image": "https://x/y.png"}), "image"),
        (json!({"type": "studio"}), "scenes"),
        (json!({"type": "studio", "scenes": []}), "scenes"),
        (json!({"type": "studio", "scenes": vec![json!({}); 51]}), "scenes"),
        (json!({"type": "cinematic_avatar", "avatar_id": ["a"]}), "prompt"),
        (json!({"type": "cinematic_avatar", "prompt": "p"}), "avatar_id"),
        (json!({"type": "cinematic_avatar", "prompt": "p", "avatar_id": ["a", "b", "c", "d"]}), "avatar_id"),
        (
            json!({"type": "cinematic_avatar", "prompt": "p", "avatar_id": ["a"], "callback_url": "https://x.com/cb"}),
            "callback_url",
        ),
        (
            json!({"type": "avatar", "avatar_id": "a", "callback_url": "http://example.com/cb"}),
            "callback_url",
        ),
        (json!({"type": "avatar", "avatar_id": "a", "callback_url": "https://10.1.2.3/cb"}), "callback_url"),
        (json!({"type": "avatar", "avatar_id": "a", "callback_url": 5}), "callback_url"),
        (json!({"type": "avatar", "avatar_id": "a", "callback_id": "c".repeat(256)}), "callback_id"),
        (json!({"type": "avatar", "avatar_id": "a", "output_format": "gif"}), "output_format"),
        (json!({"type": "avatar", "avatar_id": "a", "title": 3}), "title"),
    ];
    for (body, param) in cases {
        create_video(&app, body.clone()).await.assert_error(400, "invalid_parameter", Some(param));
    }
    let valid = [
        json!({"type": "avatar", "avatar_id": "a", "custom_renderer_option": {"x": 1}}),
        json!({"type": "image", "image": {"type": "url", "url": "https://x/y.png"}, "output_format": "webm"}),
        json!({"type": "studio", "scenes": [{"script": "hi"}]}),
        json!({"type": "cinematic_avatar", "prompt": "p", "avatar_id": ["a", "b"]}),
    ];
    for body in valid {
        create_video(&app, body.clone()).await.assert_ok();
    }
    let listed = send(app.admin(Method::GET, "/admin/v1/videos?status=pending&limit=100")).await;
    let jobs = listed.assert_ok().as_array().expect("array").clone();
    assert_eq!(jobs.len(), 4, "only the valid requests were stored");
    let avatar = jobs.iter().find(|job| job["type"] == "avatar").expect("avatar job");
    assert_eq!(
        avatar["request"]["custom_renderer_option"],
        json!({"x": 1}),
        "stored as given for the renderer"
    );
}

#[tokio::test]
async fn another_accounts_video_is_not_found() {
    let app = TestApp::spawn().await;
    let video_id = new_video(&app, "https://example.com/cb").await;
    let other = app.new_account("other").await;
    let path = format!("/v3/videos/{video_id}");
    send(app.as_customer(&other, Method::GET, &path)).await.assert_error(404, "not_found", None);
    send(app.customer(Method::GET, "/v3/videos/not-an-id")).await.assert_error(404, "not_found", None);
}

#[tokio::test]
async fn renderers_list_videos_by_status() {
    let app = TestApp::spawn().await;
    let first = new_video(&app, "https://example.com/cb").await;
    let second = new_video(&app, "https://example.com/cb").await;
    report(&app, &first, json!({"status": "processing"})).await.assert_ok();
    let pending = send(app.admin(Method::GET, "/admin/v1/videos?status=pending")).await;
    let ids: Vec<&str> = pending
        .assert_ok()
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v["video_id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, vec![second.as_str()]);
    let all = send(app.admin(Method::GET, "/admin/v1/videos?limit=1")).await;
    assert_eq!(all.body["has_more"], true);
    let bad = send(app.admin(Method::GET, "/admin/v1/videos?status=rendering")).await;
    bad.assert_error(400, "invalid_parameter", Some("status"));
    let as_customer = send(app.customer(Method::GET, "/admin/v1/videos").bearer_auth(&app.api_key)).await;
    as_customer.assert_error(401, "authentication_failed", None);
}

#[tokio::test]
async fn the_demo_renderer_completes_and_fails_videos_end_to_end() {
    let app = TestApp::spawn_with(&["--demo-renderer", "--demo-render-time", "200ms"]).await;
    let mut receiver = TestReceiver::start().await;
    let ok = create_video(
        &app,
        json!({"type": "avatar", "avatar_id": "a", "title": "Welcome", "callback_url": receiver.url("/ok")}),
    )
    .await;
    let ok_id = ok.assert_ok()["video_id"].as_str().expect("id").to_owned();
    let bad = create_video(&app, json!({"type": "avatar", "avatar_id": "a", "title": "Please FAIL", "callback_url": receiver.url("/bad")})).await;
    let bad_id = bad.assert_ok()["video_id"].as_str().expect("id").to_owned();

    let mut arrivals = [receiver.next().await, receiver.next().await];
    arrivals.sort_by(|a, b| a.path.cmp(&b.path));
    let [failed, completed] = arrivals;
    assert_eq!(completed.path, "/ok");
    assert_eq!(completed.json()["event_type"], "avatar_video.success");
    assert_eq!(completed.json()["event_data"]["video_id"], ok_id.as_str());
    assert_eq!(failed.json()["event_type"], "avatar_video.fail");
    assert_eq!(failed.json()["event_data"]["failure_code"], "rendering_failed");
    let done = detail(&app, &ok_id).await;
    assert_eq!(done["status"], "completed");
    assert!(done["video_url"].as_str().is_some_and(|url| url.contains(&ok_id)));
    assert_eq!(detail(&app, &bad_id).await["status"], "failed");
}
