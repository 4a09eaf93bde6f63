//! Static files on the hand-written path: a GET or HEAD whose route serves
//! from a document root — a plain file server, or php-fpm's root when the
//! path names a file there (Laravel's `public/build/…`, `favicon.ico`) —
//! is answered here with the same [`crate::files::respond`] the hyper path
//! calls, its head written by hand. Anything else on such a route (a
//! script to run, a redirect, a refusal) goes to hyper with the routing
//! decision already made.

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::files::{Hit, Lookup, ServeOpts};
use crate::http::body::Body;
use crate::proxy::fastcgi::front::{Decision, decide};
use crate::proxy::headers::push_decimal;
use crate::proxy::wire::{push_date, push_line, push_status_line};
use crate::server::stack::Site;

/// The request headers a file response reads (validators, ranges,
/// precompressed siblings).
pub(super) const READ: &[&str] = &[
    "accept-encoding",
    "range",
    "if-range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
];

/// Bytes gathered before a write: a small file goes out with its head in
/// one write.
const GATHER: usize = 64 * 1024;

/// The file `path` (already rewritten for the route) names under `site`,
/// when it is one this path sends; `None` when hyper answers.
pub(super) fn find<'s>(
    site: &'s Site,
    method: &Method,
    path: &str,
) -> Option<(Hit, &'s ServeOpts)> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    match site {
        Site::FastCgi(php) => match decide(&php.root, &php.target.index, path) {
            Decision::Static(hit) => Some((hit, &php.files)),
            _ => None,
        },
        Site::Files(fs) => {
            let index: Vec<&str> = fs.index.iter().map(|s| &**s).collect();
            match fs.root.lookup(path, &index) {
                Lookup::File(hit) if !hit.rel.to_ascii_lowercase().ends_with(".php") => {
                    Some((hit, &fs.opts))
                }
                _ => None,
            }
        }
    }
}

/// What went out: the status, the body bytes written, whether the whole
/// response did, and whether the connection must close after it.
pub(super) struct Sent {
    pub status: StatusCode,
    pub bytes: u64,
    pub complete: bool,
    pub close: bool,
}

/// Writes `resp` as an HTTP/1.1 response (as hyper would: its headers in
/// order, then `date`; `connection: close` when `close`), its body frame
/// by frame. `out` is the connection's scratch buffer.
pub(super) async fn write<I>(
    io: &mut I,
    out: &mut Vec<u8>,
    resp: Response<Body>,
    close: bool,
) -> Sent
where
    I: AsyncWrite + Unpin,
{
    let (parts, mut body) = resp.into_parts();
    let status = parts.status;
    out.clear();
    push_status_line(out, status);
    push_headers(out, &parts.headers);
    let bodiless = status == StatusCode::NOT_MODIFIED
        || status == StatusCode::NO_CONTENT
        || status.is_informational();
    let mut close = close;
    if !bodiless && !parts.headers.contains_key(header::CONTENT_LENGTH) {
        // As hyper frames it: the exact length when the body knows it (an
        // empty error answer), else the end of the connection.
        match http_body::Body::size_hint(&body).exact() {
            Some(n) => {
                out.extend_from_slice(b"content-length: ");
                push_decimal(out, n);
                out.extend_from_slice(b"\r\n");
            }
            None => close = true,
        }
    }
    push_date(out);
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    let mut bytes = 0u64;
    let mut sent = Sent {
        status,
        bytes,
        complete: false,
        close,
    };
    loop {
        let data: Bytes = match body.frame().await {
            None => break,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(d) => d,
                Err(_) => continue,
            },
            // A read failed mid-body: the length promised cannot be kept.
            Some(Err(e)) => {
                tracing::warn!(error = %e, "static file: read failed mid-body");
                let _ = io.write_all(out).await;
                sent.bytes = bytes;
                return sent;
            }
        };
        bytes += data.len() as u64;
        if out.len() + data.len() <= GATHER {
            out.extend_from_slice(&data);
            continue;
        }
        if !out.is_empty() && io.write_all(out).await.is_err() {
            return sent;
        }
        out.clear();
        if io.write_all(&data).await.is_err() {
            return sent;
        }
    }
    if (!out.is_empty() && io.write_all(out).await.is_err()) || io.flush().await.is_err() {
        return sent;
    }
    sent.bytes = bytes;
    sent.complete = true;
    sent
}

/// The response's header lines, in order.
fn push_headers(out: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        push_line(out, name.as_str().as_bytes(), value.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_response_goes_out_as_one_head_and_its_body() {
        let mut resp = Response::new(crate::http::body::full("hello"));
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, "5".parse().unwrap());
        let mut wire = Vec::new();
        let mut out = Vec::new();
        let sent = write(&mut wire, &mut out, resp, true).await;
        assert!(sent.complete && sent.close);
        assert_eq!(sent.bytes, 5);
        let text = String::from_utf8(wire).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 200 OK\r\ncontent-length: 5\r\ndate: "),
            "{text}"
        );
        assert!(
            text.ends_with("\r\nconnection: close\r\n\r\nhello"),
            "{text}"
        );
    }
}

#[cfg(test)]
mod framing {
    use super::*;

    #[tokio::test]
    async fn an_empty_answer_without_a_length_gets_zero_and_a_304_none() {
        let mut wire = Vec::new();
        let mut out = Vec::new();
        let mut resp = Response::new(crate::http::body::empty());
        *resp.status_mut() = StatusCode::PRECONDITION_FAILED;
        let sent = write(&mut wire, &mut out, resp, false).await;
        assert!(sent.complete && !sent.close);
        let text = String::from_utf8(std::mem::take(&mut wire)).unwrap();
        assert!(text.contains("\r\ncontent-length: 0\r\n"), "{text}");

        let mut resp = Response::new(crate::http::body::empty());
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        write(&mut wire, &mut out, resp, false).await;
        let text = String::from_utf8(wire).unwrap();
        assert!(!text.contains("content-length"), "{text}");
    }
}
