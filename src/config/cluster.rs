//! `[cluster]`: several portico nodes sharing one Redis are one hub.
//!
//! Owns: the accepted keys of `[cluster]` and every rule about them — the
//! Redis URL (`redis://`, `rediss://` for TLS, `unix://`; user, password
//! and database in the URL, checked by the Redis client's own parser so a
//! URL accepted here is one it can use) and the `prefix` that namespaces
//! every Redis key and channel. Receives the raw table from [`super::raw`];
//! hands a validated [`Cluster`] (plain data) to the cluster module, which
//! builds the link from it.
//!
//! ```toml
//! [cluster]
//! redis  = "redis://:${REDIS_PASSWORD}@10.0.0.5:6379/2"   # or rediss://user:pw@host/0
//! prefix = "myapp-production"                           # default "portico"
//! lease  = "15s"        # a node silent this long is dead and reaped
//! heartbeat = "5s"      # how often a node renews its lease (< lease)
//! ```
//!
//! The prefix has a stable default (`"portico"`), not one derived from the
//! apps, so adding an app on reload never splits a rolling deployment; it
//! is optional so one deployment per Redis needs no setting, and
//! `portico check` warns while it is left at the default, because two
//! deployments sharing a Redis (staging and production often share app
//! ids) must each set their own. `[cluster]` is read at start only: a
//! reload keeps the running cluster settings and logs that it did.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::ctx::{Ctx, SpStr};
use super::error::ConfigError;

/// The prefix used when `[cluster] prefix` is absent.
pub const DEFAULT_PREFIX: &str = "portico";

/// The node lease when `[cluster] lease` is absent.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);
/// The lease renewal interval when `[cluster] heartbeat` is absent.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);

/// Longest accepted prefix.
const MAX_PREFIX: usize = 64;

/// `[cluster]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCluster {
    pub(crate) redis: Option<SpStr>,
    pub(crate) prefix: Option<SpStr>,
    pub(crate) lease: Option<SpStr>,
    pub(crate) heartbeat: Option<SpStr>,
}

/// `[cluster]`, validated.
#[derive(Clone, PartialEq, Eq)]
pub struct Cluster {
    /// The Redis URL as configured (`${VAR}` expanded); holds the password,
    /// so it is never printed: see [`Cluster::redis_display`].
    pub redis: Arc<str>,
    /// Namespace of every Redis key and channel.
    pub prefix: Arc<str>,
    /// Whether `prefix` was left at [`DEFAULT_PREFIX`].
    pub prefix_is_default: bool,
    /// How long a node's lease lasts without renewal: a node silent this
    /// long is dead, and its members and subscriptions are reaped.
    pub lease: Duration,
    /// How often a node renews its lease (shorter than `lease`).
    pub heartbeat: Duration,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("redis", &self.redis_display())
            .field("prefix", &self.prefix)
            .field("lease", &self.lease)
            .field("heartbeat", &self.heartbeat)
            .finish()
    }
}

impl Cluster {
    /// The Redis URL with its password replaced by `<hidden>`.
    pub fn redis_display(&self) -> String {
        hide_password(&self.redis)
    }
}

/// `url` with the password of its userinfo (`user:pw@`) replaced.
fn hide_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, host) = match rest.rfind('@') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:<hidden>@{host}"),
        None => url.to_string(),
    }
}

/// Whether `c` may appear in a prefix: letters, digits and `-_.:`, so a
/// prefix is never a glob pattern (`*?[]`) in `PSUBSCRIBE`/`SCAN`.
fn prefix_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')
}

pub(crate) fn validate(
    raw: Option<&Spanned<RawCluster>>,
    cx: &Ctx<'_>,
) -> Result<Option<Arc<Cluster>>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let span = raw.span();
    let raw = raw.get_ref();
    let Some(r) = raw.redis.as_ref() else {
        return Err(cx.err(
            "cluster.redis",
            Some(span),
            "`[cluster]` needs the Redis every node shares",
            "add `redis = \"redis://host:6379\"` (rediss:// for TLS), or remove `[cluster]` to run one node",
        ));
    };
    let url = cx.string("cluster.redis", r)?;
    let url = url.trim();
    let scheme_ok = ["redis://", "rediss://", "unix://", "redis+unix://"]
        .iter()
        .any(|s| url.starts_with(s));
    if !scheme_ok {
        return Err(cx.err(
            "cluster.redis",
            Some(r.span()),
            format!("`{}` is not a Redis URL", hide_password(url)),
            "write redis://[user:password@]host:port[/db], rediss://… for TLS, or unix:///path/to/redis.sock",
        ));
    }
    if let Err(e) = redis::IntoConnectionInfo::into_connection_info(url) {
        return Err(cx.err(
            "cluster.redis",
            Some(r.span()),
            format!("`{}` is not a usable Redis URL: {e}", hide_password(url)),
            "write redis://[user:password@]host:port[/db] (percent-encode special characters in the password)",
        ));
    }
    let prefix = match raw.prefix.as_ref() {
        None => DEFAULT_PREFIX.to_string(),
        Some(p) => {
            let s = cx.string("cluster.prefix", p)?;
            if s.is_empty() || s.len() > MAX_PREFIX || !s.chars().all(prefix_char) {
                return Err(cx.err(
                    "cluster.prefix",
                    Some(p.span()),
                    format!("`{s}` is not a usable prefix"),
                    format!(
                        "use 1 to {MAX_PREFIX} letters, digits, `-`, `_`, `.` or `:`, e.g. \"myapp-production\""
                    ),
                ));
            }
            s
        }
    };
    let prefix_is_default = prefix == DEFAULT_PREFIX;
    let lease = cx.duration_or("cluster.lease", raw.lease.as_ref(), DEFAULT_LEASE)?;
    let heartbeat = cx.duration_or(
        "cluster.heartbeat",
        raw.heartbeat.as_ref(),
        DEFAULT_HEARTBEAT,
    )?;
    if heartbeat.is_zero() || heartbeat >= lease {
        let (key, v) = match &raw.lease {
            Some(l) => ("cluster.lease", Some(l)),
            None => ("cluster.heartbeat", raw.heartbeat.as_ref()),
        };
        return Err(cx.err(
            key,
            v.map(|v| v.span()).or(Some(span)),
            format!("the lease ({lease:?}) must be longer than the heartbeat ({heartbeat:?}) that renews it"),
            "make `lease` about three heartbeats, e.g. lease = \"15s\" with heartbeat = \"5s\"",
        ));
    }
    Ok(Some(Arc::new(Cluster {
        redis: Arc::from(url),
        prefix: Arc::from(prefix),
        prefix_is_default,
        lease,
        heartbeat,
    })))
}

#[cfg(test)]
mod tests {
    use super::{DEFAULT_HEARTBEAT, DEFAULT_LEASE};
    use crate::config::{Config, ConfigError};
    use std::time::Duration;

    fn load(cluster: &str) -> Result<Config, ConfigError> {
        let text = format!("[server]\nplain = \"127.0.0.1:0\"\n[tls]\nmode = \"off\"\n{cluster}");
        Config::from_str_with_env(&text, "t.toml", &|k| {
            (k == "PW").then(|| "s3cret".to_string())
        })
    }

    fn err(cluster: &str) -> String {
        load(cluster).expect_err("must be refused").to_string()
    }

    #[test]
    fn absent_is_single_node() {
        assert!(load("").unwrap().cluster.is_none());
    }

    #[test]
    fn accepts_urls_with_user_password_db_and_tls() {
        for url in [
            "redis://127.0.0.1:6379",
            "redis://:${PW}@10.0.0.5:6380/2",
            "rediss://user:pw@redis.example.com/0",
            "unix:///run/redis.sock",
        ] {
            let c = load(&format!("[cluster]\nredis = \"{url}\"\n")).unwrap();
            let c = c.cluster.expect("cluster");
            assert_eq!(&*c.prefix, "portico");
            assert!(c.prefix_is_default);
            assert!(!c.redis_display().contains("s3cret"), "{url}");
        }
        let c = load("[cluster]\nredis = \"redis://:${PW}@h:1/2\"\nprefix = \"app-prod\"\n")
            .unwrap()
            .cluster
            .unwrap();
        assert_eq!(&*c.redis, "redis://:s3cret@h:1/2");
        assert_eq!(c.redis_display(), "redis://:<hidden>@h:1/2");
        assert_eq!(&*c.prefix, "app-prod");
        assert!(!c.prefix_is_default);
    }

    #[test]
    fn missing_redis_is_refused() {
        let e = err("[cluster]\nprefix = \"x\"\n");
        assert!(e.contains("cluster.redis") && e.contains("t.toml"), "{e}");
    }

    #[test]
    fn bad_urls_are_refused() {
        for url in ["http://h:6379", "127.0.0.1:6379", "redis://h:notaport", ""] {
            let e = err(&format!("[cluster]\nredis = \"{url}\"\n"));
            assert!(
                e.contains("cluster.redis") && e.contains("t.toml:6"),
                "{url}: {e}"
            );
        }
    }

    #[test]
    fn bad_password_is_not_echoed() {
        let e = err("[cluster]\nredis = \"http://u:s3cret@h\"\n");
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn bad_prefixes_are_refused() {
        let long = "p".repeat(65);
        for p in ["", "a b", "app*", "x[1]", long.as_str()] {
            let e = err(&format!(
                "[cluster]\nredis = \"redis://h\"\nprefix = \"{p}\"\n"
            ));
            assert!(
                e.contains("cluster.prefix") && e.contains("t.toml:7"),
                "{p}: {e}"
            );
        }
    }

    #[test]
    fn lease_defaults_and_must_outlast_the_heartbeat() {
        let c = load("[cluster]\nredis = \"redis://h\"\n")
            .unwrap()
            .cluster
            .unwrap();
        assert_eq!((c.lease, c.heartbeat), (DEFAULT_LEASE, DEFAULT_HEARTBEAT));
        let c = load("[cluster]\nredis = \"redis://h\"\nlease = \"3s\"\nheartbeat = \"1s\"\n")
            .unwrap()
            .cluster
            .unwrap();
        assert_eq!(c.lease, Duration::from_secs(3));
        for (extra, key) in [
            ("lease = \"3s\"\n", "cluster.lease"),
            ("heartbeat = \"20s\"\n", "cluster.heartbeat"),
            ("lease = \"2s\"\nheartbeat = \"2s\"\n", "cluster.lease"),
        ] {
            let e = err(&format!("[cluster]\nredis = \"redis://h\"\n{extra}"));
            assert!(e.contains(key) && e.contains("t.toml:7"), "{extra}: {e}");
        }
    }

    #[test]
    fn unknown_key_is_refused() {
        let e = err("[cluster]\nredis = \"redis://h\"\nnodes = 3\n");
        assert!(e.contains("nodes"), "{e}");
    }
}
