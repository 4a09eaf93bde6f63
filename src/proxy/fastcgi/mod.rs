//! FastCGI to php-fpm: a Laravel app served straight from its `public/`
//! directory, as nginx's official Laravel block and Caddy's `php_fastcgi`
//! do, with only the configured front controller ever run.
//!
//! Parts: [`records`] (the pure record codec, fuzzed), [`params`] (the
//! CGI environment), [`front`] (static file, directory, or the front
//! controller), [`pool`] (kept-alive connections, TCP or unix, bounded),
//! [`exchange`] (one request over one connection, streamed both ways).
//!
//! Receives: a routed request, its route, the [`FastCgi`] runtime built by
//! the edge from a [`FastCgiTarget`]. Hands on: the response, or an
//! [`HttpError`] (502 naming the socket, 504 when no head came in time).

pub(crate) mod exchange;
pub mod front;
pub mod params;
pub mod pool;
pub mod records;
mod spool;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use ipnet::IpNet;
use tokio::sync::oneshot;
use tokio::time::Instant;

use self::exchange::{BodyError, ExchangeError, LogCtx, Upload};
use self::front::Decision;
use self::spool::SpoolError;
use super::headers::{ClientSide, set_forwarded, strip_hop_by_hop};
use super::path::rewrite_path;
use crate::config::{FastCgiTarget, Route};
use crate::files::{Root, ServeOpts};
use crate::http::body::{self, Body};
use crate::http::error::{ErrorKind, HttpError};
use crate::shutdown::Shutdown;

pub use self::pool::Pool;

/// A FastCGI target ready to serve: the config, the opened root, the pool.
pub struct FastCgi {
    pub target: Arc<FastCgiTarget>,
    pub root: Arc<Root>,
    pub pool: Pool,
    pub files: ServeOpts,
    /// Real paths of `downloads`: where `X-Accel-Redirect`/`X-Sendfile`
    /// answers may point.
    pub downloads: Vec<std::path::PathBuf>,
}

/// The client side of the connection a request came in on.
#[derive(Clone, Copy)]
pub struct Client<'a> {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub tls: bool,
    pub trusted_proxies: &'a [IpNet],
}

/// A short plain-text answer (403, 404) or a redirect.
pub fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(body::full(text));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A 301 to the directory with its trailing slash, keeping the query.
pub fn add_slash<B>(req: &Request<B>) -> Response<Body> {
    let loc = match req.uri().query() {
        Some(q) => format!("{}/?{q}", req.uri().path()),
        None => format!("{}/", req.uri().path()),
    };
    let mut r = plain(StatusCode::MOVED_PERMANENTLY, "moved\n");
    if let Ok(v) = HeaderValue::from_str(&loc) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Serves one request routed to php-fpm.
pub async fn serve(
    req: Request<Incoming>,
    route: &Route,
    php: &FastCgi,
    client: Client<'_>,
    shutdown: &Shutdown,
) -> Result<Response<Body>, HttpError> {
    let path = rewrite_path(route, req.uri().path());
    match front::decide(&php.root, &php.target.index, &path) {
        Decision::Static(hit) => {
            Ok(crate::files::respond(&hit, req.method(), req.headers(), &php.files).await)
        }
        Decision::AddSlash(_) => Ok(add_slash(&req)),
        Decision::NotFound => Ok(plain(StatusCode::NOT_FOUND, "not found\n")),
        Decision::Forbidden => Ok(plain(StatusCode::FORBIDDEN, "forbidden\n")),
        Decision::Run(script) => run(req, route, php, script, client, shutdown).await,
    }
}

async fn run(
    req: Request<Incoming>,
    route: &Route,
    php: &FastCgi,
    script: params::Script,
    client: Client<'_>,
    shutdown: &Shutdown,
) -> Result<Response<Body>, HttpError> {
    let t = &php.target;
    let fail = |kind| HttpError::with_upstream(kind, t.url.clone());
    let deadline = Instant::now() + t.response_timeout;
    let (mut parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > t.max_body) {
        return Err(fail(ErrorKind::BodyTooLarge { limit: t.max_body }));
    }
    let has_body = !http_body::Body::is_end_stream(&body) && declared != Some(0);
    let (upload, content_length) = match (has_body, declared) {
        (false, _) => (None, declared),
        (true, Some(n)) => (
            Some(Upload::Stream {
                body,
                limit: t.max_body.min(n),
            }),
            Some(n),
        ),
        (true, None) => {
            // php-fpm needs CONTENT_LENGTH first: read it to its end
            // (memory, then an unlinked temporary file), as nginx does.
            let spooled = spool::spool(body, t.max_body).await.map_err(|e| match e {
                SpoolError::Body(BodyError::TooLarge(limit)) => {
                    fail(ErrorKind::BodyTooLarge { limit })
                }
                SpoolError::Body(BodyError::Broken) => fail(ErrorKind::BadBody),
                SpoolError::Io(e) => fail(ErrorKind::BodySpool {
                    reason: Arc::from(e.to_string()),
                }),
            })?;
            let n = spooled.len();
            (Some(Upload::Spooled(spooled)), Some(n))
        }
    };
    // The app sees the same forwarding headers an HTTP upstream would.
    strip_hop_by_hop(&mut parts.headers);
    // Only portico says whether the app may hand a file over.
    parts.headers.remove("x-sendfile-type");
    parts.headers.remove("x-accel-mapping");
    if !php.downloads.is_empty() {
        let mapping: Vec<String> = php
            .downloads
            .iter()
            .map(|d| format!("{0}={0}", d.display()))
            .collect();
        if let Ok(v) = HeaderValue::from_str(&mapping.join(",")) {
            parts.headers.insert(
                "x-sendfile-type",
                HeaderValue::from_static("X-Accel-Redirect"),
            );
            parts.headers.insert("x-accel-mapping", v);
        }
    }
    let host = parts.headers.get(header::HOST).cloned();
    let side = ClientSide {
        peer: client.peer.ip(),
        tls: client.tls,
        local_port: client.local.port(),
        trusted_proxies: client.trusted_proxies,
    };
    set_forwarded(&mut parts.headers, side, host.as_ref());
    let trusted = client
        .trusted_proxies
        .iter()
        .any(|n| n.contains(&client.peer.ip()));
    let remote = if trusted {
        parts
            .headers
            .get("x-real-ip")
            .and_then(|v| v.to_str().ok()?.trim().parse::<IpAddr>().ok())
            .unwrap_or(client.peer.ip())
    } else {
        client.peer.ip()
    };
    let encoded = params::encode(&params::Request {
        method: &parts.method,
        uri: &parts.uri,
        version: parts.version,
        headers: &parts.headers,
        root: php.root.real_path(),
        script: &script,
        peer: params::Peer {
            remote,
            remote_port: client.peer.port(),
            local: client.local,
            tls: client.tls,
        },
        content_length,
    });
    let log = LogCtx {
        route: route.path.clone(),
        script: script.name.clone(),
        uri: parts.uri.path().to_string(),
        peer: remote,
    };
    let mut upload = upload;
    for attempt in 0..2 {
        let conn = match tokio::time::timeout_at(
            deadline,
            if attempt == 0 {
                futures_util::future::Either::Left(php.pool.get())
            } else {
                futures_util::future::Either::Right(php.pool.get_fresh())
            },
        )
        .await
        {
            Err(_) => return Err(fail(ErrorKind::UpstreamResponseTimeout)),
            Ok(Err(pool::DialError::Timeout)) => {
                return Err(fail(ErrorKind::UpstreamConnectTimeout));
            }
            Ok(Err(pool::DialError::Connect(e))) => {
                return Err(fail(ErrorKind::UpstreamUnreachable {
                    reason: Arc::from(e.to_string()),
                }));
            }
            Ok(Ok(c)) => c,
        };
        let (head_tx, head_rx) = oneshot::channel();
        let aborted = shutdown.aborted_owned();
        let task = exchange::run(
            php.pool.clone(),
            conn,
            encoded.clone(),
            upload.take(),
            log.clone(),
            head_tx,
        );
        let handle = shutdown.spawn(async move {
            tokio::select! {
                _ = task => {}
                _ = aborted => {}
            }
        });
        let head = match tokio::time::timeout_at(deadline, head_rx).await {
            Err(_) => {
                handle.abort();
                return Err(fail(ErrorKind::UpstreamResponseTimeout));
            }
            Ok(Err(_)) => {
                return Err(fail(ErrorKind::UpstreamBroken {
                    reason: Arc::from("the exchange ended without an answer"),
                }));
            }
            Ok(Ok(Err(ExchangeError::Stale))) if attempt == 0 => continue,
            Ok(Ok(Err(e))) => return Err(fail(error_kind(e))),
            Ok(Ok(Ok(head))) => head,
        };
        let mut headers = head.headers;
        let handed = headers
            .remove("x-accel-redirect")
            .or_else(|| headers.remove("x-sendfile"));
        if let Some(file) = handed.filter(|_| !php.downloads.is_empty()) {
            return Ok(download(&file, php, &parts, headers, &log).await);
        }
        let mut resp = Response::new(body::boxed(head.body));
        *resp.status_mut() = head.status;
        *resp.headers_mut() = headers;
        return Ok(resp);
    }
    Err(fail(ErrorKind::UpstreamBroken {
        reason: Arc::from("the connection was closed twice before an answer"),
    }))
}

/// Serves the file an `X-Accel-Redirect`/`X-Sendfile` answer names, if
/// it is a regular file under one of the route's `downloads` directories;
/// anything else is 404 and a log line, never the file. The app's
/// `Content-Type` and `Content-Disposition` are kept.
async fn download(
    file: &HeaderValue,
    php: &FastCgi,
    req: &http::request::Parts,
    app: http::HeaderMap,
    log: &LogCtx,
) -> Response<Body> {
    let named = std::path::PathBuf::from(String::from_utf8_lossy(file.as_bytes()).into_owned());
    let hit = std::fs::canonicalize(&named).ok().and_then(|real| {
        let dir = php.downloads.iter().find(|d| real.starts_with(d))?;
        let meta = std::fs::metadata(&real).ok().filter(|m| m.is_file())?;
        let rel = real.strip_prefix(dir).ok()?.to_string_lossy().into_owned();
        Some(crate::files::Hit {
            path: real,
            rel: format!("/{rel}"),
            meta,
            file: None,
        })
    });
    let Some(hit) = hit else {
        tracing::warn!(
            route = %log.route,
            uri = %log.uri,
            peer = %log.peer,
            file = %named.display(),
            "the app handed over a file outside the route's `downloads`; answered 404"
        );
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let mut resp = crate::files::respond(&hit, &req.method, &req.headers, &php.files).await;
    for name in [header::CONTENT_TYPE, header::CONTENT_DISPOSITION] {
        if let Some(v) = app.get(&name) {
            resp.headers_mut().insert(name, v.clone());
        }
    }
    resp
}

/// The error kind (and so the status) of a failed exchange.
fn error_kind(e: ExchangeError) -> ErrorKind {
    match e {
        ExchangeError::Body(BodyError::TooLarge(limit)) => ErrorKind::BodyTooLarge { limit },
        ExchangeError::Body(BodyError::Broken) => ErrorKind::BadBody,
        e @ (ExchangeError::Stale
        | ExchangeError::Io(_)
        | ExchangeError::Codec(_)
        | ExchangeError::Closed
        | ExchangeError::BadHead
        | ExchangeError::Refused(_)) => ErrorKind::UpstreamBroken {
            reason: Arc::from(e.to_string()),
        },
    }
}
