//! Request bodies without a declared length (HTTP/1.1 chunked, HTTP/2
//! without `content-length`): php-fpm needs `CONTENT_LENGTH` before the
//! first STDIN byte, so the body is read to its end first — in memory
//! while small, then into an unlinked temporary file (as nginx's
//! `client_body_temp`), so a 30 MB chunked upload never sits whole in
//! memory.
//!
//! Receives: the client's body and the route's `max_body`. Hands on: a
//! [`Spooled`] body of known length, or the [`BodyError`].

use std::io::SeekFrom;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// Bodies up to this size stay in memory.
pub(crate) const IN_MEMORY: usize = 64 * 1024;

/// A body read to its end.
pub(crate) enum Spooled {
    Memory(Bytes),
    /// An unlinked temporary file, rewound, holding `len` bytes.
    File {
        file: tokio::fs::File,
        len: u64,
    },
}

impl Spooled {
    pub(crate) fn len(&self) -> u64 {
        match self {
            Spooled::Memory(b) => b.len() as u64,
            Spooled::File { len, .. } => *len,
        }
    }
}

/// What went wrong with the client's body.
#[derive(Debug, Clone, Copy, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("over the limit of {0} bytes")]
    TooLarge(u64),
    #[error("the client's body was cut short or malformed")]
    Broken,
}

/// Why a body could not be spooled.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpoolError {
    #[error("{0}")]
    Body(BodyError),
    #[error("the temporary file for the request body: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads `body` to its end, refusing it past `limit` bytes.
pub(crate) async fn spool<B>(body: B, limit: u64) -> Result<Spooled, SpoolError>
where
    B: http_body::Body<Data = Bytes>,
{
    let mut body = std::pin::pin!(body);
    let mut mem = BytesMut::new();
    let mut file: Option<tokio::fs::File> = None;
    let mut len: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| SpoolError::Body(BodyError::Broken))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers: FastCGI has no place for them
        };
        len += data.len() as u64;
        if len > limit {
            return Err(SpoolError::Body(BodyError::TooLarge(limit)));
        }
        match file.as_mut() {
            Some(f) => f.write_all(&data).await?,
            None if mem.len() + data.len() <= IN_MEMORY => mem.extend_from_slice(&data),
            None => {
                let mut f = temp_file().await?;
                f.write_all(&mem).await?;
                f.write_all(&data).await?;
                mem = BytesMut::new();
                file = Some(f);
            }
        }
    }
    match file {
        None => Ok(Spooled::Memory(mem.freeze())),
        Some(mut f) => {
            f.flush().await?;
            f.seek(SeekFrom::Start(0)).await?;
            Ok(Spooled::File { file: f, len })
        }
    }
}

/// A file in the system's temporary directory (`TMPDIR`), already
/// unlinked: it disappears with its last handle, even on a crash.
async fn temp_file() -> std::io::Result<tokio::fs::File> {
    let f = tokio::task::spawn_blocking(tempfile::tempfile)
        .await
        .map_err(std::io::Error::other)??;
    Ok(tokio::fs::File::from_std(f))
}

/// Reads the next chunk of a spooled file into `buf` (cleared first);
/// `Ok(0)` at its end.
pub(crate) async fn read_chunk(
    file: &mut tokio::fs::File,
    buf: &mut BytesMut,
    max: usize,
) -> std::io::Result<usize> {
    buf.clear();
    buf.reserve(max);
    let mut limited = AsyncReadExt::take(&mut *file, max as u64);
    limited.read_buf(buf).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::StreamBody;

    fn chunked(
        data: &[u8],
        size: usize,
    ) -> impl http_body::Body<Data = Bytes, Error = std::io::Error> {
        let frames: Vec<Result<http_body::Frame<Bytes>, std::io::Error>> = data
            .chunks(size)
            .map(|c| Ok(http_body::Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    async fn read_all(s: Spooled) -> Vec<u8> {
        match s {
            Spooled::Memory(b) => b.to_vec(),
            Spooled::File { mut file, len } => {
                let mut out = Vec::new();
                let mut buf = BytesMut::new();
                while read_chunk(&mut file, &mut buf, 1000).await.unwrap() > 0 {
                    out.extend_from_slice(&buf);
                }
                assert_eq!(out.len() as u64, len);
                out
            }
        }
    }

    #[tokio::test]
    async fn small_bodies_stay_in_memory() {
        let data = vec![7u8; IN_MEMORY];
        let s = spool(chunked(&data, 999), u64::MAX).await.unwrap();
        assert!(matches!(s, Spooled::Memory(_)));
        assert_eq!(s.len(), data.len() as u64);
        assert_eq!(read_all(s).await, data);
    }

    #[tokio::test]
    async fn large_bodies_go_to_a_file_and_come_back_whole() {
        let data: Vec<u8> = (0..IN_MEMORY * 5 + 3)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let s = spool(chunked(&data, 4093), u64::MAX).await.unwrap();
        assert!(matches!(s, Spooled::File { .. }));
        assert_eq!(s.len(), data.len() as u64);
        assert_eq!(read_all(s).await, data);
    }

    #[tokio::test]
    async fn past_the_limit_is_refused() {
        let data = vec![1u8; 10_000];
        let e = spool(chunked(&data, 100), 9_999).await.err().unwrap();
        assert!(matches!(e, SpoolError::Body(BodyError::TooLarge(9_999))));
        assert!(spool(chunked(&data, 100), 10_000).await.is_ok());
    }
}
