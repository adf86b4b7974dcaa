//! `--demo-renderer`: a stand-in renderer for trying hookd alone. It renders nothing.
//!
//! It works as a real renderer would, over HTTP through the operator API with the
//! admin token: it polls `GET /admin/v1/videos?status=pending`, reports `processing`,
//! and after `--demo-render-time` reports `completed` with a placeholder URL, or
//! `failed` (`rendering_failed`) when the video's title contains "fail".

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const POLL_EVERY: Duration = Duration::from_millis(250);

/// Runs until `shutdown`. `base_url` is hookd's own address.
pub async fn run(base_url: String, admin_token: String, render_time: Duration, shutdown: CancellationToken) {
    // Its polling is hookd talking to itself: logged at debug, not on every poll.
    let http = reqwest::Client::builder()
        .user_agent(hookd_api::INTERNAL_USER_AGENT)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    let mut rendering: HashSet<String> = HashSet::new();
    tracing::info!(?render_time, "demo renderer started: it renders nothing, it only reports");
    loop {
        // Pending videos start now; processing ones we hold no timer for (e.g. after a
        // restart) are finished too.
        for status in ["pending", "processing"] {
            let jobs = match list(&http, &base_url, &admin_token, status).await {
                Ok(jobs) => jobs,
                Err(error) => {
                    tracing::warn!(error = %error, "demo renderer could not list videos");
                    Vec::new()
                }
            };
            for job in jobs {
                let Some(video_id) = job["video_id"].as_str().map(str::to_owned) else { continue };
                if !rendering.insert(video_id.clone()) {
                    continue;
                }
                if status == "pending" {
                    report(&http, &base_url, &admin_token, &video_id, json!({"status": "processing"})).await;
                }
                let title = job["request"]["title"].as_str().unwrap_or_default().to_owned();
                let (http, base_url, admin_token) = (http.clone(), base_url.clone(), admin_token.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(render_time).await;
                    report(&http, &base_url, &admin_token, &video_id, final_report(&video_id, &title)).await;
                });
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(POLL_EVERY) => {}
        }
    }
}

fn final_report(video_id: &str, title: &str) -> Value {
    if title.to_lowercase().contains("fail") {
        json!({"status": "failed", "failure_code": "rendering_failed",
               "failure_message": "The demo renderer fails videos whose title contains \"fail\"."})
    } else {
        json!({"status": "completed", "video_url": format!("https://example.invalid/hookd-demo/{video_id}.mp4"),
               "duration": 5.0})
    }
}

async fn list(
    http: &reqwest::Client,
    base_url: &str,
    token: &str,
    status: &str,
) -> Result<Vec<Value>, reqwest::Error> {
    let url = format!("{base_url}/admin/v1/videos?status={status}&limit=100");
    let page: Value = http.get(url).bearer_auth(token).send().await?.error_for_status()?.json().await?;
    Ok(page["data"].as_array().cloned().unwrap_or_default())
}

async fn report(http: &reqwest::Client, base_url: &str, token: &str, video_id: &str, body: Value) {
    let url = format!("{base_url}/admin/v1/videos/{video_id}/status");
    match http.post(url).bearer_auth(token).json(&body).send().await {
        Ok(response) if response.status().is_success() => {}
        Ok(response) => {
            tracing::warn!(status = %response.status(), %video_id, "demo renderer report refused")
        }
        Err(error) => tracing::warn!(error = %error, %video_id, "demo renderer could not report"),
    }
}
