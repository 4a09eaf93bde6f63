//! Response bodies read from a file as they are sent, in chunks of at
//! most [`CHUNK`] bytes: the whole file, one range, or several ranges as a
//! `multipart/byteranges` body. Nothing is ever read whole into memory.
//!
//! Reads are positional (`pread`), so the parts of a multipart body share
//! one descriptor. A body of at most [`INLINE`] bytes is read at once on
//! the connection's own thread, as nginx reads (a few microseconds for a
//! file in the page cache: build assets, favicons); larger bodies are read
//! chunk by chunk on tokio's blocking pool, so a slow disk never stalls
//! the other connections of the event loop.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http_body_util::StreamBody;
use hyper::body::Frame;

use super::range::ByteRange;
use crate::http::body::{self, Body, BoxError};

/// How much of the file one body chunk holds at most.
pub const CHUNK: usize = 256 * 1024;
/// Bodies up to this size are read at once, inline.
pub(crate) const INLINE: u64 = 64 * 1024;

/// An open file to send from.
pub(crate) struct Opened {
    file: Arc<File>,
}

/// One piece of a body: bytes already built, or a span of the file.
enum Segment {
    Bytes(Bytes),
    File { start: u64, len: u64 },
}

impl Opened {
    pub(crate) fn open(path: &Path) -> io::Result<Opened> {
        Ok(Opened {
            file: Arc::new(File::open(path)?),
        })
    }

    /// A file the lookup already opened.
    pub(crate) fn shared(file: Arc<File>) -> Opened {
        Opened { file }
    }

    /// `len` bytes from the start.
    pub(crate) fn whole(self, len: u64) -> io::Result<Body> {
        if len == 0 {
            return Ok(body::empty());
        }
        self.range(ByteRange {
            start: 0,
            end: len - 1,
        })
    }

    /// The bytes of `r`.
    pub(crate) fn range(self, r: ByteRange) -> io::Result<Body> {
        if r.len() <= INLINE {
            return Ok(body::full(read_at(&self.file, r.start, r.len())?));
        }
        Ok(stream(
            self.file,
            VecDeque::from([Segment::File {
                start: r.start,
                len: r.len(),
            }]),
        ))
    }

    /// A `multipart/byteranges` body of `ranges` (RFC 9110 §14.6), each
    /// part with its own `Content-Type` and `Content-Range`.
    pub(crate) fn multipart(self, parts: &Multipart<'_>) -> io::Result<Body> {
        let mut segments = VecDeque::with_capacity(parts.ranges.len() * 2 + 1);
        for (i, r) in parts.ranges.iter().enumerate() {
            let head = parts.part_head(i == 0, r);
            segments.push_back(Segment::Bytes(Bytes::from(head)));
            segments.push_back(Segment::File {
                start: r.start,
                len: r.len(),
            });
        }
        segments.push_back(Segment::Bytes(Bytes::from(parts.tail())));
        Ok(stream(self.file, segments))
    }
}

/// Exactly `len` bytes at `start` (a file cut short under us is an
/// error: the length was promised in `Content-Length`).
fn read_at(file: &File, start: u64, len: u64) -> io::Result<Bytes> {
    let mut buf = BytesMut::zeroed(len as usize);
    file.read_exact_at(&mut buf, start)?;
    Ok(buf.freeze())
}

/// The body of `segments`, file spans read in chunks on the blocking pool.
fn stream(file: Arc<File>, segments: VecDeque<Segment>) -> Body {
    let frames = futures_util::stream::unfold(Some((file, segments)), |state| async move {
        let (file, mut segments) = state?;
        let chunk = match segments.pop_front()? {
            Segment::Bytes(b) => Ok(b),
            Segment::File { start, len } => {
                let n = len.min(CHUNK as u64);
                if len > n {
                    segments.push_front(Segment::File {
                        start: start + n,
                        len: len - n,
                    });
                }
                let f = file.clone();
                tokio::task::spawn_blocking(move || read_at(&f, start, n))
                    .await
                    .unwrap_or_else(|e| Err(io::Error::other(e)))
            }
        };
        Some(match chunk {
            Ok(b) => (Ok(Frame::data(b)), Some((file, segments))),
            // The error ends the body; nothing follows it.
            Err(e) => (Err(BoxError::from(e)), None),
        })
    });
    body::boxed(StreamBody::new(frames))
}

/// The framing of a `multipart/byteranges` body.
pub(crate) struct Multipart<'a> {
    pub(crate) boundary: String,
    pub(crate) content_type: &'a str,
    pub(crate) total: u64,
    pub(crate) ranges: &'a [ByteRange],
}

impl Multipart<'_> {
    /// The boundary for a fresh response.
    pub(crate) fn fresh_boundary() -> String {
        format!(
            "{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        )
    }

    fn part_head(&self, first: bool, r: &ByteRange) -> String {
        format!(
            "{}--{}\r\nContent-Type: {}\r\nContent-Range: {}\r\n\r\n",
            if first { "" } else { "\r\n" },
            self.boundary,
            self.content_type,
            r.content_range(self.total),
        )
    }

    fn tail(&self) -> String {
        format!("\r\n--{}--\r\n", self.boundary)
    }

    /// The exact length of the body, for `Content-Length`.
    pub(crate) fn body_len(&self) -> u64 {
        let heads: u64 = self
            .ranges
            .iter()
            .enumerate()
            .map(|(i, r)| self.part_head(i == 0, r).len() as u64 + r.len())
            .sum();
        heads + self.tail().len() as u64
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn multipart_length_is_exact() {
        let dir = std::env::temp_dir().join(format!("portico-send-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("digits.txt");
        std::fs::write(&f, b"0123456789").unwrap();
        let ranges = [
            ByteRange { start: 7, end: 9 },
            ByteRange { start: 0, end: 1 },
        ];
        let parts = Multipart {
            boundary: "B".into(),
            content_type: "text/plain",
            total: 10,
            ranges: &ranges,
        };
        let body = Opened::open(&f).unwrap().multipart(&parts).unwrap();
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes.len() as u64, parts.body_len());
        let text = std::str::from_utf8(&bytes).unwrap();
        assert_eq!(
            text,
            "--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 7-9/10\r\n\r\n789\
             \r\n--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\n01\
             \r\n--B--\r\n"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
