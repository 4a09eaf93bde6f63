//! The front-controller rules: what is served as a file, what runs
//! index.php, and what is never run nor served.

use http::Method;
use portico::http::body::empty;

use crate::client::{Client, Resp};
use crate::{php_config, public, stack};

async fn get(c: &mut Client, path: &str) -> Resp {
    let req = c.req(Method::GET, path).body(empty()).unwrap();
    c.fetch(req).await
}

#[tokio::test]
async fn static_files_directories_and_dotfiles() {
    let Some(s) = stack(|f| php_config(&f.unix_url())).await else {
        return;
    };
    let mut c = Client::plain(s.edge.plain()).await;

    let js = std::fs::read(public().join("build/app.3f9a1c2b.js")).unwrap();
    let r = get(&mut c, "/build/app.3f9a1c2b.js").await;
    assert_eq!(r.status, 200);
    assert_eq!(&r.body[..], &js[..], "served from disk, not by PHP");
    assert!(r.header("content-type").unwrap().contains("javascript"));
    assert!(r.header("cache-control").unwrap().contains("immutable"));

    let r = get(&mut c, "/robots.txt").await;
    assert_eq!(
        (r.status.as_u16(), r.text().contains("User-agent")),
        (200, true)
    );

    // A directory with an index: redirected to its slash, then served.
    let r = get(&mut c, "/docs?a=1").await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/docs/?a=1"));
    let r = get(&mut c, "/docs/").await;
    assert!(r.text().contains("DOCS-INDEX"), "{}", r.text());

    // Dotfiles: denied, existing or not; /.well-known/ is served.
    for p in ["/.env.example", "/.env", "/.git/config", "/build/.hidden"] {
        assert_eq!(get(&mut c, p).await.status, 403, "{p}");
    }
    let r = get(&mut c, "/.well-known/security.txt").await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("Contact:"));

    // A static file is not a PHP route: POST gets 405.
    let req = c.req(Method::POST, "/robots.txt").body(empty()).unwrap();
    let r = c.fetch(req).await;
    assert_eq!(r.status, 405);

    // Everything else runs the front controller with the URI untouched.
    let r = get(&mut c, "/users/42/edit?tab=2").await;
    let j = r.json();
    assert_eq!(j["front"], "index.php");
    assert_eq!(j["uri"], "/users/42/edit?tab=2");
    // The root itself: index.php.
    assert_eq!(get(&mut c, "/").await.json()["front"], "index.php");
}

#[tokio::test]
async fn no_php_file_but_the_index_ever_runs_or_is_served() {
    let Some(s) = stack(|f| php_config(&f.unix_url())).await else {
        return;
    };
    let mut c = Client::plain(s.edge.plain()).await;
    for p in [
        "/uploads/evil.php",
        "/test.php",
        "/sub/index.php",
        "/sub/",
        "/uploads/evil.php/x",
        "/UPLOADS/evil.PHP",
        "/test.php?x=1",
        "/nothing-here.php",
    ] {
        let r = get(&mut c, p).await;
        let text = r.text();
        for marker in ["EVIL", "TEST-", "SUB-"] {
            assert!(!text.contains(marker), "{p}: {marker} in {text}");
        }
        assert_eq!(r.json()["front"], "index.php", "{p}");
    }
    // Dot segments are never resolved.
    let mut raw = crate::client::tcp(s.edge.plain()).await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    raw.write_all(b"GET /index.php/../test.php HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    crate::within("raw answer", raw.read_to_end(&mut out))
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(
        out.starts_with("HTTP/1.1 404") || out.contains("index.php"),
        "{out}"
    );
    assert!(!out.contains("TEST-"), "{out}");
}

#[tokio::test]
async fn path_info_is_split_at_the_index_script() {
    let Some(s) = stack(|f| php_config(&f.unix_url())).await else {
        return;
    };
    let mut c = Client::plain(s.edge.plain()).await;
    let r = get(&mut c, "/index.php/server?q=1").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["SCRIPT_NAME"], "/index.php");
    assert_eq!(j["PATH_INFO"], "/server");
    assert_eq!(j["DOCUMENT_URI"], "/index.php/server");
    assert_eq!(j["REQUEST_URI"], "/index.php/server?q=1");
    assert_eq!(j["QUERY_STRING"], "q=1");
}
