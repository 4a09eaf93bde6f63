//! Unit tests for the dev CA and leaf lifecycle.

use super::*;

fn tempdir(tag: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    std::env::temp_dir().join(format!("portico-dev-{tag}-{}-{nanos}", std::process::id()))
}

#[test]
fn ca_is_created_once_and_reused() {
    let dir = tempdir("reuse");
    let first = ensure(&dir, &[]).expect("first");
    assert!(first.ca_created);
    assert_eq!(first.leaf_issued, Some(LeafIssued::Missing));
    let ca_bytes = fs::read(&first.ca_cert).expect("ca");
    let ca_key_bytes = fs::read(&first.ca_key).expect("ca key");
    let leaf_bytes = fs::read(&first.leaf_cert).expect("leaf");

    let second = ensure(&dir, &[]).expect("second");
    assert!(!second.ca_created);
    assert_eq!(second.leaf_issued, None, "a fresh leaf is reused");
    assert_eq!(fs::read(&second.ca_cert).expect("ca"), ca_bytes);
    assert_eq!(fs::read(&second.ca_key).expect("ca key"), ca_key_bytes);
    assert_eq!(fs::read(&second.leaf_cert).expect("leaf"), leaf_bytes);
    assert!(dir.join(".gitignore").exists());
    let _ = fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn key_files_are_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir("mode");
    let certs = ensure(&dir, &[]).expect("ensure");
    for key in [&certs.ca_key, &certs.leaf_key] {
        let mode = fs::metadata(key).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", key.display());
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn ca_is_named_after_the_host_and_valid_ten_years() {
    let dir = tempdir("ca");
    let certs = ensure(&dir, &[]).expect("ensure");
    let der = CertificateDer::from_pem_file(&certs.ca_cert).expect("pem");
    let (_, x509) = x509_parser::parse_x509_certificate(&der).expect("x509");
    let cn = x509
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .expect("cn")
        .to_owned();
    assert!(cn.starts_with("portico dev CA ("), "{cn}");
    assert!(x509.is_ca());
    let years = (x509.validity().not_after.timestamp() - x509.validity().not_before.timestamp())
        / (365 * 24 * 3600);
    assert!((9..=10).contains(&years), "{years}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn leaf_covers_default_names_and_is_short_lived() {
    let dir = tempdir("names");
    let certs =
        ensure(&dir, &["myapp.test".to_owned(), "192.168.1.20".to_owned()]).expect("ensure");
    for n in [
        "localhost",
        "*.localhost",
        "*.test",
        "127.0.0.1",
        "::1",
        "myapp.test",
        "192.168.1.20",
    ] {
        assert!(
            certs.leaf_names.iter().any(|h| h == n),
            "missing {n}: {:?}",
            certs.leaf_names
        );
    }
    let left = certs
        .leaf_not_after
        .duration_since(SystemTime::now())
        .expect("future");
    assert!(left <= 7 * DAY && left > 6 * DAY, "{left:?}");
    let store = certs.load_store().expect("store");
    assert!(store.lookup(Some("foo.localhost")).is_some());
    assert!(
        store.lookup(None).is_some(),
        "leaf is the default (IP clients)"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn leaf_is_renewed_near_expiry_but_not_before() {
    let dir = tempdir("renew");
    let policy = DevPolicy::default();
    let t0 = SystemTime::now();
    let first = ensure_with(&dir, &[], &policy, t0).expect("t0");
    // Day 1: 6 days left > 7/3 days: keep.
    let day1 = ensure_with(&dir, &[], &policy, t0 + DAY).expect("day1");
    assert_eq!(day1.leaf_issued, None);
    // Day 6: 1 day left < 7/3 days: renew, same CA.
    let day6 = ensure_with(&dir, &[], &policy, t0 + 6 * DAY).expect("day6");
    assert!(
        matches!(day6.leaf_issued, Some(LeafIssued::Renewal { .. })),
        "{:?}",
        day6.leaf_issued
    );
    assert!(!day6.ca_created);
    assert!(day6.leaf_not_after > first.leaf_not_after);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn injected_policy_forces_renewal() {
    let dir = tempdir("policy");
    ensure(&dir, &[]).expect("first");
    // Renew whenever less than 30 days are left: a 7-day leaf always is.
    let eager = DevPolicy {
        renew_before: 30 * DAY,
        ..DevPolicy::default()
    };
    let r = renew(&dir, &[], &eager).expect("renew");
    assert!(r.changed());
    assert!(r.store.lookup(Some("localhost")).is_some());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn extra_hosts_trigger_reissue() {
    let dir = tempdir("hosts");
    ensure(&dir, &[]).expect("first");
    let more = ensure(&dir, &["shop.test".to_owned(), "10.0.0.5".to_owned()]).expect("more");
    assert_eq!(
        more.leaf_issued,
        Some(LeafIssued::NewNames(vec![
            "shop.test".to_owned(),
            "10.0.0.5".to_owned()
        ]))
    );
    assert!(!more.ca_created);
    // Same request again: nothing to do; a subset also keeps the leaf.
    let again = ensure(&dir, &["SHOP.test.".to_owned()]).expect("again");
    assert_eq!(again.leaf_issued, None);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn leaf_from_another_ca_is_reissued() {
    let dir = tempdir("otherca");
    let first = ensure(&dir, &[]).expect("first");
    // Replace the CA (as if the user deleted it and a new one was created).
    fs::remove_file(&first.ca_cert).expect("rm");
    fs::remove_file(&first.ca_key).expect("rm");
    let second = ensure(&dir, &[]).expect("second");
    assert!(second.ca_created);
    assert_eq!(second.leaf_issued, Some(LeafIssued::OtherCa));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn broken_ca_is_an_error_not_a_silent_replacement() {
    let dir = tempdir("badca");
    let first = ensure(&dir, &[]).expect("first");
    fs::remove_file(&first.ca_key).expect("rm");
    let err = ensure(&dir, &[]).expect_err("missing key");
    assert!(matches!(err, DevCertError::BadCa { .. }), "{err}");
    // A key that does not belong to the CA.
    fs::copy(&first.leaf_key, &first.ca_key).expect("copy");
    let err = ensure(&dir, &[]).expect_err("wrong key");
    assert!(err.to_string().contains("does not belong"), "{err}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn bad_hosts_are_rejected() {
    let dir = tempdir("badhost");
    for bad in ["", "exa mple.test", "-x.test", "a..b"] {
        let err = ensure(&dir, &[bad.to_owned()]).expect_err(bad);
        assert!(matches!(err, DevCertError::BadHost { .. }), "{bad}: {err}");
    }
    assert!(ensure(&dir, &["[::2]".to_owned()]).is_ok());
    let _ = fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn renewal_task_publishes_and_stops_on_cancel() {
    let dir = tempdir("task");
    let certs = ensure(&dir, &[]).expect("first");
    let shared = crate::tls::shared_store(certs.load_store().expect("store"));
    let before = shared.load().infos()[0].clone();
    let eager = DevPolicy {
        renew_before: 30 * DAY,
        ..DevPolicy::default()
    };
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run_renewal(
        dir.clone(),
        Vec::new(),
        eager,
        Duration::from_millis(20),
        Arc::clone(&shared),
        cancel.clone(),
    ));
    let mut published = false;
    for _ in 0..100 {
        if shared.load().infos()[0] != before {
            published = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(published, "renewal task did not publish a new leaf");
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("stops on cancel")
        .expect("no panic");
    let _ = fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn renewal_task_picks_up_a_leaf_renewed_by_another_process() {
    let dir = tempdir("external");
    let certs = ensure(&dir, &[]).expect("first");
    let shared = crate::tls::shared_store(certs.load_store().expect("store"));
    let before = shared.load().infos()[0].clone();
    // `portico certs-dev --host extra.test` run next to the edge.
    ensure(&dir, &["extra.test".to_owned()]).expect("external renewal");
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run_renewal(
        dir.clone(),
        Vec::new(),
        DevPolicy::default(),
        Duration::from_millis(20),
        Arc::clone(&shared),
        cancel.clone(),
    ));
    let mut published = false;
    for _ in 0..100 {
        if shared.load().infos()[0] != before {
            published = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(published, "the externally renewed leaf was not published");
    assert!(shared.load().lookup(Some("extra.test")).is_some());
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("stops on cancel")
        .expect("no panic");
    let _ = fs::remove_dir_all(&dir);
}
