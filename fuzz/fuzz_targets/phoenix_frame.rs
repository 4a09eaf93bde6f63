//! The Phoenix (Supabase Realtime) serializer, text v1/v2 and binary (the
//! first byte picks): decode, re-encode, decode to the same message.
//! The property lives in the library (`portico::fuzzing::phoenix_frame`), so
//! `tests/fuzz_corpus.rs` replays `fuzz/corpus/phoenix_frame/` through it on stable.
//!   cargo +nightly fuzz run phoenix_frame fuzz/corpus/phoenix_frame
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portico::fuzzing::phoenix_frame(data));
