//! The tunnel's frame-boundary tracker: any split of the same bytes finds the
//! same boundaries, and it never panics on garbage.
//! The property lives in the library (`portico::fuzzing::ws_frames`), so
//! `tests/fuzz_corpus.rs` replays `fuzz/corpus/ws_frames/` through it on stable.
//!   cargo +nightly fuzz run ws_frames fuzz/corpus/ws_frames
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portico::fuzzing::ws_frames(data));
