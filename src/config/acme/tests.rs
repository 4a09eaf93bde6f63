//! One rejecting test per `[tls] mode = "acme"` rule, plus the accepted shapes.

use super::*;
use crate::config::{Config, Tls};

fn cfg(tls: &str) -> Result<Config, ConfigError> {
    let text = format!(
        "[server]\nhttps = \"127.0.0.1:8443\"\nhttp = \"127.0.0.1:8080\"\n[tls]\nmode = \"acme\"\n{tls}\n[upstream]\nurl = \"http://127.0.0.1:8000\"\n"
    );
    Config::from_str_with_env(&text, "t.toml", &|k| {
        (k == "EAB_HMAC").then(|| "c2VjcmV0LWhtYWMta2V5".to_string())
    })
}

fn acme(tls: &str) -> AcmeSettings {
    match cfg(tls).expect("valid").tls {
        Tls::Acme(a) => a,
        other => panic!("not acme: {other:?}"),
    }
}

fn rejected(tls: &str) -> (String, String) {
    let e = cfg(tls).expect_err("should be rejected");
    let d = e.diagnostic().expect("diagnostic").clone();
    assert!(d.line > 0, "line known: {d:?}");
    assert!(!d.fix.is_empty());
    (d.key, d.problem)
}

#[test]
fn minimal_defaults() {
    let a = acme("domains = [\"Example.COM\", \"www.example.com.\"]");
    assert_eq!(a.domains, ["example.com", "www.example.com"]);
    assert_eq!(a.directory, LETSENCRYPT);
    assert_eq!(a.storage, PathBuf::from(DEFAULT_STORAGE));
    assert_eq!(
        a.challenges,
        [ChallengeKind::Http01, ChallengeKind::TlsAlpn01]
    );
    assert_eq!(a.renew_check, DEFAULT_RENEW_CHECK);
    assert!(a.eab.is_none() && a.email.is_none() && a.ca_root.is_none());
}

#[test]
fn full_settings() {
    let a = acme(
        "domains = [\"a.example.com\"]\nemail = \"ops@example.com\"\ndirectory = \"letsencrypt-staging\"\nstorage = \"/var/lib/portico/acme\"\neab_kid = \"kid-1\"\neab_hmac_key = \"${EAB_HMAC}\"\nca_root = \"pebble.minica.pem\"\nchallenges = [\"tls-alpn-01\"]\nrenew_check = \"1m\"",
    );
    assert_eq!(a.directory, LETSENCRYPT_STAGING);
    assert_eq!(a.email.as_deref(), Some("ops@example.com"));
    let eab = a.eab.expect("eab");
    assert_eq!(eab.kid, "kid-1");
    assert_eq!(eab.hmac_key, b"secret-hmac-key");
    assert!(!format!("{eab:?}").contains("secret"));
    assert_eq!(a.ca_root, Some(PathBuf::from("pebble.minica.pem")));
    assert_eq!(a.challenges, [ChallengeKind::TlsAlpn01]);
    assert_eq!(a.renew_check, Duration::from_secs(60));
    let a = acme("domains = [\"a.example.com\"]\ndirectory = \"https://127.0.0.1:14000/dir\"");
    assert_eq!(a.directory, "https://127.0.0.1:14000/dir");
}

#[test]
fn bad_directory_urls_are_config_errors() {
    for bad in [
        "http://acme.example.com/dir",
        "acme.example.com/directory",
        "letsencrypt-prod",
        "https://",
        "ftp://x/y",
    ] {
        let (key, problem) = rejected(&format!(
            "domains = [\"a.example.com\"]\ndirectory = \"{bad}\""
        ));
        assert_eq!(key, "tls.directory", "{bad}: {problem}");
    }
}

#[test]
fn domains_rules() {
    assert_eq!(rejected("email = \"a@b.co\"").0, "tls.domains");
    assert_eq!(rejected("domains = []").0, "tls.domains");
    let (k, p) = rejected("domains = [\"*.example.com\"]");
    assert_eq!(k, "tls.domains[0]");
    assert!(p.contains("wildcard"));
    for bad in ["localhost", "127.0.0.1", "bad_name.com", "-a.com", "a..com"] {
        let (k, _) = rejected(&format!("domains = [\"ok.com\", \"{bad}\"]"));
        assert_eq!(k, "tls.domains[1]", "{bad}");
    }
    let (k, p) = rejected("domains = [\"a.com\", \"A.com\"]");
    assert_eq!(k, "tls.domains[1]");
    assert!(p.contains("twice"));
}

#[test]
fn other_field_rules() {
    let d = "domains = [\"a.example.com\"]\n";
    assert_eq!(rejected(&format!("{d}email = \"nope\"")).0, "tls.email");
    assert_eq!(rejected(&format!("{d}storage = \"\"")).0, "tls.storage");
    assert_eq!(rejected(&format!("{d}ca_root = \" \"")).0, "tls.ca_root");
    assert_eq!(
        rejected(&format!("{d}eab_kid = \"k\"")).0,
        "tls.eab_hmac_key"
    );
    assert_eq!(
        rejected(&format!("{d}eab_hmac_key = \"aGVsbG8\"")).0,
        "tls.eab_kid"
    );
    assert_eq!(
        rejected(&format!(
            "{d}eab_kid = \"k\"\neab_hmac_key = \"not base64!\""
        ))
        .0,
        "tls.eab_hmac_key"
    );
    assert_eq!(
        rejected(&format!("{d}challenges = [\"dns-01\"]")).0,
        "tls.challenges[0]"
    );
    assert_eq!(rejected(&format!("{d}challenges = []")).0, "tls.challenges");
    assert_eq!(
        rejected(&format!("{d}renew_check = \"0s\"")).0,
        "tls.renew_check"
    );
    assert_eq!(
        rejected(&format!("{d}renew_check = \"soon\"")).0,
        "tls.renew_check"
    );
}

#[test]
fn acme_keys_outside_acme_mode_are_rejected() {
    let text = "[tls]\nmode = \"dev\"\nca_root = \"x.pem\"\n[upstream]\nurl = \"http://127.0.0.1:8000\"\n[server]\nhttps = \"127.0.0.1:8443\"\n";
    let e = Config::from_str(text, "t.toml").expect_err("rejected");
    assert_eq!(e.diagnostic().expect("diag").key, "tls.ca_root");
}

#[test]
fn listeners_needed() {
    let text = "[server]\nhttp = \"127.0.0.1:8080\"\n[tls]\nmode = \"acme\"\ndomains = [\"a.example.com\"]\n[upstream]\nurl = \"http://127.0.0.1:8000\"\n";
    let e = Config::from_str(text, "t.toml").expect_err("no https");
    assert_eq!(e.diagnostic().expect("diag").key, "server.https");

    let only_https = "[server]\nhttps = \"127.0.0.1:8443\"\n[tls]\nmode = \"acme\"\ndomains = [\"a.example.com\"]\n";
    let c = Config::from_str(
        &format!(
            "{only_https}challenges = [\"http-01\"]\n[upstream]\nurl = \"http://127.0.0.1:8000\"\n"
        ),
        "t.toml",
    )
    .expect_err("http-01 without http listener");
    assert_eq!(c.diagnostic().expect("diag").key, "tls.challenges");
    let c = Config::from_str(
        &format!("{only_https}[upstream]\nurl = \"http://127.0.0.1:8000\"\n"),
        "t.toml",
    )
    .expect("defaults drop http-01");
    match c.tls {
        Tls::Acme(a) => assert_eq!(a.challenges, [ChallengeKind::TlsAlpn01]),
        other => panic!("{other:?}"),
    }
}
