//! Writing HTTP/1.1 head lines into a byte buffer: the status line, `date`,
//! header lines. Shared by the relay and the hand-written server path.

use std::time::SystemTime;

use http::StatusCode;
use http::header::HeaderMap;

/// Appends `HTTP/1.1 <code> <reason>` and its line end.
#[inline]
pub(crate) fn push_status_line(out: &mut Vec<u8>, status: StatusCode) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends a `date` line for now (hyper's server adds one to every
/// response that has none).
pub(crate) fn push_date(out: &mut Vec<u8>) {
    push_line(
        out,
        b"date",
        httpdate::fmt_http_date(SystemTime::now()).as_bytes(),
    );
}

/// Appends one `name: value` line. Inlined: it runs for every header of
/// every relayed response, from other modules (callgrind showed the call).
#[inline]
pub(crate) fn push_line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.reserve(name.len() + value.len() + 4);
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends `name: value` lines.
pub(crate) fn write_headers(out: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        push_line(out, name.as_str().as_bytes(), value.as_bytes());
    }
}

/// Whether a header value may be relayed: no control characters but tab
/// (what `http::HeaderValue` accepts).
#[inline]
pub(crate) fn valid_value(v: &[u8]) -> bool {
    v.iter().all(|&b| (b >= 0x20 && b != 0x7f) || b == b'\t')
}
