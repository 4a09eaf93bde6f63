//! The chunked-body end scanner: one piece, byte by byte or any split,
//! the same body ends at the same byte.
//! The property lives in the library (`portico::fuzzing::chunked`), so
//! `tests/fuzz_corpus.rs` replays `fuzz/corpus/chunked/` through it on stable.
//!   cargo +nightly fuzz run chunked fuzz/corpus/chunked
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portico::fuzzing::chunked(data));
