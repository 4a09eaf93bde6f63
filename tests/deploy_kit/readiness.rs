//! systemd readiness with the real binary: `READY=1` arrives on
//! `$NOTIFY_SOCKET` once the listener is bound (it then answers), and
//! `STOPPING=1` on SIGTERM; supervised processes never see the variable
//! (php-fpm would report itself ready in portico's name).

use std::time::Duration;

use tokio::net::UnixDatagram;

use crate::support::client::Client;
use crate::support::{TempDir, WAIT, binary};

const CONFIG: &str = r#"
[server]
plain = "127.0.0.1:0"
grace_period = "2s"

[tls]
mode = "off"

[log]
format = "json"

[upstream]
url = "http://127.0.0.1:9"

# `$$` is the config's literal `$`: the shell expands the variable.
[[processes]]
name = "child"
command = ["sh", "-c", "echo notify=$${NOTIFY_SOCKET:-none}; exec sleep 30"]
"#;

async fn recv(sock: &UnixDatagram, what: &str) -> String {
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(WAIT, sock.recv(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("no {what} datagram within {WAIT:?}"))
        .expect("recv");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn ready_after_bind_and_stopping_on_sigterm() {
    let dir = TempDir::new("notify");
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).expect("bind the notify socket");
    let notify = path.display().to_string();
    let mut p = binary::start_with_env(CONFIG, &["plain"], &[("NOTIFY_SOCKET", &notify)]).await;

    assert_eq!(recv(&sock, "READY=1").await, "READY=1\n");
    let addr = p.plain.expect("plain listener");
    let mut c = Client::plain(addr).await;
    assert_eq!(
        c.get("/.portico/up").await.text().trim_end(),
        "ok",
        "ready means serving"
    );

    let line = p
        .wait_log("the child's output", |v| {
            v["fields"]["process"] == "child"
                && v["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("notify="))
        })
        .await;
    assert_eq!(
        line["fields"]["message"], "notify=none",
        "a supervised process must not inherit NOTIFY_SOCKET"
    );

    p.signal("TERM");
    assert_eq!(recv(&sock, "STOPPING=1").await, "STOPPING=1\n");
    let status = p.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");
}
