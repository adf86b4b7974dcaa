//! The signature examples the portal shows are run, in their own languages, against a
//! real delivery: each must accept it and refuse it once the body is changed. Each runs
//! where its language is installed; CI installs and requires all three.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::TestApp;
use crate::support::receiver::TestReceiver;

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../hookd-api/src/portal/assets/examples.js");

fn have(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok_and(|out| out.status.success())
}

/// The examples, read by Node from the very module the portal serves.
fn examples() -> Value {
    let script = format!(
        "import({:?}).then(m => console.log(JSON.stringify(m.EXAMPLES)))",
        format!("file://{EXAMPLES}")
    );
    let out = Command::new("node").args(["--input-type=module", "-e", &script]).output().expect("node runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the examples as JSON")
}

/// Runs `program file` where the file is `code` followed by `harness`; returns its output.
fn run(dir: &Path, program: &str, file: &str, code: &str, harness: &str) -> String {
    let path = dir.join(file);
    std::fs::write(&path, format!("{code}\n\n{harness}\n")).expect("write");
    let out = Command::new(program).arg(&path).current_dir(dir).output().expect("run");
    assert!(out.status.success(), "{program} {file}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

const PYTHON_HARNESS: &str = r#"
import json, sys
class Headers(dict):
    def __getitem__(self, name):
        return dict.__getitem__(self, name.lower())
headers = Headers(json.load(open("headers.json")))
secret = open("secret").read()
print(verify(open("body", "rb").read(), headers, secret), verify(open("tampered", "rb").read(), headers, secret))
"#;

const NODE_HARNESS: &str = r#"
const fs = require("node:fs");
const headers = JSON.parse(fs.readFileSync("headers.json"));
const secret = fs.readFileSync("secret", "utf8");
console.log(verify(fs.readFileSync("body"), headers, secret), verify(fs.readFileSync("tampered"), headers, secret));
"#;

const GO_HARNESS: &str = r#"
func main() {
	raw, _ := os.ReadFile("headers.json")
	var named map[string]string
	if err := json.Unmarshal(raw, &named); err != nil {
		panic(err)
	}
	headers := http.Header{}
	for name, value := range named {
		headers.Set(name, value)
	}
	secret, _ := os.ReadFile("secret")
	body, _ := os.ReadFile("body")
	tampered, _ := os.ReadFile("tampered")
	fmt.Println(Verify(body, headers, string(secret)), Verify(tampered, headers, string(secret)))
}
"#;

/// The harness's own imports, which Go wants before any other declaration.
const GO_PRELUDE: &str = "package main\n\nimport (\n\t\"encoding/json\"\n\t\"fmt\"\n\t\"os\"\n)\n\n";

#[tokio::test]
async fn the_portals_signature_examples_accept_a_real_delivery_and_refuse_a_changed_one() {
    let (python, node) = (have("python3"), have("node"));
    if !(python && node) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI needs python3 and node to run the portal's examples"
        );
        eprintln!("skipped: the portal's signature examples need python3 and node");
        return;
    }
    let mut receiver = TestReceiver::start().await;
    let app = TestApp::spawn().await;
    let endpoint = app.create_endpoint(json!({"url": receiver.url("/examples")})).await;
    let secret = endpoint["secret"].as_str().expect("secret").to_owned();
    let account = std::fs::read_to_string(app.data_dir().join("default-account-id")).expect("account");
    app.publish(json!({"account_id": account.trim(), "event_type": "avatar_video.success",
                       "event_data": {"video_id": "v1", "note": "ünïcode and \"quotes\""}}))
        .await;
    let delivery = receiver.next().await;

    let dir = tempfile::tempdir().expect("temp dir");
    let headers: serde_json::Map<String, Value> =
        ["heygen-signature", "webhook-id", "webhook-timestamp", "webhook-signature"]
            .iter()
            .map(|name| ((*name).to_owned(), Value::String(delivery.header(name).to_owned())))
            .collect();
    std::fs::write(dir.path().join("headers.json"), Value::Object(headers).to_string()).expect("headers");
    std::fs::write(dir.path().join("secret"), &secret).expect("secret");
    std::fs::write(dir.path().join("body"), &delivery.body).expect("body");
    let mut tampered = delivery.body.to_vec();
    tampered.extend_from_slice(b" ");
    std::fs::write(dir.path().join("tampered"), tampered).expect("tampered");

    let examples = examples();
    for scheme in ["Heygen-Signature", "Standard Webhooks"] {
        let code = examples["Python"][scheme].as_str().expect("python example");
        assert_eq!(
            run(dir.path(), "python3", "verify.py", code, PYTHON_HARNESS),
            "True False",
            "Python, {scheme}"
        );
        let code = examples["Node"][scheme].as_str().expect("node example");
        assert_eq!(run(dir.path(), "node", "verify.cjs", code, NODE_HARNESS), "true false", "Node, {scheme}");
    }
    if !have_go() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI needs go to run the portal's Go examples");
        eprintln!("not run: the portal's Go examples (no go on the PATH)");
        return;
    }
    for scheme in ["Heygen-Signature", "Standard Webhooks"] {
        let code = format!("{GO_PRELUDE}{}", examples["Go"][scheme].as_str().expect("go example"));
        let path = dir.path().join("verify.go");
        std::fs::write(&path, format!("{code}\n{GO_HARNESS}")).expect("write");
        let out =
            Command::new("go").args(["run", "verify.go"]).current_dir(dir.path()).output().expect("go run");
        assert!(out.status.success(), "go, {scheme}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "true false", "Go, {scheme}");
    }
}

fn have_go() -> bool {
    Command::new("go").arg("version").output().is_ok_and(|out| out.status.success())
}
