//! The CGI environment php-fpm gets, as PHP's `$_SERVER` shows it.

use http::Method;
use portico::http::body::empty;

use crate::client::Client;
use crate::{php_config, public, stack};

#[tokio::test]
async fn server_params_over_tls_h1_and_h2_through_a_symlinked_root() {
    // The root is a symlink (a release dir, as deploy tools make):
    // SCRIPT_FILENAME and DOCUMENT_ROOT use its real path.
    let links = crate::inproc::TempDir::new("release");
    let current = links.path().join("current");
    std::os::unix::fs::symlink(public(), &current).expect("symlink");
    let real = std::fs::canonicalize(public()).unwrap();
    let Some(s) =
        stack(|f| php_config(&f.unix_url()).set("upstream.root", current.display().to_string()))
            .await
    else {
        return;
    };
    let e = &s.edge;
    for (alpn, proto) in [(&b"h2"[..], "HTTP/2.0"), (&b"http/1.1"[..], "HTTP/1.1")] {
        let mut c = Client::tls(e.https(), &e.ca(), &[alpn]).await;
        let req = c
            .req(Method::GET, "/server?x=1&y=%20a")
            .header("x-custom", "v1")
            .header("x_custom", "spoofed")
            .header("proxy", "http://evil.test")
            .body(empty())
            .unwrap();
        let r = c.fetch(req).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.header("x-powered-by").is_none(), "X-Powered-By hidden");
        let j = r.json();
        let want = [
            ("front", "index.php".to_string()),
            ("SCRIPT_FILENAME", format!("{}/index.php", real.display())),
            ("DOCUMENT_ROOT", real.display().to_string()),
            ("SCRIPT_NAME", "/index.php".into()),
            ("PATH_INFO", String::new()),
            ("DOCUMENT_URI", "/index.php".into()),
            ("REQUEST_URI", "/server?x=1&y=%20a".into()),
            ("QUERY_STRING", "x=1&y=%20a".into()),
            ("REQUEST_METHOD", "GET".into()),
            ("HTTPS", "on".into()),
            ("REQUEST_SCHEME", "https".into()),
            ("SERVER_NAME", "localhost".into()),
            ("SERVER_PORT", e.https().port().to_string()),
            ("SERVER_PROTOCOL", proto.into()),
            ("GATEWAY_INTERFACE", "CGI/1.1".into()),
            ("REMOTE_ADDR", "127.0.0.1".into()),
            ("HTTP_HOST", format!("localhost:{}", e.https().port())),
            ("HTTP_X_CUSTOM", "v1".into()),
            ("HTTP_X_FORWARDED_PROTO", "https".into()),
        ];
        for (k, v) in want {
            assert_eq!(j[k], v, "{k} over {proto}");
        }
        assert!(
            j["SERVER_SOFTWARE"]
                .as_str()
                .unwrap()
                .starts_with("portico/")
        );
        assert!(j["REMOTE_PORT"].as_str().unwrap().parse::<u16>().is_ok());
        assert!(j.get("HTTP_PROXY").is_none(), "httpoxy: {j}");
        assert_eq!(j["_get"]["y"], " a");
    }
}

#[tokio::test]
async fn post_body_content_type_and_length_over_tcp() {
    let Some(s) = stack(|f| php_config(&f.tcp_url())).await else {
        return;
    };
    let mut c = Client::plain(s.edge.plain()).await;
    let body = "hello=world";
    let req = c
        .req(Method::POST, "/server")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-length", body.len().to_string())
        .body(portico::http::body::full(body))
        .unwrap();
    let r = c.fetch(req).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["REQUEST_METHOD"], "POST");
    assert_eq!(j["CONTENT_TYPE"], "application/x-www-form-urlencoded");
    assert_eq!(j["CONTENT_LENGTH"], "11");
    assert_eq!(j["REQUEST_SCHEME"], "http");
    assert!(j.get("HTTPS").is_none());
    assert_eq!(j["SERVER_PORT"], s.edge.plain().port().to_string());
}

#[tokio::test]
async fn remote_addr_is_the_real_client_only_behind_trusted_proxies() {
    let Some(s) =
        stack(|f| php_config(&f.unix_url()).set("server.trusted_proxies", vec!["127.0.0.1/32"]))
            .await
    else {
        return;
    };
    let mut c = Client::plain(s.edge.plain()).await;
    let req = c
        .req(Method::GET, "/server")
        .header("x-forwarded-for", "203.0.113.7")
        .body(empty())
        .unwrap();
    let j = c.fetch(req).await.json();
    assert_eq!(j["REMOTE_ADDR"], "203.0.113.7");
    assert_eq!(j["HTTP_X_FORWARDED_FOR"], "203.0.113.7, 127.0.0.1");
    drop(s);

    let Some(s) = stack(|f| php_config(&f.unix_url())).await else {
        return;
    };
    let mut c = Client::plain(s.edge.plain()).await;
    let req = c
        .req(Method::GET, "/server")
        .header("x-forwarded-for", "203.0.113.7")
        .body(empty())
        .unwrap();
    let j = c.fetch(req).await.json();
    assert_eq!(
        j["REMOTE_ADDR"], "127.0.0.1",
        "an untrusted peer's XFF is ignored"
    );
    assert_eq!(j["HTTP_X_FORWARDED_FOR"], "127.0.0.1");
}
