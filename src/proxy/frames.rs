//! Tracks WebSocket frame boundaries in a byte stream without decoding it,
//! so a spliced tunnel can inject a close frame between two frames. Pure.
//!
//! RFC 6455 §5.2: 2 header bytes, then 2 or 8 bytes of extended length, then
//! a 4-byte mask when the MASK bit is set, then the payload. Control frames
//! may be sent between the fragments of a message (§5.4), so any boundary is
//! a safe place for a close frame.

/// Where the tracker is in the current frame.
#[derive(Debug, Clone, Default)]
pub struct FrameTracker {
    header: [u8; 14],
    header_len: usize,
    payload_left: u64,
}

impl FrameTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// True between two frames.
    pub fn at_boundary(&self) -> bool {
        self.header_len == 0 && self.payload_left == 0
    }

    /// Consumes bytes until the end of the current frame or of `data`,
    /// whichever comes first; returns how many bytes were consumed.
    /// From a boundary, it consumes at least one whole frame if `data` has it.
    pub fn advance_to_boundary(&mut self, data: &[u8]) -> usize {
        let mut used = 0;
        loop {
            if self.payload_left > 0 {
                let take = (self.payload_left.min((data.len() - used) as u64)) as usize;
                used += take;
                self.payload_left -= take as u64;
                if self.payload_left == 0 {
                    return used;
                }
                return used; // data exhausted
            }
            if used == data.len() {
                return used;
            }
            self.header[self.header_len] = data[used];
            self.header_len += 1;
            used += 1;
            if let Some(payload) = self.header_complete() {
                self.header_len = 0;
                self.payload_left = payload;
                if payload == 0 {
                    return used;
                }
            }
        }
    }

    /// Consumes all of `data`.
    pub fn advance(&mut self, data: &[u8]) {
        let mut off = 0;
        while off < data.len() {
            off += self.advance_to_boundary(&data[off..]);
        }
    }

    /// When the header bytes so far form a whole header, the payload length.
    fn header_complete(&self) -> Option<u64> {
        let h = &self.header[..self.header_len];
        if h.len() < 2 {
            return None;
        }
        let masked = h[1] & 0x80 != 0;
        let len7 = h[1] & 0x7f;
        let ext = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let need = 2 + ext + if masked { 4 } else { 0 };
        if h.len() < need {
            return None;
        }
        Some(match ext {
            0 => u64::from(len7),
            2 => u64::from(u16::from_be_bytes([h[2], h[3]])),
            _ => u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]),
        })
    }
}

/// A close frame with `code` and `reason` (≤ 123 bytes); masked with `mask`
/// when it goes to a server, unmasked when it goes to a client.
pub fn close_frame(code: u16, reason: &str, mask: Option<[u8; 4]>) -> Vec<u8> {
    let reason = &reason.as_bytes()[..reason.len().min(123)];
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(reason);
    let mut out = vec![0x88, payload.len() as u8];
    if let Some(m) = mask {
        out[1] |= 0x80;
        out.extend_from_slice(&m);
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= m[i % 4];
        }
    }
    out.extend_from_slice(&payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(masked: bool, len: usize) -> Vec<u8> {
        let mut f = vec![0x81];
        let m = if masked { 0x80 } else { 0 };
        if len < 126 {
            f.push(m | len as u8);
        } else if len < 65536 {
            f.push(m | 126);
            f.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            f.push(m | 127);
            f.extend_from_slice(&(len as u64).to_be_bytes());
        }
        if masked {
            f.extend_from_slice(&[1, 2, 3, 4]);
        }
        f.extend(std::iter::repeat_n(b'x', len));
        f
    }

    #[test]
    fn finds_boundaries_across_any_split() {
        let mut stream = Vec::new();
        let mut ends = Vec::new();
        for (m, l) in [
            (false, 0),
            (true, 5),
            (false, 300),
            (true, 70_000),
            (false, 125),
            (true, 126),
        ] {
            stream.extend(frame(m, l));
            ends.push(stream.len());
        }
        for chunk in [1, 2, 3, 7, 64, 1000, stream.len()] {
            let mut t = FrameTracker::new();
            let mut seen = Vec::new();
            let mut pos = 0;
            for c in stream.chunks(chunk) {
                let mut off = 0;
                while off < c.len() {
                    off += t.advance_to_boundary(&c[off..]);
                    if t.at_boundary() {
                        seen.push(pos + off);
                    }
                }
                pos += c.len();
            }
            assert_eq!(seen, ends, "chunk size {chunk}");
        }
    }

    #[test]
    fn close_frames() {
        assert_eq!(close_frame(1001, "", None), vec![0x88, 2, 0x03, 0xe9]);
        let m = close_frame(1000, "", Some([1, 1, 1, 1]));
        assert_eq!(m, vec![0x88, 0x82, 1, 1, 1, 1, 0x03 ^ 1, 0xe8 ^ 1]);
    }
}
