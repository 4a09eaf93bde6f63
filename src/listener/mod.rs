//! Binding and the accept loops: caps are checked before anything else, then
//! each connection gets its own task (TLS handshake first on `https`).

pub mod limits;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::runtime::Handle;

use crate::config::Server;
use crate::edge::EdgeInner;
use crate::http::ListenerKind;
use crate::io::movable::{Movable, MovableTcp};
use crate::server::hyper_conn::serve_hyper;
use crate::server::{ConnInfo, ConnSettings, serve};
use crate::workers::Workers;
use limits::{ConnGuard, Guarded, Limits, Refused};

/// The sockets portico serves on; tests bind `127.0.0.1:0` themselves.
#[derive(Debug, Default)]
pub struct Listeners {
    pub https: Option<TcpListener>,
    pub http: Option<TcpListener>,
    pub plain: Option<TcpListener>,
}

/// A listener that could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} (`server.{key}`): {source}")]
pub struct BindError {
    pub key: &'static str,
    pub addr: SocketAddr,
    pub source: io::Error,
}

impl Listeners {
    /// Binds every listener the config enables.
    pub fn bind(server: &Server) -> Result<Listeners, BindError> {
        Ok(Listeners {
            https: server.https.map(|a| bind_one("https", a)).transpose()?,
            http: server.http.map(|a| bind_one("http", a)).transpose()?,
            plain: server.plain.map(|a| bind_one("plain", a)).transpose()?,
        })
    }

    /// Like [`bind`](Self::bind), but each listener is first looked for
    /// among those handed over by the process being upgraded: `take` gives
    /// the one named `https`, `http` or `plain`, adopted when it is bound to
    /// the configured address (or the configured port is 0 on the same IP);
    /// the others are bound.
    pub fn bind_or_adopt(
        server: &Server,
        mut take: impl FnMut(&'static str) -> Option<std::net::TcpListener>,
    ) -> Result<Listeners, BindError> {
        let mut one = |key: &'static str, addr: Option<SocketAddr>| {
            addr.map(|a| match take(key).and_then(|l| adopt(key, l, a)) {
                Some(l) => Ok(l),
                None => bind_one(key, a),
            })
            .transpose()
        };
        Ok(Listeners {
            https: one("https", server.https)?,
            http: one("http", server.http)?,
            plain: one("plain", server.plain)?,
        })
    }

    /// The bound addresses (useful after binding port 0).
    pub fn addrs(&self) -> [(ListenerKind, Option<SocketAddr>); 3] {
        let a = |l: &Option<TcpListener>| l.as_ref().and_then(|l| l.local_addr().ok());
        [
            (ListenerKind::Https, a(&self.https)),
            (ListenerKind::Http, a(&self.http)),
            (ListenerKind::Plain, a(&self.plain)),
        ]
    }
}

/// An inherited listener (binary upgrade) as the one for `want`: `None`,
/// with a warning, when it is bound elsewhere (the config changed) or
/// cannot be used; the caller binds `want` then.
pub fn adopt(key: &str, l: std::net::TcpListener, want: SocketAddr) -> Option<TcpListener> {
    let have = match l.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(listener = key, error = %e, "inherited listener unusable; binding anew");
            return None;
        }
    };
    let same = have == want || (want.port() == 0 && have.ip() == want.ip());
    if !same {
        tracing::warn!(listener = key, inherited = %have, configured = %want, "the inherited listener is bound elsewhere; binding the configured address");
        return None;
    }
    match l
        .set_nonblocking(true)
        .and_then(|()| TcpListener::from_std(l))
    {
        Ok(l) => {
            tracing::debug!(listener = key, addr = %have, "adopted the inherited listener");
            Some(l)
        }
        Err(e) => {
            tracing::warn!(listener = key, error = %e, "inherited listener unusable; binding anew");
            None
        }
    }
}

/// Binds with a large backlog (the default 128 costs 1 s SYN retransmits
/// under connection bursts) and SO_REUSEADDR.
pub fn bind_one(key: &'static str, addr: SocketAddr) -> Result<TcpListener, BindError> {
    let err = |source| BindError { key, addr, source };
    let domain = socket2::Domain::for_address(addr);
    let sock = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))
        .map_err(err)?;
    sock.set_reuse_address(true).map_err(err)?;
    if addr.is_ipv6() {
        let _ = sock.set_only_v6(false);
    }
    sock.set_nonblocking(true).map_err(err)?;
    sock.bind(&addr.into()).map_err(err)?;
    sock.listen(4096).map_err(err)?;
    TcpListener::from_std(sock.into()).map_err(err)
}

/// Accepts until draining starts; each connection runs on the next of
/// `workers` (or on this runtime when there are none).
pub async fn accept_loop(
    listener: TcpListener,
    kind: ListenerKind,
    edge: Arc<EdgeInner>,
    limits: Arc<Limits>,
    workers: Arc<Workers>,
) {
    let shutdown = edge.shutdown().clone();
    let mut backoff = Duration::from_millis(5);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.draining() => break,
            r = listener.accept() => match r {
                Ok(pair) => { backoff = Duration::from_millis(5); pair }
                Err(e) => {
                    // EMFILE and friends: wait a little instead of spinning.
                    tracing::warn!(listener = kind.name(), error = %e, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
        };
        let server = edge.runtime().config.server.clone();
        let guard = match limits.try_admit(peer.ip(), server.max_connections_per_ip) {
            Ok(g) => g,
            Err(why) => {
                let cap = match why {
                    Refused::Global => "server.max_connections",
                    Refused::PerIp => "server.max_connections_per_ip",
                };
                tracing::debug!(peer = %peer, cap, "connection refused: over the cap");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().unwrap_or(peer);
        let info = ConnInfo { peer, local, kind };
        let settings = ConnSettings {
            header_timeout: server.header_timeout,
            http2: server.http2,
            max_target: server.max_request_target,
        };
        let worker = workers.next();
        let conn = Conn {
            info,
            settings,
            handshake_timeout: server.handshake_timeout,
            edge: edge.clone(),
            hub_home: worker.and(workers.hub_home()).cloned(),
        };
        let mut stream = MovableTcp::new(stream);
        let Some(worker) = worker else {
            drop(shutdown.spawn(conn.run(stream, guard)));
            continue;
        };
        // Off this reactor, onto the worker's.
        if let Err(e) = stream.detach() {
            tracing::debug!(peer = %peer, error = %e, "cannot move the connection to its worker");
            continue;
        }
        let moved = async move {
            match stream.attach() {
                Ok(()) => conn.run(stream, guard).await,
                Err(e) => {
                    tracing::debug!(peer = %peer, error = %e, "cannot move the connection to its worker")
                }
            }
        };
        drop(shutdown.spawn_on(moved, worker));
    }
    tracing::debug!(listener = kind.name(), "stopped accepting");
}

/// An accepted connection on its way to its task.
struct Conn {
    info: ConnInfo,
    settings: ConnSettings,
    handshake_timeout: Duration,
    edge: Arc<EdgeInner>,
    /// Set on a per-core worker: where a hub socket moves.
    hub_home: Option<Handle>,
}

impl Conn {
    /// The connection task: TLS handshake on `https`, then HTTP.
    async fn run(self, stream: MovableTcp, guard: ConnGuard) {
        let Conn {
            info,
            settings,
            handshake_timeout,
            edge,
            hub_home,
        } = self;
        let peer = info.peer;
        let io = Guarded::new(stream, guard);
        match info.kind {
            ListenerKind::Https => {
                // A connection still in its handshake has no request to
                // finish: draining cuts it instead of waiting out the
                // handshake deadline (a silent client would otherwise
                // hold up every shutdown for `handshake_timeout`).
                // In a hand-over (binary upgrade) the client connected to
                // a listener that lives on: its handshake finishes.
                let sd = edge.shutdown().clone();
                let cut = async move {
                    sd.draining().await;
                    if sd.is_handover() {
                        std::future::pending::<()>().await;
                    }
                };
                let tls = tokio::select! {
                    tls = handshake(io, &edge, peer, handshake_timeout) => tls,
                    _ = cut => None,
                };
                if let Some(mut tls) = tls {
                    if tls.info.is_acme_challenge() {
                        // TLS-ALPN-01 validator: the handshake was the
                        // answer; never route (RFC 8737 §3).
                        tracing::debug!(peer = %peer, sni = ?tls.info.sni, "ACME tls-alpn-01 validation handshake; closing");
                        let close = tokio::io::AsyncWriteExt::shutdown(&mut tls.stream);
                        let _ = tokio::time::timeout(Duration::from_secs(1), close).await;
                        return;
                    }
                    if tls.info.is_h2() {
                        Box::pin(serve_hyper(
                            tls.stream,
                            info,
                            settings,
                            edge.stack().clone(),
                            None,
                        ))
                        .await;
                    } else {
                        serve(tls.stream, info, settings, edge.stack().clone(), hub_home).await;
                    }
                }
            }
            ListenerKind::Http | ListenerKind::Plain => {
                // h2 needs ALPN; cleartext listeners speak HTTP/1.1
                // (h2c prior knowledge is still detected by hyper).
                serve(io, info, settings, edge.stack().clone(), hub_home).await;
            }
        }
    }
}

async fn handshake(
    io: Guarded<MovableTcp>,
    edge: &EdgeInner,
    peer: SocketAddr,
    deadline: Duration,
) -> Option<crate::tls::TlsAccepted<Guarded<MovableTcp>>> {
    match edge.tls().accept(io, deadline).await {
        Ok(s) => Some(s),
        Err(e) => {
            // Routine (scanners, untrusted dev certs, timeouts): debug level.
            tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
            None
        }
    }
}
