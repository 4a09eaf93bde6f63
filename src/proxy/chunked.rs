//! Finds where a chunked message body ends (RFC 9112 §7.1) without
//! decoding it: the hand-written HTTP/1.1 path relays chunked bodies byte
//! for byte and only needs to know when the message is over, so the
//! upstream connection can be reused.

/// Where the scanner is in the chunked grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In a chunk-size line's hex digits (`digits` seen so far).
    Size {
        size: u64,
        digits: u8,
    },
    /// In a chunk extension, up to the line's CR.
    Ext {
        size: u64,
    },
    /// After the size line's CR.
    SizeLf {
        size: u64,
    },
    /// Inside chunk data.
    Data {
        left: u64,
    },
    /// After chunk data: CR, then LF.
    DataCr,
    DataLf,
    /// At the start of a trailer line, or of the final CRLF.
    TrailerStart,
    /// Inside a trailer field line.
    Trailer,
    /// After a trailer line's CR.
    TrailerLf,
    /// After the final CR.
    FinalLf,
    Done,
}

/// The body does not follow the chunked grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the upstream sent a malformed chunked body")]
pub(crate) struct Malformed;

/// Tracks a chunked body as its bytes go by.
#[derive(Debug, Clone)]
pub(crate) struct ChunkedEnd {
    state: State,
}

impl Default for ChunkedEnd {
    fn default() -> Self {
        ChunkedEnd {
            state: State::Size { size: 0, digits: 0 },
        }
    }
}

impl ChunkedEnd {
    /// Whether the last chunk and the trailers have been seen.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Scans `bytes` and returns how many of them belong to the body: all
    /// of them, or fewer when the body ends inside `bytes`.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Result<usize, Malformed> {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            self.state = match self.state {
                State::Done => return Ok(i),
                State::Data { left } => {
                    // Skip the chunk data in one step.
                    let avail = (bytes.len() - i) as u64;
                    let take = left.min(avail);
                    i += take as usize;
                    self.state = if take == left {
                        State::DataCr
                    } else {
                        State::Data { left: left - take }
                    };
                    continue;
                }
                State::Size { size, digits } => match hex(b) {
                    Some(d) => {
                        // 16 hex digits already fill a u64.
                        if digits >= 15 {
                            return Err(Malformed);
                        }
                        State::Size {
                            size: size << 4 | u64::from(d),
                            digits: digits + 1,
                        }
                    }
                    None if digits == 0 => return Err(Malformed),
                    None => match b {
                        b'\r' => State::SizeLf { size },
                        b';' | b' ' | b'\t' => State::Ext { size },
                        _ => return Err(Malformed),
                    },
                },
                State::Ext { size } => match b {
                    b'\r' => State::SizeLf { size },
                    b'\n' => return Err(Malformed),
                    _ => State::Ext { size },
                },
                State::SizeLf { size } => match (b, size) {
                    (b'\n', 0) => State::TrailerStart,
                    (b'\n', left) => State::Data { left },
                    _ => return Err(Malformed),
                },
                State::DataCr => match b {
                    b'\r' => State::DataLf,
                    _ => return Err(Malformed),
                },
                State::DataLf => match b {
                    b'\n' => State::Size { size: 0, digits: 0 },
                    _ => return Err(Malformed),
                },
                State::TrailerStart => match b {
                    b'\r' => State::FinalLf,
                    b'\n' => return Err(Malformed),
                    _ => State::Trailer,
                },
                State::Trailer => match b {
                    b'\r' => State::TrailerLf,
                    b'\n' => return Err(Malformed),
                    _ => State::Trailer,
                },
                State::TrailerLf => match b {
                    b'\n' => State::TrailerStart,
                    _ => return Err(Malformed),
                },
                State::FinalLf => match b {
                    b'\n' => State::Done,
                    _ => return Err(Malformed),
                },
            };
            i += 1;
        }
        Ok(i)
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `body` in pieces of `step` bytes; returns the bytes consumed.
    fn scan(body: &[u8], step: usize) -> Result<(usize, bool), Malformed> {
        let mut c = ChunkedEnd::default();
        let mut used = 0;
        for piece in body.chunks(step) {
            let n = c.feed(piece)?;
            used += n;
            if n < piece.len() {
                break;
            }
        }
        Ok((used, c.is_done()))
    }

    #[test]
    fn finds_the_end_in_any_split() {
        let body = b"5\r\nhello\r\n1A;name=v\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n";
        for step in 1..=body.len() {
            assert_eq!(scan(body, step), Ok((body.len(), true)), "step {step}");
        }
    }

    #[test]
    fn stops_at_the_end_and_leaves_what_follows() {
        let mut bytes = b"3\r\nabc\r\n0\r\n\r\n".to_vec();
        let end = bytes.len();
        bytes.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(scan(&bytes, bytes.len()), Ok((end, true)));
    }

    #[test]
    fn trailers_are_part_of_the_body() {
        let body = b"2\r\nhi\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n";
        assert_eq!(scan(body, 3), Ok((body.len(), true)));
    }

    #[test]
    fn an_unfinished_body_is_not_done() {
        assert_eq!(scan(b"5\r\nhel", 2), Ok((6, false)));
        assert_eq!(scan(b"0\r\n", 1), Ok((3, false)));
    }

    #[test]
    fn malformed_bodies_are_refused() {
        for bad in [
            &b"\r\n"[..],
            b"zz\r\n",
            b"5\nhello",
            b"2\r\nhiX",
            b"11111111111111111\r\n",
            b"0\r\nbroken\n",
        ] {
            assert_eq!(scan(bad, 1), Err(Malformed), "{bad:?}");
        }
    }
}
