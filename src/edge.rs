//! The running edge: the current config generation, the things that outlive
//! a generation (upstream connection pools, the hub, connection caps, TLS
//! state), and reload.
//!
//! A reload builds a whole new [`Runtime`] and swaps it in atomically;
//! requests already in flight finish on the generation they started with,
//! and established connections and WebSockets are never touched.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::{Config, Target};
use crate::hub::Hub;
use crate::limits::Limits;
use crate::phoenix::SupabaseFront;
use crate::phoenix::bridge::Bridge;
use crate::proxy::Upstream;
use crate::proxy::pool::Pool;
use crate::pusher::PusherFront;
use crate::shutdown::Shutdown;
use crate::tls_state::TlsState;

/// Why the edge could not start or reload.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
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
    supabase: SupabaseFront,
    shutdown: Shutdown,
    /// Upstream connection pools, kept across reloads for the upstreams the
    /// new config still uses, so their keep-alive connections survive.
    pools: parking_lot::Mutex<Vec<Pool>>,
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

    pub fn supabase(&self) -> &SupabaseFront {
        &self.supabase
    }

    fn build_runtime(&self, config: Arc<Config>) -> Result<Runtime, EdgeError> {
        let mut upstreams = Vec::with_capacity(config.routes.len());
        let mut pools = self.pools.lock();
        let old = std::mem::take(&mut *pools);
        for r in &config.routes {
            upstreams.push(match &r.target {
                Target::Proxy(t) => {
                    let serves = |p: &&Pool| p.serves(&t.scheme, &t.authority, t.connect_timeout);
                    // One pool per upstream: shared by routes of this
                    // generation, carried over from the last one.
                    let pool = match pools.iter().find(serves) {
                        Some(p) => p.clone(),
                        None => {
                            let p = old.iter().find(serves).cloned().unwrap_or_else(|| {
                                Pool::new(t.scheme.clone(), t.authority.clone(), t.connect_timeout)
                            });
                            pools.push(p.clone());
                            p
                        }
                    };
                    Some(Upstream {
                        target: t.clone(),
                        pool,
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
        // One hub for both fronts; its publish seam is the Pusher↔Supabase
        // bridge (a no-op unless `[supabase] pusher_app` is set).
        let bridge = Arc::new(Bridge::default());
        let hub = Arc::new(Hub::new(vec![bridge.clone()]));
        let pusher = PusherFront::with_hub(&config.apps, hub.clone(), shutdown.clone());
        let supabase = SupabaseFront::new(hub, config.supabase.clone(), shutdown.clone(), bridge);
        let placeholder = Runtime {
            config: config.clone(),
            upstreams: Vec::new(),
        };
        let inner = Arc::new(EdgeInner {
            runtime: ArcSwap::from_pointee(placeholder),
            pusher,
            supabase,
            shutdown,
            pools: parking_lot::Mutex::new(Vec::new()),
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
        self.inner.supabase.reload(config.supabase.clone());
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
