//! `GET /.portico/info`: what the diagnostics page needs to run its checks
//! — the listener it came in on, the certificate portico serves for this
//! host, the default app key, the WebSocket paths, the app's auth path and
//! whether the Supabase front is on. No secret is in it: an app key and a
//! Supabase publishable (`anon`) key are public by design.

use std::net::IpAddr;
use std::time::SystemTime;

use serde_json::{Value, json};

use super::super::ConnInfo;
use super::super::stack::Stack;
use crate::config::{Config, Target, Tls};
use crate::http::ListenerKind;

pub(super) fn info(cfg: &Config, stack: &Stack, conn: &ConnInfo, host: Option<&str>) -> Value {
    let tls_mode = match &cfg.tls {
        Tls::Off => "off",
        Tls::Dev { .. } => "dev",
        Tls::Files { .. } => "files",
        Tls::Acme(_) => "acme",
    };
    let certificate = (conn.kind == ListenerKind::Https)
        .then(|| {
            // An IP address is never sent as SNI.
            let sni = host.filter(|h| h.parse::<IpAddr>().is_err());
            stack.tls().certificate_for(sni)
        })
        .flatten()
        .map(|c| {
            let now = SystemTime::now();
            let left = c
                .not_after
                .duration_since(now)
                .map(|d| d.as_secs() as i64)
                .unwrap_or_else(|e| -(e.duration().as_secs() as i64));
            json!({
                "subject": c.common_name,
                "issuer": c.issuer,
                "names": c.dns_names.iter().cloned()
                    .chain(c.ip_addrs.iter().map(ToString::to_string))
                    .collect::<Vec<_>>(),
                "not_after": humantime::format_rfc3339_seconds(c.not_after).to_string(),
                "expires_in_days": left / 86_400,
            })
        });
    let prefix = cfg.apps.front.path_prefix.as_deref().unwrap_or("");
    let default_key = cfg
        .apps
        .apps
        .iter()
        .find(|a| a.enabled)
        .map(|a| a.key.to_string());
    let supabase_path = cfg
        .routes
        .iter()
        .find(|r| matches!(r.target, Target::Supabase))
        .map(|r| format!("{}/websocket", r.path.trim_end_matches('/')));
    let supabase_key = cfg.supabase.as_ref().and_then(|s| {
        let mut anon: Vec<&str> = s
            .api_keys
            .iter()
            .filter(|(_, role)| &***role == "anon")
            .map(|(k, _)| &**k)
            .collect();
        anon.sort_unstable();
        anon.first().map(|k| k.to_string())
    });
    json!({
        "listener": conn.kind.name(),
        "tls_mode": tls_mode,
        "certificate": certificate,
        "pusher": {
            "default_key": default_key,
            "apps": cfg.apps.apps.len(),
            "ws_prefix": format!("{prefix}/app/"),
        },
        "auth_endpoint": &*cfg.diagnostics.auth_endpoint,
        "supabase": {
            "enabled": cfg.supabase.is_some(),
            "ws_path": supabase_path,
            "apikey": supabase_key,
        },
        "channel_prefix": super::CHANNEL_PREFIX,
        "event": super::EVENT,
    })
}
