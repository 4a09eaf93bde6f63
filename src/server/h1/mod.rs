//! A hand-written HTTP/1.1 path for the commonest requests an edge sees: a
//! keep-alive request routed to a proxy upstream, bodiless (GET, HEAD, …)
//! or with a small `Content-Length` body (a form or JSON POST, up to
//! [`head::MAX_BODY`]), which is read whole before it goes upstream.
//!
//! It parses the head with `httparse`, routes it with the same
//! [`super::service::dispatch`] as the hyper path, rewrites the headers
//! with the same [`crate::proxy::rewrite_request_headers`], and relays the
//! response byte for byte ([`crate::proxy::relay`]) over a pooled bare
//! upstream connection: no per-request tasks, channels or body boxes.
//! A GET or HEAD for a file under a route's document root (a file server,
//! or php-fpm's static files) is answered here too ([`static_file`]).
//!
//! Everything else — a chunked or larger body, `Expect`, a WebSocket
//! upgrade, HTTP/1.0, h2 (ALPN or prior knowledge), a built-in route
//! (health, ACME, redirect, the hubs), a head hyper must refuse — hands the connection, with the bytes
//! already read, to hyper ([`super::server::serve_hyper`]) for the rest of
//! its life. Both paths answer alike; the edge tests run through both.

mod conn;
mod head;
mod rewind;
mod static_file;

pub(crate) use conn::serve;
pub(crate) use head::check_parse;
