//! The FastCGI record codec: the same records however the bytes are
//! split, every record and PARAMS pair re-encodes to itself, the CGI head
//! parser never panics.
//! The property lives in the library (`portico::fuzzing::fastcgi_records`),
//! so `tests/fuzz_corpus.rs` replays `fuzz/corpus/fastcgi_records/` through
//! it on stable.
//!   cargo +nightly fuzz run fastcgi_records fuzz/corpus/fastcgi_records
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portico::fuzzing::fastcgi_records(data));
