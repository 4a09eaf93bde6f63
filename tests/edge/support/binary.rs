//! The real `portico` binary, run with a config file whose listeners are
//! `127.0.0.1:0` and `log.format = "json"`; the bound addresses are read
//! from its `listening` log lines on stderr.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::{TempDir, WAIT, within};

/// Path of the binary under test.
pub(crate) fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_portico")
}

/// A running `portico run`; killed on drop.
pub(crate) struct Proc {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    /// Every stderr line read so far (for failure messages).
    pub(crate) history: Vec<String>,
    pub(crate) config: PathBuf,
    pub(crate) plain: Option<SocketAddr>,
    pub(crate) https: Option<SocketAddr>,
    /// The `[admin]` listener, when `listeners` named `admin`.
    pub(crate) admin: Option<SocketAddr>,
    _dir: TempDir,
}

/// Writes `toml` to a config file and starts `portico run --config` on it,
/// waiting for a `listening` line per listener named in `listeners`
/// (`plain`, `https`, `admin`).
pub(crate) async fn start(toml: &str, listeners: &[&str]) -> Proc {
    start_with_env(toml, listeners, &[]).await
}

/// Like [`start`], with extra environment variables.
pub(crate) async fn start_with_env(toml: &str, listeners: &[&str], env: &[(&str, &str)]) -> Proc {
    let dir = TempDir::new("bin");
    let config = dir.path().join("portico.toml");
    std::fs::write(&config, toml).expect("write config");
    let mut child = Command::new(exe())
        .arg("run")
        .arg("--config")
        .arg(&config)
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env_remove("PORTICO_CONFIG")
        .env_remove("PORTICO_WORKERS")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn portico");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, lines) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut r = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = r.next_line().await {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut p = Proc {
        child,
        lines,
        history: Vec::new(),
        config,
        plain: None,
        https: None,
        admin: None,
        _dir: dir,
    };
    for _ in listeners {
        let v = p
            .wait_log("a `listening` line", |v| {
                v["fields"]["message"] == "listening"
            })
            .await;
        let addr: SocketAddr = v["fields"]["addr"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("listening line without addr: {v}"));
        match v["fields"]["listener"].as_str() {
            Some("plain") => p.plain = Some(addr),
            Some("https") => p.https = Some(addr),
            Some("admin") => p.admin = Some(addr),
            other => panic!("unexpected listener {other:?}"),
        }
    }
    p
}

impl Proc {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Sends `signal` (e.g. `HUP`, `TERM`) to the process.
    pub(crate) fn signal(&self, signal: &str) {
        let ok = std::process::Command::new("kill")
            .arg("-s")
            .arg(signal)
            .arg(self.pid().to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -s {signal} failed");
    }

    /// Rewrites the config file (for a reload).
    pub(crate) fn rewrite_config(&self, toml: &str) {
        std::fs::write(&self.config, toml).expect("rewrite config");
    }

    pub(crate) fn config_path(&self) -> &Path {
        &self.config
    }

    /// Reads JSON log lines until one satisfies `pred` (bounded by [`WAIT`]).
    pub(crate) async fn wait_log(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_log_for(what, WAIT, pred).await
    }

    /// [`Proc::wait_log`] bounded by `limit` instead.
    pub(crate) async fn wait_log_for(
        &mut self,
        what: &str,
        limit: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let line = match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(l)) => l,
                Ok(None) => panic!("portico exited before logging {what}; log:\n{}", self.log()),
                Err(_) => panic!("no log line {what} within {limit:?}; log:\n{}", self.log()),
            };
            self.history.push(line.clone());
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && pred(&v)
            {
                return v;
            }
        }
    }

    pub(crate) fn log(&self) -> String {
        self.history.join("\n")
    }

    /// Waits for the process to exit within `limit`.
    pub(crate) async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(s) => s.expect("wait"),
            Err(_) => {
                while let Ok(l) = self.lines.try_recv() {
                    self.history.push(l);
                }
                panic!(
                    "portico did not exit within {limit:?}; log:\n{}",
                    self.log()
                )
            }
        }
    }
}

/// Runs `portico ARGS` to completion (bounded), returning (status, stdout, stderr).
pub(crate) async fn run_cmd(args: &[&str], cwd: &Path) -> (ExitStatus, String, String) {
    let out = within(
        "portico command",
        Command::new(exe())
            .args(args)
            .current_dir(cwd)
            .env_remove("RUST_LOG")
            .env_remove("PORTICO_CONFIG")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("run portico");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
