//! The tunnel's frame-boundary tracker: any split of the same bytes finds the
//! same boundaries, and it never panics on garbage.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portico::proxy::frames::FrameTracker;

fuzz_target!(|input: (Vec<u8>, u8)| {
    let (data, chunk) = input;
    let chunk = usize::from(chunk.max(1));
    let boundaries = |step: usize| {
        let mut t = FrameTracker::new();
        let mut seen = Vec::new();
        let mut pos = 0;
        for c in data.chunks(step) {
            let mut off = 0;
            while off < c.len() {
                off += t.advance_to_boundary(&c[off..]);
                if t.at_boundary() {
                    seen.push(pos + off);
                }
            }
            pos += c.len();
        }
        seen
    };
    assert_eq!(boundaries(chunk), boundaries(data.len().max(1)));
});
