//! SNI selection and certificate swaps on a live listener.

use std::path::Path;
use std::sync::Arc;

use portico::tls::{
    CertKeyPaths, CertResolver, CertStore, ServerOptions, StoreError, build_server_config,
    reload_now, shared_store,
};
use rustls::version::TLS13;

use crate::support::{self, WAIT};

fn store_of(pairs: &[(&str, &str)]) -> CertStore {
    let mut b = CertStore::builder();
    for (cert, key) in pairs {
        b.add_pem(cert.as_bytes(), key.as_bytes(), Path::new("mem"))
            .expect("add");
    }
    b.build()
}

#[tokio::test]
async fn sni_picks_the_matching_certificate() {
    let (ca, ka, da) = support::self_signed(&["a.example"]);
    let (cb, kb, db) = support::self_signed(&["b.example", "*.b.example"]);
    let shared = shared_store(store_of(&[(&ca, &ka), (&cb, &kb)]));
    let config = build_server_config(
        Arc::new(CertResolver::new(shared)),
        &ServerOptions::default(),
    )
    .expect("config");
    let server = support::start(config, WAIT).await;
    let cfg = support::client_config(&[da.clone(), db.clone()], &[b"h2"], &TLS13);

    for (name, want) in [
        ("a.example", &da),
        ("b.example", &db),
        ("www.b.example", &db),
    ] {
        let s = support::connect(Arc::clone(&cfg), server.addr, name)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&support::peer_leaf(&s), want, "{name}");
    }
    // Unknown name: the default (first) certificate is served, and the
    // client rightly refuses it for that name.
    assert!(
        support::connect(cfg, server.addr, "c.example")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn swapping_the_store_keeps_open_connections_and_serves_new_handshakes() {
    let (c1, k1, d1) = support::self_signed(&["localhost"]);
    let (c2, k2, d2) = support::self_signed(&["localhost"]);
    let shared = shared_store(store_of(&[(&c1, &k1)]));
    let config = build_server_config(
        Arc::new(CertResolver::new(Arc::clone(&shared))),
        &ServerOptions::default(),
    )
    .expect("config");
    let server = support::start(config, WAIT).await;
    let cfg = support::client_config(&[d1.clone(), d2.clone()], &[b"http/1.1"], &TLS13);

    let mut old = support::connect(Arc::clone(&cfg), server.addr, "localhost")
        .await
        .expect("old");
    assert_eq!(support::peer_leaf(&old), d1);
    assert_eq!(support::echo(&mut old, b"before").await, b"before");

    shared.store(Arc::new(store_of(&[(&c2, &k2)])));

    // The established connection is untouched by the swap.
    assert_eq!(support::echo(&mut old, b"after swap").await, b"after swap");
    // A new full handshake gets the new certificate. (A fresh client config:
    // a resumed session would carry the old certificate's identity over, as
    // TLS resumption does everywhere.)
    let fresh = support::client_config(&[d1.clone(), d2.clone()], &[b"http/1.1"], &TLS13);
    let new = support::connect(fresh, server.addr, "localhost")
        .await
        .expect("new");
    assert_eq!(support::peer_leaf(&new), d2);
    assert_eq!(support::echo(&mut old, b"still").await, b"still");
}

#[tokio::test]
async fn bad_new_pair_is_rejected_and_the_old_cert_keeps_serving() {
    let dir = support::tempdir("badpair");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let (c1, k1, d1) = support::self_signed(&["localhost"]);
    let paths = CertKeyPaths {
        cert: dir.join("site.pem"),
        key: dir.join("site-key.pem"),
    };
    std::fs::write(&paths.cert, &c1).expect("write");
    std::fs::write(&paths.key, &k1).expect("write");
    let shared =
        shared_store(portico::tls::load_files(std::slice::from_ref(&paths)).expect("load"));
    let config = build_server_config(
        Arc::new(CertResolver::new(Arc::clone(&shared))),
        &ServerOptions::default(),
    )
    .expect("config");
    let server = support::start(config, WAIT).await;
    let cfg = support::client_config(std::slice::from_ref(&d1), &[b"h2"], &TLS13);

    // A new certificate with someone else's key.
    let (c2, _, _) = support::self_signed(&["localhost"]);
    let (_, k3, _) = support::self_signed(&["localhost"]);
    std::fs::write(&paths.cert, &c2).expect("write");
    std::fs::write(&paths.key, &k3).expect("write");
    let err = reload_now(std::slice::from_ref(&paths), &shared).expect_err("mismatch");
    assert!(matches!(err, StoreError::KeyMismatch { .. }), "{err}");
    assert!(err.to_string().contains("site-key.pem"), "{err}");

    // Garbage PEM.
    std::fs::write(&paths.cert, "-----BEGIN CERTIFICATE-----\nzz\n").expect("write");
    let err = reload_now(std::slice::from_ref(&paths), &shared).expect_err("garbage");
    assert!(matches!(err, StoreError::BadPem { .. }), "{err}");

    let s = support::connect(cfg, server.addr, "localhost")
        .await
        .expect("old cert still served");
    assert_eq!(support::peer_leaf(&s), d1);
    let _ = std::fs::remove_dir_all(&dir);
}
