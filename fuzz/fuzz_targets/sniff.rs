//! The raw-head watch over hyper's reads: never panics, and any split of
//! one stream leaves the same notes.
//! The property lives in the library (`portico::fuzzing::sniff`), so
//! `tests/fuzz_corpus.rs` replays `fuzz/corpus/sniff/` through it on stable.
//!   cargo +nightly fuzz run sniff fuzz/corpus/sniff
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portico::fuzzing::sniff(data));
