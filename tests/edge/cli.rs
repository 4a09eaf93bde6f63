//! The subcommands of the real binary: `check` (errors with file:line:col,
//! key and fix; the effective config), `keygen`, `certs-dev`.

use crate::support::TempDir;
use crate::support::binary::run_cmd;

#[tokio::test]
async fn check_reports_file_line_key_and_fix() {
    let dir = TempDir::new("check");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nplain = \"127.0.0.1:0\"\n[tls]\nmode = \"off\"\n\n[[routes]]\npath = \"/api/\"\nto = \"ftp://files.example\"\n",
    )
    .unwrap();
    let (status, out, err) = run_cmd(
        &["check", "--config", &bad.display().to_string()],
        dir.path(),
    )
    .await;
    assert_eq!(status.code(), Some(2), "stdout: {out}\nstderr: {err}");
    let want = format!("{}:8:6: `routes[0].to`", bad.display());
    assert!(err.contains(&want), "want {want:?} in:\n{err}");
    assert!(err.contains("fix: "), "{err}");

    let unknown = dir.path().join("unknown.toml");
    std::fs::write(
        &unknown,
        "[server]\nplain = \"127.0.0.1:0\"\nlisten = \":80\"\n",
    )
    .unwrap();
    let (status, _, err) = run_cmd(
        &["check", "--config", &unknown.display().to_string()],
        dir.path(),
    )
    .await;
    assert_eq!(status.code(), Some(2));
    assert!(err.contains(":3:1:"), "{err}");
    assert!(err.contains("listen"), "{err}");
    assert!(err.contains("fix: "), "{err}");

    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[server]\nplain = \"127.0.0.1:0\"\n[tls]\nmode = \"off\"\n[upstream]\nurl = \"http://127.0.0.1:9000\"\n[[routes]]\npath = \"/realtime/v1/\"\nto = \"http://127.0.0.1:4000\"\nrewrite = \"/socket/\"\nhost_header = \"realtime-dev\"\n[[apps]]\nid = \"1\"\nkey = \"k\"\nsecret = \"shh-very-secret\"\n",
    )
    .unwrap();
    let (status, out, err) = run_cmd(
        &["check", "--config", &good.display().to_string()],
        dir.path(),
    )
    .await;
    assert!(status.success(), "{err}");
    assert!(out.contains("routes (first match wins):"), "{out}");
    assert!(
        out.contains(
            "/realtime/v1/ -> http://127.0.0.1:4000 (prefix -> /socket/) [Host: realtime-dev]"
        ),
        "{out}"
    );
    assert!(out.contains("/ -> http://127.0.0.1:9000"), "{out}");
    assert!(out.contains("plain  127.0.0.1:0"), "{out}");
    assert!(!out.contains("shh-very-secret"), "secret printed: {out}");
    assert!(out.trim_end().ends_with("ok"), "{out}");
}

#[tokio::test]
async fn keygen_prints_env_lines_and_an_apps_block() {
    let dir = TempDir::new("keygen");
    let (status, out, _) = run_cmd(&["keygen"], dir.path()).await;
    assert!(status.success());
    let value = |prefix: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in:\n{out}"))
            .to_string()
    };
    let id = value("REVERB_APP_ID=");
    let key = value("REVERB_APP_KEY=");
    let secret = value("REVERB_APP_SECRET=");
    assert!(
        id.len() == 6 && id.chars().all(|c| c.is_ascii_digit()),
        "{id}"
    );
    assert!(
        key.len() == 20 && key.chars().all(|c| c.is_ascii_alphanumeric()),
        "{key}"
    );
    assert!(
        secret.len() == 32 && secret.chars().all(|c| c.is_ascii_alphanumeric()),
        "{secret}"
    );
    // The TOML half is a valid [[apps]] block with the same values.
    let block = &out[out.find("[[apps]]").expect("[[apps]] block")..];
    let toml = format!("[server]\nplain = \"127.0.0.1:0\"\n[tls]\nmode = \"off\"\n{block}");
    let cfg = portico::Config::from_str_with_env(&toml, "keygen.toml", &|_| None)
        .unwrap_or_else(|e| panic!("{e}"));
    let app = &cfg.apps.apps[0];
    assert_eq!(
        (&*app.id, &*app.key, &*app.secret),
        (id.as_str(), key.as_str(), secret.as_str())
    );
    // Fresh every time.
    let (_, again, _) = run_cmd(&["keygen"], dir.path()).await;
    assert_ne!(out, again);
}

#[tokio::test]
async fn certs_dev_creates_the_ca_and_prints_trust_instructions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("certsdev");
    let (status, out, err) = run_cmd(&["certs-dev", "--dir", "tmp"], dir.path()).await;
    assert!(status.success(), "{err}");
    let certs = dir.path().join("tmp");
    for f in [
        "portico-dev-ca.pem",
        "portico-dev-ca-key.pem",
        "localhost.pem",
        "localhost-key.pem",
    ] {
        assert!(certs.join(f).is_file(), "{f} missing");
    }
    let mode = std::fs::metadata(certs.join("portico-dev-ca-key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "CA key readable by others: {mode:o}");
    let ca_abs = std::fs::canonicalize(certs.join("portico-dev-ca.pem")).unwrap();
    assert!(out.contains(&ca_abs.display().to_string()), "{out}");
    for needle in [
        "update-ca-certificates",
        "add-trusted-cert",
        "certutil",
        "Firefox",
        "NODE_EXTRA_CA_CERTS",
    ] {
        assert!(out.contains(needle), "no {needle} in:\n{out}");
    }
    // A second run reuses the CA.
    let ca1 = std::fs::read(certs.join("portico-dev-ca.pem")).unwrap();
    let (status, _, _) = run_cmd(
        &["certs-dev", "--dir", "tmp", "--host", "myapp.test"],
        dir.path(),
    )
    .await;
    assert!(status.success());
    assert_eq!(
        ca1,
        std::fs::read(certs.join("portico-dev-ca.pem")).unwrap()
    );
}

#[tokio::test]
async fn run_and_check_refuse_missing_or_invalid_configs() {
    let dir = TempDir::new("refuse");
    let (status, _, err) = run_cmd(&["check", "--config", "nope.toml"], dir.path()).await;
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("cannot read config file nope.toml"), "{err}");
    assert!(err.contains("fix: "), "{err}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nplain = \"127.0.0.1:0\"\nmax_body = \"huge\"\n",
    )
    .unwrap();
    let (status, _, err) =
        run_cmd(&["run", "--config", &bad.display().to_string()], dir.path()).await;
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains(":3:12: `server.max_body`"), "{err}");
}
