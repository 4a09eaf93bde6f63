//! `portico status`: asks a running portico's admin listener for
//! `/status` and prints it as a short report (or as the JSON, `--json`).
//!
//! Owns: the request (one HTTP/1.1 GET over hyper, bounded in time), the
//! errors a user sees when nothing answers, and the report's layout.
//! Receives: the admin address. Hands on: text for stdout.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

use crate::admin::status::Status;

/// The bound on connecting and on the whole answer.
const DEADLINE: Duration = Duration::from_secs(5);

/// Why `portico status` got no status.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// Nothing accepted the connection.
    #[error(
        "cannot reach the admin listener at {addr}: {source}\n  is portico running? Is the admin listener enabled? Set `[admin] listen = \"{addr}\"` in the config (or pass --admin ADDR)"
    )]
    Unreachable {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The config has no `[admin]` and no `--admin` was given.
    #[error(
        "{config}: the admin listener is not enabled: set [admin] listen = \"127.0.0.1:9180\" (then restart portico), or pass --admin ADDR"
    )]
    NotEnabled { config: String },
    /// Something answered, but not with a status document.
    #[error("the admin listener at {addr} answered, but not with portico's status: {detail}")]
    BadAnswer { addr: SocketAddr, detail: String },
    /// No full answer within [`DEADLINE`].
    #[error("the admin listener at {addr} did not answer within {DEADLINE:?}")]
    Timeout { addr: SocketAddr },
}

/// Fetches `/status` from `addr`: the raw JSON and the parsed document.
pub async fn fetch(addr: SocketAddr) -> Result<(String, Status), StatusError> {
    match tokio::time::timeout(DEADLINE, fetch_inner(addr)).await {
        Ok(r) => r,
        Err(_) => Err(StatusError::Timeout { addr }),
    }
}

async fn fetch_inner(addr: SocketAddr) -> Result<(String, Status), StatusError> {
    let bad = |detail: String| StatusError::BadAnswer { addr, detail };
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|source| StatusError::Unreachable { addr, source })?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| bad(e.to_string()))?;
    let conn = tokio::spawn(conn);
    let req = http::Request::get("/status")
        .header(http::header::HOST, addr.to_string())
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| bad(e.to_string()))?;
    let resp = send
        .send_request(req)
        .await
        .map_err(|e| bad(e.to_string()))?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| bad(e.to_string()))?
        .to_bytes();
    conn.abort();
    if !status.is_success() {
        return Err(bad(format!("HTTP {status}")));
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    let doc: Status = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    Ok((text, doc))
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// A duration in seconds as `3d 4h`, `5h 6m`, `7m 8s` or `9s`.
fn human(secs: i64) -> String {
    let neg = secs < 0;
    let s = secs.unsigned_abs();
    let text = match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    };
    if neg { format!("-{text}") } else { text }
}

/// The readable report.
pub fn render(s: &Status) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "portico {} (pid {}), up {}, config {}",
        s.version,
        s.pid,
        human(i64::try_from(s.uptime_seconds).unwrap_or(i64::MAX)),
        s.config
    );
    let _ = writeln!(o, "listeners:");
    for l in &s.listeners {
        let _ = writeln!(o, "  {:<6} {}", l.name, l.addr);
    }
    let _ = writeln!(o, "tls: {}", s.tls);
    if !s.certificates.is_empty() {
        let _ = writeln!(o, "certificates:");
        for c in &s.certificates {
            let left = if c.expires_in_seconds < 0 {
                format!("EXPIRED {} ago", human(-c.expires_in_seconds))
            } else {
                format!("expires in {}", human(c.expires_in_seconds))
            };
            let _ = writeln!(o, "  {}: {left} ({})", c.names.join(", "), c.not_after);
        }
    }
    let _ = writeln!(o, "routes (first match wins):");
    for r in &s.routes {
        let host = r.host.as_deref().unwrap_or("*");
        let _ = writeln!(o, "  {host}{} -> {}", r.path, r.to);
    }
    if s.apps.is_empty() {
        let _ = writeln!(o, "apps: none");
    } else {
        let _ = writeln!(o, "apps:");
        for a in &s.apps {
            let key = a
                .key
                .as_deref()
                .map_or(String::new(), |k| format!(" key={k}"));
            let _ = writeln!(
                o,
                "  {} {}{key}: {} connection(s), {} channel(s), {} subscription(s); messages in {}, out {}, dropped {}",
                a.protocol,
                a.id,
                a.connections,
                a.channels,
                a.subscriptions,
                a.messages_in,
                a.messages_out,
                a.fanout_drops
            );
        }
    }
    if !s.upstreams.is_empty() {
        let _ = writeln!(o, "upstreams:");
        for u in &s.upstreams {
            let health = if u.reachable {
                "reachable".to_string()
            } else {
                format!("UNREACHABLE ({})", u.error.as_deref().unwrap_or("?"))
            };
            let _ = writeln!(
                o,
                "  {} ({}) for {}: {health}",
                u.url,
                u.kind,
                u.routes.join(", ")
            );
        }
    }
    if !s.processes.is_empty() {
        let _ = writeln!(o, "processes:");
        for p in &s.processes {
            let pid = p.pid.map_or("-".to_string(), |p| p.to_string());
            let last = p
                .last_exit
                .as_deref()
                .map_or(String::new(), |e| format!(", last exit: {e}"));
            let _ = writeln!(
                o,
                "  {}: pid {pid}, running {}, ready {}, {} restart(s){last}",
                p.name,
                yes_no(p.running),
                yes_no(p.ready),
                p.restarts
            );
        }
    }
    match &s.cluster {
        None => {
            let _ = writeln!(o, "cluster: off (one node)");
        }
        Some(c) => {
            let _ = writeln!(
                o,
                "cluster: node {} on {} prefix \"{}\": link {}; published {}, received {}, dropped {}, missed {}, reconnects {}, buffered {}",
                c.node_id,
                c.redis,
                c.prefix,
                if c.up { "up" } else { "DOWN" },
                c.published,
                c.received,
                c.dropped,
                c.missed,
                c.reconnects,
                c.buffered
            );
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn durations_read_well() {
        assert_eq!(human(5), "5s");
        assert_eq!(human(65), "1m 5s");
        assert_eq!(human(3 * 3600 + 120), "3h 2m");
        assert_eq!(human(90 * 86400 + 3600), "90d 1h");
        assert_eq!(human(-30), "-30s");
    }
}
