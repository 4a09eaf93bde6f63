//! The static-file resolver: any request path gives a file inside the
//! root (or inside an allowed link's target), never a dotfile, never an
//! outside secret; a redirect is always a local path.
//! The property lives in the library (`portico::fuzzing::static_path`), so
//! `tests/fuzz_corpus.rs` replays `fuzz/corpus/static_path/` through it on stable.
//!   cargo +nightly fuzz run static_path fuzz/corpus/static_path
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portico::fuzzing::static_path(data));
