//! Handshakes against a server using the dev CA's leaf.

use std::sync::Arc;
use std::time::Duration;

use portico::tls::{
    self, CertResolver, HandshakeError, ServerOptions, build_server_config, shared_store,
};
use rustls::ProtocolVersion;
use rustls::version::{TLS12, TLS13};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{self, WAIT};

struct Dev {
    dir: std::path::PathBuf,
    ca: Vec<rustls_pki_types::CertificateDer<'static>>,
    config: Arc<rustls::ServerConfig>,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn dev_server_config(tag: &str, options: &ServerOptions) -> Dev {
    let dir = support::tempdir(tag);
    // Explicit names: rustls (like Firefox) refuses the second-level
    // wildcards `*.localhost` / `*.test`, so real apps list their names.
    let hosts = ["app.localhost".to_owned(), "shop.test".to_owned()];
    let certs = tls::dev::ensure(&dir, &hosts).expect("dev certs");
    let ca = support::read_certs(&certs.ca_cert);
    let resolver = Arc::new(CertResolver::new(shared_store(
        certs.load_store().expect("store"),
    )));
    let config = build_server_config(resolver, options).expect("server config");
    Dev { dir, ca, config }
}

#[tokio::test]
async fn dev_ca_trusted_client_negotiates_every_combination() {
    let dev = dev_server_config("matrix", &ServerOptions::default());
    let mut server = support::start(Arc::clone(&dev.config), WAIT).await;
    for name in ["localhost", "127.0.0.1", "app.localhost", "shop.test"] {
        for (version, want_version) in [
            (&TLS12, ProtocolVersion::TLSv1_2),
            (&TLS13, ProtocolVersion::TLSv1_3),
        ] {
            for alpn in [&b"h2"[..], &b"http/1.1"[..]] {
                let cfg = support::client_config(&dev.ca, &[alpn], version);
                let mut s = support::connect(cfg, server.addr, name)
                    .await
                    .unwrap_or_else(|e| panic!("{name} {want_version:?} {alpn:?}: {e}"));
                assert_eq!(s.get_ref().1.alpn_protocol(), Some(alpn));
                assert_eq!(s.get_ref().1.protocol_version(), Some(want_version));
                assert_eq!(support::echo(&mut s, b"ping").await, b"ping");

                let info = server.next_result().await.expect("server handshake");
                assert_eq!(info.alpn.as_deref(), Some(alpn));
                assert_eq!(info.version, Some(want_version));
                assert!(info.cipher.is_some());
                // Clients send no SNI for IP addresses.
                let want_sni = (name != "127.0.0.1").then(|| name.to_owned());
                assert_eq!(info.sni, want_sni);
                assert_eq!(info.is_h2(), alpn == b"h2");
            }
        }
    }
}

#[tokio::test]
async fn client_offering_both_gets_h2_and_http11_only_listener_gets_http11() {
    let dev = dev_server_config("alpnpref", &ServerOptions::default());
    let server = support::start(Arc::clone(&dev.config), WAIT).await;
    let cfg = support::client_config(&dev.ca, &[b"http/1.1", b"h2"], &TLS13);
    let s = support::connect(cfg.clone(), server.addr, "localhost")
        .await
        .expect("connect");
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));

    let h1 = dev_server_config("alpnh1", &ServerOptions::http11_only());
    let server = support::start(Arc::clone(&h1.config), WAIT).await;
    let cfg = support::client_config(&h1.ca, &[b"h2", b"http/1.1"], &TLS13);
    let s = support::connect(cfg, server.addr, "localhost")
        .await
        .expect("connect");
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
}

#[tokio::test]
async fn sessions_resume_on_tls12_and_tls13() {
    let dev = dev_server_config("resume", &ServerOptions::default());
    let server = support::start(Arc::clone(&dev.config), WAIT).await;
    for version in [&TLS12, &TLS13] {
        let cfg = support::client_config(&dev.ca, &[b"http/1.1"], version);
        let mut first = support::connect(Arc::clone(&cfg), server.addr, "localhost")
            .await
            .expect("first");
        // A round trip lets the client process TLS 1.3 tickets.
        support::echo(&mut first, b"x").await;
        assert_eq!(
            first.get_ref().1.handshake_kind(),
            Some(rustls::HandshakeKind::Full)
        );
        let second = support::connect(cfg, server.addr, "localhost")
            .await
            .expect("second");
        assert_eq!(
            second.get_ref().1.handshake_kind(),
            Some(rustls::HandshakeKind::Resumed),
            "{version:?}"
        );
    }
}

#[tokio::test]
async fn silent_client_is_cut_at_the_deadline() {
    let dev = dev_server_config("deadline", &ServerOptions::default());
    let deadline = Duration::from_millis(300);
    let mut server = support::start(Arc::clone(&dev.config), deadline).await;

    let started = tokio::time::Instant::now();
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    let err = server.next_result().await.expect_err("must time out");
    assert!(matches!(err, HandshakeError::Timeout), "{err}");
    assert_eq!(err.kind(), "timeout");
    let took = started.elapsed();
    assert!(took >= deadline && took < WAIT, "{took:?}");
    // The server closed the socket: the client reads EOF (or a reset).
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(WAIT, silent.read(&mut buf))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn trickling_client_is_cut_at_the_same_deadline() {
    let dev = dev_server_config("trickle", &ServerOptions::default());
    let deadline = Duration::from_millis(300);
    let mut server = support::start(Arc::clone(&dev.config), deadline).await;
    let mut slow = TcpStream::connect(server.addr).await.expect("connect");
    // The first bytes of a TLS record header (handshake, TLS 1.0 legacy
    // version), then nothing more: the deadline covers the whole handshake.
    slow.write_all(&[0x16, 0x03, 0x01]).await.expect("write");
    let err = server.next_result().await.expect_err("must time out");
    assert!(matches!(err, HandshakeError::Timeout), "{err}");
}

#[tokio::test]
async fn plaintext_http_is_a_tls_error_and_untrusted_ca_a_peer_alert() {
    let dev = dev_server_config("errors", &ServerOptions::default());
    let mut server = support::start(Arc::clone(&dev.config), WAIT).await;

    let mut plain = TcpStream::connect(server.addr).await.expect("connect");
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let err = server.next_result().await.expect_err("not TLS");
    assert!(matches!(err, HandshakeError::Tls(_)), "{err}");

    // A client that does not trust the dev CA rejects the certificate.
    let (_, _, other_root) = support::self_signed(&["unrelated.example"]);
    let cfg = support::client_config(&[other_root], &[b"h2"], &TLS13);
    assert!(
        support::connect(cfg, server.addr, "localhost")
            .await
            .is_err()
    );
    let err = server.next_result().await.expect_err("untrusted");
    assert!(err.is_untrusted_cert(), "{err:?}");
}
