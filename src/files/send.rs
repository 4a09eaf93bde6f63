//! Response bodies read from a file as they are sent, in chunks of
//! [`CHUNK`] bytes: the whole file, one range, or several ranges as a
//! `multipart/byteranges` body. Nothing is ever read whole into memory.

use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::StreamBody;
use hyper::body::Frame;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::range::ByteRange;
use crate::http::body::{self, Body};

/// How much of the file one body chunk holds at most.
pub const CHUNK: usize = 128 * 1024;

/// A reader the body streams from.
type Source = Box<dyn AsyncRead + Send + Sync + Unpin>;

/// An open file to send from.
pub(crate) struct Opened {
    file: tokio::fs::File,
    path: PathBuf,
}

impl Opened {
    pub(crate) async fn open(path: &Path) -> io::Result<Opened> {
        Ok(Opened {
            file: tokio::fs::File::open(path).await?,
            path: path.to_owned(),
        })
    }

    /// `len` bytes from the start.
    pub(crate) fn whole(self, len: u64) -> Body {
        stream(Box::new(self.file.take(len)))
    }

    /// The bytes of `r`.
    pub(crate) async fn range(mut self, r: ByteRange) -> io::Result<Body> {
        self.file.seek(SeekFrom::Start(r.start)).await?;
        Ok(stream(Box::new(self.file.take(r.len()))))
    }

    /// A `multipart/byteranges` body of `ranges` (RFC 9110 §14.6), each
    /// part with its own `Content-Type` and `Content-Range`.
    pub(crate) async fn multipart(self, parts: &Multipart<'_>) -> io::Result<Body> {
        let mut source: Source = Box::new(io::Cursor::new(Bytes::new()));
        let mut first = Some(self.file);
        for (i, r) in parts.ranges.iter().enumerate() {
            let head = parts.part_head(i == 0, r);
            // Each part reads through its own descriptor: clones of one
            // would share the offset.
            let mut file = match first.take() {
                Some(f) => f,
                None => tokio::fs::File::open(&self.path).await?,
            };
            file.seek(SeekFrom::Start(r.start)).await?;
            source = Box::new(
                source
                    .chain(io::Cursor::new(Bytes::from(head)))
                    .chain(file.take(r.len())),
            );
        }
        let tail = parts.tail();
        source = Box::new(source.chain(io::Cursor::new(Bytes::from(tail))));
        Ok(stream(source))
    }
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

fn stream(source: Source) -> Body {
    let frames = ReaderStream::with_capacity(source, CHUNK).map_ok(Frame::data);
    body::boxed(StreamBody::new(frames))
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
        let body = Opened::open(&f)
            .await
            .unwrap()
            .multipart(&parts)
            .await
            .unwrap();
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
