//! Request-head rules the edge enforces itself, before routing: what nginx
//! refuses, portico refuses, and nothing it refuses reaches an upstream.
//! The hand-written HTTP/1.1 path hands every head these rules could
//! refuse to hyper, whose requests are checked here, so both paths answer
//! alike.

use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{Method, Request, Version};

use crate::http::error::{ErrorKind, HttpError};

/// Checks a request head; the error is the answer, after which the
/// connection closes. `both_framings` is what the raw head said (hyper
/// drops `Content-Length` when `Transfer-Encoding` is there too).
pub fn check<B>(req: &Request<B>, max_target: usize, both_framings: bool) -> Result<(), HttpError> {
    let bad = |reason| Err(HttpError::new(ErrorKind::BadRequest { reason }));
    let headers = req.headers();
    // RFC 9112 §6.1: a message with both is a smuggling attempt or a
    // broken client; a proxy must never forward both.
    if both_framings
        || headers.contains_key(TRANSFER_ENCODING) && headers.contains_key(CONTENT_LENGTH)
    {
        return bad("the request has both Content-Length and Transfer-Encoding");
    }
    let hosts = headers.get_all(HOST).iter().count();
    match req.version() {
        // RFC 9112 §3.2: exactly one Host in an HTTP/1.1 request.
        Version::HTTP_11 if hosts != 1 => {
            return bad("an HTTP/1.1 request needs exactly one Host header");
        }
        Version::HTTP_10 | Version::HTTP_09 if hosts > 1 => {
            return bad("the request has more than one Host header");
        }
        // RFC 9113 §8.3.1: `:authority` or `host`.
        Version::HTTP_2 | Version::HTTP_3 if hosts == 0 && req.uri().authority().is_none() => {
            return bad("the request has neither :authority nor host");
        }
        _ => {}
    }
    if req.method() == Method::CONNECT && req.extensions().get::<hyper::ext::Protocol>().is_none() {
        // A tunnel to anywhere: never dialled. Extended CONNECT (RFC 8441,
        // with `:protocol`) is a WebSocket over HTTP/2 and goes on.
        return Err(HttpError::new(ErrorKind::MethodNotAllowed {
            method: "CONNECT",
        }));
    }
    if target_len(req) > max_target {
        return Err(HttpError::new(ErrorKind::UriTooLong { limit: max_target }));
    }
    Ok(())
}

/// The length of the request target as the client sent it.
fn target_len<B>(req: &Request<B>) -> usize {
    let uri = req.uri();
    let pq = uri.path_and_query().map_or(0, |p| p.as_str().len());
    match uri.authority() {
        // Absolute form: scheme "://" authority path.
        Some(a) => uri.scheme_str().map_or(0, |s| s.len() + 3) + a.as_str().len() + pq,
        None => pq,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    fn req(f: impl FnOnce(http::request::Builder) -> http::request::Builder) -> Request<()> {
        f(Request::builder().uri("/x").header(HOST, "a.test"))
            .body(())
            .unwrap()
    }

    fn status(r: &Request<()>) -> Option<u16> {
        check(r, 64, false).err().map(|e| e.status().0.as_u16())
    }

    #[test]
    fn a_plain_request_passes() {
        assert_eq!(status(&req(|b| b)), None);
        assert_eq!(status(&req(|b| b.header(CONTENT_LENGTH, "3"))), None);
        assert_eq!(
            status(&req(|b| b.header(TRANSFER_ENCODING, "chunked"))),
            None
        );
    }

    #[test]
    fn both_framings_are_refused() {
        let r = req(|b| {
            b.header(TRANSFER_ENCODING, "chunked")
                .header(CONTENT_LENGTH, "3")
        });
        assert_eq!(status(&r), Some(400));
        let raw_said_both = req(|b| b.header(TRANSFER_ENCODING, "chunked"));
        assert_eq!(
            check(&raw_said_both, 64, true)
                .unwrap_err()
                .status()
                .0
                .as_u16(),
            400
        );
    }

    #[test]
    fn host_rules_follow_the_version() {
        let none = Request::builder().uri("/x").body(()).unwrap();
        assert_eq!(status(&none), Some(400), "HTTP/1.1 without Host");
        let two = req(|b| b.header(HOST, "b.test"));
        assert_eq!(status(&two), Some(400), "two Host headers");
        let old = Request::builder()
            .version(Version::HTTP_10)
            .uri("/x")
            .body(())
            .unwrap();
        assert_eq!(status(&old), None, "HTTP/1.0 may omit Host");
        let h2 = Request::builder()
            .version(Version::HTTP_2)
            .uri("/x")
            .body(())
            .unwrap();
        assert_eq!(status(&h2), Some(400), "h2 without :authority or host");
        let h2 = Request::builder()
            .version(Version::HTTP_2)
            .uri("https://a.test/x")
            .body(())
            .unwrap();
        assert_eq!(status(&h2), None);
    }

    #[test]
    fn connect_is_never_served() {
        let r = req(|b| b.method(Method::CONNECT).uri("a.test:443"));
        assert_eq!(status(&r), Some(StatusCode::METHOD_NOT_ALLOWED.as_u16()));
    }

    #[test]
    fn long_targets_get_414() {
        let long = format!("/{}", "a".repeat(64));
        assert_eq!(status(&req(|b| b.uri(long.as_str()))), Some(414));
        let ok = format!("/{}", "a".repeat(63));
        assert_eq!(status(&req(|b| b.uri(ok.as_str()))), None);
    }
}
