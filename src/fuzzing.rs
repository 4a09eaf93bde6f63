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
