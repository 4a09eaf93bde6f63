//! Unit tests for the certificate store: lookup order and validation errors.

use super::*;

fn self_signed(names: &[&str]) -> (String, String) {
    let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    let ck = rcgen::generate_simple_self_signed(names).expect("generate");
    (ck.cert.pem(), ck.signing_key.serialize_pem())
}

fn store_of(pairs: &[(&str, &[&str])]) -> CertStore {
    let mut b = CertStore::builder();
    for (label, names) in pairs {
        let (c, k) = self_signed(names);
        b.add_pem(c.as_bytes(), k.as_bytes(), Path::new(label))
            .expect("add");
    }
    b.build()
}

fn source_of(store: &CertStore, sni: Option<&str>) -> Option<PathBuf> {
    store.info_for(sni).map(|i| i.source.clone())
}

#[test]
fn lookup_exact_then_wildcard_then_default() {
    let s = store_of(&[("a", &["a.example"]), ("w", &["*.example", "example"])]);
    assert_eq!(source_of(&s, Some("a.example")), Some("a".into()));
    assert_eq!(source_of(&s, Some("A.Example.")), Some("a".into()));
    assert_eq!(source_of(&s, Some("b.example")), Some("w".into()));
    assert_eq!(source_of(&s, Some("example")), Some("w".into()));
    // wildcard covers one label only; falls back to the default (first).
    assert_eq!(source_of(&s, Some("x.b.example")), Some("a".into()));
    assert_eq!(source_of(&s, None), Some("a".into()));
}

#[test]
fn empty_store_has_nothing() {
    let s = CertStore::empty();
    assert!(s.lookup(Some("x")).is_none());
    assert!(matches!(
        CertStore::builder().build_non_empty(),
        Err(StoreError::Empty)
    ));
}

#[test]
fn mismatched_key_is_rejected() {
    let (c, _) = self_signed(&["a.example"]);
    let (_, k) = self_signed(&["a.example"]);
    let err = CertStore::builder()
        .add_pem(c.as_bytes(), k.as_bytes(), Path::new("pair"))
        .err();
    assert!(
        matches!(err, Some(StoreError::KeyMismatch { .. })),
        "{err:?}"
    );
}

#[test]
fn garbage_and_missing_inputs_are_named() {
    let (c, k) = self_signed(&["a.example"]);
    let p = Path::new("x.pem");
    let mut b = CertStore::builder();
    assert!(matches!(
        b.add_pem(b"hello", k.as_bytes(), p).err(),
        Some(StoreError::NoCertificate { .. })
    ));
    assert!(matches!(
        b.add_pem(c.as_bytes(), c.as_bytes(), p).err(),
        Some(StoreError::NoPrivateKey { .. })
    ));
    let broken = "-----BEGIN CERTIFICATE-----\n!!!notbase64\n-----END CERTIFICATE-----\n";
    assert!(matches!(
        b.add_pem(broken.as_bytes(), k.as_bytes(), p).err(),
        Some(StoreError::BadPem { .. })
    ));
    let err = b
        .add_files(
            Path::new("/nonexistent/c.pem"),
            Path::new("/nonexistent/k.pem"),
        )
        .err()
        .expect("missing");
    assert!(matches!(err, StoreError::Missing { .. }));
    assert!(err.to_string().contains("/nonexistent/c.pem"), "{err}");
}

#[test]
fn expired_is_a_warning() {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec!["old.example".to_owned()]).expect("p");
    params.not_before = rcgen::date_time_ymd(2001, 1, 1);
    params.not_after = rcgen::date_time_ymd(2002, 1, 1);
    let cert = params.self_signed(&key).expect("sign");
    let mut b = CertStore::builder();
    b.add_pem(
        cert.pem().as_bytes(),
        key.serialize_pem().as_bytes(),
        Path::new("old"),
    )
    .expect("expired still loads");
    let s = b.build();
    assert!(matches!(s.warnings(), [StoreWarning::Expired { .. }]));
    assert!(s.infos()[0].is_expired(SystemTime::now()));
    assert_eq!(s.infos()[0].dns_names, vec!["old.example".to_owned()]);
}

#[test]
fn set_default_last_changes_the_fallback() {
    let mut b = CertStore::builder();
    for (label, name) in [("first", "a.example"), ("second", "b.example")] {
        let (c, k) = self_signed(&[name]);
        b.add_pem(c.as_bytes(), k.as_bytes(), Path::new(label))
            .expect("add");
    }
    let s = b.set_default_last().build();
    assert_eq!(source_of(&s, None), Some("second".into()));
    assert_eq!(source_of(&s, Some("a.example")), Some("first".into()));
}
