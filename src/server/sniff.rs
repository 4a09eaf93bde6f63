//! A watch over the bytes hyper reads on an HTTP/1.1 connection. It finds
//! each request head in the stream (skipping bodies by their framing) and
//! notes the heads [`super::strict`] refuses but hyper hides: one with both
//! `Content-Length` and `Transfer-Encoding` reaches the service with the
//! length already dropped. The service takes one note per HTTP/1.1
//! request, in order ([`Sniffed::next_request`]).
//!
//! It fails open: a head it cannot follow (an upgrade, a malformed body,
//! HTTP/2's preface) turns it off, and hyper's own rules still hold.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use parking_lot::Mutex;
use tokio::io::{AsyncRead, ReadBuf};

use crate::proxy::chunked::ChunkedEnd;

/// A head this long without its end is past hyper's own limit.
const MAX_HEAD: usize = 64 * 1024;
/// Header slots for one request head (hyper's limit is 100).
const MAX_HEADERS: usize = 100;

/// What the watch knows about the connection's request heads.
#[derive(Default)]
pub(crate) struct Sniffed {
    off: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    phase: Phase,
    /// Bytes of a head not yet complete.
    head: Vec<u8>,
    /// Per head seen and not yet taken by the service: both framings?
    notes: VecDeque<bool>,
}

#[derive(Default)]
enum Phase {
    #[default]
    Head,
    Length(u64),
    Chunked(ChunkedEnd),
}

impl Sniffed {
    pub(crate) fn new() -> Arc<Sniffed> {
        Arc::new(Sniffed::default())
    }

    /// For the next HTTP/1.x request the service gets: whether its head
    /// had both `Content-Length` and `Transfer-Encoding`.
    pub(crate) fn next_request(&self) -> bool {
        self.state.lock().notes.pop_front().unwrap_or(false)
    }

    fn stop(&self, st: &mut State) {
        self.off.store(true, Ordering::Relaxed);
        st.head = Vec::new();
        st.phase = Phase::Head;
    }

    /// Follows `bytes`, the next bytes of the stream.
    fn watch(&self, mut bytes: &[u8]) {
        if self.off.load(Ordering::Relaxed) {
            return;
        }
        let mut st = self.state.lock();
        let st = &mut *st;
        // Bounded: each pass consumes bytes or stops.
        while !bytes.is_empty() {
            match &mut st.phase {
                Phase::Length(left) => {
                    let n = (*left).min(bytes.len() as u64);
                    *left -= n;
                    bytes = &bytes[n as usize..];
                    if *left == 0 {
                        st.phase = Phase::Head;
                    }
                }
                Phase::Chunked(c) => match c.feed(bytes) {
                    Ok(n) => {
                        bytes = &bytes[n..];
                        if c.is_done() {
                            st.phase = Phase::Head;
                        }
                    }
                    Err(_) => return self.stop(st),
                },
                Phase::Head => {
                    // Empty lines before a request line are allowed.
                    if st.head.is_empty() {
                        let blank = bytes.iter().take_while(|&&b| b == b'\r' || b == b'\n');
                        bytes = &bytes[blank.count()..];
                        if bytes.is_empty() {
                            return;
                        }
                    }
                    let before = st.head.len();
                    st.head.extend_from_slice(bytes);
                    match head(&st.head) {
                        Head::Partial if st.head.len() < MAX_HEAD => return,
                        Head::Partial | Head::Opaque => return self.stop(st),
                        // Past the limit however it arrived: the same
                        // answer as a head that came in smaller reads.
                        Head::Complete { len, .. } if len > MAX_HEAD => return self.stop(st),
                        Head::Complete { len, both, next } => {
                            st.notes.push_back(both);
                            bytes = &bytes[len - before..];
                            st.head.clear();
                            st.phase = match next {
                                Next::Head => Phase::Head,
                                Next::Length(n) => Phase::Length(n),
                                Next::Chunked => Phase::Chunked(ChunkedEnd::default()),
                                Next::Opaque => return self.stop(st),
                            };
                        }
                    }
                }
            }
        }
    }
}

/// The notes a watch leaves after reading `reads` in order, and whether it
/// turned itself off (for the `sniff` fuzz target: any split of one stream
/// must give the same).
pub(crate) fn notes_of<'a>(reads: impl IntoIterator<Item = &'a [u8]>) -> (Vec<bool>, bool) {
    let s = Sniffed::default();
    for r in reads {
        s.watch(r);
    }
    let notes = s.state.lock().notes.iter().copied().collect();
    (notes, s.off.load(Ordering::Relaxed))
}

enum Head {
    Partial,
    /// Not an HTTP/1.x request head hyper would serve.
    Opaque,
    Complete {
        len: usize,
        both: bool,
        next: Next,
    },
}

/// What follows a head in the stream.
enum Next {
    Head,
    Length(u64),
    Chunked,
    /// An upgrade or a tunnel: no more HTTP/1.1 heads to follow.
    Opaque,
}

fn head(buf: &[u8]) -> Head {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(_) => return Head::Opaque,
    };
    let mut te = None;
    let mut cl = None;
    let mut upgrade = req.method == Some("CONNECT");
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            te = Some(h.value);
        } else if h.name.eq_ignore_ascii_case("content-length") {
            cl = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .or(Some(u64::MAX));
        } else if h.name.eq_ignore_ascii_case("upgrade") {
            upgrade = true;
        }
    }
    let next = match (te, cl) {
        _ if upgrade => Next::Opaque,
        (Some(v), _) if ends_chunked(v) => Next::Chunked,
        // hyper refuses these itself.
        (Some(_), _) | (None, Some(u64::MAX)) => Next::Opaque,
        (None, Some(0) | None) => Next::Head,
        (None, Some(n)) => Next::Length(n),
    };
    Head::Complete {
        len,
        both: te.is_some() && cl.is_some(),
        next,
    }
}

fn ends_chunked(v: &[u8]) -> bool {
    v.rsplit(|&b| b == b',')
        .next()
        .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// The connection's reads, watched.
pub(crate) struct Sniff<I> {
    io: I,
    seen: Arc<Sniffed>,
}

impl<I> Sniff<I> {
    pub(crate) fn new(io: I, seen: Arc<Sniffed>) -> Self {
        Sniff { io, seen }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Sniff<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.seen.watch(&buf.filled()[before..]);
        }
        r
    }
}

crate::io::write_through::write_through!(Sniff);

#[cfg(test)]
mod tests {
    use super::*;

    fn notes(stream: &[&[u8]]) -> Vec<bool> {
        let s = Sniffed::default();
        for part in stream {
            s.watch(part);
        }
        let n = s.state.lock().notes.len();
        (0..n).map(|_| s.next_request()).collect()
    }

    #[test]
    fn heads_are_found_across_bodies_and_reads() {
        let stream: &[&[u8]] = &[
            b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab",
            b"cdGET /b HTTP/1.1\r\nHo",
            b"st: a\r\n\r\nPOST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab",
            b"c\r\n0\r\n\r\n\r\nPOST /d HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"GET /e HTTP/1.1\r\nHost: a\r\n\r\n",
        ];
        assert_eq!(notes(stream), [false, false, false, true, false]);
    }

    #[test]
    fn either_order_and_a_tab_are_caught() {
        let a: &[u8] =
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n";
        assert_eq!(notes(&[a]), [true]);
    }

    #[test]
    fn a_head_past_the_limit_turns_it_off_in_any_split() {
        let mut big = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: ".to_vec();
        big.resize(MAX_HEAD + 10, b'x');
        big.extend_from_slice(b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
        let whole = notes_of([&big[..]]);
        assert_eq!(whole, (Vec::new(), true));
        assert_eq!(notes_of(big.chunks(4096)), whole);
    }

    #[test]
    fn an_upgrade_or_garbage_turns_it_off() {
        let s: &[&[u8]] = &[
            b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        ];
        assert_eq!(notes(s), [false]);
        assert_eq!(
            notes(&[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]),
            Vec::<bool>::new()
        );
    }
}
