//! `[admin]`: the admin listener (Prometheus `/metrics`, `/status` for
//! `portico status`).
//!
//! Owns: the accepted keys of `[admin]` and their rules. Receives the raw
//! table from [`super::raw`]; hands on a validated [`Admin`]. Off unless
//! `listen` is set (the embedded dev default sets a loopback port). A
//! non-loopback address is accepted — a scraper on another host may need
//! it — but `portico check` warns, since the page names apps, routes and
//! upstreams and has no authentication.
//!
//! ```toml
//! [admin]
//! listen = "127.0.0.1:9180"
//! ```

use std::net::SocketAddr;

use serde::Deserialize;

use super::ctx::{Ctx, SpStr};
use super::error::ConfigError;

/// `[admin]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmin {
    pub(crate) listen: Option<SpStr>,
}

/// `[admin]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// Where `/metrics` and `/status` are served.
    pub listen: SocketAddr,
}

impl Admin {
    /// Whether only this machine can reach the listener.
    pub fn is_loopback(&self) -> bool {
        self.listen.ip().is_loopback()
    }
}

pub(crate) fn validate(raw: Option<&RawAdmin>, cx: &Ctx<'_>) -> Result<Option<Admin>, ConfigError> {
    let Some(v) = raw.and_then(|r| r.listen.as_ref()) else {
        return Ok(None);
    };
    let s = cx.string("admin.listen", v)?;
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    let listen = full.parse::<SocketAddr>().map_err(|_| {
        cx.err(
            "admin.listen",
            Some(v.span()),
            format!("`{s}` is not an IP address with a port"),
            "write a loopback address such as \"127.0.0.1:9180\" (one port per node on a machine); an empty string turns the admin listener off",
        )
    })?;
    Ok(Some(Admin { listen }))
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};

    fn load(admin: &str) -> Result<Config, ConfigError> {
        let text = format!("[server]\nplain = \"127.0.0.1:0\"\n[tls]\nmode = \"off\"\n{admin}");
        Config::from_str_with_env(&text, "t.toml", &|_| None)
    }

    #[test]
    fn off_unless_set() {
        assert!(load("").unwrap().admin.is_none());
        assert!(load("[admin]\n").unwrap().admin.is_none());
        assert!(load("[admin]\nlisten = \"\"\n").unwrap().admin.is_none());
    }

    #[test]
    fn on_at_a_loopback_port_in_the_embedded_default() {
        let c = Config::embedded().unwrap();
        let a = c.admin.expect("the dev default has an admin listener");
        assert_eq!(a.listen.to_string(), "127.0.0.1:9180");
        assert!(a.is_loopback());
        // A file without [admin] does not inherit it, unlike [server].
        let c = Config::from_str_with_env("[tls]\nmode = \"off\"\n", "t.toml", &|_| None).unwrap();
        assert!(c.admin.is_none());
    }

    #[test]
    fn accepts_addresses() {
        let a = load("[admin]\nlisten = \"127.0.0.1:9180\"\n").unwrap();
        let a = a.admin.unwrap();
        assert_eq!(a.listen.to_string(), "127.0.0.1:9180");
        assert!(a.is_loopback());
        let a = load("[admin]\nlisten = \":9180\"\n")
            .unwrap()
            .admin
            .unwrap();
        assert!(!a.is_loopback());
    }

    #[test]
    fn bad_address_names_key_and_file() {
        for v in ["localhost", "127.0.0.1", "1.2.3.4:x"] {
            let e = load(&format!("[admin]\nlisten = \"{v}\"\n"))
                .expect_err("refused")
                .to_string();
            assert!(
                e.contains("admin.listen") && e.contains("t.toml:6"),
                "{v}: {e}"
            );
        }
    }

    #[test]
    fn unknown_key_is_refused() {
        let e = load("[admin]\nlisten = \"127.0.0.1:1\"\ntoken = \"x\"\n")
            .expect_err("refused")
            .to_string();
        assert!(e.contains("token"), "{e}");
    }
}
