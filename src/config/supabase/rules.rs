//! `[[supabase.rules]]`: the private-channel rule table as checked data.
//!
//! Owns: the rules for a rule's `topic` pattern (parsed here: `*` and
//! `{sub}` / `{claim.NAME}` templates), `roles`, `claims` and the
//! `broadcast` / `presence` grants, and for claim tables in general.
//! Receives: the raw `[[supabase.rules]]` entries. Hands on: a
//! [`PolicySpec`] in `Supabase::policy`; the Phoenix front builds its rule
//! matcher from it (matching needs a caller's verified claims, which only
//! the front has).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use crate::config::ctx::{Ctx, SpStr};
use crate::config::error::ConfigError;

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

/// What one rule grants (`broadcast` / `presence` × read / write).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GrantSpec {
    /// Join and receive broadcasts.
    pub broadcast_read: bool,
    /// Send broadcasts.
    pub broadcast_write: bool,
    /// Join and receive presence.
    pub presence_read: bool,
    /// Track presence.
    pub presence_write: bool,
}

/// A topic pattern could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// `{` without `}`.
    #[error("`{{` at byte {at} is not closed by `}}`")]
    Unclosed {
        /// Byte offset of the `{`.
        at: usize,
    },
    /// `{}` or `{claim.}`.
    #[error("empty template name at byte {at}")]
    EmptyName {
        /// Byte offset of the `{`.
        at: usize,
    },
    /// A `}` with no `{`.
    #[error("`}}` at byte {at} has no matching `{{`")]
    StrayClose {
        /// Byte offset.
        at: usize,
    },
    /// The pattern is empty.
    #[error("the pattern is empty")]
    Empty,
}

/// One piece of a topic pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicPart {
    /// Characters matched as written.
    Lit(String),
    /// Any run of characters.
    Star,
    /// The value of this JWT claim (`{sub}`, `{claim.NAME}`).
    Claim(Arc<str>),
}

/// A parsed topic pattern such as `room:{sub}:*`: literals, stars (never
/// two in a row) and claim templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// The pieces, in order.
    pub parts: Vec<TopicPart>,
}

impl TopicSpec {
    /// Parses a pattern. `{sub}` and `{claim.NAME}` (or `{NAME}`) are
    /// claim templates; `*` matches any run of characters.
    pub fn parse(s: &str) -> Result<TopicSpec, PatternError> {
        if s.is_empty() {
            return Err(PatternError::Empty);
        }
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = s.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '*' => {
                    if !lit.is_empty() {
                        parts.push(TopicPart::Lit(std::mem::take(&mut lit)));
                    }
                    if parts.last() != Some(&TopicPart::Star) {
                        parts.push(TopicPart::Star);
                    }
                }
                '{' => {
                    let rest = &s[i + 1..];
                    let end = rest.find('}').ok_or(PatternError::Unclosed { at: i })?;
                    let name = &rest[..end];
                    let name = name
                        .strip_prefix("claim.")
                        .or_else(|| name.strip_prefix("claims."))
                        .unwrap_or(name);
                    if name.is_empty() || name.contains('{') {
                        return Err(PatternError::EmptyName { at: i });
                    }
                    if !lit.is_empty() {
                        parts.push(TopicPart::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(TopicPart::Claim(Arc::from(name)));
                    for _ in 0..rest[..=end].chars().count() {
                        chars.next();
                    }
                }
                '}' => return Err(PatternError::StrayClose { at: i }),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(TopicPart::Lit(lit));
        }
        Ok(TopicSpec { parts })
    }
}

/// One rule of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// Which private topics (without `realtime:`).
    pub topic: TopicSpec,
    /// Roles it applies to; empty means every role.
    pub roles: Vec<Arc<str>>,
    /// Claims that must equal these values.
    pub claims: Vec<(Arc<str>, serde_json::Value)>,
    /// What it grants (never nothing).
    pub grants: GrantSpec,
}

/// The whole table, in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicySpec {
    /// Rules, all of which are consulted.
    pub rules: Vec<RuleSpec>,
}

/// Every `[[supabase.rules]]` entry; `section` (the `[supabase]` table) is
/// pointed at when a rule has no `topic`.
pub(super) fn validate(
    cx: &Ctx<'_>,
    raw: &[RawRule],
    section: std::ops::Range<usize>,
) -> Result<PolicySpec, ConfigError> {
    let mut rules = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        rules.push(rule(cx, i, r, section.clone())?);
    }
    Ok(PolicySpec { rules })
}

fn scalar_json(v: &toml::Value) -> Option<serde_json::Value> {
    match v {
        toml::Value::String(s) => Some(serde_json::Value::String(s.clone())),
        toml::Value::Integer(i) => Some(serde_json::Value::from(*i)),
        toml::Value::Boolean(b) => Some(serde_json::Value::Bool(*b)),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map(serde_json::Value::Number),
        toml::Value::Datetime(_) | toml::Value::Array(_) | toml::Value::Table(_) => None,
    }
}

/// A table of claims to match exactly (`claim_validators`, a rule's
/// `claims`): strings (with `${VAR}`), numbers and booleans.
pub(super) fn claim_map(
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
) -> Result<RuleSpec, ConfigError> {
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
    let topic = TopicSpec::parse(&topic_s).map_err(|e| {
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
    let g = GrantSpec {
        broadcast_read,
        broadcast_write,
        presence_read,
        presence_write,
    };
    if g == GrantSpec::default() {
        return Err(cx.err(
            k("topic"),
            Some(topic_v.span()),
            "this rule grants nothing",
            "add `broadcast = [\"read\", \"write\"]` and/or `presence = [\"read\"]`",
        ));
    }
    Ok(RuleSpec {
        topic,
        roles,
        claims,
        grants: g,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors() {
        assert_eq!(TopicSpec::parse(""), Err(PatternError::Empty));
        assert_eq!(
            TopicSpec::parse("a{sub"),
            Err(PatternError::Unclosed { at: 1 })
        );
        assert_eq!(
            TopicSpec::parse("a{}"),
            Err(PatternError::EmptyName { at: 1 })
        );
        assert_eq!(
            TopicSpec::parse("a{claim.}"),
            Err(PatternError::EmptyName { at: 1 })
        );
        assert_eq!(
            TopicSpec::parse("a}"),
            Err(PatternError::StrayClose { at: 1 })
        );
    }

    #[test]
    fn stars_collapse_and_templates_name_claims() {
        let p = TopicSpec::parse("a**{claim.team}{sub}").unwrap();
        assert_eq!(
            p.parts,
            vec![
                TopicPart::Lit("a".into()),
                TopicPart::Star,
                TopicPart::Claim(Arc::from("team")),
                TopicPart::Claim(Arc::from("sub")),
            ]
        );
    }
}
