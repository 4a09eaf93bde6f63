//! Static files from a document root (Laravel's `public/`): resolving a
//! request path safely ([`Root::lookup`]) and answering a GET/HEAD for the
//! file found ([`respond`]). Receives the request path and headers from
//! the router or the FastCGI upstream; hands back a [`Lookup`] and a
//! response whose body streams from the file.
//!
//! - `decode` — percent-decoding and the refusals (traversal, encoded
//!   separators, NUL, overlong UTF-8, double encoding) and the dotfile rule.
//! - `root` — canonical root, symlink rules (`allow_symlinks`), index
//!   files, the trailing-slash redirect; never a listing.
//! - `conditional` — `ETag`/`Last-Modified`, 304/412, `If-Range`.
//! - `range` — `Range` → 206 (single or `multipart/byteranges`), 200, 416.
//! - `precompressed` — `.br`/`.gz` siblings by `Accept-Encoding`.
//! - `mime` — `Content-Type`.
//! - `send` — bodies streamed from the file in chunks.
//!
//! Layering: above `http` (the body type), below `proxy`; knows no config.

mod conditional;
mod decode;
mod mime;
mod precompressed;
mod range;
mod root;
mod send;

use std::path::{Path, PathBuf};

use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};

use crate::http::body::{self, Body};
use conditional::{Outcome, Validators};
use precompressed::Coding;
use range::Ranges;

pub use root::{Root, escaping_symlinks};
pub use send::CHUNK;

/// What a request path resolves to under a [`Root`].
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "a lookup lives for one request; boxing the hit would allocate on every one"
)]
pub enum Lookup {
    /// A regular file (for a directory: its index file, when the path
    /// ended in '/').
    File(Hit),
    /// A directory requested without a trailing slash that has an index:
    /// redirect (301) to `location`.
    AddSlash { location: String },
    /// A directory without an index, or nothing there.
    NotFound,
    /// Dotfile, traversal attempt, symlink escaping the root, undecodable
    /// path.
    Forbidden,
}

/// A file found under the root.
#[derive(Debug)]
pub struct Hit {
    /// Canonical path of the file.
    pub path: PathBuf,
    /// The path relative to the root, '/'-separated, starting with '/'
    /// (e.g. "/build/app.js", "/index.php").
    pub rel: String,
    pub meta: std::fs::Metadata,
    /// The file, when the lookup already opened it.
    pub file: Option<std::sync::Arc<std::fs::File>>,
}

/// How files are answered.
#[derive(Debug, Clone)]
pub struct ServeOpts {
    /// Request paths under these prefixes (hashed build output) get
    /// `Cache-Control: public, max-age=31536000, immutable`; every other
    /// file gets `no-cache` (revalidate with the `ETag` each time).
    pub immutable_prefixes: Vec<String>,
    /// Serve `.br`/`.gz` siblings when `Accept-Encoding` allows.
    pub precompressed: bool,
}

impl Default for ServeOpts {
    fn default() -> Self {
        ServeOpts {
            immutable_prefixes: vec!["/build/".to_owned()],
            precompressed: true,
        }
    }
}

/// `Cache-Control` for hashed build assets.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` for every other file.
pub const REVALIDATE: &str = "no-cache";

/// Why a file found by the lookup could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The file went away between the lookup and the answer.
    #[error("{path}: gone before it was sent")]
    Gone { path: PathBuf },
    /// Opening or seeking failed otherwise.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl SendError {
    fn at(path: &Path, source: std::io::Error) -> SendError {
        let path = path.to_owned();
        match source.kind() {
            std::io::ErrorKind::NotFound => SendError::Gone { path },
            _ => SendError::Io { path, source },
        }
    }

    /// The status it answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            SendError::Gone { .. } => StatusCode::NOT_FOUND,
            SendError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The response for a GET/HEAD of `hit` (Content-Type, ETag,
/// Last-Modified, 304, Range/206/416, precompressed .br/.gz siblings +
/// Vary, Cache-Control), body streamed from the file, never read whole.
/// Other methods: 405 with Allow: GET, HEAD.
pub async fn respond(
    hit: &Hit,
    method: &Method,
    headers: &HeaderMap,
    opts: &ServeOpts,
) -> Response<Body> {
    match try_respond(hit, method, headers, opts).await {
        Ok(resp) => resp,
        Err(e) => {
            match &e {
                SendError::Gone { .. } => tracing::debug!(error = %e, "static file"),
                SendError::Io { .. } => tracing::warn!(error = %e, "static file"),
            }
            bare(e.status(), HeaderMap::new())
        }
    }
}

async fn try_respond(
    hit: &Hit,
    method: &Method,
    headers: &HeaderMap,
    opts: &ServeOpts,
) -> Result<Response<Body>, SendError> {
    if method != Method::GET && method != Method::HEAD {
        let mut h = HeaderMap::new();
        h.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Ok(bare(StatusCode::METHOD_NOT_ALLOWED, h));
    }
    let content_type = mime::content_type(Path::new(&hit.rel));

    // The representation: the file, or a precompressed sibling.
    let mut vary = false;
    let mut chosen: Option<(Coding, PathBuf, std::fs::Metadata)> = None;
    if opts.precompressed {
        let siblings = precompressed::siblings(&hit.path);
        vary = !siblings.is_empty();
        let codings: Vec<Coding> = siblings.iter().map(|s| s.0).collect();
        if let Some(c) = precompressed::choose(headers, &codings) {
            chosen = siblings.into_iter().find(|s| s.0 == c);
        }
    }
    let (path, meta, coding) = match &chosen {
        Some((c, p, m)) => (p.as_path(), m, Some(*c)),
        None => (hit.path.as_path(), &hit.meta, None),
    };
    // The file the lookup opened, unless a sibling is sent instead.
    let open = || match (&chosen, &hit.file) {
        (None, Some(file)) => Ok(send::Opened::shared(file.clone())),
        _ => send::Opened::open(path),
    };
    let len = meta.len();
    let v = Validators::of(meta, coding.map(Coding::token));

    let mut h = HeaderMap::new();
    insert(&mut h, header::ETAG, &v.etag);
    if let Some(lm) = v.last_modified() {
        insert(&mut h, header::LAST_MODIFIED, &lm);
    }
    let immutable = opts
        .immutable_prefixes
        .iter()
        .any(|p| hit.rel.starts_with(p.as_str()));
    let cache = if immutable { IMMUTABLE } else { REVALIDATE };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if vary {
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }

    match conditional::evaluate(method, headers, &v) {
        Outcome::Proceed => {}
        Outcome::NotModified => return Ok(bare(StatusCode::NOT_MODIFIED, h)),
        Outcome::Failed => return Ok(bare(StatusCode::PRECONDITION_FAILED, HeaderMap::new())),
    }

    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(c) = coding {
        h.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(c.token()),
        );
    }

    // Ranges apply to GET only (RFC 9110 §14.2); HEAD describes the whole.
    let ranges = match headers.get(header::RANGE) {
        Some(r) if method == Method::GET && conditional::if_range_holds(headers, &v) => {
            r.to_str().map_or(Ranges::Whole, |r| range::parse(r, len))
        }
        _ => Ranges::Whole,
    };
    let head_only = method == Method::HEAD;
    let (status, body) = match ranges {
        Ranges::Whole => {
            insert(&mut h, header::CONTENT_TYPE, &content_type);
            insert(&mut h, header::CONTENT_LENGTH, &len.to_string());
            let body = if head_only {
                body::empty()
            } else {
                open()
                    .and_then(|o| o.whole(len))
                    .map_err(|e| SendError::at(path, e))?
            };
            (StatusCode::OK, body)
        }
        Ranges::Unsatisfiable => {
            insert(&mut h, header::CONTENT_RANGE, &format!("bytes */{len}"));
            h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
            (StatusCode::RANGE_NOT_SATISFIABLE, body::empty())
        }
        Ranges::Parts(parts) if parts.len() == 1 => {
            let r = parts[0];
            insert(&mut h, header::CONTENT_TYPE, &content_type);
            insert(&mut h, header::CONTENT_RANGE, &r.content_range(len));
            insert(&mut h, header::CONTENT_LENGTH, &r.len().to_string());
            let body = open()
                .and_then(|o| o.range(r))
                .map_err(|e| SendError::at(path, e))?;
            (StatusCode::PARTIAL_CONTENT, body)
        }
        Ranges::Parts(parts) => {
            let mp = send::Multipart {
                boundary: send::Multipart::fresh_boundary(),
                content_type: &content_type,
                total: len,
                ranges: &parts,
            };
            let ty = format!("multipart/byteranges; boundary={}", mp.boundary);
            insert(&mut h, header::CONTENT_TYPE, &ty);
            insert(&mut h, header::CONTENT_LENGTH, &mp.body_len().to_string());
            let body = open()
                .and_then(|o| o.multipart(&mp))
                .map_err(|e| SendError::at(path, e))?;
            (StatusCode::PARTIAL_CONTENT, body)
        }
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = h;
    Ok(resp)
}

/// A response with no body.
fn bare(status: StatusCode, headers: HeaderMap) -> Response<Body> {
    let mut resp = Response::new(body::empty());
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

/// Inserts a value built from file names or numbers; one that is not a
/// valid header value (it cannot happen for what we build) is left out.
fn insert(h: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}
