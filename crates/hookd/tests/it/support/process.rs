//! The real `hookd` binary as a child process, with its output captured.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

pub const HOOKD: &str = env!("CARGO_BIN_EXE_hookd");
/// A safety net against a hung process, never an assertion about speed.
pub const STARTUP_LIMIT: Duration = Duration::from_secs(60);

/// A running `hookd serve` whose stdout and stderr are captured.
pub struct RunningBinary {
    pub child: Child,
    pub base_url: String,
    pub stdout: Arc<Mutex<String>>,
    pub stderr: Arc<Mutex<String>>,
}

pub fn command(args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut command = Command::new(HOOKD);
    command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    for (name, value) in envs {
        command.env(name, value);
    }
    command
}

pub fn capture(
    stream: impl AsyncRead + Unpin + Send + 'static,
    into: Arc<Mutex<String>>,
    listening: Option<tokio::sync::oneshot::Sender<String>>,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        let mut listening = listening;
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(address) = line.strip_prefix("hookd: listening on ")
                && let Some(sender) = listening.take()
            {
                let _ = sender.send(address.to_owned());
            }
            let mut captured = into.lock().expect("capture lock");
            captured.push_str(&line);
            captured.push('\n');
        }
    });
}

impl RunningBinary {
    pub async fn start(data_dir: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Self {
        let data_dir = data_dir.to_str().expect("utf-8");
        let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir];
        args.extend_from_slice(extra);
        let mut child = command(&args, envs).spawn().expect("spawn hookd");
        let (stdout, stderr) = (Arc::new(Mutex::new(String::new())), Arc::new(Mutex::new(String::new())));
        let (sender, receiver) = tokio::sync::oneshot::channel();
        capture(child.stdout.take().expect("stdout"), stdout.clone(), Some(sender));
        capture(child.stderr.take().expect("stderr"), stderr.clone(), None);
        let base_url = tokio::time::timeout(STARTUP_LIMIT, receiver)
            .await
            .expect("hookd printed its address")
            .unwrap_or_else(|_| panic!("hookd exited: {}", stderr.lock().expect("lock")));
        Self { child, base_url, stdout, stderr }
    }

    /// SIGTERM, then the exit status and everything the process printed.
    pub async fn stop(mut self) -> (std::process::ExitStatus, String, String) {
        let pid = self.child.id().expect("running");
        let status =
            std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
        assert!(status.success());
        let exit =
            tokio::time::timeout(STARTUP_LIMIT, self.child.wait()).await.expect("exits").expect("wait");
        // Let the capture tasks read the last lines.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stdout = self.stdout.lock().expect("lock").clone();
        let stderr = self.stderr.lock().expect("lock").clone();
        (exit, stdout, stderr)
    }
}

impl RunningBinary {
    /// SIGKILL: no shutdown, no flush, as a crash or an OOM kill would do.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL");
        let _ = self.child.wait().await;
    }
}
