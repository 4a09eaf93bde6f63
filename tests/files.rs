//! The static-file library on real files in a temp dir: `Root::lookup`
//! (traversal in every encoding, symlinks, dotfiles, index files) and
//! `respond` (validators, 304, ranges, precompressed siblings, HEAD, 405,
//! content types), bodies read back from the stream.
//!
//!   cargo test --release --test files

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode, header};
use http_body_util::BodyExt;
use portico::files::{self, Hit, Lookup, Root, ServeOpts};
use portico::http::body::Body;

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "portico-files-{tag}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A Laravel-shaped app: `public/` is the root, `storage/app/public` is
/// linked as `public/storage`, and secrets sit next to `public/`.
struct App {
    _dir: TempDir,
    base: PathBuf,
    public: PathBuf,
}

fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

fn app() -> App {
    let dir = TempDir::new("app");
    let base = dir.0.clone();
    let public = base.join("public");
    write(&base.join(".env"), b"APP_KEY=secret");
    write(&base.join("secret.txt"), b"outside");
    write(&base.join("storage/app/public/avatar.png"), b"PNG");
    write(&base.join("storage/app/public/.hidden"), b"hidden");
    write(&base.join("storage/app/private.txt"), b"private");
    write(&public.join("index.php"), b"<?php echo 1;");
    write(&public.join("robots.txt"), b"User-agent: *\n");
    write(&public.join("favicon.ico"), b"ICO");
    write(&public.join(".env"), b"dot");
    write(&public.join(".git/config"), b"[core]");
    write(&public.join(".well-known/security.txt"), b"Contact: x");
    write(&public.join(".well-known/.secret"), b"no");
    write(&public.join("docs/index.html"), b"<h1>docs</h1>");
    write(&public.join("empty/readme.md"), b"# no index here");
    write(&public.join("build/assets/app-4f3a.js"), b"console.log(1)");
    write(&public.join("digits.txt"), b"0123456789abcdefghij");
    symlink(base.join("storage/app/public"), public.join("storage")).unwrap();
    symlink(base.join("secret.txt"), public.join("leak.txt")).unwrap();
    symlink("/etc", public.join("etc")).unwrap();
    symlink("robots.txt", public.join("robots-alias.txt")).unwrap();
    symlink(".env", public.join("env-alias")).unwrap();
    symlink(
        base.join("storage/app/private.txt"),
        base.join("storage/app/public/escape.txt"),
    )
    .unwrap();
    App {
        _dir: dir,
        base,
        public,
    }
}

fn root(app: &App) -> Root {
    Root::open(&app.public, &["storage".to_owned()]).unwrap()
}

const INDEX: &[&str] = &["index.html"];

fn hit(root: &Root, path: &str) -> Hit {
    match root.lookup(path, INDEX) {
        Lookup::File(h) => h,
        other => panic!("{path}: expected a file, got {other:?}"),
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    h
}

async fn get(hit: &Hit, pairs: &[(&str, &str)]) -> (Response<()>, Bytes) {
    call(hit, Method::GET, pairs).await
}

async fn call(hit: &Hit, method: Method, pairs: &[(&str, &str)]) -> (Response<()>, Bytes) {
    let resp = files::respond(hit, &method, &headers(pairs), &ServeOpts::default()).await;
    let (parts, body): (_, Body) = resp.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    (Response::from_parts(parts, ()), bytes)
}

fn hv(resp: &Response<()>, name: header::HeaderName) -> &str {
    resp.headers()
        .get(&name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .unwrap()
}

#[test]
fn every_traversal_form_is_forbidden() {
    let app = app();
    let root = root(&app);
    for path in [
        "/../secret.txt",
        "/docs/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/.%2e/secret.txt",
        "/%252e%252e/secret.txt",
        "/docs%2f..%2f..%2fsecret.txt",
        "/docs%2F..%2F..%2Fsecret.txt",
        "/..\\secret.txt",
        "/docs%5c..%5c..%5csecret.txt",
        "/robots.txt%00.png",
        "/%c0%ae%c0%ae/secret.txt",
        "/%c0%af../secret.txt",
        "/%e0%80%ae%e0%80%ae/secret.txt",
        "secret.txt",
    ] {
        assert!(
            matches!(root.lookup(path, INDEX), Lookup::Forbidden),
            "{path}"
        );
    }
}

#[test]
fn link_free_paths_are_opened_by_the_lookup_and_links_take_the_canonical_walk() {
    let app = app();
    let root = root(&app);
    // No link on the way: one open beneath the root, handed on open, and
    // the path it reports is the canonical one.
    for (path, real) in [
        ("/robots.txt", "robots.txt"),
        ("/build/assets/app-4f3a.js", "build/assets/app-4f3a.js"),
        ("/docs/", "docs/index.html"),
    ] {
        let h = hit(&root, path);
        assert!(h.file.is_some(), "{path}: not opened by the lookup");
        assert_eq!(
            h.path,
            std::fs::canonicalize(app.public.join(real)).unwrap(),
            "{path}"
        );
    }
    // A link on the way: the canonicalising lookup decides, and its hit is
    // opened later by path.
    for path in ["/robots-alias.txt", "/storage/avatar.png"] {
        let h = hit(&root, path);
        assert!(
            h.file.is_none(),
            "{path}: a link should take the canonical walk"
        );
    }
    // The same refusals either way.
    for path in ["/env-alias", "/leak.txt", "/etc/passwd", "/.env"] {
        assert!(
            matches!(root.lookup(path, INDEX), Lookup::Forbidden),
            "{path}"
        );
    }
    for path in ["/missing.txt", "/robots.txt/x", "/nowhere/x.js", "/docs"] {
        assert!(
            !matches!(root.lookup(path, INDEX), Lookup::File(_)),
            "{path}"
        );
    }
}

#[test]
fn symlinks_leaving_the_root_are_refused_unless_allowed() {
    let app = app();
    let root = root(&app);
    assert_eq!(root.real_path(), app.public.canonicalize().unwrap());
    for path in ["/leak.txt", "/etc/passwd", "/etc/hostname"] {
        assert!(
            matches!(root.lookup(path, INDEX), Lookup::Forbidden),
            "{path}"
        );
    }
    // The allowed `storage` link is followed, into its target only.
    let avatar = hit(&root, "/storage/avatar.png");
    assert_eq!(avatar.rel, "/storage/avatar.png");
    assert_eq!(
        avatar.path,
        app.base
            .join("storage/app/public/avatar.png")
            .canonicalize()
            .unwrap()
    );
    assert!(matches!(
        root.lookup("/storage/escape.txt", INDEX),
        Lookup::Forbidden
    ));
    assert!(matches!(
        root.lookup("/storage/.hidden", INDEX),
        Lookup::Forbidden
    ));
    assert!(matches!(
        root.lookup("/storage/%2e%2e/private.txt", INDEX),
        Lookup::Forbidden
    ));
    // Without the allowance the same link is refused.
    let strict = Root::open(&app.public, &[]).unwrap();
    assert!(matches!(
        strict.lookup("/storage/avatar.png", INDEX),
        Lookup::Forbidden
    ));
    // A link inside the root is fine; one that lands on a dotfile is not.
    let alias = hit(&root, "/robots-alias.txt");
    assert_eq!(
        alias.path,
        app.public.join("robots.txt").canonicalize().unwrap()
    );
    assert!(matches!(
        root.lookup("/env-alias", INDEX),
        Lookup::Forbidden
    ));
    // `portico check` can suggest the allowance.
    assert_eq!(
        files::escaping_symlinks(&app.public).unwrap(),
        ["etc", "leak.txt", "storage"]
    );
}

#[test]
fn dotfiles_are_refused_except_well_known() {
    let app = app();
    let root = root(&app);
    for path in [
        "/.env",
        "/.git/config",
        "/.git/",
        "/.well-known/.secret",
        "/%2eenv",
    ] {
        assert!(
            matches!(root.lookup(path, INDEX), Lookup::Forbidden),
            "{path}"
        );
    }
    assert_eq!(
        hit(&root, "/.well-known/security.txt").rel,
        "/.well-known/security.txt"
    );
}

#[test]
fn directories_index_files_and_no_listings() {
    let app = app();
    let root = root(&app);
    match root.lookup("/docs", INDEX) {
        Lookup::AddSlash { location } => assert_eq!(location, "/docs/"),
        other => panic!("{other:?}"),
    }
    // Never a protocol-relative redirect.
    match root.lookup("//docs", INDEX) {
        Lookup::AddSlash { location } => assert_eq!(location, "/docs/"),
        other => panic!("{other:?}"),
    }
    assert_eq!(hit(&root, "/docs/").rel, "/docs/index.html");
    assert!(matches!(root.lookup("/empty/", INDEX), Lookup::NotFound));
    assert!(matches!(root.lookup("/empty", INDEX), Lookup::NotFound));
    assert!(matches!(
        root.lookup("/nothing.css", INDEX),
        Lookup::NotFound
    ));
    assert!(matches!(
        root.lookup("/robots.txt/", INDEX),
        Lookup::NotFound
    ));
    assert!(matches!(
        root.lookup("/robots.txt/x", INDEX),
        Lookup::NotFound
    ));
    // The root itself: its index.php when that is the index.
    assert_eq!(root.lookup("/", &["index.php"]).file().rel, "/index.php");
    assert!(matches!(root.lookup("/", INDEX), Lookup::NotFound));
    // Percent-encoded names resolve.
    write(&app.public.join("a b.txt"), b"space");
    assert_eq!(hit(&root, "/a%20b.txt").rel, "/a b.txt");
}

trait FileOf {
    fn file(self) -> Hit;
}

impl FileOf for Lookup {
    fn file(self) -> Hit {
        match self {
            Lookup::File(h) => h,
            other => panic!("expected a file, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn validators_and_not_modified() {
    let app = app();
    let root = root(&app);
    let f = hit(&root, "/robots.txt");
    let (resp, body) = get(&f, &[]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(&body[..], b"User-agent: *\n");
    assert_eq!(hv(&resp, header::CONTENT_LENGTH), "14");
    assert_eq!(hv(&resp, header::ACCEPT_RANGES), "bytes");
    assert_eq!(hv(&resp, header::CACHE_CONTROL), files::REVALIDATE);
    let etag = hv(&resp, header::ETAG).to_owned();
    let lm = hv(&resp, header::LAST_MODIFIED).to_owned();

    let (r, body) = get(&f, &[("if-none-match", &etag)]).await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    assert_eq!(hv(&r, header::ETAG), etag);
    let (r, _) = get(&f, &[("if-none-match", &format!("\"x\", W/{etag}"))]).await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let (r, _) = get(&f, &[("if-none-match", "\"other\"")]).await;
    assert_eq!(r.status(), StatusCode::OK);

    let (r, _) = get(&f, &[("if-modified-since", &lm)]).await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let earlier = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(86_400));
    let (r, _) = get(&f, &[("if-modified-since", &earlier)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let (r, _) = get(&f, &[("if-match", "\"other\"")]).await;
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);

    // A changed file has a new tag.
    std::fs::write(app.public.join("robots.txt"), b"User-agent: bot\n").unwrap();
    let f2 = hit(&root, "/robots.txt");
    let (r, _) = get(&f2, &[("if-none-match", &etag)]).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn ranges() {
    let app = app();
    let root = root(&app);
    let f = hit(&root, "/digits.txt");
    let len = 20;

    let (r, body) = get(&f, &[("range", "bytes=0-3")]).await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(&body[..], b"0123");
    assert_eq!(hv(&r, header::CONTENT_RANGE), format!("bytes 0-3/{len}"));
    assert_eq!(hv(&r, header::CONTENT_LENGTH), "4");

    let (r, body) = get(&f, &[("range", "bytes=-5")]).await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(&body[..], b"fghij");
    assert_eq!(hv(&r, header::CONTENT_RANGE), "bytes 15-19/20");

    let (r, body) = get(&f, &[("range", "bytes=17-")]).await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(&body[..], b"hij");

    let (r, body) = get(&f, &[("range", "bytes=10-12,0-1")]).await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    let ty = hv(&r, header::CONTENT_TYPE);
    let boundary = ty
        .strip_prefix("multipart/byteranges; boundary=")
        .expect(ty)
        .to_owned();
    assert_eq!(hv(&r, header::CONTENT_LENGTH), body.len().to_string());
    let text = std::str::from_utf8(&body).unwrap();
    let want = format!(
        "--{b}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 10-12/20\r\n\r\nabc\
         \r\n--{b}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 0-1/20\r\n\r\n01\
         \r\n--{b}--\r\n",
        b = boundary
    );
    assert_eq!(text, want);

    // Overlapping ranges: the whole file, as nginx does.
    let (r, body) = get(&f, &[("range", "bytes=0-5,3-8")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body.len(), len);

    let (r, body) = get(&f, &[("range", "bytes=20-")]).await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(hv(&r, header::CONTENT_RANGE), "bytes */20");
    assert!(body.is_empty());

    // Malformed: ignored.
    let (r, _) = get(&f, &[("range", "bytes=5-1")]).await;
    assert_eq!(r.status(), StatusCode::OK);

    // If-Range: the current tag or date → 206; anything else → 200.
    let (full, _) = get(&f, &[]).await;
    let etag = hv(&full, header::ETAG).to_owned();
    let lm = hv(&full, header::LAST_MODIFIED).to_owned();
    let (r, body) = get(&f, &[("range", "bytes=0-0"), ("if-range", &etag)]).await;
    assert_eq!(
        (r.status(), &body[..]),
        (StatusCode::PARTIAL_CONTENT, &b"0"[..])
    );
    let (r, _) = get(&f, &[("range", "bytes=0-0"), ("if-range", &lm)]).await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    let (r, body) = get(&f, &[("range", "bytes=0-0"), ("if-range", "\"stale\"")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body.len(), len);
    let old = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(1_000_000));
    let (r, _) = get(&f, &[("range", "bytes=0-0"), ("if-range", &old)]).await;
    assert_eq!(r.status(), StatusCode::OK);

    // HEAD ignores Range and describes the whole file.
    let (r, body) = call(&f, Method::HEAD, &[("range", "bytes=0-0")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(hv(&r, header::CONTENT_LENGTH), "20");
    assert!(body.is_empty());
}

#[tokio::test]
async fn precompressed_siblings() {
    let app = app();
    let root = root(&app);
    let js = app.public.join("build/assets/app-4f3a.js");
    write(&js.with_extension("js.br"), b"BROTLI");
    write(&js.with_extension("js.gz"), b"GZIP!");
    let f = hit(&root, "/build/assets/app-4f3a.js");

    let (r, body) = get(&f, &[("accept-encoding", "gzip, deflate, br, zstd")]).await;
    assert_eq!(&body[..], b"BROTLI");
    assert_eq!(hv(&r, header::CONTENT_ENCODING), "br");
    assert_eq!(hv(&r, header::VARY), "Accept-Encoding");
    assert_eq!(
        hv(&r, header::CONTENT_TYPE),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(hv(&r, header::CONTENT_LENGTH), "6");
    assert_eq!(hv(&r, header::CACHE_CONTROL), files::IMMUTABLE);
    let br_tag = hv(&r, header::ETAG).to_owned();

    let (r, body) = get(&f, &[("accept-encoding", "br;q=0, gzip")]).await;
    assert_eq!(&body[..], b"GZIP!");
    assert_eq!(hv(&r, header::CONTENT_ENCODING), "gzip");
    assert_ne!(hv(&r, header::ETAG), br_tag);

    let (r, body) = get(&f, &[("accept-encoding", "gzip;q=0.5, br;q=0.4")]).await;
    assert_eq!(
        (&body[..], hv(&r, header::CONTENT_ENCODING)),
        (&b"GZIP!"[..], "gzip")
    );

    for ae in ["identity", "br;q=0, gzip;q=0", "*;q=0"] {
        let (r, body) = get(&f, &[("accept-encoding", ae)]).await;
        assert_eq!(&body[..], b"console.log(1)", "{ae}");
        assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(hv(&r, header::VARY), "Accept-Encoding");
    }
    let (r, body) = get(&f, &[]).await;
    assert_eq!(&body[..], b"console.log(1)");
    assert_eq!(hv(&r, header::VARY), "Accept-Encoding");

    // 304 for the variant's own tag.
    let (r, _) = get(&f, &[("accept-encoding", "br"), ("if-none-match", &br_tag)]).await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(hv(&r, header::VARY), "Accept-Encoding");

    // A sibling that is a symlink (here: out of the root) is never used.
    let robots = app.public.join("robots.txt");
    symlink(
        app.base.join("secret.txt"),
        app.public.join("robots.txt.gz"),
    )
    .unwrap();
    let f = hit(&root, "/robots.txt");
    let (r, body) = get(&f, &[("accept-encoding", "gzip")]).await;
    assert_eq!(&body[..], &std::fs::read(robots).unwrap()[..]);
    assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
    assert!(r.headers().get(header::VARY).is_none());
}

#[tokio::test]
async fn head_and_other_methods() {
    let app = app();
    let root = root(&app);
    let f = hit(&root, "/robots.txt");
    let (g, _) = get(&f, &[]).await;
    let (h, body) = call(&f, Method::HEAD, &[]).await;
    assert_eq!(h.status(), StatusCode::OK);
    assert!(body.is_empty());
    for name in [
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::ETAG,
        header::LAST_MODIFIED,
        header::CACHE_CONTROL,
    ] {
        assert_eq!(hv(&h, name.clone()), hv(&g, name));
    }
    for m in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
        let (r, body) = call(&f, m.clone(), &[]).await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{m}");
        assert_eq!(hv(&r, header::ALLOW), "GET, HEAD");
        assert!(body.is_empty());
    }
}

#[tokio::test]
async fn content_types_of_laravel_assets() {
    let app = app();
    let root = root(&app);
    let cases = [
        ("app.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("logo.svg", "image/svg+xml; charset=utf-8"),
        ("inter.woff2", "font/woff2"),
        ("manifest.json", "application/json; charset=utf-8"),
        ("app.js.map", "application/json; charset=utf-8"),
        ("hero.webp", "image/webp"),
        ("favicon.ico", "image/x-icon"),
        ("robots.txt", "text/plain; charset=utf-8"),
        ("page.html", "text/html; charset=utf-8"),
    ];
    for (name, want) in cases {
        write(&app.public.join("build").join(name), b"x");
        let f = hit(&root, &format!("/build/{name}"));
        let (r, _) = get(&f, &[]).await;
        assert_eq!(hv(&r, header::CONTENT_TYPE), want, "{name}");
        assert_eq!(hv(&r, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    }
}

#[tokio::test]
async fn a_large_file_streams_in_chunks() {
    let app = app();
    let root = root(&app);
    let big = app.public.join("big.bin");
    let len: u64 = 256 << 20;
    // Sparse: no disk used, and nothing to read whole.
    std::fs::File::create(&big).unwrap().set_len(len).unwrap();
    let f = hit(&root, "/big.bin");
    let resp = files::respond(&f, &Method::GET, &HeaderMap::new(), &ServeOpts::default()).await;
    assert_eq!(
        resp.headers()[header::CONTENT_LENGTH],
        len.to_string().as_str()
    );
    let mut body = resp.into_body();
    let (mut total, mut frames, mut largest) = (0u64, 0u64, 0usize);
    while let Some(frame) = body.frame().await {
        let data = frame.expect("frame").into_data().expect("data frame");
        largest = largest.max(data.len());
        total += data.len() as u64;
        frames += 1;
        assert!(frames <= len, "bounded");
    }
    assert_eq!(total, len);
    assert!(largest <= files::CHUNK, "a chunk of {largest} bytes");
    assert!(frames >= len / files::CHUNK as u64, "{frames} frames");

    // A range deep in it streams just that part.
    let (r, body) = get(&f, &[("range", "bytes=268434632-268435455")]).await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(body.len(), 824);
}
