//! hookd under test, in a process of its own: this executable started again as
//! `hookd-bench hookd serve ...`, running the same `hookd` library the real binary runs.
//! A separate process makes its CPU seconds and peak RSS hookd's alone, read from
//! `/proc/<pid>`: the tool's own bookkeeping (a million arrivals in scenario d) is not
//! in them.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The first argument that selects the child mode.
pub const CHILD_MODE: &str = "hookd";

pub struct HookdProcess {
    child: Child,
    pid: u32,
    pub base_url: String,
}

impl HookdProcess {
    /// Starts hookd on a loopback port of its choosing, allowed to deliver to loopback
    /// over plain HTTP, and waits until it says where it listens.
    pub async fn start(
        data_dir: &Path,
        admin_token: &str,
        database_url: Option<&str>,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding this executable")?;
        let mut command = Command::new(exe);
        command
            .args([CHILD_MODE, "serve", "--listen", "127.0.0.1:0", "--admin-token", admin_token])
            .args(["--allow-http", "--allow-destination", "127.0.0.0/8"])
            .arg("--data-dir")
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(url) = database_url {
            command.args(["--database-url", url]);
        }
        command.args(extra);
        let mut child = command.spawn().context("starting hookd")?;
        let pid = child.id().context("hookd exited at once")?;
        let stdout = child.stdout.take().context("hookd's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let base_url = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix("hookd: listening on ") {
                    return Ok(url.trim().to_owned());
                }
            }
            bail!("hookd stopped before listening")
        })
        .await
        .context("hookd did not start within 60 s")??;
        // Keep reading so hookd never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self { child, pid, base_url })
    }

    /// CPU seconds (user + system, all threads) hookd has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) else { return 0.0 };
        // Fields after the command name (which is in parentheses): utime is the 12th.
        let Some((_, fields)) = stat.rsplit_once(") ") else { return 0.0 };
        let fields: Vec<&str> = fields.split(' ').collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
        (ticks(11) + ticks(12)) / 100.0 // USER_HZ on Linux
    }

    /// hookd's resident set now (`VmRSS`) or at its peak (`VmHWM`), in MiB.
    pub fn memory_mib(&self, field: &str) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .ok()
            .and_then(|status| {
                let line = status.lines().find(|line| line.starts_with(field))?;
                line.split_whitespace().nth(1)?.parse::<f64>().ok()
            })
            .map_or(0.0, |kib| kib / 1024.0)
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("stopping hookd")
    }
}

/// The child mode: run `hookd serve` as the real binary does (without its log output,
/// which would measure the terminal), until killed.
pub async fn run_child(argv: Vec<String>) -> anyhow::Result<()> {
    use clap::Parser;
    let hookd::Command::Serve(serve) = hookd::Cli::try_parse_from(argv)?.command else {
        bail!("the child mode runs `hookd serve` only")
    };
    let app = hookd::App::build(&serve).await.context("hookd could not start")?;
    println!("hookd: listening on http://{}", app.local_addr()?);
    app.run_until_stopped().await.context("serving")?;
    Ok(())
}
