//! The Phoenix v2 binary frames (kind 3 pushes, kind 4 broadcasts), every
//! input byte a frame byte: decode, re-encode to the very same bytes.
//! The property lives in the library (`portico::fuzzing::phoenix_binary`), so
//! `tests/fuzz_corpus.rs` replays `fuzz/corpus/phoenix_binary/` through it on stable.
//!   cargo +nightly fuzz run phoenix_binary fuzz/corpus/phoenix_binary
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portico::fuzzing::phoenix_binary(data));
