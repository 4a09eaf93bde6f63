//! Errors the edge answers itself, and the only place they become status
//! codes and pages.
//!
//! Each error carries its side ([`Side`]): who caused it picks the status
//! code and the log level. Pages are short: a line of text, or a small HTML
//! page for browsers that names the upstream and what to start.

use std::sync::Arc;

use http::{HeaderValue, Response, StatusCode, header};

use super::body::{Body, full};

/// Who caused an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client sent something wrong or too much.
    Downstream,
    /// The upstream refused, reset or was too slow.
    Upstream,
    /// portico itself (a feature not built, a bug).
    Internal,
}

/// What went wrong while serving a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The upstream refused the connection or the connect failed.
    UpstreamUnreachable { reason: Arc<str> },
    /// The upstream did not accept the connection in time.
    UpstreamConnectTimeout,
    /// The upstream accepted but sent no response head in time.
    UpstreamResponseTimeout,
    /// The upstream closed or reset mid-exchange, or sent something invalid.
    UpstreamBroken { reason: Arc<str> },
    /// The request body is over the route's limit.
    BodyTooLarge { limit: u64 },
    /// The request is malformed (no usable host, bad path, ambiguous
    /// framing); the connection closes after the answer.
    BadRequest { reason: &'static str },
    /// The request body's chunked framing is malformed, or it was cut
    /// short; found while it streamed upstream.
    BadBody,
    /// The request target is longer than `server.max_request_target`.
    UriTooLong { limit: usize },
    /// A method the edge never forwards (`CONNECT`).
    MethodNotAllowed { method: &'static str },
    /// A WebSocket upgrade on a route that has them turned off.
    WebSocketDisabled,
    /// A built-in target that is not part of this build yet.
    NotBuilt { what: &'static str },
    /// portico is shutting down.
    Draining,
    /// A request body could not be kept while it was read to its end
    /// (its temporary file failed: disk full, `TMPDIR` not writable).
    BodySpool { reason: Arc<str> },
}

/// An error with its side and the upstream it concerns, if any.
#[derive(Debug, Clone)]
pub struct HttpError {
    pub kind: ErrorKind,
    /// The upstream URL involved, named on the error page.
    pub upstream: Option<Arc<str>>,
}

impl HttpError {
    pub fn new(kind: ErrorKind) -> Self {
        HttpError {
            kind,
            upstream: None,
        }
    }

    pub fn with_upstream(kind: ErrorKind, upstream: Arc<str>) -> Self {
        HttpError {
            kind,
            upstream: Some(upstream),
        }
    }

    /// The status code and side for this error. One exhaustive match.
    pub fn status(&self) -> (StatusCode, Side) {
        match self.kind {
            ErrorKind::UpstreamUnreachable { .. } => (StatusCode::BAD_GATEWAY, Side::Upstream),
            ErrorKind::UpstreamBroken { .. } => (StatusCode::BAD_GATEWAY, Side::Upstream),
            ErrorKind::UpstreamConnectTimeout => (StatusCode::GATEWAY_TIMEOUT, Side::Upstream),
            ErrorKind::UpstreamResponseTimeout => (StatusCode::GATEWAY_TIMEOUT, Side::Upstream),
            ErrorKind::BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, Side::Downstream),
            ErrorKind::BadRequest { .. } => (StatusCode::BAD_REQUEST, Side::Downstream),
            ErrorKind::BadBody => (StatusCode::BAD_REQUEST, Side::Downstream),
            ErrorKind::UriTooLong { .. } => (StatusCode::URI_TOO_LONG, Side::Downstream),
            ErrorKind::MethodNotAllowed { .. } => {
                (StatusCode::METHOD_NOT_ALLOWED, Side::Downstream)
            }
            ErrorKind::WebSocketDisabled => (StatusCode::FORBIDDEN, Side::Downstream),
            ErrorKind::NotBuilt { .. } => (StatusCode::SERVICE_UNAVAILABLE, Side::Internal),
            ErrorKind::Draining => (StatusCode::SERVICE_UNAVAILABLE, Side::Internal),
            ErrorKind::BodySpool { .. } => (StatusCode::INTERNAL_SERVER_ERROR, Side::Internal),
        }
    }

    /// A short stable label for the `cause` of an upstream error in
    /// metrics (`portico_upstream_errors`). One exhaustive match.
    pub fn cause(&self) -> &'static str {
        match self.kind {
            ErrorKind::UpstreamUnreachable { .. } => "unreachable",
            ErrorKind::UpstreamConnectTimeout => "connect_timeout",
            ErrorKind::UpstreamResponseTimeout => "response_timeout",
            ErrorKind::UpstreamBroken { .. } => "broken",
            ErrorKind::BodyTooLarge { .. } => "body_too_large",
            ErrorKind::BadRequest { .. } => "bad_request",
            ErrorKind::BadBody => "bad_body",
            ErrorKind::UriTooLong { .. } => "uri_too_long",
            ErrorKind::MethodNotAllowed { .. } => "method_not_allowed",
            ErrorKind::WebSocketDisabled => "websocket_disabled",
            ErrorKind::NotBuilt { .. } => "not_built",
            ErrorKind::Draining => "draining",
            ErrorKind::BodySpool { .. } => "body_spool",
        }
    }

    /// One sentence for logs and plain-text bodies.
    pub fn message(&self) -> String {
        let up = self.upstream.as_deref().unwrap_or("the upstream");
        match &self.kind {
            ErrorKind::UpstreamUnreachable { reason } => {
                format!("portico could not connect to {up}: {reason}")
            }
            ErrorKind::UpstreamConnectTimeout => format!("portico timed out connecting to {up}"),
            ErrorKind::UpstreamResponseTimeout => format!("{up} did not answer in time"),
            ErrorKind::UpstreamBroken { reason } => {
                format!("{up} broke off the response: {reason}")
            }
            ErrorKind::BodyTooLarge { limit } => {
                format!("request body is over this route's limit of {limit} bytes")
            }
            ErrorKind::BadRequest { reason } => format!("bad request: {reason}"),
            ErrorKind::BadBody => {
                "bad request: the request body's chunked framing is malformed, or it was cut short"
                    .to_string()
            }
            ErrorKind::UriTooLong { limit } => {
                format!("the request target is longer than the limit of {limit} bytes")
            }
            ErrorKind::MethodNotAllowed { method } => {
                format!("{method} requests are not served here")
            }
            ErrorKind::WebSocketDisabled => {
                "WebSocket upgrades are turned off on this route".to_string()
            }
            ErrorKind::NotBuilt { what } => format!("{what} is not built into this portico yet"),
            ErrorKind::Draining => "portico is shutting down; retry shortly".to_string(),
            ErrorKind::BodySpool { reason } => {
                format!("portico could not keep the request body: {reason}")
            }
        }
    }

    /// What the operator should do, for browser pages.
    fn advice(&self) -> Option<String> {
        let up = self.upstream.as_deref().unwrap_or("the upstream");
        match &self.kind {
            ErrorKind::UpstreamUnreachable { .. } | ErrorKind::UpstreamConnectTimeout => Some(format!(
                "Start your app so it listens at {up} — for Laravel, <code>php artisan serve</code> \
                 (port 8000) — or point <code>[upstream] url</code> in portico's config at where it runs."
            )),
            ErrorKind::UpstreamResponseTimeout => Some(
                "Raise <code>response_timeout</code> on the route or in <code>[upstream]</code> if this request is expected to be slow."
                    .to_string(),
            ),
            _ => None,
        }
    }

    /// The response: HTML when the client prefers it, text otherwise.
    pub fn to_response(&self, wants_html: bool) -> Response<Body> {
        let (status, ctype, body) = self.page(wants_html);
        let mut resp = Response::new(full(body));
        *resp.status_mut() = status;
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }

    /// The status, content type and body of [`Self::to_response`]; the
    /// response also carries `cache-control: no-store`.
    pub fn page(&self, wants_html: bool) -> (StatusCode, &'static str, String) {
        let (status, _) = self.status();
        let msg = self.message();
        let (ctype, body) = if wants_html {
            let advice = self
                .advice()
                .map(|a| format!("<p>{a}</p>"))
                .unwrap_or_default();
            let page = format!(
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>{code} {reason}</title>\
                 <style>body{{font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;color:#222}}\
                 code{{background:#f2f2f2;padding:0 .2em}}</style></head><body>\
                 <h1>{code} {reason}</h1><p>{msg}</p>{advice}<hr><small>portico</small></body></html>\n",
                code = status.as_u16(),
                reason = status.canonical_reason().unwrap_or(""),
                msg = html_escape(&msg),
            );
            ("text/html; charset=utf-8", page)
        } else {
            ("text/plain; charset=utf-8", format!("{msg}\n"))
        };
        (status, ctype, body)
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Whether a request's `Accept` header prefers HTML (a browser).
pub fn wants_html(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .is_some_and(|v| accepts_html(v.as_bytes()))
}

/// Whether an `Accept` value names `text/html` (the rule of [`wants_html`],
/// for a head read without a header map).
pub fn accepts_html(accept: &[u8]) -> bool {
    accept.windows(9).any(|w| w == b"text/html")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_status() {
        let cases = [
            (
                ErrorKind::UpstreamUnreachable { reason: "x".into() },
                502,
                Side::Upstream,
            ),
            (
                ErrorKind::UpstreamBroken { reason: "x".into() },
                502,
                Side::Upstream,
            ),
            (ErrorKind::UpstreamConnectTimeout, 504, Side::Upstream),
            (ErrorKind::UpstreamResponseTimeout, 504, Side::Upstream),
            (ErrorKind::BodyTooLarge { limit: 1 }, 413, Side::Downstream),
            (ErrorKind::BadRequest { reason: "x" }, 400, Side::Downstream),
            (ErrorKind::BadBody, 400, Side::Downstream),
            (ErrorKind::UriTooLong { limit: 1 }, 414, Side::Downstream),
            (
                ErrorKind::MethodNotAllowed { method: "CONNECT" },
                405,
                Side::Downstream,
            ),
            (ErrorKind::WebSocketDisabled, 403, Side::Downstream),
            (ErrorKind::NotBuilt { what: "x" }, 503, Side::Internal),
            (ErrorKind::Draining, 503, Side::Internal),
            (
                ErrorKind::BodySpool {
                    reason: Arc::from("x"),
                },
                500,
                Side::Internal,
            ),
        ];
        for (kind, code, side) in cases {
            let (s, sd) = HttpError::new(kind).status();
            assert_eq!((s.as_u16(), sd), (code, side));
        }
    }

    #[test]
    fn page_names_the_upstream() {
        let e = HttpError::with_upstream(
            ErrorKind::UpstreamUnreachable {
                reason: "connection refused".into(),
            },
            "http://127.0.0.1:8000".into(),
        );
        assert!(e.message().contains("http://127.0.0.1:8000"));
        assert!(e.advice().is_some_and(|a| a.contains("php artisan serve")));
    }
}
