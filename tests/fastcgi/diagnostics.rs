//! The diagnostics page (`/.portico/`) in front of a php-fpm root whose
//! dotfile rule refuses every other `/.x` path: answered by portico before
//! routing in dev mode, absent (the root's 403) in a non-dev config without
//! `[diagnostics]`, and behind its token when one is configured.

use http::Method;
use portico::http::body::{empty, full};

use crate::client::{Client, Resp};
use crate::config::ConfigText;
use crate::{php_config, stack};

const APP: &str = r#"
[[apps]]
id = "diag-app"
key = "diag-key"
secret = "diag-secret"
"#;

async fn get(c: &mut Client, path: &str) -> Resp {
    let req = c.req(Method::GET, path).body(empty()).unwrap();
    c.fetch(req).await
}

async fn post_json(c: &mut Client, path: &str, body: &str) -> Resp {
    let req = c
        .req(Method::POST, path)
        .header("content-type", "application/json")
        .header("content-length", body.len().to_string())
        .body(full(body.to_string()))
        .unwrap();
    c.fetch(req).await
}

fn is_page(r: &Resp) -> bool {
    r.status == 200 && r.text().contains("<title>portico diagnostics</title>")
}

/// php-fpm at `url` as the root, TLS off, no dev default: not a dev config.
fn production(url: &str) -> ConfigText {
    php_config(url)
        .without("server.https")
        .without("tls")
        .set("tls.mode", "off")
}

#[tokio::test]
async fn served_before_a_php_root_in_dev_mode() {
    let Some(s) = stack(|f| php_config(&f.unix_url()).with(APP)).await else {
        return;
    };
    let mut c = Client::plain(s.edge.plain()).await;
    let r = get(&mut c, "/.portico/").await;
    assert!(is_page(&r), "{} {}", r.status, r.text());
    assert!(
        r.header("content-security-policy")
            .is_some_and(|v| v.contains("default-src 'none'")),
        "no external assets, never framed"
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // The root's dotfile rule still holds for everything else.
    assert_eq!(get(&mut c, "/.env").await.status, 403);
    // `/.portico` without its slash is sent to the page.
    let r = get(&mut c, "/.portico").await;
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), Some("/.portico/"));

    let info = get(&mut c, "/.portico/info").await;
    assert_eq!(info.status, 200, "{}", info.text());
    let j = info.json();
    assert_eq!(j["listener"], "plain");
    assert_eq!(j["tls_mode"], "dev");
    assert_eq!(j["pusher"]["default_key"], "diag-key");
    assert_eq!(j["pusher"]["ws_prefix"], "/app/");
    assert_eq!(j["auth_endpoint"], "/broadcasting/auth");
    assert_eq!(j["supabase"]["enabled"], false);
    assert!(j["certificate"].is_null(), "no certificate on plain: {j}");

    // Over TLS it names the certificate portico serves for the host.
    let mut t = Client::tls(s.edge.https(), &s.edge.ca(), &[b"h2"]).await;
    let j = get(&mut t, "/.portico/info").await.json();
    assert_eq!(j["listener"], "https");
    let cert = &j["certificate"];
    assert!(
        cert["issuer"].as_str().unwrap().contains("portico"),
        "the dev CA signed it: {cert}"
    );
    assert!(
        cert["names"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "localhost"),
        "{cert}"
    );
    assert!(cert["expires_in_days"].as_i64().unwrap() >= 0, "{cert}");

    // The publish endpoint: JSON only, the page's own channels only, a
    // known key only (its error names the browser-side variable).
    let r = post_json(
        &mut c,
        "/.portico/publish",
        r#"{"key":"diag-key","channel":"portico-diagnostics-abc","data":"{}"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["delivered"], 0);
    let r = post_json(
        &mut c,
        "/.portico/publish",
        r#"{"key":"diag-key","channel":"orders","data":"{}"}"#,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = post_json(
        &mut c,
        "/.portico/publish",
        r#"{"key":"wrong","channel":"portico-diagnostics-abc","data":"{}"}"#,
    )
    .await;
    assert_eq!(r.status, 404);
    assert!(r.text().contains("VITE_REVERB_APP_KEY"), "{}", r.text());
    let req = c
        .req(Method::POST, "/.portico/publish")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(full("key=diag-key"))
        .unwrap();
    assert_eq!(c.fetch(req).await.status, 415);
    assert_eq!(get(&mut c, "/.portico/nothing").await.status, 404);
}

#[tokio::test]
async fn off_outside_dev_mode_without_the_section() {
    let Some(s) = stack(|f| production(&f.unix_url()).with(APP)).await else {
        return;
    };
    let mut c = Client::plain(s.edge.plain()).await;
    for p in ["/.portico/", "/.portico/info"] {
        let r = get(&mut c, p).await;
        // The php root's dotfile rule answers, as for any other `/.x`.
        assert_eq!(r.status, 403, "{p}: {}", r.text());
        assert!(!is_page(&r));
    }
    let r = post_json(
        &mut c,
        "/.portico/publish",
        r#"{"key":"diag-key","channel":"portico-diagnostics-abc","data":"{}"}"#,
    )
    .await;
    assert_ne!(r.status, 200);
}

#[tokio::test]
async fn behind_its_token_when_configured() {
    let Some(s) = stack(|f| {
        production(&f.unix_url()).with(APP).with(
            r#"
[diagnostics]
enabled = true
token = "open-sesame"
"#,
        )
    })
    .await
    else {
        return;
    };
    let mut c = Client::plain(s.edge.plain()).await;
    for p in [
        "/.portico/",
        "/.portico/?token=wrong",
        "/.portico/info",
        "/.portico/info?token=open-sesam",
    ] {
        let r = get(&mut c, p).await;
        assert_eq!(r.status, 403, "{p}");
        assert!(r.text().contains("diagnostics.token"), "{p}: {}", r.text());
    }
    let r = post_json(
        &mut c,
        "/.portico/publish",
        r#"{"key":"diag-key","channel":"portico-diagnostics-abc","data":"{}"}"#,
    )
    .await;
    assert_eq!(r.status, 403);

    assert!(is_page(&get(&mut c, "/.portico/?token=open-sesame").await));
    let r = get(&mut c, "/.portico?token=open-sesame").await;
    assert_eq!(r.header("location"), Some("/.portico/?token=open-sesame"));
    // The page sends it on as a header.
    let req = c
        .req(Method::GET, "/.portico/info")
        .header("x-portico-token", "open-sesame")
        .body(empty())
        .unwrap();
    let r = c.fetch(req).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["tls_mode"], "off");
    let req = c
        .req(Method::POST, "/.portico/publish")
        .header("x-portico-token", "open-sesame")
        .header("content-type", "application/json")
        .body(full(
            r#"{"key":"diag-key","channel":"portico-diagnostics-abc","data":"{}"}"#,
        ))
        .unwrap();
    assert_eq!(c.fetch(req).await.status, 200);
}
