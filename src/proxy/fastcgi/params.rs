//! The CGI/1.1 environment php-fpm gets: nginx's `fastcgi_params` plus
//! the Laravel block (`SCRIPT_FILENAME = $realpath_root$fastcgi_script_name`,
//! PATH_INFO split at `.php`), and every request header as `HTTP_*`.
//!
//! Owns: which params are sent and their values. Receives: the request
//! head (after `X-Forwarded-*` were set by [`super::super::headers`]) and
//! what the front controller decided ([`Script`]). Hands on: the encoded
//! PARAMS byte stream.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use http::header::{self, HeaderMap};
use http::{Method, Uri, Version};

use super::records::put_pair;

/// The script to run and the rest of the path after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// `/index.php`: relative to the root, starting with `/`.
    pub name: String,
    /// What followed the script in the path (`/foo` of `/index.php/foo`).
    pub path_info: String,
}

/// Who the client is and where it connected.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// The real client (the trusted proxies' claim, else the TCP peer).
    pub remote: IpAddr,
    pub remote_port: u16,
    pub local: SocketAddr,
    pub tls: bool,
}

/// Everything the params are made from.
pub struct Request<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub version: Version,
    pub headers: &'a HeaderMap,
    pub root: &'a Path,
    pub script: &'a Script,
    pub peer: Peer,
    pub content_length: Option<u64>,
}

fn protocol(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// The host the client asked for, without port (`Host`, or the HTTP/2
/// authority).
fn host(r: &Request<'_>) -> Option<String> {
    let raw = match r.uri.authority() {
        Some(a) => a.as_str().to_string(),
        None => r.headers.get(header::HOST)?.to_str().ok()?.to_string(),
    };
    let h = match raw.strip_prefix('[') {
        Some(rest) => format!("[{}]", rest.split(']').next().unwrap_or("")),
        None => raw.rsplit_once(':').map_or(raw.clone(), |(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                h.to_string()
            } else {
                raw.clone()
            }
        }),
    };
    Some(h)
}

/// Whether a request header may become an `HTTP_*` param: names with `_`
/// are dropped (nginx's `underscores_in_headers off`), so `X_Forwarded_For`
/// can never pose as `X-Forwarded-For`; `Proxy` is dropped (httpoxy).
fn passes(name: &str) -> bool {
    !name.contains('_') && name != "proxy"
}

/// Encodes the PARAMS byte stream.
pub fn encode(r: &Request<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(2048);
    let mut p = |k: &str, v: &[u8]| put_pair(&mut out, k.as_bytes(), v);
    let root = r.root.to_string_lossy();
    let root = root.trim_end_matches('/');
    let filename = format!("{root}{}", r.script.name);
    let request_uri = r
        .uri
        .path_and_query()
        .map_or_else(|| r.uri.path(), |pq| pq.as_str());
    let query = r.uri.query().unwrap_or("");
    let document_uri = if r.script.path_info.is_empty() {
        r.script.name.clone()
    } else {
        format!("{}{}", r.script.name, r.script.path_info)
    };
    let server_name = host(r).unwrap_or_else(|| r.peer.local.ip().to_string());
    p("GATEWAY_INTERFACE", b"CGI/1.1");
    p(
        "SERVER_SOFTWARE",
        concat!("portico/", env!("CARGO_PKG_VERSION")).as_bytes(),
    );
    p("SERVER_PROTOCOL", protocol(r.version).as_bytes());
    p("SERVER_NAME", server_name.as_bytes());
    p("SERVER_ADDR", r.peer.local.ip().to_string().as_bytes());
    p("SERVER_PORT", r.peer.local.port().to_string().as_bytes());
    p("REMOTE_ADDR", r.peer.remote.to_string().as_bytes());
    p("REMOTE_PORT", r.peer.remote_port.to_string().as_bytes());
    p(
        "REQUEST_SCHEME",
        if r.peer.tls { b"https" } else { b"http" },
    );
    if r.peer.tls {
        p("HTTPS", b"on");
    }
    p("REQUEST_METHOD", r.method.as_str().as_bytes());
    p("REQUEST_URI", request_uri.as_bytes());
    p("QUERY_STRING", query.as_bytes());
    p("DOCUMENT_ROOT", root.as_bytes());
    p("DOCUMENT_URI", document_uri.as_bytes());
    p("SCRIPT_NAME", r.script.name.as_bytes());
    p("SCRIPT_FILENAME", filename.as_bytes());
    p("PATH_INFO", r.script.path_info.as_bytes());
    if !r.script.path_info.is_empty() {
        p(
            "PATH_TRANSLATED",
            format!("{root}{}", r.script.path_info).as_bytes(),
        );
    }
    p("REDIRECT_STATUS", b"200");
    if let Some(ct) = r.headers.get(header::CONTENT_TYPE) {
        p("CONTENT_TYPE", ct.as_bytes());
    }
    match r.content_length {
        Some(n) => p("CONTENT_LENGTH", n.to_string().as_bytes()),
        None => p("CONTENT_LENGTH", b""),
    }
    let mut saw_host = false;
    for name in r.headers.keys() {
        let n = name.as_str();
        if !passes(n) || n == "content-length" || n == "content-type" {
            continue;
        }
        saw_host |= n == "host";
        let sep: &[u8] = if n == "cookie" { b"; " } else { b", " };
        let mut value = Vec::new();
        for (i, v) in r.headers.get_all(name).iter().enumerate() {
            if i > 0 {
                value.extend_from_slice(sep);
            }
            value.extend_from_slice(v.as_bytes());
        }
        let key: String = "HTTP_"
            .chars()
            .chain(n.chars().map(|c| {
                if c == '-' {
                    '_'
                } else {
                    c.to_ascii_uppercase()
                }
            }))
            .collect();
        p(&key, &value);
    }
    if !saw_host && let Some(a) = r.uri.authority() {
        // HTTP/2 carries the host as `:authority`; PHP reads HTTP_HOST.
        p("HTTP_HOST", a.as_str().as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::records::pairs;
    use super::*;

    fn params(
        uri: &str,
        headers: &[(&str, &str)],
        script: Script,
        tls: bool,
    ) -> Vec<(String, String)> {
        let uri: Uri = uri.parse().unwrap();
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let r = Request {
            method: &Method::POST,
            uri: &uri,
            version: Version::HTTP_11,
            headers: &h,
            root: Path::new("/srv/app/public"),
            script: &script,
            peer: Peer {
                remote: "203.0.113.9".parse().unwrap(),
                remote_port: 5555,
                local: "127.0.0.1:8443".parse().unwrap(),
                tls,
            },
            content_length: Some(3),
        };
        let bytes = encode(&r);
        pairs(&bytes)
            .unwrap()
            .into_iter()
            .map(|(k, v)| {
                (
                    String::from_utf8(k.to_vec()).unwrap(),
                    String::from_utf8(v.to_vec()).unwrap(),
                )
            })
            .collect()
    }

    fn get<'a>(p: &'a [(String, String)], k: &str) -> Option<&'a str> {
        p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    #[test]
    fn laravel_block_params() {
        let s = Script {
            name: "/index.php".into(),
            path_info: "/foo/bar".into(),
        };
        let p = params(
            "/index.php/foo/bar?a=1&b=%20",
            &[
                ("host", "example.test:8443"),
                ("content-type", "text/plain"),
                ("cookie", "a=1"),
                ("cookie", "b=2"),
                ("x-custom", "v"),
                ("x_forwarded_for", "6.6.6.6"),
                ("proxy", "http://evil"),
            ],
            s,
            true,
        );
        let want = [
            ("SCRIPT_FILENAME", "/srv/app/public/index.php"),
            ("DOCUMENT_ROOT", "/srv/app/public"),
            ("SCRIPT_NAME", "/index.php"),
            ("PATH_INFO", "/foo/bar"),
            ("DOCUMENT_URI", "/index.php/foo/bar"),
            ("REQUEST_URI", "/index.php/foo/bar?a=1&b=%20"),
            ("QUERY_STRING", "a=1&b=%20"),
            ("REQUEST_METHOD", "POST"),
            ("CONTENT_TYPE", "text/plain"),
            ("CONTENT_LENGTH", "3"),
            ("HTTPS", "on"),
            ("REQUEST_SCHEME", "https"),
            ("SERVER_NAME", "example.test"),
            ("SERVER_PORT", "8443"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("REMOTE_ADDR", "203.0.113.9"),
            ("REMOTE_PORT", "5555"),
            ("HTTP_HOST", "example.test:8443"),
            ("HTTP_COOKIE", "a=1; b=2"),
            ("HTTP_X_CUSTOM", "v"),
            ("GATEWAY_INTERFACE", "CGI/1.1"),
        ];
        for (k, v) in want {
            assert_eq!(get(&p, k), Some(v), "{k}");
        }
        assert_eq!(get(&p, "HTTP_PROXY"), None);
        assert_eq!(get(&p, "HTTP_X_FORWARDED_FOR"), None);
        assert_eq!(p.iter().filter(|(k, _)| k == "HTTP_COOKIE").count(), 1);
    }

    #[test]
    fn no_https_param_over_plain_http() {
        let s = Script {
            name: "/index.php".into(),
            path_info: String::new(),
        };
        let p = params("/", &[("host", "[::1]:80")], s, false);
        assert_eq!(get(&p, "HTTPS"), None);
        assert_eq!(get(&p, "REQUEST_SCHEME"), Some("http"));
        assert_eq!(get(&p, "SERVER_NAME"), Some("[::1]"));
        assert_eq!(get(&p, "DOCUMENT_URI"), Some("/index.php"));
        assert_eq!(get(&p, "PATH_INFO"), Some(""));
    }
}
