//! The hand-written HTTP/1.1 head parser: a head it serves has a valid
//! origin-form target, a small body, one Host, and passes the strict rules.
//! The property lives in the library (`portico::fuzzing::h1_head`), so
//! `tests/fuzz_corpus.rs` replays `fuzz/corpus/h1_head/` through it on stable.
//!   cargo +nightly fuzz run h1_head fuzz/corpus/h1_head
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portico::fuzzing::h1_head(data));
