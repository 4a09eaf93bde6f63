//! `[supabase]`: the in-process Supabase Realtime front.
//!
//! Owns: the accepted keys of `[supabase]`, `[supabase.limits]` and
//! `[[supabase.rules]]`, their defaults (Supabase's own tenant defaults), and
//! every rule about them. Receives the raw tables from [`super::raw`]; hands a
//! validated [`Supabase`] to the Phoenix front (`crate::phoenix`).
//!
//! ```toml
//! [supabase]
//! jwt_secrets = ["${SUPABASE_JWT_SECRET}"]            # first signs nothing; all verify (rotation)
//! jwks_file = "/etc/portico/jwks.json"                # or jwks = '{"keys":[..]}'; RS/ES by kid
//! api_keys = { sb_publishable_abc = "anon", sb_secret_xyz = "service_role" }
//! private_only = false
//! upstream = "wss://<ref>.supabase.co/realtime/v1"    # postgres_changes splice (optional)
//! pusher_app = "my-app"                               # bridge Pusher app channels <-> realtime:<name>
//!
//! [supabase.limits]
//! max_channels_per_socket = 100
//! max_presence_events_per_channel = 5                 # per socket and channel, per window
//! presence_events_window = "30s"
//! handshake_error_delay = "2s"                        # "0s" answers refusals at once
//!
//! [[supabase.rules]]
//! topic = "room:{sub}:*"
//! roles = ["authenticated"]
//! broadcast = ["read", "write"]
//! presence = ["read"]
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use http::Uri;
use serde::Deserialize;
use toml::Spanned;

use super::apps::Apps;
use super::ctx::{Ctx, SpStr};
use super::error::ConfigError;
use crate::phoenix::jwks::Jwks;
use crate::phoenix::policy::{Grants, Policy, Rule, TopicPattern};

/// `[supabase]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSupabase {
    pub(crate) jwt_secrets: Option<Spanned<Vec<SpStr>>>,
    pub(crate) jwks: Option<SpStr>,
    pub(crate) jwks_file: Option<SpStr>,
    pub(crate) api_keys: Option<Spanned<BTreeMap<String, SpStr>>>,
    pub(crate) claim_validators: Option<Spanned<BTreeMap<String, Spanned<toml::Value>>>>,
    pub(crate) private_only: Option<bool>,
    pub(crate) upstream: Option<SpStr>,
    pub(crate) upstream_host: Option<SpStr>,
    pub(crate) postgres_changes: Option<SpStr>,
    pub(crate) pusher_app: Option<SpStr>,
    #[serde(default)]
    pub(crate) limits: RawLimits,
    #[serde(default)]
    pub(crate) rules: Vec<RawRule>,
}

/// One `[[supabase.rules]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub(crate) topic: Option<SpStr>,
    pub(crate) roles: Option<Vec<SpStr>>,
    pub(crate) claims: Option<BTreeMap<String, Spanned<toml::Value>>>,
    pub(crate) broadcast: Option<Vec<SpStr>>,
    pub(crate) presence: Option<Vec<SpStr>>,
}

/// The validated `[supabase]` section.
#[derive(Clone)]
pub struct Supabase {
    /// HS256/384/512 secrets, all tried when verifying (rotation).
    pub jwt_secrets: Vec<Arc<[u8]>>,
    /// Keys for RS/PS/ES/EdDSA (and `kid`-selected HS) tokens.
    pub jwks: Option<Arc<Jwks>>,
    /// Opaque `sb_…` key → role.
    pub api_keys: HashMap<Arc<str>, Arc<str>>,
    /// Claims every token must carry with exactly these values.
    pub claim_validators: Vec<(Arc<str>, serde_json::Value)>,
    /// Refuse public (non-`private`) joins.
    pub private_only: bool,
    /// Private-channel rules.
    pub policy: Policy,
    /// Rate and size limits.
    pub limits: Limits,
    /// Where joins asking for postgres_changes are spliced to.
    pub upstream: Option<Upstream>,
    /// What a join asking for postgres_changes gets when there is no upstream.
    pub postgres_changes: PostgresChanges,
    /// The Pusher app whose channel `X` is bridged to `realtime:X`.
    pub pusher_app: Option<Arc<str>>,
}

impl std::fmt::Debug for Supabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supabase")
            .field("jwt_secrets", &self.jwt_secrets.len())
            .field("jwks", &self.jwks)
            .field("api_keys", &self.api_keys.len())
            .field("private_only", &self.private_only)
            .field("rules", &self.policy.rules.len())
            .field("limits", &self.limits)
            .field("upstream", &self.upstream)
            .field("postgres_changes", &self.postgres_changes)
            .field("pusher_app", &self.pusher_app)
            .finish()
    }
}

/// `postgres_changes = "refuse" | "accept"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostgresChanges {
    /// A join error that says how to enable it (the default).
    Refuse,
    /// Reply ok with an id per binding and never deliver a change: for
    /// staging setups without a database feed, and for testing the splice.
    Accept,
}

/// A real Supabase Realtime for postgres_changes.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Base URL (`ws(s)://host[:port]/realtime/v1` or `/socket`), as written.
    pub url: Arc<str>,
    /// The parsed URL; `/websocket?…` is appended per connection.
    pub uri: Uri,
    /// `Host` to send (self-hosted Realtime takes the tenant from it).
    pub host: Option<Arc<str>>,
}

const MIN_SECRET: usize = 32;

fn scalar_json(v: &toml::Value) -> Option<serde_json::Value> {
    match v {
        toml::Value::String(s) => Some(serde_json::Value::String(s.clone())),
        toml::Value::Integer(i) => Some(serde_json::Value::from(*i)),
        toml::Value::Boolean(b) => Some(serde_json::Value::Bool(*b)),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map(serde_json::Value::Number),
        toml::Value::Datetime(_) | toml::Value::Array(_) | toml::Value::Table(_) => None,
    }
}

fn claim_map(
    cx: &Ctx<'_>,
    key: &str,
    map: &BTreeMap<String, Spanned<toml::Value>>,
) -> Result<Vec<(Arc<str>, serde_json::Value)>, ConfigError> {
    let mut out = Vec::new();
    for (name, v) in map {
        let k = format!("{key}.{name}");
        let json = match v.get_ref() {
            toml::Value::String(s) => {
                serde_json::Value::String(cx.string(&k, &Spanned::new(v.span(), s.clone()))?)
            }
            other => scalar_json(other).ok_or_else(|| {
                cx.err(
                    &k,
                    Some(v.span()),
                    "a claim can only be matched against a string, number or boolean",
                    "write e.g. `team = \"blue\"` or `level = 3`",
                )
            })?,
        };
        out.push((Arc::from(name.as_str()), json));
    }
    Ok(out)
}

fn secrets(cx: &Ctx<'_>, raw: &RawSupabase) -> Result<Vec<Arc<[u8]>>, ConfigError> {
    let mut out = Vec::new();
    let Some(list) = &raw.jwt_secrets else {
        return Ok(out);
    };
    for (i, v) in list.get_ref().iter().enumerate() {
        let key = format!("supabase.jwt_secrets[{i}]");
        let s = cx.string(&key, v)?;
        if s.len() < MIN_SECRET {
            return Err(cx.err(
                key,
                Some(v.span()),
                format!(
                    "the secret is {} characters; Supabase requires at least {MIN_SECRET}",
                    s.len()
                ),
                "use your project's JWT secret (Settings → API), e.g. \"${SUPABASE_JWT_SECRET}\"",
            ));
        }
        out.push(Arc::from(s.into_bytes()));
    }
    Ok(out)
}

/// `jwks` (the JSON inline) or `jwks_file` (a path to it), not both.
fn jwks(cx: &Ctx<'_>, raw: &RawSupabase) -> Result<Option<Arc<Jwks>>, ConfigError> {
    let fix = "give the project's key set, e.g. the JSON of https://<ref>.supabase.co/auth/v1/.well-known/jwks.json";
    let (key, v, text) = match (&raw.jwks, &raw.jwks_file) {
        (None, None) => return Ok(None),
        (Some(_), Some(f)) => {
            return Err(cx.err(
                "supabase.jwks_file",
                Some(f.span()),
                "`jwks` and `jwks_file` are both set",
                "keep one: the key set inline (`jwks`) or a path to it (`jwks_file`)",
            ));
        }
        (Some(v), None) => ("supabase.jwks", v, cx.string("supabase.jwks", v)?),
        (None, Some(f)) => {
            let path = cx.string("supabase.jwks_file", f)?;
            let text = std::fs::read_to_string(&path).map_err(|e| {
                cx.err(
                    "supabase.jwks_file",
                    Some(f.span()),
                    format!("cannot read {path}: {e}"),
                    "point jwks_file at a JSON key set (relative to where portico runs)",
                )
            })?;
            ("supabase.jwks_file", f, text)
        }
    };
    Jwks::parse(&text)
        .map(|j| Some(Arc::new(j)))
        .map_err(|e| cx.err(key, Some(v.span()), e.to_string(), fix))
}

fn api_keys(cx: &Ctx<'_>, raw: &RawSupabase) -> Result<HashMap<Arc<str>, Arc<str>>, ConfigError> {
    let mut out = HashMap::new();
    let Some(map) = &raw.api_keys else {
        return Ok(out);
    };
    for (k, role) in map.get_ref() {
        let key = format!("supabase.api_keys.{k}");
        if !(k.starts_with("sb_publishable_") || k.starts_with("sb_secret_")) {
            return Err(cx.err(
                key,
                Some(role.span()),
                format!("`{k}` is not an opaque Supabase key"),
                "list keys that start with `sb_publishable_` or `sb_secret_`; JWT keys need no entry",
            ));
        }
        let r = cx.string(&key, role)?;
        if r.is_empty() || r.contains(char::is_whitespace) {
            return Err(cx.err(
                key,
                Some(role.span()),
                format!("`{r}` is not a role name"),
                "map the key to a role such as \"anon\", \"authenticated\" or \"service_role\"",
            ));
        }
        out.insert(Arc::from(k.as_str()), Arc::from(r.as_str()));
    }
    Ok(out)
}

fn grants(cx: &Ctx<'_>, key: &str, list: Option<&Vec<SpStr>>) -> Result<(bool, bool), ConfigError> {
    let (mut read, mut write) = (false, false);
    for (j, v) in list.into_iter().flatten().enumerate() {
        match cx.string(key, v)?.as_str() {
            "read" => read = true,
            "write" => write = true,
            other => {
                return Err(cx.err(
                    format!("{key}[{j}]"),
                    Some(v.span()),
                    format!("unknown permission `{other}`"),
                    "use \"read\" and/or \"write\"",
                ));
            }
        }
    }
    Ok((read, write))
}

fn rule(
    cx: &Ctx<'_>,
    i: usize,
    r: &RawRule,
    section: std::ops::Range<usize>,
) -> Result<Rule, ConfigError> {
    let k = |f: &str| format!("supabase.rules[{i}].{f}");
    let topic_v = r.topic.as_ref().ok_or_else(|| {
        cx.err(
            k("topic"),
            Some(section.clone()),
            "every rule needs a `topic` pattern",
            "add e.g. `topic = \"room:{sub}:*\"` (the channel name without `realtime:`)",
        )
    })?;
    let topic_s = cx.string(&k("topic"), topic_v)?;
    let topic = TopicPattern::parse(&topic_s).map_err(|e| {
        cx.err(
            k("topic"),
            Some(topic_v.span()),
            e.to_string(),
            "use `*` for any characters and `{sub}` or `{claim.NAME}` for JWT claims",
        )
    })?;
    if let Some(bare) = topic_s.strip_prefix("realtime:") {
        return Err(cx.err(
            k("topic"),
            Some(topic_v.span()),
            "rules match the channel name without the `realtime:` prefix",
            format!("write \"{bare}\""),
        ));
    }
    let mut roles = Vec::new();
    for (j, v) in r.roles.iter().flatten().enumerate() {
        let s = cx.string(&k("roles"), v)?;
        if s.is_empty() {
            return Err(cx.err(
                format!("{}[{j}]", k("roles")),
                Some(v.span()),
                "empty role",
                "write a role such as \"authenticated\", or drop `roles` to match every role",
            ));
        }
        roles.push(Arc::from(s.as_str()));
    }
    let claims = match &r.claims {
        Some(m) => claim_map(cx, &k("claims"), m)?,
        None => Vec::new(),
    };
    let (broadcast_read, broadcast_write) = grants(cx, &k("broadcast"), r.broadcast.as_ref())?;
    let (presence_read, presence_write) = grants(cx, &k("presence"), r.presence.as_ref())?;
    let g = Grants {
        broadcast_read,
        broadcast_write,
        presence_read,
        presence_write,
    };
    if g == Grants::default() {
        return Err(cx.err(
            k("topic"),
            Some(topic_v.span()),
            "this rule grants nothing",
            "add `broadcast = [\"read\", \"write\"]` and/or `presence = [\"read\"]`",
        ));
    }
    Ok(Rule {
        topic,
        roles,
        claims,
        grants: g,
    })
}

fn upstream(cx: &Ctx<'_>, raw: &RawSupabase) -> Result<Option<Upstream>, ConfigError> {
    let Some(v) = &raw.upstream else {
        if let Some(h) = &raw.upstream_host {
            return Err(cx.err(
                "supabase.upstream_host",
                Some(h.span()),
                "`upstream_host` is set but `upstream` is not",
                "set `upstream` to your Supabase Realtime URL, or remove `upstream_host`",
            ));
        }
        return Ok(None);
    };
    let key = "supabase.upstream";
    let s = cx.string(key, v)?;
    let fix = "write e.g. \"wss://<project-ref>.supabase.co/realtime/v1\" or \"ws://realtime:4000/socket\"";
    let uri: Uri = s
        .parse()
        .map_err(|_| cx.err(key, Some(v.span()), format!("`{s}` is not a URL"), fix))?;
    match uri.scheme_str() {
        Some("ws" | "wss" | "http" | "https") => {}
        _ => {
            return Err(cx.err(
                key,
                Some(v.span()),
                format!("`{s}` is not a ws://, wss://, http:// or https:// URL"),
                fix,
            ));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(cx.err(key, Some(v.span()), format!("`{s}` has no host"), fix));
    }
    if uri.query().is_some() || uri.path().ends_with("/websocket") {
        return Err(cx.err(
            key,
            Some(v.span()),
            "give the base URL: portico appends `/websocket?apikey=…&vsn=…` itself",
            fix,
        ));
    }
    let host = match &raw.upstream_host {
        None => None,
        Some(h) => {
            let hs = cx.string("supabase.upstream_host", h)?;
            if hs.is_empty() || http::HeaderValue::from_str(&hs).is_err() || hs.contains('/') {
                return Err(cx.err(
                    "supabase.upstream_host",
                    Some(h.span()),
                    format!("`{hs}` is not a host name"),
                    "write the tenant host, e.g. \"realtime-dev\"",
                ));
            }
            Some(Arc::from(hs.as_str()))
        }
    };
    Ok(Some(Upstream {
        url: Arc::from(s.as_str()),
        uri,
        host,
    }))
}

pub(crate) fn validate(
    raw: Option<&Spanned<RawSupabase>>,
    apps: &Apps,
    cx: &Ctx<'_>,
) -> Result<Option<Arc<Supabase>>, ConfigError> {
    let Some(sp) = raw else { return Ok(None) };
    let section = sp.span();
    let raw = sp.get_ref();
    let jwt_secrets = secrets(cx, raw)?;
    let jwks = jwks(cx, raw)?;
    let api_keys = api_keys(cx, raw)?;
    if jwt_secrets.is_empty() && jwks.is_none() && api_keys.is_empty() {
        return Err(cx.err(
            "supabase.jwt_secrets",
            Some(section.start..section.start),
            "no way to authenticate clients: none of `jwt_secrets`, `jwks` and `api_keys` is set",
            "add `jwt_secrets = [\"${SUPABASE_JWT_SECRET}\"]` (your project's JWT secret)",
        ));
    }
    let claim_validators = match &raw.claim_validators {
        Some(m) => claim_map(cx, "supabase.claim_validators", m.get_ref())?,
        None => Vec::new(),
    };
    let mut rules = Vec::new();
    for (i, r) in raw.rules.iter().enumerate() {
        rules.push(rule(cx, i, r, section.clone())?);
    }
    let pusher_app = match &raw.pusher_app {
        None => None,
        Some(v) => {
            let id = cx.string("supabase.pusher_app", v)?;
            if !apps.apps.iter().any(|a| *a.id == *id) {
                let known: Vec<&str> = apps.apps.iter().map(|a| &*a.id).collect();
                return Err(cx.err(
                    "supabase.pusher_app",
                    Some(v.span()),
                    format!("no [[apps]] entry has id `{id}`"),
                    if known.is_empty() {
                        "add an [[apps]] entry for the Pusher side, or remove `pusher_app`"
                            .to_string()
                    } else {
                        format!("use one of: {}", known.join(", "))
                    },
                ));
            }
            Some(Arc::from(id.as_str()))
        }
    };
    let postgres_changes = match &raw.postgres_changes {
        None => PostgresChanges::Refuse,
        Some(v) => match cx.string("supabase.postgres_changes", v)?.as_str() {
            "refuse" => PostgresChanges::Refuse,
            "accept" => {
                if let Some(u) = &raw.upstream {
                    return Err(cx.err(
                        "supabase.postgres_changes",
                        Some(v.span()),
                        "`postgres_changes = \"accept\"` and `upstream` both set",
                        format!(
                            "keep `upstream` (joins are spliced to it) or remove it (line of `upstream`: {})",
                            cx.line_of(u.span().start)
                        ),
                    ));
                }
                PostgresChanges::Accept
            }
            other => {
                return Err(cx.err(
                    "supabase.postgres_changes",
                    Some(v.span()),
                    format!("unknown mode `{other}`"),
                    "use \"refuse\" (the default) or \"accept\", or set `upstream` to splice to a real Supabase Realtime",
                ));
            }
        },
    };
    Ok(Some(Arc::new(Supabase {
        jwt_secrets,
        jwks,
        api_keys,
        claim_validators,
        private_only: raw.private_only.unwrap_or(false),
        policy: Policy { rules },
        limits: limits::validate(cx, &raw.limits)?,
        upstream: upstream(cx, raw)?,
        postgres_changes,
        pusher_app,
    })))
}

mod limits;
pub use limits::Limits;
pub(crate) use limits::RawLimits;

#[cfg(test)]
mod tests;
