//! `[supabase]`: the in-process Supabase Realtime front.
//!
//! Owns: the accepted keys of `[supabase]`, `[supabase.limits]` and
//! `[[supabase.rules]]`, their defaults (Supabase's own tenant defaults), and
//! every rule about them. Receives the raw tables from [`super::raw`]; hands a
//! validated [`Supabase`] — plain data: secrets, the checked key set
//! ([`JwksSpec`]), the parsed rule table ([`PolicySpec`]), limits, upstream —
//! to the Phoenix front, which builds its verifying keys and rule matcher
//! from it.
//!
//! Parts: `jwks` (`jwks` / `jwks_file`), `rules` (`[[supabase.rules]]` and
//! claim tables), `limits` (`[supabase.limits]`); this file the rest.
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

mod jwks;
mod limits;
mod rules;

pub use jwks::{JwkSpec, JwksError, JwksSpec, KeyMaterial};
pub use limits::Limits;
pub(crate) use limits::RawLimits;
pub use rules::{GrantSpec, PatternError, PolicySpec, RuleSpec, TopicPart, TopicSpec};
use rules::{RawRule, claim_map};

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

/// The validated `[supabase]` section.
#[derive(Clone)]
pub struct Supabase {
    /// HS256/384/512 secrets, all tried when verifying (rotation).
    pub jwt_secrets: Vec<Arc<[u8]>>,
    /// Keys for RS/PS/ES/EdDSA (and `kid`-selected HS) tokens.
    pub jwks: Option<Arc<JwksSpec>>,
    /// Opaque `sb_…` key → role.
    pub api_keys: HashMap<Arc<str>, Arc<str>>,
    /// Claims every token must carry with exactly these values.
    pub claim_validators: Vec<(Arc<str>, serde_json::Value)>,
    /// Refuse public (non-`private`) joins.
    pub private_only: bool,
    /// Private-channel rules.
    pub policy: PolicySpec,
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
    let jwks = jwks::validate(cx, raw.jwks.as_ref(), raw.jwks_file.as_ref())?;
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
    let policy = rules::validate(cx, &raw.rules, section.clone())?;
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
        policy,
        limits: limits::validate(cx, &raw.limits)?,
        upstream: upstream(cx, raw)?,
        postgres_changes,
        pusher_app,
    })))
}

#[cfg(test)]
mod tests;
