//! The answer of a `wait_for` route while its process is not ready: 503
//! with `Retry-After: 1` and a short body naming the process, at once (a
//! request never hangs on a process that may never come up).

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use crate::http::body::{Body, full};

pub(super) fn not_ready(process: &str) -> Response<Body> {
    let mut r = Response::new(full(format!(
        "503 starting: waiting for process `{process}` to be ready\n"
    )));
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let h = r.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_the_process_and_asks_to_retry() {
        let r = super::not_ready("fpm");
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "1");
    }
}
