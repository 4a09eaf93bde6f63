//! php-fpm gone, slow or streaming: 502 naming the socket and recovery,
//! 504 for a late head while a streaming body is never cut.

use crate::client::Client;
use crate::{php_config, stack};

#[tokio::test]
async fn php_fpm_killed_gives_502_naming_the_socket_then_recovers() {
    let Some(mut s) = stack(|f| php_config(&f.unix_url())).await else {
        return;
    };
    let mut c = Client::plain(s.edge.plain()).await;
    // Warm the pool: these connections die with php-fpm.
    for _ in 0..3 {
        assert_eq!(c.get("/server").await.status, 200);
    }
    s.fpm.kill().await;
    let r = c.get("/server").await;
    assert_eq!(r.status, 502, "{}", r.text());
    let sock = s.fpm.sock.display().to_string();
    assert!(r.text().contains(&sock), "names {sock}: {}", r.text());

    s.fpm.restart().await;
    for _ in 0..5 {
        let r = c.get("/server").await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

#[tokio::test]
async fn a_late_head_is_504_but_a_long_stream_is_not_cut() {
    let Some(s) = stack(|f| php_config(&f.tcp_url()).set("upstream.response_timeout", "1s")).await
    else {
        return;
    };
    let mut c = Client::plain(s.edge.plain()).await;
    let r = c.get("/slow?s=3").await;
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(r.text().contains("did not answer in time"), "{}", r.text());

    // The head comes at once; the body takes 4 × 400 ms, past the timeout.
    let mut c = Client::plain(s.edge.plain()).await;
    let r = c.get("/stream?sleep_ms=400").await;
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(
        text.contains("part 3") && text.ends_with("data: done\n\n"),
        "{text}"
    );
}

#[tokio::test]
async fn a_refused_tcp_port_is_502_naming_it() {
    let Some(s) = stack(|_| php_config("fastcgi://127.0.0.1:1")).await else {
        return;
    };
    let mut c = Client::plain(s.edge.plain()).await;
    let r = c.get("/anything").await;
    assert_eq!(r.status, 502);
    assert!(r.text().contains("fastcgi://127.0.0.1:1"), "{}", r.text());
    // Static files do not need php-fpm.
    assert_eq!(c.get("/robots.txt").await.status, 200);
}

#[tokio::test]
async fn connections_are_kept_alive_and_bounded() {
    // One connection at most: every request reuses it (FCGI_KEEP_CONN),
    // so one php-fpm worker serves them all; concurrent requests wait for
    // it rather than opening more.
    let Some(s) = stack(|f| php_config(&f.unix_url()).set("upstream.max_connections", 1)).await
    else {
        return;
    };
    let mut c = Client::plain(s.edge.plain()).await;
    let mut pids = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let r = c.get("/server").await;
        assert_eq!(r.status, 200, "{}", r.text());
        pids.insert(r.json()["pid"].as_i64().unwrap());
    }
    assert_eq!(
        pids.len(),
        1,
        "one kept-alive connection, one worker: {pids:?}"
    );
    let plain = s.edge.plain();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(async move {
                let mut c = Client::plain(plain).await;
                let r = c.get("/server").await;
                (r.status.as_u16(), r.json()["pid"].as_i64().unwrap())
            })
        })
        .collect();
    for t in tasks {
        let (status, pid) = crate::within("a queued request", t).await.unwrap();
        assert_eq!(status, 200);
        assert!(pids.contains(&pid), "a second connection was opened: {pid}");
    }
}
