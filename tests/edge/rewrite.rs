//! Route rewriting as the upstream sees it: `strip_prefix`, `rewrite`,
//! and `host_header` (fixed, as self-hosted Supabase Realtime needs, where
//! the tenant is the Host's first label; and `upstream`).

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::config::plain;
use crate::inproc;
use crate::support::client::{self, Client};
use crate::support::{upstream, within};

/// The plain listener with the rewriting routes.
fn toml() -> String {
    plain().with(ROUTES).to_string()
}

const ROUTES: &str = r#"
[[routes]]
path = "/svc/"
to = "${UP}"
strip_prefix = true

[[routes]]
path = "/old/"
to = "${UP}"
rewrite = "/new/"

[[routes]]
path = "/realtime/v1/"
to = "${UP}"
rewrite = "/socket/"
host_header = "realtime-dev"

[[routes]]
path = "/up-host/"
to = "${UP}"
host_header = "upstream"
"#;

#[tokio::test]
async fn paths_and_hosts_reach_the_upstream_rewritten() {
    let up = upstream::start().await;
    let e = inproc::start(&toml(), &[("UP", up.url())]).await;
    let mut c = Client::plain(e.plain()).await;
    let client_host = format!("localhost:{}", e.plain().port());
    let cases = [
        ("/svc/a/b?x=1", "/a/b?x=1", client_host.as_str()),
        ("/svc", "/", client_host.as_str()),
        ("/old/x/y?q=2", "/new/x/y?q=2", client_host.as_str()),
        ("/realtime/v1/api/ping", "/socket/api/ping", "realtime-dev"),
        ("/up-host/z", "/up-host/z", &up.addr.to_string()),
        ("/other/path", "/other/path", client_host.as_str()),
    ];
    for (sent, want_uri, want_host) in cases {
        let j = c.get(sent).await.json();
        assert_eq!(j["uri"], want_uri, "{sent}");
        assert_eq!(j["headers"]["host"][0], want_host, "{sent}");
        // X-Forwarded-Host keeps what the client asked for.
        assert_eq!(j["headers"]["x-forwarded-host"][0], client_host, "{sent}");
    }
}

#[tokio::test]
async fn supabase_realtime_websocket_is_rewritten() {
    let up = upstream::start().await;
    let e = inproc::start(&toml(), &[("UP", up.url())]).await;
    let mut ws = client::ws_plain(
        e.plain(),
        "/realtime/v1/websocket?apikey=anon-key&vsn=1.0.0",
    )
    .await;
    let seen = up
        .state
        .last_seen("/socket/websocket")
        .expect("upstream saw the rewritten upgrade");
    assert_eq!(seen.uri, "/socket/websocket?apikey=anon-key&vsn=1.0.0");
    assert_eq!(seen.headers["host"], "realtime-dev");
    let join = r#"{"topic":"realtime:room1","event":"phx_join","payload":{},"ref":"1"}"#;
    ws.send(Message::text(join)).await.expect("send");
    let back = within("echo", ws.next()).await.expect("open").expect("msg");
    assert_eq!(back, Message::text(join));
}
