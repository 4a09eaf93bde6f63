//! The Pusher client-frame parser: any bytes parse or fail without a panic,
//! deterministically, and whatever parses round-trips through the encoders.
//! The property lives in the library (`portico::fuzzing::pusher_frames`), so
//! `tests/fuzz_corpus.rs` replays `fuzz/corpus/pusher_frames/` through it on stable.
//!   cargo +nightly fuzz run pusher_frames fuzz/corpus/pusher_frames
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portico::fuzzing::pusher_frames(data));
