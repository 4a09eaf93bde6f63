//! Every `[supabase]` rule, accepted and rejected.

use std::time::Duration;

use crate::config::{Config, ConfigError};

const BASE: &str = "[server]\nplain = \"127.0.0.1:0\"\n[tls]\nmode = \"off\"\n";
const SECRET: &str = "super-secret-jwt-token-with-at-least-32-characters-long";

fn load(extra: &str) -> Result<Config, ConfigError> {
    let text = format!("{BASE}{extra}");
    Config::from_str_with_env(&text, "test.toml", &|k| match k {
        "JWT" => Some(SECRET.to_string()),
        _ => None,
    })
}

/// Asserts a rejection naming `key` whose problem contains `needle`, with a
/// line number and a fix.
fn rejects(extra: &str, key: &str, needle: &str) {
    let e = load(extra).expect_err(extra);
    let d = e.diagnostic().expect("a diagnostic");
    assert_eq!(d.key, key, "{e}");
    assert!(d.problem.contains(needle), "{e}");
    assert!(!d.fix.is_empty(), "{e}");
    assert!(d.line > 0, "no line in {e}");
}

#[test]
fn absent_section_is_none() {
    assert!(load("").unwrap().supabase.is_none());
}

#[test]
fn minimal_with_defaults() {
    let c = load("[supabase]\njwt_secrets = [\"${JWT}\"]\n").unwrap();
    let s = c.supabase.unwrap();
    assert_eq!(s.jwt_secrets.len(), 1);
    assert_eq!(&*s.jwt_secrets[0], SECRET.as_bytes());
    assert_eq!(s.limits, super::Limits::default());
    assert_eq!(s.limits.max_channels_per_socket, 100);
    assert_eq!(s.limits.max_payload, 3000 * 1024);
    assert_eq!(s.limits.join_error_delay, Duration::from_secs(5));
    assert_eq!(s.limits.handshake_error_delay, Duration::from_secs(2));
    assert_eq!(s.limits.max_presence_events_per_channel, 5);
    assert_eq!(s.limits.presence_events_window, Duration::from_secs(30));
    assert!(!s.private_only && s.upstream.is_none() && s.pusher_app.is_none());
}

#[test]
fn full_section() {
    let c = load(&format!(
        r#"
[[apps]]
id = "app1"
key = "key1"
secret = "secret1"

[supabase]
jwt_secrets = ["{SECRET}", "${{JWT}}"]
api_keys = {{ sb_publishable_abc = "anon", sb_secret_xyz = "service_role" }}
claim_validators = {{ iss = "supabase", level = 3 }}
private_only = true
upstream = "ws://realtime:4000/socket"
upstream_host = "realtime-dev"
pusher_app = "app1"

[supabase.limits]
max_channels_per_socket = 5
max_events_per_second = 10
max_joins_per_second = 2
max_presence_events_per_second = 7
max_concurrent_users = 1000
max_payload = "64KiB"
idle_timeout = "90s"
no_channel_timeout = "1m"
join_error_delay = "off"
handshake_error_delay = "250ms"
max_presence_events_per_channel = 8
presence_events_window = "1m"

[[supabase.rules]]
topic = "room:{{sub}}:*"
roles = ["authenticated"]
claims = {{ team = "blue" }}
broadcast = ["read", "write"]
presence = ["read"]
"#
    ))
    .unwrap();
    let s = c.supabase.unwrap();
    assert_eq!(s.jwt_secrets.len(), 2);
    assert_eq!(s.api_keys.len(), 2);
    assert_eq!(s.claim_validators.len(), 2);
    assert!(s.private_only);
    let up = s.upstream.as_ref().unwrap();
    assert_eq!(up.uri.host(), Some("realtime"));
    assert_eq!(up.host.as_deref(), Some("realtime-dev"));
    assert_eq!(s.pusher_app.as_deref(), Some("app1"));
    assert_eq!(s.limits.max_channels_per_socket, 5);
    assert_eq!(s.limits.max_joins_per_second, 2);
    assert_eq!(s.limits.max_payload, 64 * 1024);
    assert_eq!(s.limits.idle_timeout, Duration::from_secs(90));
    assert_eq!(s.limits.join_error_delay, Duration::ZERO);
    assert_eq!(s.limits.handshake_error_delay, Duration::from_millis(250));
    assert_eq!(s.limits.max_presence_events_per_channel, 8);
    assert_eq!(s.limits.presence_events_window, Duration::from_secs(60));
    assert_eq!(s.policy.rules.len(), 1);
    let g = s.policy.rules[0].grants;
    assert!(g.broadcast_read && g.broadcast_write && g.presence_read && !g.presence_write);
}

#[test]
fn rejects_unknown_keys() {
    rejects(
        "[supabase]\njwt_secret = \"x\"\n",
        "supabase.jwt_secret",
        "unknown key",
    );
    rejects(
        &format!("[supabase]\njwt_secrets = [\"{SECRET}\"]\n[supabase.limits]\nmax_channels = 1\n"),
        "supabase.limits.max_channels",
        "unknown key",
    );
}

#[test]
fn rejects_no_auth() {
    rejects(
        "[supabase]\nprivate_only = true\n",
        "supabase.jwt_secrets",
        "no way to authenticate",
    );
}

#[test]
fn rejects_short_secret() {
    rejects(
        "[supabase]\njwt_secrets = [\"short\"]\n",
        "supabase.jwt_secrets[0]",
        "at least 32",
    );
}

#[test]
fn rejects_unset_env_secret() {
    rejects(
        "[supabase]\njwt_secrets = [\"${NOPE}\"]\n",
        "supabase.jwt_secrets[0]",
        "NOPE",
    );
}

#[test]
fn rejects_non_opaque_api_key() {
    rejects(
        "[supabase]\napi_keys = { eyJhbGc = \"anon\" }\n",
        "supabase.api_keys.eyJhbGc",
        "not an opaque",
    );
}

#[test]
fn rejects_bad_role() {
    rejects(
        "[supabase]\napi_keys = { sb_secret_x = \"\" }\n",
        "supabase.api_keys.sb_secret_x",
        "not a role",
    );
}

#[test]
fn rejects_non_scalar_claim_validator() {
    rejects(
        &format!(
            "[supabase]\njwt_secrets = [\"{SECRET}\"]\nclaim_validators = {{ aud = [\"a\"] }}\n"
        ),
        "supabase.claim_validators.aud",
        "string, number or boolean",
    );
}

fn with_rule(rule: &str) -> String {
    format!("[supabase]\njwt_secrets = [\"{SECRET}\"]\n[[supabase.rules]]\n{rule}\n")
}

#[test]
fn rejects_rule_without_topic() {
    rejects(
        &with_rule("broadcast = [\"read\"]"),
        "supabase.rules[0].topic",
        "needs a `topic`",
    );
}

#[test]
fn rejects_bad_topic_pattern() {
    rejects(
        &with_rule("topic = \"room:{sub\"\nbroadcast = [\"read\"]"),
        "supabase.rules[0].topic",
        "not closed",
    );
}

#[test]
fn rejects_realtime_prefix_in_topic() {
    rejects(
        &with_rule("topic = \"realtime:room\"\nbroadcast = [\"read\"]"),
        "supabase.rules[0].topic",
        "without the `realtime:` prefix",
    );
}

#[test]
fn rejects_unknown_permission() {
    rejects(
        &with_rule("topic = \"room\"\nbroadcast = [\"read\", \"admin\"]"),
        "supabase.rules[0].broadcast[1]",
        "unknown permission `admin`",
    );
}

#[test]
fn rejects_rule_granting_nothing() {
    rejects(
        &with_rule("topic = \"room\"\nroles = [\"anon\"]"),
        "supabase.rules[0].topic",
        "grants nothing",
    );
}

#[test]
fn rejects_empty_role_in_rule() {
    rejects(
        &with_rule("topic = \"room\"\nroles = [\"\"]\nbroadcast = [\"read\"]"),
        "supabase.rules[0].roles[0]",
        "empty role",
    );
}

#[test]
fn rejects_non_scalar_rule_claim() {
    rejects(
        &with_rule("topic = \"room\"\nclaims = { team = { a = 1 } }\nbroadcast = [\"read\"]"),
        "supabase.rules[0].claims.team",
        "string, number or boolean",
    );
}

fn with_limit(l: &str) -> String {
    format!("[supabase]\njwt_secrets = [\"{SECRET}\"]\n[supabase.limits]\n{l}\n")
}

#[test]
fn rejects_zero_limits() {
    for k in [
        "max_channels_per_socket",
        "max_events_per_second",
        "max_joins_per_second",
        "max_presence_events_per_second",
        "max_concurrent_users",
    ] {
        rejects(
            &with_limit(&format!("{k} = 0")),
            &format!("supabase.limits.{k}"),
            "at least 1",
        );
    }
}

#[test]
fn rejects_huge_rate() {
    rejects(
        &with_limit("max_events_per_second = 5000000000"),
        "supabase.limits.max_events_per_second",
        "too large",
    );
}

#[test]
fn rejects_tiny_or_bad_payload() {
    rejects(
        &with_limit("max_payload = \"10\""),
        "supabase.limits.max_payload",
        "cannot even hold",
    );
    rejects(
        &with_limit("max_payload = \"lots\""),
        "supabase.limits.max_payload",
        "not a size",
    );
}

#[test]
fn rejects_bad_durations() {
    rejects(
        &with_limit("idle_timeout = \"off\""),
        "supabase.limits.idle_timeout",
        "cannot be turned off",
    );
    rejects(
        &with_limit("no_channel_timeout = \"soon\""),
        "supabase.limits.no_channel_timeout",
        "not a duration",
    );
    rejects(
        &with_limit("join_error_delay = \"later\""),
        "supabase.limits.join_error_delay",
        "not a duration",
    );
    rejects(
        &with_limit("handshake_error_delay = \"later\""),
        "supabase.limits.handshake_error_delay",
        "not a duration",
    );
}

#[test]
fn handshake_error_delay_off_is_zero() {
    let c = load(&with_limit("handshake_error_delay = \"off\"")).unwrap();
    assert_eq!(
        c.supabase.unwrap().limits.handshake_error_delay,
        Duration::ZERO
    );
}

#[test]
fn rejects_bad_presence_channel_limits() {
    rejects(
        &with_limit("max_presence_events_per_channel = 0"),
        "supabase.limits.max_presence_events_per_channel",
        "at least 1",
    );
    rejects(
        &with_limit("presence_events_window = \"0s\""),
        "supabase.limits.presence_events_window",
        "zero-length window",
    );
    rejects(
        &with_limit("presence_events_window = \"off\""),
        "supabase.limits.presence_events_window",
        "cannot be turned off",
    );
}

fn with_upstream(u: &str) -> String {
    format!("[supabase]\njwt_secrets = [\"{SECRET}\"]\n{u}\n")
}

#[test]
fn rejects_bad_upstreams() {
    let k = "supabase.upstream";
    rejects(&with_upstream("upstream = \"not a url\""), k, "not a URL");
    rejects(
        &with_upstream("upstream = \"ftp://x/realtime/v1\""),
        k,
        "not a ws://",
    );
    rejects(
        &with_upstream("upstream = \"wss://x/realtime/v1/websocket\""),
        k,
        "base URL",
    );
    rejects(
        &with_upstream("upstream = \"wss://x/realtime/v1?apikey=a\""),
        k,
        "base URL",
    );
    rejects(
        &with_upstream("upstream = \"/realtime/v1\""),
        k,
        "not a ws://",
    );
}

#[test]
fn rejects_upstream_host_without_upstream() {
    rejects(
        &with_upstream("upstream_host = \"realtime-dev\""),
        "supabase.upstream_host",
        "`upstream` is not",
    );
}

#[test]
fn rejects_bad_upstream_host() {
    rejects(
        &with_upstream("upstream = \"ws://realtime:4000/socket\"\nupstream_host = \"a/b\""),
        "supabase.upstream_host",
        "not a host name",
    );
}

#[test]
fn rejects_unknown_pusher_app() {
    rejects(
        &with_upstream("pusher_app = \"nope\""),
        "supabase.pusher_app",
        "no [[apps]] entry",
    );
}

#[test]
fn postgres_changes_modes() {
    let c = load(&with_upstream("postgres_changes = \"accept\"")).unwrap();
    assert_eq!(
        c.supabase.unwrap().postgres_changes,
        super::PostgresChanges::Accept
    );
    let c = load(&with_upstream("")).unwrap();
    assert_eq!(
        c.supabase.unwrap().postgres_changes,
        super::PostgresChanges::Refuse
    );
}

#[test]
fn rejects_unknown_postgres_changes_mode() {
    rejects(
        &with_upstream("postgres_changes = \"stream\""),
        "supabase.postgres_changes",
        "unknown mode",
    );
}

#[test]
fn rejects_accept_with_upstream() {
    rejects(
        &with_upstream("upstream = \"ws://realtime:4000/socket\"\npostgres_changes = \"accept\""),
        "supabase.postgres_changes",
        "both set",
    );
}

#[test]
fn check_shows_the_limits_and_delays() {
    let c = load("[supabase]\njwt_secrets = [\"${JWT}\"]\n").unwrap();
    let shown = c.effective().to_string();
    assert!(
        shown.contains(
            "5 presence call(s) per channel per 30s, handshake errors after 2s, join errors after 5s"
        ),
        "{shown}"
    );
}

/// A JWKS with one P-256 key (any point parses), as TOML-safe JSON.
fn jwks_json(kid: &str) -> String {
    use base64::Engine;
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = kp.public_key_raw();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    serde_json::json!({"keys":[{"kty":"EC","crv":"P-256","kid":kid,"x":b64(&raw[1..33]),"y":b64(&raw[33..65])}]})
        .to_string()
}

#[test]
fn jwks_inline_or_from_a_file_is_enough_auth() {
    let c = load(&format!("[supabase]\njwks = '{}'\n", jwks_json("k1"))).unwrap();
    assert_eq!(c.supabase.unwrap().jwks.as_ref().unwrap().len(), 1);
    let path = std::env::temp_dir().join(format!("portico-jwks-{}.json", std::process::id()));
    std::fs::write(&path, jwks_json("k2")).unwrap();
    let c = load(&format!(
        "[supabase]\njwt_secrets = [\"{SECRET}\"]\njwks_file = \"{}\"\n",
        path.display()
    ))
    .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(c.effective().to_string().contains("1 jwks key(s)"));
    assert_eq!(c.supabase.unwrap().jwks.as_ref().unwrap().len(), 1);
}

#[test]
fn rejects_bad_jwks() {
    rejects(
        &format!(
            "[supabase]\njwks = '{}'\njwks_file = \"/x.json\"\n",
            jwks_json("a")
        ),
        "supabase.jwks_file",
        "both set",
    );
    rejects(
        "[supabase]\njwks = '{\"keys\": 3}'\n",
        "supabase.jwks",
        "not a JSON Web Key Set",
    );
    rejects(
        "[supabase]\njwks = '{\"keys\": []}'\n",
        "supabase.jwks",
        "no signing keys",
    );
    rejects(
        "[supabase]\njwks_file = \"/nonexistent/portico/jwks.json\"\n",
        "supabase.jwks_file",
        "cannot read",
    );
}
