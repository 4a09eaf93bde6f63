//! The running edge: the current config generation, the things that outlive
//! a generation (upstream connection pools, the hub, connection caps, TLS
//! state), and reload.
//!
//! A reload builds a whole new [`Runtime`] and swaps it in atomically;
//! requests already in flight finish on the generation they started with,
//! and established connections and WebSockets are never touched.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::config::{Config, Target};
use crate::limits::Limits;
use crate::proxy::Upstream;
use crate::proxy::client::{self, UpstreamClient};
use crate::pusher::PusherFront;
use crate::shutdown::Shutdown;
use crate::tls_state::TlsState;

/// Why the edge could not start or reload.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("cannot build the upstream HTTP client: {0}")]
    Client(#[from] rustls::Error),
    #[error(transparent)]
    Tls(#[from] crate::tls_state::TlsSetupError),
}

/// One config generation, ready to serve.
pub struct Runtime {
    pub config: Arc<Config>,
    /// Parallel to `config.routes`: the upstream for proxy routes.
    upstreams: Vec<Option<Upstream>>,
}

impl Runtime {
    /// The upstream of route `idx`, if it proxies.
    pub fn upstream(&self, idx: usize) -> Option<&Upstream> {
        self.upstreams.get(idx).and_then(Option::as_ref)
    }
}

/// Shared state every connection task holds.
pub struct EdgeInner {
    runtime: ArcSwap<Runtime>,
    pusher: PusherFront,
    shutdown: Shutdown,
    /// Upstream clients by connect timeout, kept across reloads so their
    /// keep-alive pools survive.
    clients: parking_lot::Mutex<HashMap<Duration, UpstreamClient>>,
    pub(crate) limits: Limits,
    /// The port the https listener is bound to (for redirects), once serving.
    https_port: std::sync::atomic::AtomicU16,
    pub(crate) tls: TlsState,
}

impl EdgeInner {
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// The bound https port, when a https listener is being served.
    pub fn https_port(&self) -> Option<u16> {
        match self.https_port.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            p => Some(p),
        }
    }

    pub(crate) fn set_https_port(&self, port: u16) {
        self.https_port
            .store(port, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn pusher(&self) -> &PusherFront {
        &self.pusher
    }

    fn build_runtime(&self, config: Arc<Config>) -> Result<Runtime, EdgeError> {
        let mut upstreams = Vec::with_capacity(config.routes.len());
        let mut clients = self.clients.lock();
        for r in &config.routes {
            upstreams.push(match &r.target {
                Target::Proxy(t) => {
                    let client = match clients.get(&t.connect_timeout) {
                        Some(c) => c.clone(),
                        None => {
                            let c = client::build(t.connect_timeout)?;
                            clients.insert(t.connect_timeout, c.clone());
                            c
                        }
                    };
                    Some(Upstream {
                        target: t.clone(),
                        client,
                    })
                }
                Target::Pusher | Target::Supabase => None,
            });
        }
        Ok(Runtime { config, upstreams })
    }
}

/// The edge, cheap to clone.
#[derive(Clone)]
pub struct Edge {
    inner: Arc<EdgeInner>,
}

impl Edge {
    /// Builds the edge for `config`: TLS material is loaded (dev certs are
    /// created if missing), upstream clients are built.
    pub fn new(config: Config, shutdown: Shutdown) -> Result<Edge, EdgeError> {
        let config = Arc::new(config);
        let tls = TlsState::new(&config, &shutdown)?;
        let pusher = PusherFront::new(&config.apps, shutdown.clone());
        let placeholder = Runtime {
            config: config.clone(),
            upstreams: Vec::new(),
        };
        let inner = Arc::new(EdgeInner {
            runtime: ArcSwap::from_pointee(placeholder),
            pusher,
            shutdown,
            clients: parking_lot::Mutex::new(HashMap::new()),
            limits: Limits::new(config.server.max_connections),
            https_port: std::sync::atomic::AtomicU16::new(0),
            tls,
        });
        let rt = inner.build_runtime(config)?;
        inner.runtime.store(Arc::new(rt));
        Ok(Edge { inner })
    }

    /// Swaps in a new configuration. On error the running one stays.
    /// Listener addresses and `max_connections` take effect on restart only.
    pub fn reload(&self, config: Config) -> Result<(), EdgeError> {
        let config = Arc::new(config);
        let old = self.inner.runtime();
        if old.config.server.https != config.server.https
            || old.config.server.http != config.server.http
            || old.config.server.plain != config.server.plain
        {
            tracing::warn!("listener addresses changed in the config; they take effect on restart");
        }
        let rt = self.inner.build_runtime(config.clone())?;
        self.inner.tls.reload(&config, &self.inner.shutdown)?;
        self.inner.pusher.reload(&config.apps);
        self.inner.runtime.store(Arc::new(rt));
        tracing::info!(source = %config.source, routes = config.routes.len(), "configuration reloaded");
        Ok(())
    }

    pub fn inner(&self) -> &Arc<EdgeInner> {
        &self.inner
    }

    pub fn shutdown(&self) -> &Shutdown {
        &self.inner.shutdown
    }

    /// The configuration currently served.
    pub fn config(&self) -> Arc<Config> {
        self.inner.runtime().config.clone()
    }
}
