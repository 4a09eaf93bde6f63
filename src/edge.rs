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
use crate::files::{Root, ServeOpts};
use crate::hub::Hub;
use crate::phoenix::SupabaseFront;
use crate::proxy::Upstream;
use crate::proxy::fastcgi::{self, FastCgi};
use crate::proxy::pool::Pool;
use crate::pusher::PusherFront;
use crate::server::stack::{FileServer, Site};
use crate::server::{Fronts, Runtime, Stack};
use crate::shutdown::Shutdown;
use crate::supervise::{Ready, Supervisor};
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
    /// The hub both fronts share (its apps' counts, for metrics and status).
    hub: Arc<Hub>,
    /// Upstream connection pools, kept across reloads for the upstreams the
    /// new config still uses, so their keep-alive connections survive.
    pools: parking_lot::Mutex<Vec<Pool>>,
    /// `[[processes]]`, kept running across reloads.
    supervisor: Supervisor,
    /// The same for php-fpm connection pools.
    fastcgi_pools: parking_lot::Mutex<Vec<fastcgi::Pool>>,
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

    /// The supervised processes (their state, for status and tests).
    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// The hub both fronts share.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// This node's part of the cluster, when `[cluster]` is set (its link
    /// state and counters: [`Cluster::stats`]).
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.as_ref()
    }
}

/// The readiness handle of each route's `wait_for` process, parallel to
/// `config.routes`.
fn route_readiness(config: &Config, supervisor: &Supervisor) -> Vec<Option<Ready>> {
    config
        .routes
        .iter()
        .map(|r| r.wait_for.as_deref().and_then(|n| supervisor.ready(n)))
        .collect()
}

/// The Pusher app `[supabase] pusher_app` bridges, if any.
fn bridged_app(config: &Config) -> Option<&str> {
    config.supabase.as_deref()?.pusher_app.as_deref()
}

/// Builds a generation: one upstream per proxy route, reusing this
/// generation's and the last one's pools for the same upstream.
fn build_runtime(
    pools: &parking_lot::Mutex<Vec<Pool>>,
    fastcgi_pools: &parking_lot::Mutex<Vec<fastcgi::Pool>>,
    config: Arc<Config>,
) -> Runtime {
    let mut upstreams = Vec::with_capacity(config.routes.len());
    let sites = build_sites(fastcgi_pools, &config);
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
            Target::FastCgi(_) | Target::Files(_) | Target::Pusher | Target::Supabase => None,
        });
    }
    Runtime::new(config, upstreams).with_sites(sites)
}

/// Opens the document roots of php-fpm and file-server routes (realpath
/// once per generation) and finds their php-fpm pools, reusing the last
/// generation's for the same php-fpm. A root that cannot be opened (gone
/// since the config was checked) leaves its route answering 503.
fn build_sites(
    fastcgi_pools: &parking_lot::Mutex<Vec<fastcgi::Pool>>,
    config: &Config,
) -> Vec<Option<Site>> {
    let mut pools = fastcgi_pools.lock();
    let old = std::mem::take(&mut *pools);
    let open = |site: &crate::config::Site| match Root::open(&site.root, &site.allow_symlinks) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::error!(root = %site.root.display(), error = %e, "document root cannot be opened; its route answers 503");
            None
        }
    };
    config
        .routes
        .iter()
        .map(|r| match &r.target {
            Target::FastCgi(t) => {
                let root = open(&t.site)?;
                let pool = match pools.iter().find(|p| p.serves(t)) {
                    Some(p) => p.clone(),
                    None => {
                        let p = old
                            .iter()
                            .find(|p| p.serves(t))
                            .cloned()
                            .unwrap_or_else(|| fastcgi::Pool::new(t));
                        pools.push(p.clone());
                        p
                    }
                };
                let downloads = t
                    .downloads
                    .iter()
                    .filter_map(|d| match std::fs::canonicalize(d) {
                        Ok(real) => Some(real),
                        Err(e) => {
                            tracing::error!(dir = %d.display(), error = %e, "download directory cannot be opened; files in it get 404");
                            None
                        }
                    })
                    .collect();
                Some(Site::FastCgi(FastCgi {
                    target: t.clone(),
                    root: Arc::new(root),
                    pool,
                    files: ServeOpts::default(),
                    downloads,
                }))
            }
            Target::Files(t) => Some(Site::Files(FileServer {
                root: open(&t.site)?,
                index: t.index.clone(),
                opts: ServeOpts::default(),
            })),
            Target::Proxy(_) | Target::Pusher | Target::Supabase => None,
        })
        .collect()
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
        Self::with_cluster_node(config, shutdown, None)
    }

    /// Like [`new`](Self::new); with `[cluster]`, the node id is `node`
    /// when given (the id of the process this one replaces in a binary
    /// upgrade) instead of a fresh random one.
    pub fn with_cluster_node(
        config: Config,
        shutdown: Shutdown,
        node: Option<&str>,
    ) -> Result<Edge, EdgeError> {
        let config = Arc::new(config);
        let tls = TlsState::new(&config, &shutdown)?;
        // One hub for both fronts; the Pusher↔Supabase bridge observes its
        // publishes (a no-op unless `[supabase] pusher_app` is set).
        // With `[cluster]`, the cluster observes them too and sends them to
        // the other nodes.
        let bridge = Arc::new(Bridge::default());
        let cluster = match &config.cluster {
            Some(c) => {
                let cluster = Cluster::new(c.clone())?;
                Some(Arc::new(match node {
                    Some(n) => cluster.with_node_id(n),
                    None => cluster,
                }))
            }
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
            hub.clone(),
            config.supabase.clone(),
            shutdown.clone(),
        ));
        if let Some(c) = &cluster {
            pusher.attach_cluster(c.clone());
            supabase.attach_cluster(c.clone());
        }
        bridge.attach(&pusher, &supabase);
        bridge.set_app(bridged_app(&config));
        let supervisor = Supervisor::new(&shutdown);
        supervisor.apply(&config.processes);
        let pools = parking_lot::Mutex::new(Vec::new());
        let fastcgi_pools = parking_lot::Mutex::new(Vec::new());
        let runtime = build_runtime(&pools, &fastcgi_pools, config.clone())
            .with_ready(route_readiness(&config, &supervisor));
        let fronts = Fronts {
            pusher: pusher.clone(),
            supabase: supabase.clone(),
            publish: pusher.clone(),
        };
        let stack = Arc::new(Stack::new(runtime, fronts, tls, shutdown));
        let inner = Arc::new(EdgeInner {
            stack,
            pusher,
            supabase,
            bridge,
            cluster,
            hub,
            pools,
            supervisor,
            fastcgi_pools,
        });
        Ok(Edge { inner })
    }

    /// Swaps in a new configuration. On error the running one stays.
    /// Listener addresses and `max_connections` take effect on restart only.
    /// Processes: added ones start, removed ones stop, changed commands
    /// restart, the others keep running.
    pub fn reload(&self, config: Config) -> Result<(), EdgeError> {
        let config = Arc::new(config);
        let old = self.inner.runtime();
        if old.config.server.https != config.server.https
            || old.config.server.http != config.server.http
            || old.config.server.plain != config.server.plain
        {
            tracing::warn!("listener addresses changed in the config; they take effect on restart");
        }
        if old.config.admin != config.admin {
            tracing::warn!("`[admin]` changed in the config; it takes effect on restart");
        }
        let running = self.inner.cluster.as_ref().map(|c| c.settings());
        if running != config.cluster.as_ref() {
            tracing::warn!(
                running = ?running,
                "`[cluster]` changed in the config; it takes effect on restart (the running cluster settings stay)"
            );
        }
        let rt = build_runtime(&self.inner.pools, &self.inner.fastcgi_pools, config.clone());
        self.inner.tls().reload(&config, self.inner.shutdown())?;
        // Processes change only once the rest of the config is accepted.
        self.inner.supervisor.apply(&config.processes);
        let rt = rt.with_ready(route_readiness(&config, &self.inner.supervisor));
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
