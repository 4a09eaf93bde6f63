//! One access-log line per request, written when the response body ends (so
//! the byte count and duration are true), under the tracing target `access`.
//! Query strings are logged with their values removed.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};

use crate::http::body::{Body, BoxError};

/// What the log line says about a request; filled in as it is served.
#[derive(Debug)]
pub struct Entry {
    pub method: Method,
    pub path: String,
    pub status: StatusCode,
    pub route: Arc<str>,
    pub target: Arc<str>,
    pub peer: std::net::IpAddr,
    pub listener: &'static str,
    pub started: Instant,
}

/// `/search?q=secret&page=2` → `/search?q=&page=`.
pub fn redact_query(path: &str, query: Option<&str>) -> String {
    match query {
        None => path.to_string(),
        Some(q) => {
            let keys: Vec<&str> = q
                .split('&')
                .map(|kv| kv.split('=').next().unwrap_or(""))
                .collect();
            format!("{path}?{}=", keys.join("=&"))
        }
    }
}

/// A response body that logs the request when it ends or is dropped.
pub struct Logged {
    inner: Body,
    bytes: u64,
    entry: Option<Entry>,
}

impl Logged {
    pub fn wrap(inner: Body, entry: Entry) -> Body {
        use http_body_util::BodyExt;
        Logged {
            inner,
            bytes: 0,
            entry: Some(entry),
        }
        .boxed()
    }

    fn finish(&mut self, complete: bool) {
        if let Some(e) = self.entry.take() {
            e.write(self.bytes, complete);
        }
    }
}

impl Entry {
    /// Writes the line: `bytes` of body sent, `complete` when the body
    /// went out whole.
    pub fn write(self, bytes: u64, complete: bool) {
        tracing::info!(
            target: "access",
            method = %self.method,
            path = %self.path,
            status = self.status.as_u16(),
            bytes,
            ms = self.started.elapsed().as_secs_f64() * 1000.0,
            route = %self.route,
            upstream = %self.target,
            peer = %self.peer,
            listener = self.listener,
            complete,
        );
    }
}

impl HttpBody for Logged {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(d) = f.data_ref() {
                    self.bytes += d.len() as u64;
                }
                if self.inner.is_end_stream() {
                    self.finish(true);
                }
            }
            Poll::Ready(None) => self.finish(true),
            Poll::Ready(Some(Err(_))) => self.finish(false),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let complete = self.inner.is_end_stream();
        self.finish(complete);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_dropped() {
        assert_eq!(redact_query("/a", None), "/a");
        assert_eq!(redact_query("/s", Some("q=secret&page=2")), "/s?q=&page=");
        assert_eq!(redact_query("/s", Some("flag")), "/s?flag=");
    }
}
