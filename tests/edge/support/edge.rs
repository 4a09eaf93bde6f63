//! portico in-process: `Edge` + `serve` on listeners this test bound on
//! `127.0.0.1:0`, configured from a TOML string.
//!
//! The TOML names the listeners it wants as `${HTTPS}`, `${HTTP}` and
//! `${PLAIN}` and the dev-cert directory as `${CERTS}`; those are filled
//! through the config's own `${VAR}` expansion, together with the test's
//! variables (upstream URLs).

use std::net::SocketAddr;

use portico::{Config, Edge, Listeners, Shutdown};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{TempDir, within};

/// The common case: https and plain listeners with dev certs, everything
/// proxied to `${UP}`.
pub(crate) const PROXY_TOML: &str = r#"
[server]
https = "${HTTPS}"
plain = "${PLAIN}"
[tls]
mode = "dev"
dir = "${CERTS}"
[upstream]
url = "${UP}"
"#;

/// A running in-process edge; stopped (abruptly) on drop.
pub(crate) struct TestEdge {
    pub(crate) https: Option<SocketAddr>,
    pub(crate) http: Option<SocketAddr>,
    pub(crate) plain: Option<SocketAddr>,
    pub(crate) edge: Edge,
    dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

async fn bind_if(toml: &str, var: &str) -> Option<TcpListener> {
    if toml.contains(&format!("${{{var}}}")) {
        Some(TcpListener::bind("127.0.0.1:0").await.expect("bind"))
    } else {
        None
    }
}

/// Parses `toml` (see the module doc for the variables) and starts serving.
pub(crate) async fn start(toml: &str, vars: &[(&str, String)]) -> TestEdge {
    let dir = TempDir::new("certs");
    let listeners = Listeners {
        https: bind_if(toml, "HTTPS").await,
        http: bind_if(toml, "HTTP").await,
        plain: bind_if(toml, "PLAIN").await,
    };
    let addr = |l: &Option<TcpListener>| l.as_ref().map(|l| l.local_addr().expect("addr"));
    let (https, http, plain) = (
        addr(&listeners.https),
        addr(&listeners.http),
        addr(&listeners.plain),
    );
    let config = parse(toml, vars, [https, http, plain], dir.path());
    let edge = Edge::new(config, Shutdown::new()).expect("edge starts");
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(portico::serve(edge.clone(), listeners, async move {
        let _ = rx.await;
    }));
    TestEdge {
        https,
        http,
        plain,
        edge,
        dir,
        stop: Some(tx),
        task: Some(task),
    }
}

fn parse(
    toml: &str,
    vars: &[(&str, String)],
    [https, http, plain]: [Option<SocketAddr>; 3],
    certs: &std::path::Path,
) -> Config {
    let certs = certs.display().to_string();
    let env = |k: &str| -> Option<String> {
        match k {
            "HTTPS" => https.map(|a| a.to_string()),
            "HTTP" => http.map(|a| a.to_string()),
            "PLAIN" => plain.map(|a| a.to_string()),
            "CERTS" => Some(certs.clone()),
            _ => vars
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.clone()),
        }
    };
    Config::from_str_with_env(toml, "test.toml", &env)
        .unwrap_or_else(|e| panic!("test config is invalid: {e}"))
}

impl TestEdge {
    /// Reloads with a new TOML (same variables), as SIGHUP does.
    pub(crate) fn reload(&self, toml: &str, vars: &[(&str, String)]) {
        let config = parse(
            toml,
            vars,
            [self.https, self.http, self.plain],
            self.dir.path(),
        );
        self.edge.reload(config).expect("reload");
    }

    /// The dev CA the https listener's certificate chains to.
    pub(crate) fn ca(&self) -> std::path::PathBuf {
        self.dir.path().join(portico::tls::dev::CA_CERT_FILE)
    }

    pub(crate) fn https(&self) -> SocketAddr {
        self.https.expect("config has ${HTTPS}")
    }

    pub(crate) fn plain(&self) -> SocketAddr {
        self.plain.expect("config has ${PLAIN}")
    }

    pub(crate) fn http(&self) -> SocketAddr {
        self.http.expect("config has ${HTTP}")
    }

    /// Starts draining (as SIGTERM does) without waiting.
    pub(crate) fn begin_shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// Drains and waits for `serve` to return.
    pub(crate) async fn shutdown(mut self) {
        self.begin_shutdown();
        if let Some(task) = self.task.take() {
            within("serve returns after shutdown", task)
                .await
                .expect("serve task");
        }
    }
}

impl Drop for TestEdge {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}
