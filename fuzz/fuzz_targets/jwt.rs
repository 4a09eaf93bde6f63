//! Supabase token verification: any token is refused or verified, and
//! our own signed claims come back unchanged.
//! The property lives in the library (`portico::fuzzing::jwt`), so
//! `tests/fuzz_corpus.rs` replays `fuzz/corpus/jwt/` through it on stable.
//!   cargo +nightly fuzz run jwt fuzz/corpus/jwt
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portico::fuzzing::jwt(data));
