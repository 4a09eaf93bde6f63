//! A route with `root` and no upstream: a plain file server.

use crate::client::Client;
use crate::{config, public};

#[tokio::test]
async fn a_root_without_upstream_serves_files_only() {
    let text = config::base()
        .set("upstream.url", "http://127.0.0.1:1")
        .with(&format!(
            "[[routes]]\npath = \"/assets/\"\nroot = \"{}\"\nstrip_prefix = true\n",
            public().display()
        ))
        .to_string();
    let e = crate::inproc::start(&text, &[]).await;
    let mut c = Client::plain(e.plain()).await;
    let r = c.get("/assets/robots.txt").await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("User-agent"));
    assert_eq!(c.get("/assets/build/app.3f9a1c2b.js").await.status, 200);
    let r = c.get("/assets/docs/").await;
    assert!(r.text().contains("DOCS-INDEX"));
    // PHP source is never handed out; dotfiles are denied; no listing.
    let r = c.get("/assets/uploads/evil.php").await;
    assert_eq!(r.status, 404);
    assert!(!r.text().contains("EVIL"));
    assert_eq!(c.get("/assets/.env.example").await.status, 403);
    assert_eq!(c.get("/assets/uploads/").await.status, 404);
    assert_eq!(c.get("/assets/missing.css").await.status, 404);
    // Other paths still go to [upstream] (down here: 502).
    assert_eq!(c.get("/other").await.status, 502);
}
