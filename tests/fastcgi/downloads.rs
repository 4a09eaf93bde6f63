//! `X-Accel-Redirect` downloads: for a route with `downloads`, the app is
//! told it may hand files over, and portico serves the file it names, only
//! from those directories.

use http::Method;
use portico::http::body::empty;

use crate::client::Client;
use crate::{php_config, public, stack};

#[tokio::test]
async fn files_handed_over_are_served_only_from_download_dirs() {
    let dl = crate::inproc::TempDir::new("downloads");
    std::fs::write(dl.path().join("report.pdf"), b"PDF-BYTES").unwrap();
    let real = std::fs::canonicalize(dl.path()).unwrap();
    let Some(s) = stack(|f| {
        php_config(&f.unix_url()).set("upstream.downloads", vec![dl.path().display().to_string()])
    })
    .await
    else {
        return;
    };
    let mut c = Client::plain(s.edge.plain()).await;
    let r = c
        .get(&format!("/download?f={}/report.pdf", real.display()))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(&r.body[..], b"PDF-BYTES");
    assert_eq!(r.header("content-type"), Some("application/pdf"));
    assert!(
        r.header("content-disposition")
            .unwrap()
            .contains("report.pdf")
    );
    assert!(r.header("x-accel-redirect").is_none());

    for outside in [
        public().join("robots.txt").display().to_string(),
        format!("{}/../etc-passwd", real.display()),
        "/etc/passwd".to_string(),
        format!("{}/missing.pdf", real.display()),
    ] {
        let r = c.get(&format!("/download?f={outside}")).await;
        assert_eq!(r.status, 404, "{outside}: {}", r.text());
        assert!(!r.text().contains("root:"), "{outside}");
    }

    // The app is told it may: the request headers PHP sees.
    let r = c.get("/server").await;
    let j = r.json();
    assert_eq!(j["HTTP_X_SENDFILE_TYPE"], "X-Accel-Redirect");
    assert_eq!(
        j["HTTP_X_ACCEL_MAPPING"],
        format!("{0}={0}", real.display())
    );
}

#[tokio::test]
async fn without_download_dirs_nothing_is_handed_over() {
    let Some(s) = stack(|f| php_config(&f.unix_url())).await else {
        return;
    };
    let mut c = Client::plain(s.edge.plain()).await;
    // A client cannot ask the app for a hand-over either.
    let req = c
        .req(Method::GET, "/download?f=/etc/passwd")
        .header("x-sendfile-type", "X-Accel-Redirect")
        .header("x-accel-mapping", "/=/")
        .body(empty())
        .unwrap();
    let r = c.fetch(req).await;
    assert!(r.header("x-accel-redirect").is_none());
    assert!(!r.text().contains("root:"));
    assert_eq!(r.json()["sendfile_type"], serde_json::Value::Null);
}
