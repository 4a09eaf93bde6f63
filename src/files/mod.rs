//! Static files from a document root: path resolution that never leaves
//! the root, and the response for a file.
//!
//! PLACEHOLDER written on the `fcgi` branch with the agreed signatures; the
//! static-file engineer's module replaces it at merge. It is simple but
//! correct: decode once, refuse traversal, dotfiles (except
//! `/.well-known/`), encoded separators, backslashes, NUL and invalid
//! UTF-8; canonicalise and require the result under the root (or under an
//! allowed symlink); answer GET/HEAD with the whole file, streamed.
//!
//! Owns: [`Root`], [`Lookup`], [`respond`]. Receives: a request path and
//! headers. Hands on: an `http::Response` with a streamed body.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::TryStreamExt;
use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};

use crate::http::body::{self, Body};

/// A canonicalised document root and the symlinks allowed to leave it.
#[derive(Debug)]
pub struct Root {
    real: PathBuf,
    /// (name directly under the root, canonical target) of allowed links.
    allowed: Vec<(String, PathBuf)>,
}

/// What a request path names under a [`Root`].
#[derive(Debug)]
pub enum Lookup {
    /// A regular file (for a directory: its index file, when the path ended in '/').
    File(Hit),
    /// A directory requested without a trailing slash that has an index: redirect (301) to `location`.
    AddSlash { location: String },
    /// A directory without an index, or nothing there.
    NotFound,
    /// Dotfile, traversal attempt, symlink escaping the root, undecodable path.
    Forbidden,
}

/// A file found under the root.
#[derive(Debug)]
pub struct Hit {
    /// Canonical path of the file.
    pub path: PathBuf,
    /// The path relative to the root, '/'-separated, starting with '/'.
    pub rel: String,
    pub meta: std::fs::Metadata,
}

/// How files are answered.
#[derive(Debug, Clone)]
pub struct ServeOpts {
    /// Path prefixes (relative to the root) whose files are content-hashed
    /// build output: cached for a year, `immutable`.
    pub immutable_prefixes: Vec<String>,
    /// Serve `.br`/`.gz` siblings when the client accepts them.
    pub precompressed: bool,
}

impl Default for ServeOpts {
    fn default() -> Self {
        ServeOpts {
            immutable_prefixes: vec!["/build/".to_string()],
            precompressed: true,
        }
    }
}

impl Root {
    /// `dir` must exist and be a directory; it is canonicalised once (realpath).
    /// `allow_symlinks`: names of entries directly under the root whose
    /// symlink may point outside the root.
    pub fn open(dir: &Path, allow_symlinks: &[String]) -> std::io::Result<Root> {
        let real = std::fs::canonicalize(dir)?;
        if !std::fs::metadata(&real)?.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                format!("{} is not a directory", dir.display()),
            ));
        }
        let allowed = allow_symlinks
            .iter()
            .filter_map(|name| {
                let link = real.join(name);
                let is_link =
                    std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink());
                let target = std::fs::canonicalize(&link).ok()?;
                is_link.then(|| (name.clone(), target))
            })
            .collect();
        Ok(Root { real, allowed })
    }

    /// The real (canonical) path of the root (for SCRIPT_FILENAME / DOCUMENT_ROOT).
    pub fn real_path(&self) -> &Path {
        &self.real
    }

    /// Resolves a request path (still percent-encoded, no query string)
    /// against the root; `index` names are tried for a directory.
    pub fn lookup(&self, path: &str, index: &[&str]) -> Lookup {
        let Some(segments) = decode_segments(path) else {
            return Lookup::Forbidden;
        };
        let mut candidate = self.real.clone();
        for s in &segments {
            candidate.push(s);
        }
        let rel = format!("/{}", segments.join("/"));
        let real = match self.inside(&candidate, segments.first().map(String::as_str)) {
            Ok(r) => r,
            Err(Miss::NotFound) => return Lookup::NotFound,
            Err(Miss::Forbidden) => return Lookup::Forbidden,
        };
        let Ok(meta) = std::fs::metadata(&real) else {
            return Lookup::NotFound;
        };
        if meta.is_file() {
            if path.ends_with('/') {
                return Lookup::NotFound;
            }
            return Lookup::File(Hit {
                path: real,
                rel,
                meta,
            });
        }
        if !meta.is_dir() {
            return Lookup::NotFound;
        }
        for name in index {
            let file = candidate.join(name);
            let Ok(real) = self.inside(&file, segments.first().map(String::as_str)) else {
                continue;
            };
            let Ok(meta) = std::fs::metadata(&real) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            if !path.ends_with('/') {
                return Lookup::AddSlash {
                    location: format!("{path}/"),
                };
            }
            let rel = if rel == "/" {
                format!("/{name}")
            } else {
                format!("{rel}/{name}")
            };
            return Lookup::File(Hit {
                path: real,
                rel,
                meta,
            });
        }
        Lookup::NotFound
    }

    /// The canonical path of `candidate`, if it stays under the root (or
    /// under the allowed link its first segment names).
    fn inside(&self, candidate: &Path, first: Option<&str>) -> Result<PathBuf, Miss> {
        let real = match std::fs::canonicalize(candidate) {
            Ok(r) => r,
            Err(_) => return Err(Miss::NotFound),
        };
        if real.starts_with(&self.real) {
            return Ok(real);
        }
        let allowed = self
            .allowed
            .iter()
            .any(|(name, target)| Some(name.as_str()) == first && real.starts_with(target));
        if allowed {
            Ok(real)
        } else {
            Err(Miss::Forbidden)
        }
    }
}

/// Why a candidate path is not served.
enum Miss {
    NotFound,
    Forbidden,
}

/// The decoded path segments, or `None` for anything that must not be
/// looked up: `.`/`..`, dotfiles (except `.well-known`), encoded or
/// double-encoded separators, backslashes, NUL, invalid UTF-8.
fn decode_segments(path: &str) -> Option<Vec<String>> {
    if !path.starts_with('/') {
        return None;
    }
    let mut out = Vec::new();
    for raw in path.split('/').filter(|s| !s.is_empty()) {
        let lower = raw.to_ascii_lowercase();
        if lower.contains("%2f") || lower.contains("%5c") || lower.contains("%25") {
            return None;
        }
        let seg = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .ok()?
            .into_owned();
        if seg.contains(['\\', '\0', '/']) || seg.starts_with('.') && seg != ".well-known" {
            return None;
        }
        out.push(seg);
    }
    Some(out)
}

fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "pdf" => "application/pdf",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// The response for a GET/HEAD of `hit`; other methods get 405 with
/// `Allow: GET, HEAD`. The body is streamed from the file.
pub async fn respond(
    hit: &Hit,
    method: &Method,
    _headers: &http::HeaderMap,
    opts: &ServeOpts,
) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        let mut r = Response::new(body::empty());
        *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let file = match tokio::fs::File::open(&hit.path).await {
        Ok(f) => f,
        Err(_) => {
            let mut r = Response::new(body::empty());
            *r.status_mut() = StatusCode::NOT_FOUND;
            return r;
        }
    };
    let body: Body = if method == Method::HEAD {
        body::empty()
    } else {
        let stream = tokio_util::io::ReaderStream::new(file)
            .map_ok(|b: Bytes| http_body::Frame::data(b))
            .map_err(|e| Box::new(e) as body::BoxError);
        BodyExt::boxed(StreamBody::new(stream))
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&hit.path)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(hit.meta.len()));
    if let Ok(m) = hit.meta.modified()
        && let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(m))
    {
        h.insert(header::LAST_MODIFIED, v);
    }
    if opts
        .immutable_prefixes
        .iter()
        .any(|p| hit.rel.starts_with(p.as_str()))
    {
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_refuse_what_must_not_be_looked_up() {
        assert_eq!(
            decode_segments("/a/b%20c.txt"),
            Some(vec!["a".into(), "b c.txt".into()])
        );
        assert!(decode_segments("/.well-known/x").is_some());
        for bad in [
            "/../etc/passwd",
            "/a/%2e%2e/x",
            "/a%2fb",
            "/a%252fb",
            "/a\\b",
            "/a%5cb",
            "/a%00b",
            "/.env",
            "/x/.git/config",
            "/%c0%af",
            "relative",
        ] {
            assert_eq!(decode_segments(bad), None, "{bad}");
        }
    }
}
