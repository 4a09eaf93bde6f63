//! The short startup banner: URLs, routes, and (in dev mode) where the dev CA
//! is and the one command that trusts it.

use std::fmt::Write as _;

use crate::config::{Config, Tls};
use crate::listener::Listeners;

fn url(scheme: &str, addr: std::net::SocketAddr) -> String {
    let host = if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        "localhost".to_string()
    } else {
        addr.ip().to_string()
    };
    let default =
        (scheme == "https" && addr.port() == 443) || (scheme == "http" && addr.port() == 80);
    if default {
        format!("{scheme}://{host}")
    } else {
        format!("{scheme}://{host}:{}", addr.port())
    }
}

/// The banner text (printed to stderr by `portico run`).
pub fn render(cfg: &Config, listeners: &Listeners) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nportico {} — config: {}",
        env!("CARGO_PKG_VERSION"),
        cfg.source
    );
    let [(_, https), (_, http), (_, plain)] = listeners.addrs();
    if let Some(a) = https {
        let _ = writeln!(s, "  https  {}", url("https", a));
    }
    if let Some(a) = http {
        let what = if https.is_some() {
            "redirects to https"
        } else {
            "serves the app"
        };
        let _ = writeln!(s, "  http   {}   ({what})", url("http", a));
    }
    if let Some(a) = plain {
        let _ = writeln!(
            s,
            "  plain  {}   (HTTP + WebSocket, no TLS)",
            url("http", a)
        );
    }
    let _ = writeln!(s, "  routes (first match wins):");
    for r in &cfg.routes {
        let _ = writeln!(s, "    {r}");
    }
    let _ = writeln!(s, "  health {}", cfg.server.health_path);
    if let Tls::Dev { dir, .. } = &cfg.tls {
        let ca = dir.join(crate::tls::dev::CA_CERT_FILE);
        let _ = writeln!(s, "  dev CA {}", ca.display());
        let _ = writeln!(s, "  {}", crate::tls::trust_one_liner(&ca));
    }
    s
}
