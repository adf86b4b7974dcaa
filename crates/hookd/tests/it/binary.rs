//! The real `hookd` binary: startup, credentials, logs, signals, bad flags and master
//! key rotation.

use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};

use hookd_signature::verify_heygen;
use serde_json::json;

use crate::support::process::{RunningBinary, STARTUP_LIMIT, capture, command};
use crate::support::receiver::TestReceiver;
use crate::support::{Reply, send};

async fn customer(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    method: reqwest::Method,
    path: &str,
) -> reqwest::RequestBuilder {
    http.request(method, format!("{base}{path}")).header("X-Api-Key", key)
}

#[tokio::test]
async fn endpoint_secrets_and_api_keys_never_reach_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let running = RunningBinary::start(
        dir.path(),
        &["--allow-http", "--allow-destination", "127.0.0.0/8"],
        &[("HOOKD_LOG", "debug")],
    )
    .await;
    let key =
        std::fs::read_to_string(dir.path().join("default-api-key")).expect("key file").trim().to_owned();
    let http = reqwest::Client::new();
    let base = running.base_url.clone();
    use reqwest::Method;

    let create = customer(&http, &base, &key, Method::POST, "/v3/webhooks/endpoints").await;
    let created: Reply = send(
        create
            .header("Idempotency-Key", "log-test")
            .header("X-Request-Id", "trace-me-123")
            .json(&json!({"url": "http://127.0.0.1:9/h"})),
    )
    .await;
    let endpoint_id = created.assert_ok()["endpoint_id"].as_str().expect("id").to_owned();
    let replay = customer(&http, &base, &key, Method::POST, "/v3/webhooks/endpoints").await;
    send(replay.header("Idempotency-Key", "log-test").json(&json!({"url": "http://127.0.0.1:9/h"})))
        .await
        .assert_ok();
    let rotate = customer(
        &http,
        &base,
        &key,
        Method::POST,
        &format!("/v3/webhooks/endpoints/{endpoint_id}/rotate-secret"),
    )
    .await;
    let rotated = send(rotate).await;
    send(customer(&http, &base, &key, Method::GET, "/v3/webhooks/endpoints").await).await.assert_ok();

    let (exit, stdout, log) = running.stop().await;
    assert!(exit.success(), "SIGTERM is a clean stop: {exit:?}\n{log}");
    assert!(log.contains("trace-me-123"), "the request log carries the request id:\n{log}");
    for secret in [&created.body["data"]["secret"], &rotated.body["data"]["secret"]] {
        let secret = secret.as_str().expect("secret");
        assert!(!log.contains(secret), "endpoint secret in the log");
        assert!(!stdout.contains(secret), "endpoint secret on stdout");
    }
    // `hk_<32 hex>_<secret>`; the secret's base64url alphabet includes '_' itself.
    let key_secret_part = &key["hk_".len() + 32 + 1..];
    assert_eq!(key_secret_part.len(), 43);
    assert!(!log.contains(key_secret_part), "API key in the log");
    assert_eq!(stdout.matches(&key).count(), 1, "the default key is printed exactly once");
}

#[tokio::test]
async fn first_start_saves_credentials_owner_only_and_prints_them_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = RunningBinary::start(dir.path(), &[], &[]).await;
    let (_, first_stdout, _) = first.stop().await;
    for file in ["admin-token", "default-api-key", "master-key", "hookd.db"] {
        let mode = std::fs::metadata(dir.path().join(file)).expect(file).permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{file} is readable by its owner only");
    }
    for file in ["hookd.db-wal", "hookd.db-shm"] {
        if let Ok(metadata) = std::fs::metadata(dir.path().join(file)) {
            assert_eq!(metadata.permissions().mode() & 0o777, 0o600, "{file} is readable by its owner only");
        }
    }
    let admin_token =
        std::fs::read_to_string(dir.path().join("admin-token")).expect("token").trim().to_owned();
    assert!(first_stdout.contains(&admin_token));

    let second = RunningBinary::start(dir.path(), &[], &[]).await;
    let reply = send(
        reqwest::Client::new()
            .post(format!("{}/admin/v1/accounts", second.base_url))
            .bearer_auth(&admin_token)
            .json(&json!({"name": "after-restart"})),
    )
    .await;
    reply.assert_ok();
    let (_, second_stdout, _) = second.stop().await;
    assert!(!second_stdout.contains(&admin_token), "not printed again");
    assert!(!second_stdout.contains("created account"), "default account created once");
}

#[tokio::test]
async fn a_master_key_other_than_the_first_is_refused_at_startup() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, stdout, _) = RunningBinary::start(dir.path(), &[], &[]).await.stop().await;
    let key =
        std::fs::read_to_string(dir.path().join("master-key")).expect("generated key").trim().to_owned();
    assert_eq!(key.len(), 64);
    assert!(stdout.contains("master-key") && !stdout.contains(&key), "its place is printed, never the key");

    let data_dir = dir.path().to_str().expect("utf-8");
    let serve = ["serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir];
    let other = "ab".repeat(32);
    for (extra, envs, message) in [
        (vec!["--master-key", other.as_str()], vec![], "master key does not open"),
        (vec![], vec![("HOOKD_MASTER_KEY", other.as_str())], "master key does not open"),
    ] {
        let args: Vec<&str> = serve.iter().copied().chain(extra).collect();
        let output = command(&args, &envs).output().await.expect("run hookd");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "a wrong key must not start");
        assert!(stderr.contains(message), "expected {message:?} in:\n{stderr}");
        assert!(!stderr.contains(&other) && !stderr.contains(&key), "no key in the message");
    }
    std::fs::write(dir.path().join("master-key"), "not a key\n").expect("spoil the key file");
    let output = command(&serve, &[]).output().await.expect("run hookd");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("could not read the master key"), "{stderr}");

    std::fs::write(dir.path().join("master-key"), format!("{key}\n")).expect("restore the key file");
    let args: Vec<&str> = serve.iter().copied().chain(["--master-key", key.as_str()]).collect();
    let mut child = command(&args, &[]).spawn().expect("spawn");
    let stdout = Arc::new(Mutex::new(String::new()));
    let (sender, receiver) = tokio::sync::oneshot::channel();
    capture(child.stdout.take().expect("stdout"), stdout, Some(sender));
    tokio::time::timeout(STARTUP_LIMIT, receiver).await.expect("the first key starts it").expect("address");
    child.kill().await.expect("kill");
}

#[tokio::test]
async fn flags_are_read_from_hookd_environment_variables() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().to_str().expect("utf-8");
    let envs = [
        ("HOOKD_DATA_DIR", data_dir),
        ("HOOKD_ALLOW_HTTP", "true"),
        ("HOOKD_ALLOW_DESTINATION", "127.0.0.0/8,::1"),
        ("HOOKD_ADMIN_TOKEN", "env-admin-token-0123456789"),
    ];
    let mut child = command(&["serve", "--listen", "127.0.0.1:0"], &envs).spawn().expect("spawn");
    let stdout = Arc::new(Mutex::new(String::new()));
    let (sender, receiver) = tokio::sync::oneshot::channel();
    capture(child.stdout.take().expect("stdout"), stdout, Some(sender));
    let base = tokio::time::timeout(STARTUP_LIMIT, receiver).await.expect("started").expect("address");
    let key = std::fs::read_to_string(dir.path().join("default-api-key"))
        .expect("key in HOOKD_DATA_DIR")
        .trim()
        .to_owned();
    let http = reqwest::Client::new();
    let created = customer(&http, &base, &key, reqwest::Method::POST, "/v3/webhooks/endpoints").await;
    send(created.json(&json!({"url": "http://127.0.0.1:9/hook"}))).await.assert_ok();
    let admin = http.post(format!("{base}/admin/v1/accounts")).bearer_auth("env-admin-token-0123456789");
    send(admin.json(&json!({"name": "x"}))).await.assert_ok();
    child.kill().await.expect("kill");
}

#[tokio::test]
async fn bad_startup_values_fail_with_a_clear_message_and_no_panic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "x").expect("file");
    let not_a_dir = not_a_dir.to_str().expect("utf-8").to_owned();
    let data_dir = dir.path().join("data");
    let data_dir = data_dir.to_str().expect("utf-8");
    let cases: [(&[&str], &str); 12] = [
        (&["--allow-destination", "10.0.0.0/33"], "not a CIDR range"),
        (&["--allow-destination", "example.com"], "not a CIDR range"),
        (&["--database-url", "mysql://localhost/db"], "unknown database URL scheme"),
        (&["--database-url", "postgres://127.0.0.1:1/test"], "could not open the database"),
        (&["--role", "worker"], "needs a database shared with other instances"),
        (&["--retention", "1h"], "must be longer than the retry schedule"),
        (&["--data-dir", &not_a_dir], "data directory"),
        (&["--retry-schedule", "5s,,1m"], "not a duration"),
        (&["--attempt-timeout", "forever"], "not a duration"),
        (&["--listen", "256.0.0.1:80"], "could not listen"),
        (&["--admin-token", "short"], "at least 16 characters"),
        (&["--master-key", "0123abcd"], "64 hexadecimal characters"),
    ];
    for (flags, message) in cases {
        let mut args = vec!["serve"];
        for (flag, default) in [("--listen", "127.0.0.1:0"), ("--data-dir", data_dir)] {
            if !flags.contains(&flag) {
                args.extend_from_slice(&[flag, default]);
            }
        }
        args.extend_from_slice(flags);
        let output = command(&args, &[]).output().await.expect("run hookd");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{flags:?} must not start");
        assert!(stderr.contains(message), "{flags:?}: expected {message:?} in:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{flags:?} panicked:\n{stderr}");
    }
}

#[tokio::test]
async fn version_and_help_describe_the_binary() {
    let version = command(&["--version"], &[]).output().await.expect("run");
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("hookd "));
    let help = command(&["serve", "--help"], &[]).output().await.expect("run");
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--listen",
        "--data-dir",
        "--database-url",
        "--admin-token",
        "--allow-http",
        "--allow-destination",
        "--retry-schedule",
        "--attempt-timeout",
        "HOOKD_DATABASE_URL",
    ] {
        assert!(help.contains(flag), "serve --help mentions {flag}");
    }
}

#[tokio::test]
async fn listen_prints_each_delivery_and_whether_its_signatures_verify() {
    let secret = "whsec_UvImZaYMEtKJGF2VDuiBNgkWb2sRPReNbA/TkB/yOaE=";
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        probe.local_addr().expect("address").port()
    };
    let mut child =
        command(&["listen", "--port", &port.to_string(), "--secret", secret], &[]).spawn().expect("spawn");
    let stdout = Arc::new(Mutex::new(String::new()));
    capture(child.stdout.take().expect("stdout"), stdout.clone(), None);
    let body = br#"{"event_type":"avatar_video.success","event_data":{"video_id":"v1"}}"#;
    let signed = hookd_signature::Signer::new(secret).expect("secret").sign("evt1", 1_764_180_000, body);
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/hook");
    let deadline = std::time::Instant::now() + STARTUP_LIMIT;
    let send_signed = |signature: &str| {
        http.post(&url)
            .header("heygen-event-id", "evt1")
            .header("heygen-timestamp", "1764180000")
            .header("heygen-signature", signature)
            .header("webhook-id", "evt1")
            .header("webhook-timestamp", "1764180000")
            .header("webhook-signature", &signed.webhook_signature)
            .body(&body[..])
            .send()
    };
    while send_signed(&signed.heygen_signature).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "hookd listen never started");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    send_signed("00").await.expect("second delivery");
    // The listener prints before it answers; wait for the capture task to read it.
    let printed = loop {
        let printed = stdout.lock().expect("lock").clone();
        if printed.matches("── ").count() >= 2 || std::time::Instant::now() > deadline {
            break printed;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    child.kill().await.expect("kill");
    assert!(printed.contains("avatar_video.success  event evt1"), "{printed}");
    assert!(printed.contains("Heygen-Signature:  valid"), "{printed}");
    assert!(printed.contains("webhook-signature: valid"), "{printed}");
    assert!(printed.contains("Heygen-Signature:  INVALID"), "a bad signature is called out:\n{printed}");
    assert!(printed.contains("\"video_id\": \"v1\""), "pretty JSON:\n{printed}");
}

#[tokio::test]
async fn the_demo_renderer_is_off_by_default_and_says_it_renders_nothing() {
    let help = command(&["serve", "--help"], &[]).output().await.expect("run");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--demo-renderer") && help.contains("RENDERS NOTHING"), "{help}");
    let dir = tempfile::tempdir().expect("temp dir");
    let running = RunningBinary::start(dir.path(), &[], &[]).await;
    let key = std::fs::read_to_string(dir.path().join("default-api-key")).expect("key").trim().to_owned();
    let http = reqwest::Client::new();
    let create = customer(&http, &running.base_url, &key, reqwest::Method::POST, "/v3/videos").await;
    let created = send(create.json(&json!({"type": "avatar", "avatar_id": "a"}))).await;
    let video_id = created.assert_ok()["video_id"].as_str().expect("id").to_owned();
    let get =
        customer(&http, &running.base_url, &key, reqwest::Method::GET, &format!("/v3/videos/{video_id}"))
            .await;
    assert_eq!(send(get).await.assert_ok()["status"], "pending");
    let (_, _, log) = running.stop().await;
    assert!(log.contains("hookd listening"), "the log was captured:\n{log}");
    assert!(!log.contains("demo renderer started"), "no renderer runs unless asked:\n{log}");
}

#[tokio::test]
async fn the_demo_renderer_refuses_to_start_without_the_admin_token() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = RunningBinary::start(dir.path(), &[], &[]).await;
    first.stop().await;
    std::fs::remove_file(dir.path().join("admin-token")).expect("token file");
    let data_dir = dir.path().to_str().expect("utf-8");
    let args = ["serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir, "--demo-renderer"];
    let output = command(&args, &[]).output().await.expect("run hookd");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("--demo-renderer calls the operator API and needs the admin token"), "{stderr}");
}

/// A stopped hookd on `dir` with one endpoint pointing at `receiver`; its secret.
async fn stopped_with_an_endpoint(dir: &std::path::Path, receiver: &TestReceiver) -> String {
    let running = RunningBinary::start(dir, LOCAL, &[]).await;
    let key = std::fs::read_to_string(dir.join("default-api-key")).expect("key file").trim().to_owned();
    let create = customer(
        &reqwest::Client::new(),
        &running.base_url,
        &key,
        reqwest::Method::POST,
        "/v3/webhooks/endpoints",
    )
    .await;
    let created = send(create.json(&json!({"url": receiver.url("/rotated")}))).await;
    let secret = created.assert_ok()["secret"].as_str().expect("secret").to_owned();
    running.stop().await;
    secret
}

const LOCAL: &[&str] = &["--allow-http", "--allow-destination", "127.0.0.0/8"];

fn read_file(dir: &std::path::Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default().trim().to_owned()
}

async fn rotate_master_key(dir: &std::path::Path) -> (bool, String, String) {
    let args = ["rotate-master-key", "--data-dir", dir.to_str().expect("utf-8")];
    let output = command(&args, &[]).output().await.expect("run hookd");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.success(), text(&output.stdout), text(&output.stderr))
}

/// Publishes one event through the operator API and checks that `receiver` gets it
/// signed with `secret`.
async fn delivered_signed_with(
    running: &RunningBinary,
    dir: &std::path::Path,
    receiver: &mut TestReceiver,
    secret: &str,
) {
    let body = json!({"account_id": read_file(dir, "default-account-id"), "event_type": "avatar_video.success",
                      "event_data": {"video_id": "v1"}});
    let publish = reqwest::Client::new()
        .post(format!("{}/admin/v1/events", running.base_url))
        .bearer_auth(read_file(dir, "admin-token"))
        .json(&body);
    assert_eq!(send(publish).await.status.as_u16(), 202);
    let received = receiver.next().await;
    assert!(verify_heygen(secret, &received.body, received.header("heygen-signature")).is_ok());
}

#[tokio::test]
async fn rotating_the_master_key_keeps_every_secret_and_retires_the_old_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut receiver = TestReceiver::start().await;
    let secret = stopped_with_an_endpoint(dir.path(), &receiver).await;
    let old_key = read_file(dir.path(), "master-key");

    let (ok, stdout, stderr) = rotate_master_key(dir.path()).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("re-sealed 1 endpoint secrets"), "{stdout}");
    let new_key = read_file(dir.path(), "master-key");
    assert_eq!(new_key.len(), 64);
    assert_ne!(new_key, old_key);
    assert_eq!(read_file(dir.path(), "master-key.previous"), old_key, "kept for older backups");
    assert!(!dir.path().join("master-key.new").exists());
    let mode = std::fs::metadata(dir.path().join("master-key")).expect("key file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    for key in [&old_key, &new_key] {
        assert!(!stdout.contains(key.as_str()) && !stderr.contains(key.as_str()), "no key is printed");
    }

    let data_dir = dir.path().to_str().expect("utf-8");
    let old = ["serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir, "--master-key", &old_key];
    let output = command(&old, &[]).output().await.expect("run hookd");
    assert!(!output.status.success(), "the old key no longer opens the database");

    let running = RunningBinary::start(dir.path(), LOCAL, &[]).await;
    delivered_signed_with(&running, dir.path(), &mut receiver, &secret).await;
    running.stop().await;
}

#[tokio::test]
async fn an_interrupted_rotation_stops_startup_and_finishes_when_run_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut receiver = TestReceiver::start().await;
    let secret = stopped_with_an_endpoint(dir.path(), &receiver).await;
    let (ok, _, stderr) = rotate_master_key(dir.path()).await;
    assert!(ok, "{stderr}");
    // The state a crash after the re-seal commit and before the key files moved
    // leaves: the database is on the new key, master-key still holds the old one.
    let path = |name: &str| dir.path().join(name);
    std::fs::rename(path("master-key"), path("master-key.new")).expect("move");
    std::fs::rename(path("master-key.previous"), path("master-key")).expect("move");
    let new_key = read_file(dir.path(), "master-key.new");

    let data_dir = dir.path().to_str().expect("utf-8");
    let output = command(&["serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir], &[])
        .output()
        .await
        .expect("run hookd");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("rotate-master-key"), "{stderr}");

    let (ok, stdout, stderr) = rotate_master_key(dir.path()).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("finished a rotation"), "{stdout}");
    assert_eq!(read_file(dir.path(), "master-key"), new_key);
    let running = RunningBinary::start(dir.path(), LOCAL, &[]).await;
    delivered_signed_with(&running, dir.path(), &mut receiver, &secret).await;
    running.stop().await;
}

#[tokio::test]
async fn a_bad_listen_address_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let args = ["serve", "--listen", "nonsense", "--data-dir", data_dir.to_str().expect("utf-8")];
    let output = command(&args, &[]).output().await.expect("run hookd");
    assert_eq!(output.status.code(), Some(2), "a flag error, like the others");
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not HOST:PORT"));
    assert!(!data_dir.exists(), "nothing was created");
}

#[tokio::test]
async fn a_busy_port_is_one_line_naming_it_once_without_a_backtrace_and_creates_nothing() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("hold a port");
    let address = busy.local_addr().expect("address").to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let args = ["serve", "--listen", &address, "--data-dir", data_dir.to_str().expect("utf-8")];
    let output = command(&args, &[("RUST_BACKTRACE", "1")]).output().await.expect("run hookd");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line:\n{stderr}");
    assert!(stderr.contains(&format!("could not listen on {address}")), "{stderr}");
    assert_eq!(stderr.matches("Address already in use").count(), 1, "the cause once:\n{stderr}");
    assert!(!data_dir.exists(), "no credentials made for a server that cannot start");

    let port = address.rsplit(':').next().expect("port");
    let output = command(&["listen", "--port", port], &[]).output().await.expect("run hookd listen");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains(&format!("could not listen on 127.0.0.1:{port}")), "names the port: {stderr}");
}

#[tokio::test]
async fn listen_refuses_what_is_not_an_endpoint_secret() {
    // What a shell script captures when creating the endpoint failed.
    let error_json = r#"{"error":{"code":"invalid_parameter","message":"'url' must use https."}}"#;
    for secret in [error_json, "whsec_not base64!", ""] {
        let output =
            command(&["listen", "--port", "0", "--secret", secret], &[]).output().await.expect("run");
        assert_eq!(output.status.code(), Some(2), "{secret:?} is refused as a usage error");
        assert!(String::from_utf8_lossy(&output.stderr).contains("whsec_"), "says what a secret looks like");
    }
}

#[tokio::test]
async fn logs_in_a_pipe_have_no_colour_codes_and_internal_polling_stays_out_of_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let running = RunningBinary::start(dir.path(), &["--demo-renderer"], &[]).await;
    // The demo renderer polls four times a second.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (_, _, log) = running.stop().await;
    assert!(log.contains("demo renderer started"), "{log}");
    assert!(!log.contains('\u{1b}'), "no ANSI escapes when stderr is not a terminal:\n{log}");
    assert!(!log.contains("/admin/v1/videos"), "the renderer's polls are logged at debug only:\n{log}");
}
