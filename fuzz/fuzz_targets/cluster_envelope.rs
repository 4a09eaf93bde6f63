//! Cross-node messages: the cluster envelope decoder refuses or decodes
//! any bytes, and a decoded envelope encodes back to the same bytes.
//! The property lives in the library (`portico::fuzzing::cluster_envelope`),
//! so `tests/fuzz_corpus.rs` replays `fuzz/corpus/cluster_envelope/` on stable.
//!   cargo +nightly fuzz run cluster_envelope fuzz/corpus/cluster_envelope
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portico::fuzzing::cluster_envelope(data));
