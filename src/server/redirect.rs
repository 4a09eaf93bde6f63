//! The port-80 listener's answer: a 308 to the same host, path and query on
//! https. `/.well-known/acme-challenge/` is kept apart for ACME HTTP-01.

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};

use crate::http::body::{Body, full};

/// The ACME HTTP-01 path prefix (RFC 8555 §8.3).
pub const ACME_CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// A 308 to `https://{host}{:port}{path?query}`; the port is left out when
/// it is 443.
pub fn to_https<B>(req: &Request<B>, host: &str, https_port: u16) -> Response<Body> {
    let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let location = if https_port == 443 {
        format!("https://{host}{pq}")
    } else {
        format!("https://{host}:{https_port}{pq}")
    };
    let mut resp = Response::new(full(format!("moved to {location}\n")));
    *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// The HTTP-01 answer: the key authorization as `text/plain` (RFC 8555 §8.3).
pub fn acme_answer(key_authorization: &str) -> Response<Body> {
    let mut resp = Response::new(full(key_authorization.to_string()));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

/// No challenge pending for this token (or ACME is off): a plain 404.
pub fn acme_not_configured() -> Response<Body> {
    let mut resp = Response::new(full("no ACME challenge is pending on this server\n"));
    *resp.status_mut() = StatusCode::NOT_FOUND;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_path_and_query() {
        let req = Request::builder().uri("/a/b?x=1").body(()).unwrap();
        let r = to_https(&req, "example.com", 443);
        assert_eq!(r.status(), 308);
        assert_eq!(r.headers()["location"], "https://example.com/a/b?x=1");
        let r = to_https(&req, "localhost", 8443);
        assert_eq!(r.headers()["location"], "https://localhost:8443/a/b?x=1");
        let r = to_https(&req, "::1", 8443);
        assert_eq!(r.headers()["location"], "https://[::1]:8443/a/b?x=1");
    }
}
