//! Storage faults on SQLite: a data directory whose disk fills up, or turns read-only.
//! Publishing answers 503 with `Retry-After` and nothing it did not store is
//! acknowledged. A full disk recovers by itself when space returns; a read-only one
//! after the operator's repair and a restart, with every acknowledged event there.
//! Needs root for the tmpfs and the loop device (CI has it).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::small_disk::SmallDisk;
use crate::support::{Reply, TestApp, send};

async fn publish_batch(app: &TestApp, account: &str, round: usize) -> Reply {
    let events: Vec<Value> = (0..200)
        .map(|n| {
            json!({"account_id": account, "event_type": "avatar_video.success",
                   "event_data": {"round": round, "n": n, "pad": "x".repeat(1000)}})
        })
        .collect();
    send(app.admin(Method::POST, "/admin/v1/events/batch").json(&json!({ "events": events }))).await
}

fn event_ids(reply: &Reply) -> Vec<String> {
    let events = reply.body["data"]["events"].as_array().expect("events");
    events.iter().map(|e| e["event_id"].as_str().expect("id").to_owned()).collect()
}

/// Every acknowledged event can be read back.
async fn assert_stored(app: &TestApp, acknowledged: &[String]) {
    for event_id in acknowledged {
        let stored =
            send(app.customer(Method::GET, &format!("/v3/webhooks/events/{event_id}/deliveries"))).await;
        assert_eq!(stored.status, StatusCode::OK, "acknowledged {event_id} is stored: {}", stored.raw);
    }
}

#[tokio::test]
async fn a_full_disk_answers_503_acknowledges_nothing_unstored_and_recovers() {
    let Some((disk, data_dir)) = SmallDisk::mount(16 * 1024 * 1024) else { return };
    // Reading back every acknowledged event takes more than the default rate limit.
    let app = TestApp::start(data_dir, &["--rate-limit", "0"]).await;
    let account = app.default_account().await;
    let filler = disk.fill();

    let mut acknowledged = Vec::new();
    let mut refused = None;
    // SQLite may still fit a few batches into WAL space it already holds.
    for round in 0..100 {
        let reply = publish_batch(&app, &account, round).await;
        match reply.status {
            StatusCode::ACCEPTED => acknowledged.extend(event_ids(&reply)),
            StatusCode::SERVICE_UNAVAILABLE => {
                refused = Some(reply);
                break;
            }
            other => panic!("a full disk must give 202 or 503, not {other}: {}", reply.raw),
        }
    }
    let refused = refused.expect("a full disk refuses a publish");
    refused.assert_error(503, "service_unavailable", None);
    assert!(refused.headers.contains_key("retry-after"));

    std::fs::remove_file(filler).expect("free the space");
    let recovered = publish_batch(&app, &account, 1000).await;
    assert_eq!(recovered.status, StatusCode::ACCEPTED, "no restart needed: {}", recovered.raw);
    acknowledged.extend(event_ids(&recovered));

    assert_stored(&app, &acknowledged).await;
    drop(app);
    drop(disk);
}

#[tokio::test]
async fn a_data_disk_turned_read_only_answers_503_and_loses_nothing_acknowledged() {
    let Some((disk, data_dir)) = SmallDisk::mount_ext4(64 * 1024 * 1024) else { return };
    let app = TestApp::start(data_dir, &["--rate-limit", "0"]).await;
    let account = app.default_account().await;
    let before = publish_batch(&app, &account, 0).await;
    assert_eq!(before.status, StatusCode::ACCEPTED, "{}", before.raw);
    let mut acknowledged = event_ids(&before);

    disk.fail_read_only();
    let refused = publish_batch(&app, &account, 1).await;
    refused.assert_error(503, "service_unavailable", None);
    assert!(refused.headers.contains_key("retry-after"));

    // An emergency read-only mount stays so until it is unmounted: the operator stops
    // hookd, repairs the file system and starts hookd again on the same data.
    let (data_dir, _) = app.stop().await;
    disk.repair();
    let app = TestApp::start(data_dir, &["--rate-limit", "0"]).await;
    assert_stored(&app, &acknowledged).await;
    let after = publish_batch(&app, &account, 2).await;
    assert_eq!(after.status, StatusCode::ACCEPTED, "{}", after.raw);
    acknowledged.extend(event_ids(&after));
    assert_stored(&app, &acknowledged).await;
    drop(app);
    drop(disk);
}
