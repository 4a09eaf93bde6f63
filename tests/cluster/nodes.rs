//! A real `redis-server` on an ephemeral loopback port (no persistence,
//! in a temp dir) and real portico nodes (the binary, `crate::binary`)
//! pointing at it with `[cluster]`.

use std::net::{SocketAddr, TcpListener};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::binary::{self, Proc};
use crate::inproc::TempDir;
use crate::support::{APP, QUIET, WAIT};

/// Whether `redis-server` is installed; the tests skip (with a message)
/// only when it is not. `scripts/test` installs it.
pub(crate) fn have_redis() -> bool {
    let found = std::process::Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!(
            "SKIP: redis-server is not installed (apt-get install redis-server; scripts/test does)"
        );
    }
    found
}

/// A running `redis-server`; killed on drop.
pub(crate) struct Redis {
    child: Option<Child>,
    pub(crate) port: u16,
    dir: TempDir,
}

impl Redis {
    /// Starts one on a free loopback port.
    pub(crate) async fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut r = Redis {
            child: None,
            port,
            dir: TempDir::new("redis"),
        };
        r.restart().await;
        r
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on the same port, and waits for `PONG`.
    pub(crate) async fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        // Bounded: 100 tries 50 ms apart.
        for _ in 0..100 {
            if ping(addr).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server on {addr} did not answer PING");
    }

    /// Kills it (a Redis outage) and waits until it is gone.
    pub(crate) async fn stop(&mut self) {
        let mut c = self.child.take().expect("running");
        c.start_kill().expect("kill redis-server");
        let _ = tokio::time::timeout(WAIT, c.wait()).await;
    }
}

/// Whether something on `addr` answers `PING` with `+PONG`.
async fn ping(addr: SocketAddr) -> bool {
    let Ok(Ok(mut s)) = tokio::time::timeout(WAIT, TcpStream::connect(addr)).await else {
        return false;
    };
    if s.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    matches!(
        tokio::time::timeout(WAIT, s.read_exact(&mut buf)).await,
        Ok(Ok(_))
    ) && &buf == b"+PONG\r\n"
}

/// A node's config: plain listener, JSON logs, the test apps, `[cluster]`
/// on `redis` with `prefix` and a 3 s lease.
pub(crate) fn node_config(redis: &str, prefix: &str) -> String {
    node_config_with(redis, prefix, None)
}

/// Like [`node_config`], with [`APP`]'s webhooks posted to `webhook`.
pub(crate) fn node_config_with(redis: &str, prefix: &str, webhook: Option<&str>) -> String {
    let webhooks = webhook
        .map(|u| format!("\n[[apps.webhooks]]\nurl = \"{u}\"\n"))
        .unwrap_or_default();
    format!(
        r#"
[server]
plain = "127.0.0.1:0"
grace_period = "1s"

[tls]
mode = "off"

[upstream]
url = "http://127.0.0.1:9"

[log]
format = "json"
access = false
level = "info"

[[apps]]
id = "{}"
key = "{}"
secret = "{}"
client_events = true
{webhooks}
[[apps]]
id = "{}"
key = "{}"
secret = "{}"

[pusher]
drain_spread = "1s"

[supabase]
jwt_secrets = ["super-secret-jwt-token-with-at-least-32-characters-long"]
api_keys = {{ sb_publishable_test = "anon", sb_secret_test = "service_role" }}

[supabase.limits]
join_error_delay = "0s"
handshake_error_delay = "0s"

[cluster]
redis = "{redis}"
prefix = "{prefix}"
lease = "3s"
heartbeat = "1s"
"#,
        APP.id, APP.key, APP.secret, QUIET.id, QUIET.key, QUIET.secret
    )
}

/// A node whose link to Redis is up.
pub(crate) struct Node {
    pub(crate) proc: Proc,
}

impl Node {
    pub(crate) fn addr(&self) -> SocketAddr {
        self.proc.plain.expect("plain listener")
    }

    /// Waits for the first `cluster link up` (it may have been logged
    /// before the `listening` line).
    pub(crate) async fn wait_up(&mut self) {
        let is_up = |v: &serde_json::Value| v["fields"]["message"] == "cluster link up";
        let seen = self
            .proc
            .history
            .iter()
            .any(|l| serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| is_up(&v)));
        if !seen {
            self.proc.wait_log("`cluster link up`", is_up).await;
        }
    }

    /// Waits for a later log line of a link transition starting with
    /// `starts` (`"cluster link down"`, `"cluster link up again"`).
    pub(crate) async fn wait_link(&mut self, starts: &str) {
        self.proc
            .wait_log(&format!("`{starts}`"), |v| {
                v["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(starts))
            })
            .await;
    }
}

/// Starts `n` nodes on `redis` with `prefix`, each with its link up.
pub(crate) async fn nodes(redis: &Redis, prefix: &str, n: usize) -> Vec<Node> {
    nodes_with(redis, prefix, n, None).await
}

/// Like [`nodes`], posting [`APP`]'s webhooks to `webhook`.
pub(crate) async fn nodes_with(
    redis: &Redis,
    prefix: &str,
    n: usize,
    webhook: Option<&str>,
) -> Vec<Node> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let config = node_config_with(&redis.url(), prefix, webhook);
        let proc = binary::start(&config, &["plain"]).await;
        out.push(Node { proc });
    }
    for node in &mut out {
        node.wait_up().await;
    }
    out
}
