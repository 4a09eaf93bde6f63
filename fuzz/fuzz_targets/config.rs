//! Config loading never panics: any text is a config or an error that
//! names a key.
//! The property lives in the library (`portico::fuzzing::config`), so
//! `tests/fuzz_corpus.rs` replays `fuzz/corpus/config/` through it on stable.
//!   cargo +nightly fuzz run config fuzz/corpus/config
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portico::fuzzing::config(data));
