//! The fuzz targets' entry points (`fuzz/fuzz_targets/*.rs`), one per
//! target, kept in the library so `tests/fuzz_corpus.rs` replays the
//! committed corpus (`fuzz/corpus/<target>/`) through the very same code on
//! stable Rust. Not an API: hidden from the docs, and free to change.
//!
//! Each entry point takes the fuzzer's raw bytes, never panics on its own,
//! and asserts its target's properties: a panic is a finding. Where a
//! target needs more than one input (a split size, a mode), it reads it
//! from the first byte.
//!
//! Layering: the top of the crate, beside `lib.rs`; it may call anything.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::proxy::chunked::{ChunkedEnd, Malformed};
use crate::proxy::frames::FrameTracker;

/// A target's entry point: the fuzzer's bytes in, a panic on a finding.
pub type Target = fn(&[u8]);

/// Every target, by name: the fuzz crate's `[[bin]]`s and the corpus
/// directories.
pub const TARGETS: &[(&str, Target)] = &[
    ("config", config),
    ("ws_frames", ws_frames),
    ("pusher_frames", pusher_frames),
    ("phoenix_frame", phoenix_frame),
    ("phoenix_binary", phoenix_binary),
    ("h1_head", h1_head),
    ("sniff", sniff),
    ("chunked", chunked),
    ("pusher_rest", pusher_rest),
    ("jwt", jwt),
    ("static_path", static_path),
    ("fastcgi_records", fastcgi_records),
    ("cluster_envelope", cluster_envelope),
];

/// `config`: any text is a config or an error naming a key, never a panic.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = crate::Config::from_str_with_env(text, "fuzz.toml", &|_| None) {
        let _ = e.to_string();
    }
}

/// `ws_frames`: the tunnel's frame-boundary tracker finds the same
/// boundaries in any split of the same bytes (the first byte is the split
/// size), and never panics on garbage.
pub fn ws_frames(data: &[u8]) {
    let Some((&step, data)) = data.split_first() else {
        return;
    };
    let boundaries = |step: usize| {
        let mut t = FrameTracker::new();
        let mut seen = Vec::new();
        let mut pos = 0;
        for c in data.chunks(step) {
            let mut off = 0;
            while off < c.len() {
                off += t.advance_to_boundary(&c[off..]);
                if t.at_boundary() {
                    seen.push(pos + off);
                }
            }
            pos += c.len();
        }
        seen
    };
    let whole = boundaries(data.len().max(1));
    assert_eq!(boundaries(usize::from(step.max(1))), whole, "split {step}");
    assert_eq!(boundaries(1), whole, "byte by byte");
}

/// `pusher_frames`: the Pusher client-frame parser
/// ([`crate::pusher::protocol::check_client_frame`]).
pub fn pusher_frames(data: &[u8]) {
    crate::pusher::protocol::check_client_frame(data);
}

/// `phoenix_frame`: the Phoenix serializer, text (v1, v2) and binary, by
/// the first byte ([`crate::phoenix::codec::check_frame`]).
pub fn phoenix_frame(data: &[u8]) {
    crate::phoenix::codec::check_frame(data);
}

/// `phoenix_binary`: the binary frames alone, every byte of the input a
/// frame byte ([`crate::phoenix::codec::check_binary`]).
pub fn phoenix_binary(data: &[u8]) {
    crate::phoenix::codec::check_binary(&Bytes::copy_from_slice(data));
}

/// `h1_head`: the hand-written HTTP/1.1 head parser
/// ([`crate::server::check_h1_head`]).
pub fn h1_head(data: &[u8]) {
    crate::server::check_h1_head(data);
}

/// `sniff`: the raw-head watch over hyper's reads. Any split of the same
/// stream (the first byte picks one) leaves the same notes, and the same
/// on/off state, as the whole stream in one read and byte by byte.
pub fn sniff(data: &[u8]) {
    let Some((&step, stream)) = data.split_first() else {
        return;
    };
    let whole = crate::server::sniff::notes_of([stream]);
    let split = crate::server::sniff::notes_of(stream.chunks(usize::from(step.max(1))));
    assert_eq!(split, whole, "split {step}");
    let bytes = crate::server::sniff::notes_of(stream.chunks(1));
    assert_eq!(bytes, whole, "byte by byte");
}

/// Feeds `body` to a fresh scanner in pieces of `step` bytes: the bytes
/// that belong to the body and whether it ended, or the error.
fn scan_chunked(body: &[u8], step: usize) -> Result<(usize, bool), Malformed> {
    let mut c = ChunkedEnd::default();
    let mut used = 0;
    for piece in body.chunks(step) {
        let n = c.feed(piece)?;
        assert!(n <= piece.len(), "fed {} bytes, used {n}", piece.len());
        used += n;
        if n < piece.len() {
            assert!(c.is_done(), "stopped short of a piece without an end");
            break;
        }
    }
    Ok((used, c.is_done()))
}

/// `chunked`: the response chunked-body scanner. Fed in one piece, byte by
/// byte, or in pieces of the first byte's size, the same body ends at the
/// same byte (or is refused alike); a body that ended scans again, alone,
/// to its very end; and once done the scanner takes nothing more.
pub fn chunked(data: &[u8]) {
    let Some((&step, body)) = data.split_first() else {
        return;
    };
    let whole = scan_chunked(body, body.len().max(1));
    assert_eq!(scan_chunked(body, 1), whole, "byte by byte");
    assert_eq!(
        scan_chunked(body, usize::from(step.max(1))),
        whole,
        "split {step}"
    );
    if let Ok((used, true)) = whole {
        assert_eq!(scan_chunked(&body[..used], 1), Ok((used, true)));
        let mut c = ChunkedEnd::default();
        assert_eq!(c.feed(&body[..used]), Ok(used));
        assert_eq!(c.feed(b"0\r\n\r\n"), Ok(0), "done takes nothing more");
    }
}

/// `pusher_rest`: the Pusher REST signature check and the events bodies
/// ([`crate::pusher::rest::check_call`]).
pub fn pusher_rest(data: &[u8]) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    crate::pusher::rest::check_call(data, now);
}

/// `jwt`: Supabase token verification ([`crate::phoenix::jwt::check_token`]).
pub fn jwt(data: &[u8]) {
    crate::phoenix::jwt::check_token(data);
}

/// `static_path`: the static-file resolver ([`crate::files::Root::lookup`])
/// on a fixed tree of real files with every kind of trap (an outside
/// secret, links out of the root, an allowed `storage` link with a link out
/// of its own target, dotfiles). Whatever the path, a file it gives is
/// inside the root or inside the allowed link's target, is a regular file,
/// is no dotfile (but `/.well-known/`), and a redirect is a local path.
pub fn static_path(data: &[u8]) {
    let Some(fx) = static_fixture() else {
        return;
    };
    let path = String::from_utf8_lossy(data);
    match fx.root.lookup(&path, &["index.html", "index.php"]) {
        crate::files::Lookup::File(hit) => {
            let inside = hit.path.starts_with(fx.root.real_path())
                || hit.path.starts_with(&fx.allowed_target);
            assert!(inside, "{path:?} gave {}", hit.path.display());
            assert!(hit.meta.is_file(), "{path:?}: not a regular file");
            assert!(hit.rel.starts_with('/'), "{path:?}: rel {:?}", hit.rel);
            let hidden = hit
                .rel
                .split('/')
                .filter(|s| !s.is_empty())
                .enumerate()
                .any(|(i, s)| s.starts_with('.') && !(i == 0 && s == ".well-known"));
            assert!(!hidden, "{path:?}: a dotfile, {:?}", hit.rel);
            let real_hidden = hit
                .path
                .strip_prefix(fx.root.real_path())
                .ok()
                .is_some_and(|r| {
                    r.iter().enumerate().any(|(i, c)| {
                        let c = c.to_string_lossy();
                        c.starts_with('.') && !(i == 0 && c == ".well-known")
                    })
                });
            assert!(!real_hidden, "{path:?}: a dotfile, {}", hit.path.display());
        }
        crate::files::Lookup::AddSlash { location } => {
            assert!(location.starts_with('/'), "{path:?} → {location:?}");
            assert!(!location.starts_with("//"), "{path:?} → {location:?}");
            assert!(location.ends_with('/'), "{path:?} → {location:?}");
            assert!(
                !location.contains(['\\', '?', '#', '\0']),
                "{path:?} → {location:?}"
            );
        }
        crate::files::Lookup::NotFound | crate::files::Lookup::Forbidden => {}
    }
}

/// The tree `static_path` resolves against, made once per process under
/// the temp dir: `<base>/public` is the root.
struct StaticFixture {
    root: crate::files::Root,
    allowed_target: std::path::PathBuf,
}

fn static_fixture() -> Option<&'static StaticFixture> {
    static FIXTURE: std::sync::OnceLock<Option<StaticFixture>> = std::sync::OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            remove_stale_fixtures();
            let base = std::env::temp_dir().join(format!(
                "{STATIC_FIXTURE}{}-{:08x}",
                std::process::id(),
                rand::random::<u32>()
            ));
            build_static_fixture(&base).ok()
        })
        .as_ref()
}

/// The prefix of `static_path`'s fixture directories; the creating
/// process's id follows.
const STATIC_FIXTURE: &str = "portico-fuzz-static-";

/// Removes the fixture directories of processes that have exited (a
/// process cannot remove its own at exit), so runs leave at most their own.
fn remove_stale_fixtures() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(STATIC_FIXTURE)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().filter(|p| p.parse::<u32>().is_ok()) else {
            continue;
        };
        if !std::path::Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn build_static_fixture(base: &std::path::Path) -> std::io::Result<StaticFixture> {
    use std::os::unix::fs::symlink;
    let public = base.join("public");
    let target = base.join("storage/app/public");
    for d in [
        public.join(".well-known"),
        public.join(".git"),
        public.join("docs"),
        public.join("build/assets"),
        public.join("empty"),
        target.clone(),
    ] {
        std::fs::create_dir_all(d)?;
    }
    for (f, body) in [
        (base.join("secret.txt"), "secret"),
        (base.join(".env"), "APP_KEY=x"),
        (base.join("storage/app/private.txt"), "private"),
        (target.join("avatar.png"), "png"),
        (target.join(".hidden"), "hidden"),
        (public.join("index.php"), "<?php"),
        (public.join("a.txt"), "a"),
        (public.join(".env"), "dot"),
        (public.join(".git/config"), "git"),
        (public.join(".well-known/security.txt"), "wk"),
        (public.join(".well-known/.secret"), "wk-dot"),
        (public.join("docs/index.html"), "docs"),
        (public.join("build/assets/app.js"), "js"),
    ] {
        std::fs::write(f, body)?;
    }
    symlink(&target, public.join("storage"))?;
    symlink(base.join("secret.txt"), public.join("leak.txt"))?;
    symlink(base, public.join("up"))?;
    symlink("/etc", public.join("etc"))?;
    symlink("a.txt", public.join("inner.txt"))?;
    symlink(".env", public.join("env-alias"))?;
    symlink(
        base.join("storage/app/private.txt"),
        target.join("escape.txt"),
    )?;
    symlink(base.join("storage/app"), target.join("parent"))?;
    let root = crate::files::Root::open(&public, &["storage".to_owned()])?;
    let allowed_target = std::fs::canonicalize(&target)?;
    Ok(StaticFixture {
        root,
        allowed_target,
    })
}
/// Decodes a FastCGI record stream fed in pieces of `step` bytes: the
/// records, then the error if one came.
fn fastcgi_stream(
    data: &[u8],
    step: usize,
) -> (
    Vec<crate::proxy::fastcgi::records::Record>,
    Option<crate::proxy::fastcgi::records::CodecError>,
) {
    use crate::proxy::fastcgi::records::decode;
    let mut buf = bytes::BytesMut::new();
    let mut out = Vec::new();
    for piece in data.chunks(step.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match decode(&mut buf) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

/// `fastcgi_records`: the record decoder finds the same records and the
/// same error however the bytes are split (the first byte picks the
/// piece size); every record re-encodes to itself; PARAMS pairs and
/// END_REQUEST bodies round-trip; STDOUT goes through the CGI head parser
/// without a panic.
pub fn fastcgi_records(data: &[u8]) {
    use crate::proxy::fastcgi::records::{self, Record};
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let whole = fastcgi_stream(data, data.len().max(1));
    let split = fastcgi_stream(data, usize::from(mode % 17) + 1);
    assert_eq!(
        whole,
        split,
        "split at {} changed the records",
        mode % 17 + 1
    );
    let mut stdout = bytes::BytesMut::new();
    for r in &whole.0 {
        let mut enc = bytes::BytesMut::new();
        if r.content.is_empty() {
            records::end_stream(&mut enc, r.kind, r.request_id);
        } else {
            records::put_stream(&mut enc, r.kind, r.request_id, &r.content);
        }
        assert_eq!(enc.len() % 8, 0, "records are padded to 8 bytes");
        let again: Vec<Record> = fastcgi_stream(&enc, enc.len()).0;
        assert_eq!(again, vec![r.clone()], "record round trip");
        if r.kind == records::PARAMS
            && let Ok(pairs) = records::pairs(&r.content)
        {
            let mut enc = Vec::new();
            for (k, v) in &pairs {
                records::put_pair(&mut enc, k, v);
            }
            assert_eq!(
                records::pairs(&enc).as_ref(),
                Ok(&pairs),
                "pairs round trip"
            );
        }
        if r.kind == records::END_REQUEST
            && let Ok(end) = records::end_request(&r.content)
        {
            let mut enc = bytes::BytesMut::new();
            records::put_end_request(&mut enc, r.request_id, end);
            let back = fastcgi_stream(&enc, enc.len()).0;
            assert_eq!(records::end_request(&back[0].content), Ok(end));
        }
        if r.kind == records::STDOUT {
            stdout.extend_from_slice(&r.content);
            let _ = crate::proxy::fastcgi::exchange::parse_head(&stdout);
        }
    }
}

/// `cluster_envelope`: the decoder of cross-node messages
/// ([`crate::cluster::envelope::decode`]) refuses or decodes any bytes,
/// and what it decodes encodes back to the very same bytes.
pub fn cluster_envelope(data: &[u8]) {
    use crate::cluster::envelope;
    let buf = Bytes::copy_from_slice(data);
    let Ok(e) = envelope::decode(&buf) else {
        return;
    };
    let again = envelope::encode(e.node, e.seq, e.app, &envelope::original(&e))
        .expect("a decoded envelope encodes");
    assert_eq!(again, buf, "decode → encode is not the identity");
}
