//! The Pusher client-frame parser: any bytes parse or fail without a panic,
//! deterministically, and whatever parses round-trips through the encoders
//! (a client event through the hub's relay encoder). The check lives in the
//! library (`check_client_frame`) so the unit tests run the same code.
//!   cargo fuzz run pusher_frames -- -max_total_time=300
#![no_main]

use libfuzzer_sys::fuzz_target;
use portico::pusher::protocol::check_client_frame;

fuzz_target!(|frame: &[u8]| {
    check_client_frame(frame);
});
