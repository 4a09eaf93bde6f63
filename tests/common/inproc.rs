//! portico in-process for the integration tests: [`portico::serve`] on
//! listeners bound here on `127.0.0.1:0`, configured from TOML text.
//!
//! The text names the listeners it wants as `${HTTPS}`, `${HTTP}` and
//! `${PLAIN}` and the dev-certificate directory as `${CERTS}`; those are
//! filled through the config's own `${VAR}` expansion, together with the
//! test's variables (upstream URLs and the like). Nothing is read from the
//! process environment.
//!
//! Included by each test crate that runs an edge in-process:
//! `#[path = "../common/inproc.rs"] mod inproc;`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use portico::{Config, Edge, Listeners, Shutdown};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Upper bound for a graceful shutdown in [`Inproc::shutdown`].
const WAIT: Duration = Duration::from_secs(5);

/// A running in-process edge. Dropping it starts the drain (as SIGTERM
/// does); the test's runtime ends whatever is left when the test returns.
pub(crate) struct Inproc {
    pub(crate) https: Option<SocketAddr>,
    pub(crate) http: Option<SocketAddr>,
    pub(crate) plain: Option<SocketAddr>,
    /// The running edge (reload, config, shutdown handle).
    pub(crate) edge: Edge,
    certs: TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Parses `toml` (see the module doc for its variables) and starts serving
/// on a fresh `127.0.0.1:0` listener for each of `${HTTPS}`, `${HTTP}` and
/// `${PLAIN}` it names.
pub(crate) async fn start(toml: &str, vars: &[(&str, String)]) -> Inproc {
    start_on(Listeners::default(), toml, vars, |_| {}).await
}

/// Like [`start`], on the listeners the test bound itself (any listener the
/// text names but `bound` lacks is bound fresh), with `edit` applied to the
/// parsed config before the edge starts (for knobs TOML has no key for).
pub(crate) async fn start_on(
    bound: Listeners,
    toml: &str,
    vars: &[(&str, String)],
    edit: impl FnOnce(&mut Config),
) -> Inproc {
    let certs = TempDir::new("certs");
    let listeners = Listeners {
        https: bound.https.or_else(|| bind_if(toml, "HTTPS")),
        http: bound.http.or_else(|| bind_if(toml, "HTTP")),
        plain: bound.plain.or_else(|| bind_if(toml, "PLAIN")),
    };
    let addr = |l: &Option<TcpListener>| l.as_ref().map(|l| l.local_addr().expect("addr"));
    let addrs = Addrs {
        https: addr(&listeners.https),
        http: addr(&listeners.http),
        plain: addr(&listeners.plain),
    };
    let mut config = addrs.parse(toml, vars, certs.path());
    edit(&mut config);
    let edge = Edge::new(config, Shutdown::new()).expect("edge starts");
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(portico::serve(edge.clone(), listeners, async move {
        let _ = rx.await;
    }));
    Inproc {
        https: addrs.https,
        http: addrs.http,
        plain: addrs.plain,
        edge,
        certs,
        stop: Some(tx),
        task: Some(task),
    }
}

/// A fresh loopback listener if `toml` names `${var}`.
fn bind_if(toml: &str, var: &str) -> Option<TcpListener> {
    toml.contains(&format!("${{{var}}}")).then(|| {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        portico::listener::bind_one("test", any).expect("bind 127.0.0.1:0")
    })
}

/// The bound addresses, as the TOML's `${HTTPS}`, `${HTTP}`, `${PLAIN}`.
#[derive(Clone, Copy)]
struct Addrs {
    https: Option<SocketAddr>,
    http: Option<SocketAddr>,
    plain: Option<SocketAddr>,
}

impl Addrs {
    /// Parses `toml` with the listener, certificate and test variables.
    fn parse(self, toml: &str, vars: &[(&str, String)], certs: &Path) -> Config {
        let certs = certs.display().to_string();
        let env = |k: &str| -> Option<String> {
            match k {
                "HTTPS" => self.https.map(|a| a.to_string()),
                "HTTP" => self.http.map(|a| a.to_string()),
                "PLAIN" => self.plain.map(|a| a.to_string()),
                "CERTS" => Some(certs.clone()),
                _ => vars
                    .iter()
                    .find(|(name, _)| *name == k)
                    .map(|(_, v)| v.clone()),
            }
        };
        Config::from_str_with_env(toml, "test.toml", &env)
            .unwrap_or_else(|e| panic!("test config is invalid: {e}\n{toml}"))
    }
}

impl Inproc {
    fn addrs(&self) -> Addrs {
        Addrs {
            https: self.https,
            http: self.http,
            plain: self.plain,
        }
    }

    /// Reloads with a new TOML (same listeners and variables' meaning), as
    /// SIGHUP does.
    pub(crate) fn reload(&self, toml: &str, vars: &[(&str, String)]) {
        let config = self.addrs().parse(toml, vars, self.certs.path());
        self.edge.reload(config).expect("reload");
    }

    /// The dev CA the https listener's certificate chains to.
    pub(crate) fn ca(&self) -> PathBuf {
        self.certs.path().join(portico::tls::dev::CA_CERT_FILE)
    }

    pub(crate) fn https(&self) -> SocketAddr {
        self.https.expect("config has ${HTTPS}")
    }

    pub(crate) fn http(&self) -> SocketAddr {
        self.http.expect("config has ${HTTP}")
    }

    pub(crate) fn plain(&self) -> SocketAddr {
        self.plain.expect("config has ${PLAIN}")
    }

    /// Starts draining (as SIGTERM does) without waiting.
    pub(crate) fn begin_shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// Drains and waits (at most 5 s) for `serve` to return.
    pub(crate) async fn shutdown(self) {
        assert!(
            self.stop_within(WAIT).await,
            "serve did not return within {WAIT:?} of the shutdown"
        );
    }

    /// Drains and waits at most `limit` for `serve` to return; whether it
    /// did.
    pub(crate) async fn stop_within(mut self, limit: Duration) -> bool {
        self.begin_shutdown();
        match self.task.take() {
            Some(task) => matches!(tokio::time::timeout(limit, task).await, Ok(Ok(()))),
            None => true,
        }
    }
}

impl Drop for Inproc {
    fn drop(&mut self) {
        self.begin_shutdown();
    }
}

/// A directory removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!(
            "portico-test-{tag}-{}-{n}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
