//! The composition root: builds the hub, the fronts, the TLS state and the
//! request stack from a config, keeps what outlives a generation (upstream
//! connection pools, the hub, connection caps, TLS state), and reloads.
//!
//! A reload builds a whole new [`Runtime`] and swaps it in atomically;
//! requests already in flight finish on the generation they started with,
//! and established connections and WebSockets are never touched.

use std::sync::Arc;

use crate::bridge::Bridge;
use crate::cluster::Cluster;
use crate::config::{Config, Target};
use crate::hub::Hub;
use crate::phoenix::SupabaseFront;
use crate::proxy::Upstream;
use crate::proxy::pool::Pool;
use crate::pusher::PusherFront;
use crate::server::{Fronts, Runtime, Stack};
use crate::shutdown::Shutdown;
use crate::tls::state::TlsState;

/// Why the edge could not start or reload.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error(transparent)]
    Tls(#[from] crate::tls::state::TlsSetupError),
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
}

/// Shared state the accept loops hold: the request stack plus what only
/// the edge itself needs (the concrete fronts for reloads, the pools).
pub struct EdgeInner {
    stack: Arc<Stack>,
    pusher: Arc<PusherFront>,
    supabase: Arc<SupabaseFront>,
    /// The Pusher↔Supabase bridge, whose bridged app follows the config.
    bridge: Arc<Bridge>,
    /// This node's part of the cluster (`[cluster]`); fixed at start.
    cluster: Option<Arc<Cluster>>,
    /// Upstream connection pools, kept across reloads for the upstreams the
    /// new config still uses, so their keep-alive connections survive.
    pools: parking_lot::Mutex<Vec<Pool>>,
}

impl EdgeInner {
    /// The request stack connections are served with.
    pub fn stack(&self) -> &Arc<Stack> {
        &self.stack
    }

    pub fn runtime(&self) -> Arc<Runtime> {
        self.stack.runtime()
    }

    pub fn shutdown(&self) -> &Shutdown {
        self.stack.shutdown()
    }

    pub fn tls(&self) -> &TlsState {
        self.stack.tls()
    }

    /// The bound https port, when a https listener is being served.
    pub fn https_port(&self) -> Option<u16> {
        self.stack.https_port()
    }

    pub(crate) fn set_https_port(&self, port: u16) {
        self.stack.set_https_port(port);
    }

    pub fn pusher(&self) -> &PusherFront {
        &self.pusher
    }

    pub fn supabase(&self) -> &SupabaseFront {
        &self.supabase
    }

    /// This node's part of the cluster, when `[cluster]` is set (its link
    /// state and counters: [`Cluster::stats`]).
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.as_ref()
    }
}

/// The Pusher app `[supabase] pusher_app` bridges, if any.
fn bridged_app(config: &Config) -> Option<&str> {
    config.supabase.as_deref()?.pusher_app.as_deref()
}

/// Builds a generation: one upstream per proxy route, reusing this
/// generation's and the last one's pools for the same upstream.
fn build_runtime(pools: &parking_lot::Mutex<Vec<Pool>>, config: Arc<Config>) -> Runtime {
    let mut upstreams = Vec::with_capacity(config.routes.len());
    let mut pools = pools.lock();
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
    Runtime::new(config, upstreams)
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
        // One hub for both fronts; the Pusher↔Supabase bridge observes its
        // publishes (a no-op unless `[supabase] pusher_app` is set).
        // With `[cluster]`, the cluster observes them too and sends them to
        // the other nodes.
        let bridge = Arc::new(Bridge::default());
        let cluster = match &config.cluster {
            Some(c) => Some(Arc::new(Cluster::new(c.clone())?)),
            None => None,
        };
        let mut observers: Vec<Arc<dyn crate::hub::Observer>> = vec![bridge.clone()];
        if let Some(c) = &cluster {
            observers.push(c.clone());
        }
        let hub = Arc::new(Hub::new(observers));
        if let Some(c) = &cluster {
            c.start(&hub, &shutdown);
        }
        let pusher = Arc::new(PusherFront::with_hub(
            &config.apps,
            hub.clone(),
            shutdown.clone(),
        ));
        let supabase = Arc::new(SupabaseFront::new(
            hub,
            config.supabase.clone(),
            shutdown.clone(),
        ));
        bridge.attach(&pusher, &supabase);
        bridge.set_app(bridged_app(&config));
        let pools = parking_lot::Mutex::new(Vec::new());
        let runtime = build_runtime(&pools, config.clone());
        let fronts = Fronts {
            pusher: pusher.clone(),
            supabase: supabase.clone(),
        };
        let stack = Arc::new(Stack::new(runtime, fronts, tls, shutdown));
        let inner = Arc::new(EdgeInner {
            stack,
            pusher,
            supabase,
            bridge,
            cluster,
            pools,
        });
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
        let running = self.inner.cluster.as_ref().map(|c| c.settings());
        if running != config.cluster.as_ref() {
            tracing::warn!(
                running = ?running,
                "`[cluster]` changed in the config; it takes effect on restart (the running cluster settings stay)"
            );
        }
        let rt = build_runtime(&self.inner.pools, config.clone());
        self.inner.tls().reload(&config, self.inner.shutdown())?;
        self.inner.pusher.reload(&config.apps);
        self.inner.supabase.reload(config.supabase.clone());
        self.inner.bridge.set_app(bridged_app(&config));
        self.inner.stack.set_runtime(rt);
        tracing::info!(source = %config.source, routes = config.routes.len(), "configuration reloaded");
        Ok(())
    }

    pub fn inner(&self) -> &Arc<EdgeInner> {
        &self.inner
    }

    pub fn shutdown(&self) -> &Shutdown {
        self.inner.shutdown()
    }

    /// The configuration currently served.
    pub fn config(&self) -> Arc<Config> {
        self.inner.runtime().config.clone()
    }
}
