//! The Pusher REST API: signature check on raw queries, and signed calls
//! with fuzzed events bodies through the real handler.
//! The property lives in the library (`portico::fuzzing::pusher_rest`), so
//! `tests/fuzz_corpus.rs` replays `fuzz/corpus/pusher_rest/` through it on stable.
//!   cargo +nightly fuzz run pusher_rest fuzz/corpus/pusher_rest
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portico::fuzzing::pusher_rest(data));
