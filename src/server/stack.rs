//! What every connection task holds: the current config generation with its
//! upstreams ([`Runtime`]), the built-in fronts behind [`Front`], the TLS
//! state (for ACME HTTP-01 answers and handshakes) and the shutdown signal.
//! The composition root ([`crate::edge`]) builds it and swaps generations.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use arc_swap::ArcSwap;

use crate::config::{Config, Target};
use crate::files::{Root, ServeOpts};
use crate::http::{Front, Publish};
use crate::metrics::RouteUpstream;
use crate::proxy::Upstream;
use crate::proxy::fastcgi::FastCgi;
use crate::shutdown::Shutdown;
use crate::supervise::Ready;
use crate::tls::state::TlsState;

/// One config generation, ready to serve.
pub struct Runtime {
    pub config: Arc<Config>,
    /// Parallel to `config.routes`: the upstream for proxy routes.
    upstreams: Vec<Option<Upstream>>,
    /// Parallel to `config.routes` (or empty): the process a `wait_for`
    /// route waits for.
    ready: Vec<Option<Ready>>,
    /// Parallel to `config.routes`: php-fpm and file-server routes.
    sites: Vec<Option<Site>>,
    /// Parallel to `config.routes`: the latency and error counters of
    /// routes with an upstream (HTTP or FastCGI).
    metrics: Vec<Option<RouteUpstream>>,
}

/// A route that serves from a document root.
pub enum Site {
    /// php-fpm with the front-controller rules.
    FastCgi(FastCgi),
    /// Static files only.
    Files(FileServer),
}

/// A plain file server's runtime: the opened root and its index names.
pub struct FileServer {
    pub root: Root,
    pub index: Vec<Arc<str>>,
    pub opts: ServeOpts,
}

impl Runtime {
    /// A generation; `upstreams` is parallel to `config.routes`.
    pub fn new(config: Arc<Config>, upstreams: Vec<Option<Upstream>>) -> Runtime {
        let metrics = config
            .routes
            .iter()
            .map(|r| {
                let kind = match r.target {
                    Target::Proxy(_) => "http",
                    Target::FastCgi(_) => "fastcgi",
                    Target::Pusher | Target::Supabase | Target::Files(_) => return None,
                };
                Some(RouteUpstream::new(&r.path, kind))
            })
            .collect();
        Runtime {
            config,
            upstreams,
            ready: Vec::new(),
            sites: Vec::new(),
            metrics,
        }
    }

    /// With the readiness handles of `wait_for` routes, parallel to
    /// `config.routes`.
    pub fn with_ready(mut self, ready: Vec<Option<Ready>>) -> Runtime {
        self.ready = ready;
        self
    }

    /// The process route `idx` waits for, while it is not ready.
    pub fn waiting_for(&self, idx: usize) -> Option<&Ready> {
        self.ready
            .get(idx)
            .and_then(Option::as_ref)
            .filter(|r| !r.is_ready())
    }

    /// With the document-root routes' runtimes, parallel to `config.routes`.
    pub fn with_sites(mut self, sites: Vec<Option<Site>>) -> Runtime {
        self.sites = sites;
        self
    }

    /// The upstream of route `idx`, if it proxies.
    pub fn upstream(&self, idx: usize) -> Option<&Upstream> {
        self.upstreams.get(idx).and_then(Option::as_ref)
    }

    /// The upstream counters of route `idx`, if it has an upstream.
    pub fn upstream_metrics(&self, idx: usize) -> Option<&RouteUpstream> {
        self.metrics.get(idx).and_then(Option::as_ref)
    }

    /// The php-fpm or file-server runtime of route `idx`, if it has one.
    pub fn site(&self, idx: usize) -> Option<&Site> {
        self.sites.get(idx).and_then(Option::as_ref)
    }
}

/// The built-in fronts, by the route target that reaches them.
pub struct Fronts {
    pub pusher: Arc<dyn Front>,
    pub supabase: Arc<dyn Front>,
    /// The Pusher front's publish, for the diagnostics page.
    pub publish: Arc<dyn Publish>,
}

/// Shared state of the request stack; every connection task holds an
/// `Arc` of it.
pub struct Stack {
    runtime: ArcSwap<Runtime>,
    fronts: Fronts,
    shutdown: Shutdown,
    tls: TlsState,
    /// The port the https listener is bound to (for redirects), once serving.
    https_port: AtomicU16,
}

impl Stack {
    pub fn new(runtime: Runtime, fronts: Fronts, tls: TlsState, shutdown: Shutdown) -> Stack {
        Stack {
            runtime: ArcSwap::from_pointee(runtime),
            fronts,
            shutdown,
            tls,
            https_port: AtomicU16::new(0),
        }
    }

    /// The generation new requests are served with.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// Swaps in a new generation; requests in flight keep theirs.
    pub fn set_runtime(&self, rt: Runtime) {
        self.runtime.store(Arc::new(rt));
    }

    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    pub fn tls(&self) -> &TlsState {
        &self.tls
    }

    /// The front a hub route reaches; `None` for proxy routes.
    pub fn front(&self, target: &Target) -> Option<&dyn Front> {
        match target {
            Target::Pusher => Some(&*self.fronts.pusher),
            Target::Supabase => Some(&*self.fronts.supabase),
            Target::Proxy(_) | Target::FastCgi(_) | Target::Files(_) => None,
        }
    }

    /// Publishes into the Pusher front's hub (the diagnostics page).
    pub fn publisher(&self) -> &dyn Publish {
        &*self.fronts.publish
    }

    /// The bound https port, when a https listener is being served.
    pub fn https_port(&self) -> Option<u16> {
        match self.https_port.load(Ordering::Relaxed) {
            0 => None,
            p => Some(p),
        }
    }

    pub fn set_https_port(&self, port: u16) {
        self.https_port.store(port, Ordering::Relaxed);
    }
}
