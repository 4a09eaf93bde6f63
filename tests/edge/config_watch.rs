//! The real binary watching its config file (`[server] watch_config`, on by
//! default): a write and an editor-style rename each take effect with no
//! signal, and an invalid file is logged with its key and file while the
//! running config keeps serving.

use std::time::Duration;

use crate::config::{ConfigText, plain};
use crate::support::binary;
use crate::support::client::Client;
use crate::support::upstream;

/// Poll (1 s) + settle (300 ms) + reload, with room for a loaded machine.
const RELOAD_WAIT: Duration = Duration::from_secs(15);

fn config(up: &str) -> ConfigText {
    plain()
        .set("server.plain", "127.0.0.1:0")
        .set("log.format", "json")
        .set("upstream.url", up)
}

fn route(path: &str, to: &str) -> String {
    format!("[[routes]]\npath = \"{path}\"\nto = \"{to}\"\nstrip_prefix = true\n")
}

/// Asks `path` until the answer's echoed URI is `want`, within [`RELOAD_WAIT`].
async fn until_uri(addr: std::net::SocketAddr, path: &str, want: &str) {
    let deadline = tokio::time::Instant::now() + RELOAD_WAIT;
    loop {
        let mut c = Client::plain(addr).await;
        let got = c.get(path).await.json()["uri"].clone();
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} still answers uri {got} after {RELOAD_WAIT:?}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn message(v: &serde_json::Value) -> &str {
    v["fields"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn edits_reload_without_a_signal_and_a_bad_file_keeps_the_running_config() {
    let up = upstream::start().await;
    let up2 = upstream::start().await;
    let mut p = binary::start(&config(&up.url()).to_string(), &["plain"]).await;
    let addr = p.plain.expect("plain listener");
    until_uri(addr, "/new/x", "/new/x").await; // [upstream], unstripped

    // A plain write: the new route answers, no SIGHUP sent.
    p.rewrite_config(
        &config(&up.url())
            .with(&route("/new/", &up2.url()))
            .to_string(),
    );
    p.wait_log_for("the watcher's reload", RELOAD_WAIT, |v| {
        message(v) == "config file changed: reloading configuration"
    })
    .await;
    p.wait_log_for("configuration reloaded", RELOAD_WAIT, |v| {
        message(v) == "configuration reloaded"
    })
    .await;
    until_uri(addr, "/new/x", "/x").await;
    assert!(up2.state.last_seen("/x").is_some());

    // An editor's save: a new file renamed over the old one.
    let path = p.config_path().to_path_buf();
    let tmp = path.with_extension("toml.swp");
    let renamed = config(&up.url()).with(&route("/other/", &up2.url()));
    std::fs::write(&tmp, renamed.to_string()).expect("write temp");
    std::fs::rename(&tmp, &path).expect("rename over the config");
    until_uri(addr, "/other/y", "/y").await;
    until_uri(addr, "/new/x", "/new/x").await; // the old route is gone

    // An invalid file: refused with the key and the file, old config stays.
    let bad = config(&up.url()).with("[[routes]]\npath = \"/bad/\"\nto = \"nowhere\"\n");
    p.rewrite_config(&bad.to_string());
    let v = p
        .wait_log_for("reload refused", RELOAD_WAIT, |v| {
            message(v).contains("reload refused")
        })
        .await;
    let msg = message(&v).to_string();
    assert!(msg.contains("routes[0].to"), "names the key: {msg}");
    assert!(
        msg.contains(&path.display().to_string()),
        "names the file: {msg}"
    );
    let mut c = Client::plain(addr).await;
    assert_eq!(
        c.get("/other/y").await.json()["uri"],
        "/y",
        "the running config keeps serving"
    );

    // Fixed again: the watcher is still there.
    p.rewrite_config(
        &config(&up.url())
            .with(&route("/fixed/", &up2.url()))
            .to_string(),
    );
    until_uri(addr, "/fixed/z", "/z").await;
}

#[tokio::test]
async fn watch_config_false_leaves_reloads_to_sighup() {
    let up = upstream::start().await;
    let up2 = upstream::start().await;
    let base = || config(&up.url()).set("server.watch_config", false);
    let mut p = binary::start(&base().to_string(), &["plain"]).await;
    let addr = p.plain.expect("plain listener");
    p.rewrite_config(&base().with(&route("/new/", &up2.url())).to_string());
    // Three poll periods and the settle time pass without a reload.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let mut c = Client::plain(addr).await;
    assert_eq!(
        c.get("/new/x").await.json()["uri"],
        "/new/x",
        "not reloaded"
    );
    p.signal("HUP");
    p.wait_log("configuration reloaded", |v| {
        message(v) == "configuration reloaded"
    })
    .await;
    until_uri(addr, "/new/x", "/x").await;
    assert!(
        !p.history.iter().any(|l| l.contains("config file changed")),
        "the watcher stayed quiet"
    );
}
