//! The ACME TLS-ALPN-01 seam: a `ChallengeHook` is asked before SNI
//! resolution and `acme-tls/1` is offered only when one is installed.

use std::path::Path;
use std::sync::Arc;

use portico::tls::{
    ACME_TLS_ALPN, CertResolver, CertStore, ChallengeHook, ServerOptions, build_server_config,
    shared_store,
};
use rustls::server::ClientHello;
use rustls::sign::CertifiedKey;
use rustls::version::TLS13;

use crate::support::{self, WAIT};

/// Answers `acme-tls/1` hellos for one name with a fixed certificate.
#[derive(Debug)]
struct FixedChallenge {
    name: &'static str,
    key: Arc<CertifiedKey>,
}

impl ChallengeHook for FixedChallenge {
    fn resolve(&self, hello: &ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let acme = portico::tls::resolver::offers_acme_tls_alpn(hello);
        (acme && hello.server_name() == Some(self.name)).then(|| Arc::clone(&self.key))
    }
}

fn key_of(cert: &str, key: &str) -> Arc<CertifiedKey> {
    let mut b = CertStore::builder();
    b.add_pem(cert.as_bytes(), key.as_bytes(), Path::new("challenge"))
        .expect("add");
    b.build().lookup(None).expect("key")
}

#[tokio::test]
async fn challenge_hook_answers_acme_tls_alpn_and_nothing_else() {
    let (sc, sk, site_der) = support::self_signed(&["site.example"]);
    let (cc, ck, challenge_der) = support::self_signed(&["site.example"]);
    let mut b = CertStore::builder();
    b.add_pem(sc.as_bytes(), sk.as_bytes(), Path::new("site"))
        .expect("add");
    let resolver =
        CertResolver::new(shared_store(b.build())).with_challenge_hook(Arc::new(FixedChallenge {
            name: "site.example",
            key: key_of(&cc, &ck),
        }));
    let config =
        build_server_config(Arc::new(resolver), &ServerOptions::default()).expect("config");
    assert_eq!(
        config.alpn_protocols.last().map(Vec::as_slice),
        Some(ACME_TLS_ALPN)
    );
    let mut server = support::start(config, WAIT).await;

    // A validator (only acme-tls/1) gets the challenge certificate.
    let cfg = support::client_config(
        std::slice::from_ref(&challenge_der),
        &[ACME_TLS_ALPN],
        &TLS13,
    );
    let s = support::connect(cfg, server.addr, "site.example")
        .await
        .expect("validator");
    assert_eq!(support::peer_leaf(&s), challenge_der);
    let info = server.next_result().await.expect("server side");
    assert!(info.is_acme_challenge());

    // Browsers still get the site certificate over h2.
    let cfg = support::client_config(
        std::slice::from_ref(&site_der),
        &[b"h2", b"http/1.1"],
        &TLS13,
    );
    let s = support::connect(cfg, server.addr, "site.example")
        .await
        .expect("browser");
    assert_eq!(support::peer_leaf(&s), site_der);
    assert!(
        !server
            .next_result()
            .await
            .expect("server side")
            .is_acme_challenge()
    );

    // acme-tls/1 for a name with no pending challenge: refused, never the
    // normal certificate.
    let cfg = support::client_config(&[site_der], &[ACME_TLS_ALPN], &TLS13);
    assert!(
        support::connect(cfg, server.addr, "other.example")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn without_a_hook_acme_tls_alpn_is_not_offered() {
    let (sc, sk, site_der) = support::self_signed(&["site.example"]);
    let mut b = CertStore::builder();
    b.add_pem(sc.as_bytes(), sk.as_bytes(), Path::new("site"))
        .expect("add");
    let resolver = CertResolver::new(shared_store(b.build()));
    let config =
        build_server_config(Arc::new(resolver), &ServerOptions::default()).expect("config");
    assert!(!config.alpn_protocols.iter().any(|p| p == ACME_TLS_ALPN));
    let server = support::start(config, WAIT).await;
    let cfg = support::client_config(&[site_der], &[ACME_TLS_ALPN], &TLS13);
    assert!(
        support::connect(cfg, server.addr, "site.example")
            .await
            .is_err()
    );
}
