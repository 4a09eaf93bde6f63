//! `[tls] mode = "acme"` against a real ACME server: Let's Encrypt's pebble,
//! started per test on loopback (see `pebble.rs`). Needs the `pebble`
//! Debian package (scripts/test installs it).

#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../common/config.rs"]
mod config;
#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../common/inproc.rs"]
mod inproc;
mod pebble;

use std::time::Duration;

use pebble::{
    Bound, Pebble, PebbleOpts, Portico, connect_verified, eventually, health, issuer_cn, peer_leaf,
    served_leaf, tempdir,
};
use portico::config::{Config, Tls};
use portico::tls::acme::status::{self, DomainStatus};

const A: &str = "a.portico.test";
const B: &str = "b.portico.test";

fn tls_lines(p: &Pebble, storage: &std::path::Path, domains: &[&str], extra: &str) -> String {
    let list: Vec<String> = domains.iter().map(|d| format!("\"{d}\"")).collect();
    format!(
        "domains = [{}]\nemail = \"ops@portico.test\"\ndirectory = \"{}\"\nstorage = \"{}\"\nca_root = \"{}\"\n{extra}",
        list.join(", "),
        p.dir_url,
        storage.display(),
        p.wfe_root.display()
    )
}

fn settings(tls: &str) -> portico::config::AcmeSettings {
    let text = format!(
        "[server]\nhttps = \"127.0.0.1:1\"\nhttp = \"127.0.0.1:2\"\n[tls]\nmode = \"acme\"\n{tls}\n"
    );
    match Config::from_str(&text, "t.toml").expect("config").tls {
        Tls::Acme(a) => a,
        _ => unreachable!(),
    }
}

/// Waits until `sni` is served a certificate that verifies against pebble.
async fn issued(p: &Pebble, portico: &Portico, sni: &str, limit: Duration) -> Vec<u8> {
    let root = p.issuing_root().await;
    eventually(limit, &format!("a verified certificate for {sni}"), || {
        let root = root.clone();
        async move {
            connect_verified(portico.https, &root, sni)
                .await
                .ok()
                .map(|s| peer_leaf(&s))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_two_domains_sni_then_restart_reuses_stored_certs() {
    let dir = tempdir("http01");
    let bound = Bound::new().await;
    let (http_port, tls_port) = bound.ports();
    let p = Pebble::start(
        &dir,
        PebbleOpts {
            http_port,
            tls_port,
            validity_secs: None,
            wfe_port: None,
        },
    )
    .await;
    let storage = dir.join("storage");
    let tls = tls_lines(&p, &storage, &[A, B], "challenges = [\"http-01\"]\n");
    let portico = Portico::start(bound, &tls, None).await;

    // Each name gets its own certificate, chosen by SNI, trusted via pebble's root.
    let a = issued(&p, &portico, A, Duration::from_secs(60)).await;
    let b = issued(&p, &portico, B, Duration::from_secs(60)).await;
    assert_ne!(a, b, "one certificate per domain");
    assert!(
        issuer_cn(&a).to_lowercase().contains("pebble"),
        "issuer {}",
        issuer_cn(&a)
    );
    let root = p.issuing_root().await;
    let mut conn = connect_verified(portico.https, &root, A)
        .await
        .expect("verified");
    assert_eq!(
        health(&mut conn, A).await,
        200,
        "normal traffic still served"
    );

    // Stored with 0600 files; `portico certs` data reads it back.
    let s = settings(&tls);
    let rows = status::report(&s);
    for (row, want) in rows.iter().zip([A, B]) {
        match row {
            DomainStatus::Stored {
                domain,
                challenge,
                issuer,
                ..
            } => {
                assert_eq!(domain, want);
                assert_eq!(challenge.as_deref(), Some("http-01"));
                assert!(issuer.to_lowercase().contains("pebble"));
            }
            other => panic!("not stored: {other:?}"),
        }
    }
    let ca = portico::tls::acme::storage::CaStorage::new(&storage, &p.dir_url);
    use std::os::unix::fs::PermissionsExt;
    for f in [
        ca.account_path(),
        ca.cert_dir(A).join("key.pem"),
        ca.cert_dir(A).join("cert.pem"),
    ] {
        let mode = std::fs::metadata(&f).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
    let orders = p.orders();
    assert_eq!(orders, 2, "one order per domain:\n{}", p.log_text());

    // Restart: the stored certificates are served at once, no new order.
    let bound = portico.stop().await;
    let portico = Portico::start(bound, &tls, None).await;
    let again = connect_verified(portico.https, &root, A)
        .await
        .expect("served right away");
    assert_eq!(peer_leaf(&again), a, "same certificate after restart");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(p.orders(), orders, "restart placed no new order");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_alpn01_issues_and_is_remembered() {
    let dir = tempdir("alpn");
    let bound = Bound::new().await;
    let (http_port, tls_port) = bound.ports();
    let p = Pebble::start(
        &dir,
        PebbleOpts {
            http_port,
            tls_port,
            validity_secs: None,
            wfe_port: None,
        },
    )
    .await;
    let storage = dir.join("storage");
    let tls = tls_lines(&p, &storage, &[A], "challenges = [\"tls-alpn-01\"]\n");
    let portico = Portico::start(bound, &tls, None).await;
    issued(&p, &portico, A, Duration::from_secs(60)).await;
    match &status::report(&settings(&tls))[0] {
        DomainStatus::Stored { challenge, .. } => {
            assert_eq!(challenge.as_deref(), Some("tls-alpn-01"))
        }
        other => panic!("{other:?}"),
    }
    drop(portico);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_failure_falls_back_to_tls_alpn01() {
    let dir = tempdir("fallback");
    let bound = Bound::new().await;
    let (_http_port, tls_port) = bound.ports();
    // pebble validates HTTP-01 on a port where nothing listens.
    let dead = pebble::free_port();
    let p = Pebble::start(
        &dir,
        PebbleOpts {
            http_port: dead,
            tls_port,
            validity_secs: None,
            wfe_port: None,
        },
    )
    .await;
    let storage = dir.join("storage");
    let tls = tls_lines(&p, &storage, &[A], "");
    let portico = Portico::start(bound, &tls, None).await;
    issued(&p, &portico, A, Duration::from_secs(90)).await;
    match &status::report(&settings(&tls))[0] {
        DomainStatus::Stored { challenge, .. } => {
            assert_eq!(
                challenge.as_deref(),
                Some("tls-alpn-01"),
                "remembers what worked"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p.orders(), 2, "http-01 order, then tls-alpn-01 order");
    drop(portico);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_swaps_certificate_while_connection_stays_open_and_survives_ca_outage() {
    let dir = tempdir("renew");
    let bound = Bound::new().await;
    let (http_port, tls_port) = bound.ports();
    // 20 s certificates: short-lived, so renewal is due at half-life (10 s).
    let p = Pebble::start(
        &dir,
        PebbleOpts {
            http_port,
            tls_port,
            validity_secs: Some(20),
            wfe_port: None,
        },
    )
    .await;
    let storage = dir.join("storage");
    let tls = tls_lines(&p, &storage, &[A], "renew_check = \"1s\"\n");
    let portico = Portico::start(bound, &tls, Some(vec![Duration::from_secs(1)])).await;
    let first = issued(&p, &portico, A, Duration::from_secs(60)).await;
    let root = p.issuing_root().await;
    let mut open = connect_verified(portico.https, &root, A)
        .await
        .expect("open");
    assert_eq!(health(&mut open, A).await, 200);
    // A Pusher WebSocket on the in-process hub, over the first certificate.
    let mut ws = pusher_socket(portico.https, &root, A).await;

    // Renewal swaps the certificate for new handshakes...
    let second = eventually(Duration::from_secs(40), "a renewed certificate", || {
        let root = root.clone();
        let first = first.clone();
        let https = portico.https;
        async move {
            let s = connect_verified(https, &root, A).await.ok()?;
            let leaf = peer_leaf(&s);
            (leaf != first).then_some(leaf)
        }
    })
    .await;
    assert_ne!(first, second);
    // ...while the connection opened before it keeps working.
    assert_eq!(
        health(&mut open, A).await,
        200,
        "open connection survived the swap"
    );
    assert_eq!(peer_leaf(&open), first);
    // ...and so does the WebSocket: it still answers a ping on the old session.
    pusher_ping(&mut ws).await;
    assert_eq!(peer_leaf(ws.get_ref()), first);

    // The CA goes away: renewal fails, portico keeps serving the last certificate.
    assert!(p.orders() >= 2);
    drop(p);
    let last = served_leaf(portico.https, A).await;
    tokio::time::sleep(Duration::from_secs(12)).await; // past the next renewal time
    match &status::report(&settings(&tls))[0] {
        DomainStatus::Stored { next_renewal, .. } => assert!(
            *next_renewal <= std::time::SystemTime::now(),
            "renewal is due but the CA is down"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        served_leaf(portico.https, A).await,
        last,
        "keeps the last certificate"
    );
    assert_eq!(
        health(&mut open, A).await,
        200,
        "still serving with the CA down"
    );
    drop(portico);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_down_at_startup_serves_placeholder_then_issues() {
    let dir = tempdir("down");
    let bound = Bound::new().await;
    let (http_port, tls_port) = bound.ports();
    let wfe_port = pebble::free_port();
    let storage = dir.join("storage");
    // Write the WFE root pebble will use before pebble exists: start it
    // once to generate files and learn the layout, then stop it.
    let tls_for = |p: &Pebble| tls_lines(p, &storage, &[A], "");
    let p = Pebble::start(
        &dir,
        PebbleOpts {
            http_port,
            tls_port,
            validity_secs: None,
            wfe_port: Some(wfe_port),
        },
    )
    .await;
    let tls = tls_for(&p);
    drop(p); // CA down
    // The root file was regenerated per start, so keep this start's copy.
    let portico = Portico::start(bound, &tls, Some(vec![Duration::from_secs(1)])).await;
    let placeholder = served_leaf(portico.https, A).await;
    assert!(
        issuer_cn(&placeholder).contains("portico placeholder"),
        "self-signed placeholder while the CA is down: {}",
        issuer_cn(&placeholder)
    );
    tokio::time::sleep(Duration::from_secs(3)).await; // a few failed attempts, no exit
    assert!(served_leaf(portico.https, A).await == placeholder);

    // The CA comes up (same port, same WFE root file path): portico gets a cert.
    let p = Pebble::start(
        &dir,
        PebbleOpts {
            http_port,
            tls_port,
            validity_secs: None,
            wfe_port: Some(wfe_port),
        },
    )
    .await;
    issued(&p, &portico, A, Duration::from_secs(60)).await;
    drop(portico);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_directory_url_is_a_config_error() {
    let text = "[server]\nhttps = \"127.0.0.1:8443\"\n[tls]\nmode = \"acme\"\ndomains = [\"a.example.com\"]\ndirectory = \"http://not-https.example/dir\"\n";
    let e = Config::from_str(text, "t.toml").expect_err("rejected");
    let d = e.diagnostic().expect("diagnostic");
    assert_eq!(d.key, "tls.directory");
    assert_eq!(d.line, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_sharing_storage_order_once() {
    let dir = tempdir("cluster");
    let (bound_a, bound_b) = (Bound::new().await, Bound::new().await);
    let (http_port, tls_port) = bound_a.ports();
    // The CA's validator reaches node A only (as a load balancer might).
    let p = Pebble::start(
        &dir,
        PebbleOpts {
            http_port,
            tls_port,
            validity_secs: None,
            wfe_port: None,
        },
    )
    .await;
    let storage = dir.join("storage");
    let tls = tls_lines(
        &p,
        &storage,
        &[A],
        "challenges = [\"http-01\"]\nrenew_check = \"1s\"\n",
    );
    let node_a = Portico::start(bound_a, &tls, Some(vec![Duration::from_secs(1)])).await;
    let node_b = Portico::start(bound_b, &tls, Some(vec![Duration::from_secs(1)])).await;
    let leaf_a = issued(&p, &node_a, A, Duration::from_secs(60)).await;
    let leaf_b = issued(&p, &node_b, A, Duration::from_secs(60)).await;
    assert_eq!(leaf_a, leaf_b, "both nodes serve the one certificate");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        p.orders(),
        1,
        "exactly one order for two nodes:\n{}",
        p.log_text()
    );
    assert_eq!(
        p.log_text().matches("POST /sign-me-up").count(),
        1,
        "one account"
    );
    drop((node_a, node_b));
    let _ = std::fs::remove_dir_all(&dir);
}

type PusherWs =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// Opens `wss://{sni}/app/{key}` over a verified TLS connection and waits for
/// `pusher:connection_established`.
async fn pusher_socket(
    addr: std::net::SocketAddr,
    root: &rustls::pki_types::CertificateDer<'static>,
    sni: &str,
) -> PusherWs {
    let tls = connect_verified(addr, root, sni).await.expect("tls");
    let url = format!("wss://{sni}/app/acme-test-key?protocol=7&client=js&version=8.4.0");
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::client_async(url, tls),
    )
    .await
    .expect("upgrade in time")
    .expect("upgrade");
    let first = next_text(&mut ws).await;
    assert!(first.contains("pusher:connection_established"), "{first}");
    ws
}

/// Sends `pusher:ping` and waits for `pusher:pong`.
async fn pusher_ping(ws: &mut PusherWs) {
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        r#"{"event":"pusher:ping","data":{}}"#,
    ))
    .await
    .expect("send ping");
    let reply = next_text(ws).await;
    assert!(reply.contains("pusher:pong"), "{reply}");
}

async fn next_text(ws: &mut PusherWs) -> String {
    use futures_util::StreamExt;
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
            return t.to_string();
        }
    }
}
