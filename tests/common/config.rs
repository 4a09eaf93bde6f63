//! Test configs: one base, changed key by key, so each test shows only the
//! keys that matter to it.
//!
//! [`base`] is an edge with https and plain listeners, dev TLS and
//! everything proxied to `${UP}`; [`plain`] is the same with only the plain
//! listener and TLS off. A test sets what it needs on one of them:
//!
//! ```ignore
//! base().set("server.header_timeout", "300ms")
//! plain().with(r#"
//! [[routes]]
//! path = "/svc/"
//! to = "${UP}"
//! "#)
//! ```
//!
//! `${HTTPS}`, `${HTTP}`, `${PLAIN}` and `${CERTS}` are filled by the
//! in-process starter (`inproc`), `${UP}` and the rest by the test's
//! variables. Included with `#[path = "../common/config.rs"] mod config;`.

use std::fmt;

/// The base every edge test config starts from.
pub(crate) const BASE: &str = r#"
[server]
https = "${HTTPS}"
plain = "${PLAIN}"

[tls]
mode = "dev"
dir = "${CERTS}"

[upstream]
url = "${UP}"
"#;

/// A config as a TOML table; [`fmt::Display`] writes it as TOML text.
#[derive(Debug, Clone)]
pub(crate) struct ConfigText(toml::Table);

/// [`BASE`]: https and plain listeners, dev TLS, proxied to `${UP}`.
pub(crate) fn base() -> ConfigText {
    ConfigText::parse(BASE)
}

/// [`base`] with only the plain listener and TLS off.
pub(crate) fn plain() -> ConfigText {
    base()
        .without("server.https")
        .without("tls")
        .set("tls.mode", "off")
}

impl ConfigText {
    /// Parses TOML text (panicking on a syntax error in the test).
    pub(crate) fn parse(text: &str) -> ConfigText {
        ConfigText(
            toml::from_str(text)
                .unwrap_or_else(|e| panic!("test TOML does not parse: {e}\n{text}")),
        )
    }

    /// Sets the dotted `key` (`server.grace_period`) to `value`, creating
    /// the tables on the way.
    pub(crate) fn set(mut self, key: &str, value: impl Into<toml::Value>) -> ConfigText {
        let (table, last) = self.table_for(key);
        table.insert(last.to_string(), value.into());
        self
    }

    /// Removes the dotted `key` (a value or a whole table), which must be
    /// there.
    pub(crate) fn without(mut self, key: &str) -> ConfigText {
        let (table, last) = self.table_for(key);
        assert!(table.remove(last).is_some(), "`{key}` is not in the config");
        self
    }

    /// Merges the TOML `fragment` over this config: tables merge key by
    /// key; any other value, an array of tables (`[[routes]]`) included,
    /// replaces what was there.
    pub(crate) fn with(mut self, fragment: &str) -> ConfigText {
        merge(&mut self.0, ConfigText::parse(fragment).0);
        self
    }

    /// The table holding the dotted `key`, and its last segment.
    fn table_for<'k>(&mut self, key: &'k str) -> (&mut toml::Table, &'k str) {
        let (path, last) = key.rsplit_once('.').map_or(("", key), |(p, l)| (p, l));
        let mut table = &mut self.0;
        for seg in path.split('.').filter(|s| !s.is_empty()) {
            let entry = table
                .entry(seg.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = match entry {
                toml::Value::Table(t) => t,
                other => panic!("`{seg}` in `{key}` is {other}, not a table"),
            };
        }
        (table, last)
    }
}

fn merge(into: &mut toml::Table, from: toml::Table) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

impl fmt::Display for ConfigText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = toml::to_string(&self.0).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}
