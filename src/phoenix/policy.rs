//! Private-channel authorization without Postgres: a rule table.
//!
//! Owns: the rules from `[[supabase.rules]]` — a topic pattern (a glob whose
//! `*` matches any run of characters, with `{sub}` / `{claim.NAME}`
//! templates filled from the caller's JWT claims), the roles it applies to,
//! claims that must match exactly, and what it grants (broadcast/presence ×
//! read/write). Receives: the validated table of `config::supabase`
//! ([`PolicySpec`], patterns already parsed there), turned into a
//! [`Policy`] here ([`Policy::from`]); then per check a private topic
//! (without `realtime:`) and verified [`Claims`]. Hands on: the union of the [`Grants`] of every matching rule;
//! `service_role` is granted everything, as RLS is bypassed for it in
//! Supabase. This stands in for Supabase's RLS probe against
//! `realtime.messages` (join needs a read grant, send needs broadcast write,
//! track needs presence write).

use std::sync::Arc;

use serde_json::Value;

use super::jwt::Claims;
// Why a pattern was refused: the rules are config's.
pub use crate::config::supabase::PatternError;
use crate::config::supabase::{GrantSpec, PolicySpec, RuleSpec, TopicPart, TopicSpec};

/// What a caller may do on one private topic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Grants {
    /// Join and receive broadcasts.
    pub broadcast_read: bool,
    /// Send broadcasts.
    pub broadcast_write: bool,
    /// Join and receive presence.
    pub presence_read: bool,
    /// Track presence.
    pub presence_write: bool,
}

impl Grants {
    /// Everything (service_role, public channels).
    pub const ALL: Grants = Grants {
        broadcast_read: true,
        broadcast_write: true,
        presence_read: true,
        presence_write: true,
    };

    /// A join needs broadcast read or presence read.
    pub fn can_join(self) -> bool {
        self.broadcast_read || self.presence_read
    }

    fn union(self, o: Grants) -> Grants {
        Grants {
            broadcast_read: self.broadcast_read || o.broadcast_read,
            broadcast_write: self.broadcast_write || o.broadcast_write,
            presence_read: self.presence_read || o.presence_read,
            presence_write: self.presence_write || o.presence_write,
        }
    }
}

/// A topic pattern such as `room:{sub}:*`, ready to match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPattern {
    parts: Vec<TopicPart>,
}

impl From<&TopicSpec> for TopicPattern {
    fn from(spec: &TopicSpec) -> TopicPattern {
        TopicPattern {
            parts: spec.parts.clone(),
        }
    }
}

impl TopicPattern {
    /// Parses a pattern as config does ([`TopicSpec::parse`]). `{sub}` and
    /// `{claim.NAME}` (or `{NAME}`) are claim templates; `*` matches any run
    /// of characters.
    pub fn parse(s: &str) -> Result<TopicPattern, PatternError> {
        TopicSpec::parse(s).map(|spec| TopicPattern::from(&spec))
    }

    /// Whether `topic` matches with templates filled from `claims`; a
    /// template whose claim is absent never matches.
    pub fn matches(&self, topic: &str, claims: &Claims) -> bool {
        let mut rendered: Vec<TopicPart> = Vec::with_capacity(self.parts.len());
        for p in &self.parts {
            match p {
                TopicPart::Claim(name) => match claims.claim_str(name) {
                    Some(v) => rendered.push(TopicPart::Lit(v)),
                    None => return false,
                },
                other => rendered.push(other.clone()),
            }
        }
        glob(&rendered, topic)
    }
}

/// Greedy wildcard match with single backtrack point (linear-ish; patterns
/// are short and come from config).
fn glob(parts: &[TopicPart], text: &str) -> bool {
    match parts.split_first() {
        None => text.is_empty(),
        Some((TopicPart::Lit(l), rest)) => {
            text.strip_prefix(l.as_str()).is_some_and(|t| glob(rest, t))
        }
        Some((TopicPart::Star, rest)) => {
            if rest.is_empty() {
                return true;
            }
            text.char_indices()
                .map(|(i, _)| i)
                .chain(std::iter::once(text.len()))
                .any(|i| glob(rest, &text[i..]))
        }
        Some((TopicPart::Claim(_), _)) => false,
    }
}

impl From<GrantSpec> for Grants {
    fn from(g: GrantSpec) -> Grants {
        Grants {
            broadcast_read: g.broadcast_read,
            broadcast_write: g.broadcast_write,
            presence_read: g.presence_read,
            presence_write: g.presence_write,
        }
    }
}

/// One rule of the table.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Which private topics (without `realtime:`).
    pub topic: TopicPattern,
    /// Roles it applies to; empty means every role.
    pub roles: Vec<Arc<str>>,
    /// Claims that must equal these values.
    pub claims: Vec<(Arc<str>, Value)>,
    /// What it grants.
    pub grants: Grants,
}

impl Rule {
    fn applies(&self, topic: &str, claims: &Claims) -> bool {
        (self.roles.is_empty() || self.roles.contains(&claims.role))
            && self
                .claims
                .iter()
                .all(|(k, v)| claims.all.get(&**k) == Some(v))
            && self.topic.matches(topic, claims)
    }
}

impl From<&RuleSpec> for Rule {
    fn from(r: &RuleSpec) -> Rule {
        Rule {
            topic: TopicPattern::from(&r.topic),
            roles: r.roles.clone(),
            claims: r.claims.clone(),
            grants: Grants::from(r.grants),
        }
    }
}

/// The whole table.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Rules, all of which are consulted.
    pub rules: Vec<Rule>,
}

impl From<&PolicySpec> for Policy {
    /// The matcher for a validated `[[supabase.rules]]` table.
    fn from(p: &PolicySpec) -> Policy {
        Policy {
            rules: p.rules.iter().map(Rule::from).collect(),
        }
    }
}

impl Policy {
    /// What `claims` may do on private `topic` (without `realtime:`).
    pub fn grants(&self, topic: &str, claims: &Claims) -> Grants {
        if claims.is_service_role() {
            return Grants::ALL;
        }
        self.rules
            .iter()
            .filter(|r| r.applies(topic, claims))
            .fold(Grants::default(), |g, r| g.union(r.grants))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};

    fn claims(v: Value) -> Claims {
        let all: Map<String, Value> = serde_json::from_value(v).unwrap();
        Claims {
            role: Arc::from(all["role"].as_str().unwrap()),
            exp: None,
            all: Arc::new(all),
        }
    }

    fn rule(topic: &str, roles: &[&str], cl: &[(&str, Value)], grants: Grants) -> Rule {
        Rule {
            topic: TopicPattern::parse(topic).unwrap(),
            roles: roles.iter().map(|r| Arc::from(*r)).collect(),
            claims: cl.iter().map(|(k, v)| (Arc::from(*k), v.clone())).collect(),
            grants,
        }
    }

    const READ: Grants = Grants {
        broadcast_read: true,
        broadcast_write: false,
        presence_read: true,
        presence_write: false,
    };

    #[test]
    fn globs_and_templates() {
        let c = claims(json!({"role":"authenticated","sub":"u1","team":"blue","n":7}));
        let cases = [
            ("room1", "room1", true),
            ("room1", "room2", false),
            ("room:*", "room:abc", true),
            ("room:*", "room:", true),
            ("room:*", "lobby:x", false),
            ("*:chat", "team:chat", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("user:{sub}", "user:u1", true),
            ("user:{sub}", "user:u2", false),
            ("team:{claim.team}:*", "team:blue:x", true),
            ("team:{claims.team}:*", "team:red:x", false),
            ("n:{n}", "n:7", true),
            ("x:{missing}", "x:", false),
            ("é*", "é-ü", true),
        ];
        for (p, t, want) in cases {
            assert_eq!(
                TopicPattern::parse(p).unwrap().matches(t, &c),
                want,
                "{p} vs {t}"
            );
        }
    }

    #[test]
    fn template_values_are_literal() {
        let c = claims(json!({"role":"authenticated","sub":"*"}));
        let p = TopicPattern::parse("user:{sub}").unwrap();
        assert!(p.matches("user:*", &c));
        assert!(!p.matches("user:anything", &c));
    }

    #[test]
    fn roles_claims_and_union() {
        let policy = Policy {
            rules: vec![
                rule("room:*", &["authenticated"], &[], READ),
                rule(
                    "room:{sub}",
                    &[],
                    &[("team", json!("blue"))],
                    Grants {
                        broadcast_write: true,
                        ..Grants::default()
                    },
                ),
            ],
        };
        let blue = claims(json!({"role":"authenticated","sub":"u1","team":"blue"}));
        let g = policy.grants("room:u1", &blue);
        assert!(g.can_join() && g.broadcast_write && !g.presence_write);
        let g = policy.grants("room:u2", &blue);
        assert!(g.can_join() && !g.broadcast_write);
        let anon = claims(json!({"role":"anon","sub":"u1","team":"blue"}));
        let g = policy.grants("room:u1", &anon);
        assert!(!g.can_join() && g.broadcast_write);
        assert_eq!(policy.grants("lobby", &blue), Grants::default());
    }

    #[test]
    fn service_role_bypasses() {
        let svc = claims(json!({"role":"service_role"}));
        assert_eq!(Policy::default().grants("anything", &svc), Grants::ALL);
    }
}
