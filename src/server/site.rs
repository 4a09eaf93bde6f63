//! Requests for routes that serve from a document root: php-fpm
//! ([`crate::proxy::fastcgi`]) or a plain file server ([`crate::files`]).
//!
//! Owns: turning the route's [`Site`] runtime into a response. Receives: the
//! routed request and its connection. Hands on: the response, or the error
//! the service logs and answers.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use super::ConnInfo;
use super::stack::{FileServer, Site};
use crate::config::Route;
use crate::files::Lookup;
use crate::http::ListenerKind;
use crate::http::body::Body;
use crate::http::error::{ErrorKind, HttpError};
use crate::proxy::fastcgi::{self, Client};
use crate::proxy::rewrite_path;
use crate::shutdown::Shutdown;

/// Serves `req` from `site` (`None`: its root could not be opened).
pub(super) async fn serve(
    req: Request<Incoming>,
    route: &Route,
    site: Option<&Site>,
    conn: &ConnInfo,
    trusted_proxies: &[ipnet::IpNet],
    shutdown: &Shutdown,
) -> Result<Response<Body>, HttpError> {
    match site {
        Some(Site::FastCgi(php)) => {
            let client = Client {
                peer: conn.peer,
                local: conn.local,
                tls: conn.kind == ListenerKind::Https,
                trusted_proxies,
            };
            fastcgi::serve(req, route, php, client, shutdown).await
        }
        Some(Site::Files(files)) => Ok(serve_files(req, route, files).await),
        None => Err(HttpError::new(ErrorKind::NotBuilt {
            what: "this route's document root",
        })),
    }
}

/// A plain file server: files as they are, directories by their index;
/// `.php` files are never handed out as source.
async fn serve_files(req: Request<Incoming>, route: &Route, fs: &FileServer) -> Response<Body> {
    let path = rewrite_path(route, req.uri().path());
    let index: Vec<&str> = fs.index.iter().map(|s| &**s).collect();
    match fs.root.lookup(&path, &index) {
        Lookup::File(hit) if hit.rel.to_ascii_lowercase().ends_with(".php") => {
            fastcgi::plain(StatusCode::NOT_FOUND, "not found\n")
        }
        Lookup::File(hit) => {
            crate::files::respond(&hit, req.method(), req.headers(), &fs.opts).await
        }
        Lookup::AddSlash { .. } => fastcgi::add_slash(&req),
        Lookup::NotFound => fastcgi::plain(StatusCode::NOT_FOUND, "not found\n"),
        Lookup::Forbidden => fastcgi::plain(StatusCode::FORBIDDEN, "forbidden\n"),
    }
}
