//! The customer portal in a real browser (headless Chromium through chromedriver),
//! against a real hookd and a real receiver: the story a customer walks, and the
//! promises about access (read-only, other accounts, used links, cross-site requests,
//! framing).

use std::time::Duration;

use fantoccini::Locator;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::browser::Browser;
use crate::support::cluster::{MASTER_KEY, TestDatabase};
use crate::support::receiver::{Answer, TestReceiver};
use crate::support::{TestApp, send};

const WIDE: u32 = 1280;
const PHONE: u32 = 375;

fn account_of(app: &TestApp) -> String {
    std::fs::read_to_string(app.data_dir().join("default-account-id")).expect("account id").trim().to_owned()
}

/// Mints a portal link for `account`; returns its URL.
async fn mint(app: &TestApp, account: &str, body: Value) -> String {
    let path = format!("/admin/v1/accounts/{account}/portal-sessions");
    let reply = send(app.admin(Method::POST, &path).json(&body)).await;
    reply.assert_ok()["url"].as_str().expect("url").to_owned()
}

fn event(account: &str, video: &str) -> Value {
    json!({"account_id": account, "event_type": "avatar_video.success", "entity_id": "project-7",
           "event_data": {"video_id": video, "url": "https://files.example.com/v.mp4"}})
}

async fn endpoint_count(app: &TestApp, api_key: Option<&str>) -> usize {
    let request = match api_key {
        Some(key) => app.as_customer(key, Method::GET, "/v3/webhooks/endpoints"),
        None => app.customer(Method::GET, "/v3/webhooks/endpoints"),
    };
    send(request).await.assert_ok().as_array().expect("list").len()
}

/// The whole story on one app: mint → open → create an endpoint (secret once) → a
/// test send → an event in the log with its attempts → the receiver fails → the
/// delivery shows failed → recover shows a count, then resends → delivered.
async fn walk_the_story(app: &TestApp, shots: &str) {
    let Some(browser) = Browser::start(WIDE).await else { return };
    let mut receiver = TestReceiver::start().await;
    let account = account_of(app);
    let link = mint(app, &account, json!({})).await;

    browser.goto(&link).await;
    browser.wait_for_text("main h1", "Endpoints").await;
    assert!(!browser.current_url().await.contains("pl_"), "the one-time token left the address bar");
    browser.click_button("Add endpoint").await;
    browser.fill("#url", &receiver.url("/portal")).await;
    let unlabelled: i64 = browser
        .client
        .execute("return [...document.querySelectorAll('main input, main select')].filter(i => !i.labels || i.labels.length === 0).length;", vec![])
        .await
        .expect("script")
        .as_i64()
        .expect("count");
    assert_eq!(unlabelled, 0, "every field of the form has a label for screen readers");
    browser.click_button("Create endpoint").await;
    let secret = browser.find("#secret").await.text().await.expect("secret");
    assert!(secret.starts_with("whsec_"), "the secret is shown once, right after create: {secret}");
    browser.screenshot(&format!("{shots}-secret-once")).await;
    browser.click_button("Done").await;
    browser.wait_for_text("main", "Health, last 24 hours").await;
    assert!(!browser.body_text().await.contains(&secret), "never shown again");

    browser.click("#send-test").await;
    browser.wait_for_text("#test-result", "delivered").await;
    let test_send = receiver.next().await;
    assert!(test_send.header("heygen-signature").len() == 64, "a signed test event reached the receiver");

    let delivered = app.publish(event(&account, "v-ok")).await;
    receiver.next().await;
    app.settled_deliveries(&delivered).await;
    browser.goto(&format!("{}/portal/#/log", app.base_url)).await;
    browser.wait_for_text("#log", "avatar_video.success").await;
    browser.click("#log tbody tr a").await;
    browser.wait_for_text("#payload", "v-ok").await;
    browser.wait_for_text("main", "HTTP 200").await;
    browser.screenshot(&format!("{shots}-event-detail")).await;

    receiver.always(Answer::Status(500));
    let failed = app.publish(event(&account, "v-fail")).await;
    let settled = app.settled_deliveries(&failed).await;
    assert_eq!(settled[0]["status"], "failed");
    browser.goto(&format!("{}/portal/#/log?status=failed", app.base_url)).await;
    browser.wait_for_text("#log", "failed").await;
    let rows = browser.client.find_all(Locator::Css("#log tbody tr")).await.expect("rows");
    assert_eq!(rows.len(), 1, "the status filter shows only the failed event");
    receiver.drain();

    receiver.always(Answer::Status(200));
    let endpoint_id = settled[0]["endpoint_id"].as_str().expect("endpoint").to_owned();
    browser.goto(&format!("{}/portal/#/endpoints/{endpoint_id}", app.base_url)).await;
    browser.click("#recover-check").await;
    let count = browser.wait_for_text("#recover-count", "failed").await;
    assert!(count.starts_with("1 failed delivery"), "a dry run counts first: {count}");
    assert!(receiver.drain().is_empty(), "and sends nothing");
    browser.click("#recover-confirm").await;
    browser.wait_for_text("#recover-result", "being sent again").await;
    browser.screenshot(&format!("{shots}-endpoint")).await;
    let resent = receiver.next().await;
    assert_eq!(resent.header("heygen-event-id"), failed);
    let deadline = std::time::Instant::now() + crate::support::receiver::PATIENCE;
    while app.deliveries(&failed).await[0]["status"] != "delivered" {
        assert!(std::time::Instant::now() < deadline, "the recovered delivery was delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    browser.goto(&format!("{}/portal/#/events/{failed}", app.base_url)).await;
    browser.wait_for_text(".delivery", "delivered").await;

    browser.goto(&format!("{}/portal/#/log", app.base_url)).await;
    browser.find("#log tbody tr:nth-child(2)").await;
    browser.screenshot(&format!("{shots}-message-log")).await;
    browser.goto(&format!("{}/portal/#/endpoints", app.base_url)).await;
    browser.wait_for_text("main table", "% ok").await;
    browser.screenshot(&format!("{shots}-endpoints")).await;
    for page in ["#/catalog", "#/verify"] {
        browser.goto(&format!("{}/portal/{page}", app.base_url)).await;
        browser.find("main h1").await;
        browser.screenshot(&format!("{shots}-{}", &page[2..])).await;
    }
    browser.close().await;
}

#[tokio::test]
async fn the_portal_story_on_sqlite() {
    let app = TestApp::spawn_with(&["--retry-schedule", "50ms"]).await;
    walk_the_story(&app, "sqlite").await;
}

#[tokio::test]
async fn the_portal_story_on_postgres() {
    let Some(database) = TestDatabase::shared().await else { return };
    let app = TestApp::spawn_with(&[
        "--database-url",
        database.url(),
        "--master-key",
        MASTER_KEY,
        "--retry-schedule",
        "50ms",
    ])
    .await;
    walk_the_story(&app, "postgres").await;
    app.stop().await.1.expect("stopped cleanly");
    database.finish().await;
}

#[tokio::test]
async fn a_read_only_session_sees_everything_and_the_server_refuses_its_changes() {
    let app = TestApp::spawn().await;
    let Some(browser) = Browser::start(WIDE).await else { return };
    let endpoint = app.create_endpoint(json!({"url": "http://127.0.0.1:9/ro"})).await;
    let link = mint(&app, &account_of(&app), json!({"read_only": true})).await;
    browser.goto(&link).await;
    browser.wait_for_text("main table", "http://127.0.0.1:9/ro").await;
    browser.wait_for_text("#who", "read-only").await;
    assert!(!browser.body_text().await.contains("Add endpoint"), "no buttons that change anything");
    let id = endpoint["endpoint_id"].as_str().expect("id");
    browser.goto(&format!("{}/portal/#/endpoints/{id}", app.base_url)).await;
    browser.wait_for_text("main", "Health, last 24 hours").await;
    for label in ["Delete", "Pause", "Rotate secret", "Send test event"] {
        let found =
            browser.client.find(Locator::XPath(&format!("//button[normalize-space(.)='{label}']"))).await;
        assert!(found.is_err(), "{label} is not offered");
    }
    // The page's own credential, used directly: the server refuses, not just the page.
    let status = browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const c = JSON.parse(sessionStorage.getItem('hookd.portal.credential'));
             fetch('/v3/webhooks/endpoints/' + arguments[0], {method: 'DELETE', headers: {Authorization: 'Bearer ' + c.token}})
               .then(r => done(r.status));",
            vec![json!(id)],
        )
        .await
        .expect("script");
    assert_eq!(status, json!(403));
    assert_eq!(endpoint_count(&app, None).await, 1, "nothing changed");
    browser.close().await;
}

#[tokio::test]
async fn one_accounts_session_cannot_reach_anothers_objects() {
    let app = TestApp::spawn().await;
    let Some(browser) = Browser::start(WIDE).await else { return };
    let other_key = app.new_account("other").await;
    let theirs = app.create_endpoint_as(&other_key, json!({"url": "http://127.0.0.1:9/theirs"})).await;
    let their_id = theirs["endpoint_id"].as_str().expect("id");
    let their_account = send(app.as_customer(&other_key, Method::GET, "/v3/webhooks/events")).await;
    assert!(their_account.assert_ok().as_array().expect("list").is_empty());
    let link = mint(&app, &account_of(&app), json!({})).await;
    browser.goto(&link).await;
    browser.wait_for_text("main h1", "Endpoints").await;
    assert!(!browser.body_text().await.contains("/theirs"));
    browser.goto(&format!("{}/portal/#/endpoints/{their_id}", app.base_url)).await;
    browser.wait_for_text("main h1", "Endpoint not found").await;
    for (method, path) in [
        ("GET", format!("/v3/webhooks/endpoints/{their_id}/health")),
        ("GET", format!("/v3/webhooks/endpoints/{their_id}/settings")),
        ("PATCH", format!("/v3/webhooks/endpoints/{their_id}")),
        ("DELETE", format!("/v3/webhooks/endpoints/{their_id}")),
        ("POST", format!("/v3/webhooks/endpoints/{their_id}/rotate-secret")),
        ("POST", format!("/v3/webhooks/endpoints/{their_id}/test")),
    ] {
        let status = browser
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 const c = JSON.parse(sessionStorage.getItem('hookd.portal.credential'));
                 fetch(arguments[1], {method: arguments[0], headers: {Authorization: 'Bearer ' + c.token,
                   'Content-Type': 'application/json'}, body: arguments[0] === 'PATCH' ? '{\"status\":\"disabled\"}' : undefined})
                   .then(r => done(r.status));",
                vec![json!(method), json!(path)],
            )
            .await
            .expect("script");
        assert_eq!(status, json!(404), "{method} {path}");
    }
    assert_eq!(endpoint_count(&app, Some(&other_key)).await, 1, "theirs is untouched");
    browser.close().await;
}

#[tokio::test]
async fn a_used_revoked_or_made_up_link_gets_a_clear_page() {
    let app = TestApp::spawn().await;
    let Some(browser) = Browser::start(WIDE).await else { return };
    let account = account_of(&app);
    let link = mint(&app, &account, json!({})).await;
    browser.goto(&link).await;
    browser.wait_for_text("main h1", "Endpoints").await;
    browser.click_button("Sign out").await;
    browser.wait_for_text("main h1", "Sign in").await;

    let revoked = {
        let path = format!("/admin/v1/accounts/{account}/portal-sessions");
        let reply = send(app.admin(Method::POST, &path).json(&json!({}))).await;
        let data = reply.assert_ok().clone();
        let session = data["session_id"].as_str().expect("id");
        send(app.admin(Method::DELETE, &format!("/admin/v1/portal-sessions/{session}"))).await.assert_ok();
        data["url"].as_str().expect("url").to_owned()
    };
    let made_up = format!("{}/portal/#pl_00000000000000000000000000000000_forged", app.base_url);
    for (name, url) in [("used", link), ("revoked", revoked), ("made up", made_up)] {
        browser.goto(&format!("{}/portal/#/signin", app.base_url)).await;
        browser.goto(&url).await;
        let heading = browser.wait_for_text("main h1", "cannot be used").await;
        assert_eq!(heading, "This link cannot be used", "{name}");
        assert!(!browser.current_url().await.contains("pl_"), "{name}: the token left the address bar");
    }
    browser.screenshot("link-refused").await;
    browser.close().await;
}

#[tokio::test]
async fn someone_running_hookd_alone_signs_in_with_an_api_key() {
    let app = TestApp::spawn().await;
    let Some(browser) = Browser::start(WIDE).await else { return };
    app.create_endpoint(json!({"url": "http://127.0.0.1:9/mine"})).await;
    browser.goto(&format!("{}/portal/", app.base_url)).await;
    browser.fill("#api-key", "hk_00000000000000000000000000000000_wrong").await;
    browser.click_button("Sign in").await;
    browser.wait_for_text("#signin-message", "not accepted").await;
    let key = std::fs::read_to_string(app.data_dir().join("default-api-key")).expect("key");
    browser.fill("#api-key", key.trim()).await;
    browser.click_button("Sign in").await;
    browser.wait_for_text("main table", "http://127.0.0.1:9/mine").await;
    browser.screenshot("signed-in-with-a-key").await;
    browser.close().await;
}

/// Serves one HTML page to every request, from another site than hookd's
/// (`localhost` against hookd's `127.0.0.1`).
async fn other_site(html: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    serve_page(listener, html)
}

fn serve_page(listener: tokio::net::TcpListener, html: String) -> String {
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let html = html.clone();
            tokio::spawn(async move {
                let mut head = [0u8; 4096];
                let _ = stream.read(&mut head).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}",
                    html.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    format!("http://localhost:{port}")
}

#[tokio::test]
async fn a_forged_cross_site_request_changes_nothing() {
    let app = TestApp::spawn().await;
    let Some(browser) = Browser::start(WIDE).await else { return };
    let link = mint(&app, &account_of(&app), json!({})).await;
    browser.goto(&link).await;
    browser.wait_for_text("main h1", "Endpoints").await;
    // The customer is signed in in this browser; another site tries to act for them.
    let target = format!("{}/v3/webhooks/endpoints", app.base_url);
    let forged = other_site(format!(
        r#"<!doctype html><form id="f" method="POST" action="{target}" enctype="text/plain">
           <input name='{{"url":"http://127.0.0.1:9/forged","x":"' value='"}}'></form>
           <script>
             fetch("{target}", {{method: "POST", credentials: "include", mode: "no-cors",
               headers: {{"Content-Type": "text/plain"}}, body: '{{"url":"http://127.0.0.1:9/forged2"}}'}})
               .finally(() => document.getElementById("f").submit());
           </script>"#
    ))
    .await;
    browser.goto(&forged).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !browser.current_url().await.starts_with(&app.base_url) {
        assert!(std::time::Instant::now() < deadline, "the forged form was submitted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(browser.body_text().await.contains("authentication_failed"), "refused without a credential");
    assert_eq!(endpoint_count(&app, None).await, 0, "nothing was created");
    browser.close().await;
}

#[tokio::test]
async fn the_portal_works_in_a_frame_on_an_allowed_site_and_is_refused_elsewhere() {
    // The dashboard's site must be known before hookd starts, to allow it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let dashboard_port = listener.local_addr().expect("addr").port();
    drop(listener);
    let allowed = format!("http://localhost:{dashboard_port}");
    let framed = TestApp::spawn_with(&["--portal-frame-ancestors", &allowed]).await;
    let refused = TestApp::spawn().await;
    let Some(browser) = Browser::start(WIDE).await else { return };

    let link = mint(&framed, &account_of(&framed), json!({})).await;
    let dashboard = dashboard_on(dashboard_port, &link).await;
    browser.goto(&dashboard).await;
    let frame = browser.find("iframe").await;
    frame.enter_frame().await.expect("enter the frame");
    browser.wait_for_text("main h1", "Endpoints").await;
    browser.click_button("Add endpoint").await;
    browser.fill("#url", "http://127.0.0.1:9/framed").await;
    browser.click_button("Create endpoint").await;
    browser.find("#secret").await;
    assert_eq!(endpoint_count(&framed, None).await, 1, "a change made inside the frame took effect");
    browser.client.enter_parent_frame().await.expect("leave the frame");

    // Framed by a site that is not allowed: the browser does not run the page, so the
    // one-time link is never redeemed.
    let link = mint(&refused, &account_of(&refused), json!({})).await;
    let elsewhere =
        other_site(format!(r#"<!doctype html><iframe src="{link}" width="900" height="600"></iframe>"#))
            .await;
    browser.goto(&elsewhere).await;
    browser.find("iframe").await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let token = link.split_once('#').expect("fragment").1;
    let redeemed =
        send(refused.anonymous(Method::POST, "/portal/api/session").json(&json!({"token": token}))).await;
    assert_eq!(redeemed.status, 200, "the framed page never ran: {}", redeemed.raw);
    browser.close().await;
}

async fn dashboard_on(port: u16, link: &str) -> String {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind the dashboard port");
    serve_page(
        listener,
        format!(
            r#"<!doctype html><h1>Dashboard</h1><iframe src="{link}" width="1000" height="700"></iframe>"#
        ),
    )
}

#[tokio::test]
async fn every_endpoint_is_reachable_past_the_first_page() {
    let app = TestApp::spawn().await;
    let Some(browser) = Browser::start(WIDE).await else { return };
    let mut ids = Vec::new();
    for n in 0..105 {
        let created = app.create_endpoint(json!({"url": format!("http://127.0.0.1:9/many/{n}")})).await;
        ids.push(created["endpoint_id"].as_str().expect("id").to_owned());
    }
    let link = mint(&app, &account_of(&app), json!({})).await;
    browser.goto(&link).await;
    browser.wait_for_text("main table", "/many/104").await;
    browser.click_button("Older").await;
    browser.wait_for_text("main table", "/many/54").await;
    // The oldest is on the second page of 100 that the detail page walks.
    browser.goto(&format!("{}/portal/#/endpoints/{}", app.base_url, ids[0])).await;
    browser.wait_for_text("main h1", "/many/0").await;
    browser.close().await;
}

#[tokio::test]
async fn the_portal_is_usable_by_keyboard() {
    let app = TestApp::spawn().await;
    let Some(browser) = Browser::start(WIDE).await else { return };
    let link = mint(&app, &account_of(&app), json!({})).await;
    browser.goto(&link).await;
    browser.wait_for_text("main h1", "Endpoints").await;
    let focused = || async {
        let script =
            "const a = document.activeElement; return a === document.body ? '' : a.textContent.trim();";
        let text = browser.client.execute(script, vec![]).await;
        text.expect("script").as_str().unwrap_or_default().to_owned()
    };
    let tab = fantoccini::key::Key::Tab.to_string();
    // A page that renders moves focus to its content, so the next Tab is in it.
    browser.client.active_element().await.expect("focus").send_keys(&tab).await.expect("tab");
    assert_eq!(focused().await, "Add endpoint", "after a page renders, Tab continues in its content");
    // From the top of the document: the skip link first, then the navigation.
    browser
        .client
        .execute("document.activeElement.blur(); window.scrollTo(0, 0);", vec![])
        .await
        .expect("script");
    let mut reached = Vec::new();
    for _ in 0..8 {
        browser.client.active_element().await.expect("focus").send_keys(&tab).await.expect("tab");
        let now = focused().await;
        if now.is_empty() {
            continue;
        }
        reached.push(now);
        if reached.last().map(String::as_str) == Some("Message log") {
            break;
        }
    }
    assert_eq!(
        reached.first().map(String::as_str),
        Some("Skip to content"),
        "the first stop skips the header"
    );
    assert_eq!(
        reached.last().map(String::as_str),
        Some("Message log"),
        "the navigation is reachable: {reached:?}"
    );
    let enter = fantoccini::key::Key::Enter.to_string();
    browser.client.active_element().await.expect("focus").send_keys(&enter).await.expect("enter");
    browser.wait_for_text("main h1", "Message log").await;
    browser.close().await;
}

#[tokio::test]
async fn the_portal_fits_a_phone_screen() {
    let app = TestApp::spawn().await;
    let Some(browser) = Browser::start(PHONE).await else { return };
    app.create_endpoint(json!({"url": "http://127.0.0.1:9/a-rather-long-path/that/should/wrap/on/a/phone"}))
        .await;
    let link = mint(&app, &account_of(&app), json!({})).await;
    browser.goto(&link).await;
    for page in ["#/endpoints", "#/log", "#/catalog", "#/verify", "#/endpoints/new"] {
        browser.goto(&format!("{}/portal/{page}", app.base_url)).await;
        browser.find("main h1").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let overflow = browser
            .client
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                vec![],
            )
            .await
            .expect("script");
        assert!(overflow.as_i64() <= Some(0), "{page} scrolls sideways at 375 px by {overflow}");
    }
    browser.screenshot("phone-endpoints-new").await;
    browser.close().await;
}
