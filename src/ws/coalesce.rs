//! Write coalescing between the WebSocket codec and the socket.
//!
//! Owns: the bytes written since the last flush, in one buffer that exists
//! only while a batch is being written. Receives: `poll_write`s from
//! tungstenite (one per frame: its own write buffer is 0, see
//! [`super::config`]) and reads, which pass straight through. Hands on: the
//! whole batch to the socket on `poll_flush`, in one `write` unless the kernel
//! takes only part of it, then frees the buffer.
//!
//! The writer task feeds every frame of a batch and flushes once, so a batch
//! of N queued frames costs one `send()` instead of N. The buffer is freed
//! after each flush: a socket that took a burst keeps nothing, and an idle
//! socket never had one. It is bounded by [`MAX_PENDING`]; past that, writes
//! go through to the socket first.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Most bytes gathered before they are pushed to the socket without waiting
/// for the flush.
pub const MAX_PENDING: usize = 64 * 1024;

/// The first byte of a close frame from the server: FIN and opcode 0x8.
const CLOSE_FRAME: u8 = 0x88;

/// First allocation of a batch buffer: room for a handful of typical frames.
const INITIAL: usize = 2 * 1024;

/// An `AsyncRead + AsyncWrite` that gathers writes until `poll_flush`.
#[derive(Debug)]
pub struct Coalesce<S> {
    inner: S,
    buf: Vec<u8>,
    /// Bytes at the front of `buf` already written to `inner`.
    written: usize,
}

impl<S> Coalesce<S> {
    /// Wraps a stream.
    pub fn new(inner: S) -> Self {
        Coalesce {
            inner,
            buf: Vec::new(),
            written: 0,
        }
    }

    /// Bytes gathered and not yet written to the stream.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.written
    }
}

impl<S: AsyncWrite + Unpin> Coalesce<S> {
    /// Writes everything gathered to the stream, then frees the buffer.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.buf.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.buf = Vec::new();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Coalesce<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Coalesce<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.pending() > 0 && this.pending() + data.len() > MAX_PENDING {
            ready!(this.poll_drain(cx))?;
        }
        // A close frame goes straight through: after the peer's close
        // tungstenite writes its reply and ends the socket without a flush,
        // so a gathered close frame would never leave. (A payload chunk
        // that happens to start with this byte merely skips the gathering.)
        if data.first() == Some(&CLOSE_FRAME) {
            ready!(this.poll_drain(cx))?;
            return Pin::new(&mut this.inner).poll_write(cx, data);
        }
        if data.len() >= MAX_PENDING {
            return Pin::new(&mut this.inner).poll_write(cx, data);
        }
        if this.buf.capacity() == 0 {
            this.buf.reserve(data.len().max(INITIAL));
        }
        this.buf.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// An in-memory stream that counts the writes reaching it (the `send()`s a
/// socket would make), for tests here and in the writer.
#[cfg(test)]
pub(crate) mod testing {
    use std::io;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

    pub(crate) struct CountingIo {
        inner: DuplexStream,
        writes: Arc<AtomicUsize>,
    }

    impl CountingIo {
        pub(crate) fn new(inner: DuplexStream) -> (CountingIo, Arc<AtomicUsize>) {
            let writes = Arc::new(AtomicUsize::new(0));
            let io = CountingIo {
                inner,
                writes: writes.clone(),
            };
            (io, writes)
        }
    }

    impl AsyncRead for CountingIo {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for CountingIo {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            data: &[u8],
        ) -> Poll<io::Result<usize>> {
            let r = Pin::new(&mut self.inner).poll_write(cx, data);
            if r.is_ready() {
                self.writes.fetch_add(1, Ordering::Relaxed);
            }
            r
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }
        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::CountingIo;
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

    fn counting(cap: usize) -> (Coalesce<CountingIo>, DuplexStream, Arc<AtomicUsize>) {
        let (a, b) = duplex(cap);
        let (io, writes) = CountingIo::new(a);
        (Coalesce::new(io), b, writes)
    }

    #[tokio::test]
    async fn writes_until_flush_go_out_in_one_write() {
        let (mut io, mut peer, writes) = counting(1 << 20);
        for i in 0..10u8 {
            io.write_all(&[i; 100]).await.unwrap();
        }
        assert_eq!(writes.load(Ordering::Relaxed), 0);
        assert_eq!(io.pending(), 1000);
        io.flush().await.unwrap();
        assert_eq!(writes.load(Ordering::Relaxed), 1);
        assert_eq!(io.pending(), 0);
        assert_eq!(io.buf.capacity(), 0, "the buffer is freed after a flush");
        let mut got = vec![0u8; 1000];
        peer.read_exact(&mut got).await.unwrap();
        for (i, chunk) in got.chunks(100).enumerate() {
            assert!(chunk.iter().all(|&b| usize::from(b) == i));
        }
    }

    #[tokio::test]
    async fn partial_socket_writes_keep_order() {
        // The peer takes 7 bytes at a time.
        let (mut io, mut peer, _) = counting(7);
        let data: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        for chunk in data.chunks(300) {
            io.write_all(chunk).await.unwrap();
        }
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; 5000];
            peer.read_exact(&mut got).await.unwrap();
            got
        });
        io.flush().await.unwrap();
        assert_eq!(reader.await.unwrap(), data);
    }

    #[tokio::test]
    async fn gathering_is_bounded() {
        let (mut io, mut peer, writes) = counting(1 << 20);
        let frame = vec![1u8; 10_000];
        for _ in 0..10 {
            io.write_all(&frame).await.unwrap();
        }
        assert!(io.pending() <= MAX_PENDING);
        assert!(writes.load(Ordering::Relaxed) >= 1);
        // A write as large as the bound goes straight through.
        io.flush().await.unwrap();
        io.write_all(&vec![2u8; MAX_PENDING]).await.unwrap();
        assert_eq!(io.pending(), 0);
        let mut got = vec![0u8; 100_000 + MAX_PENDING];
        peer.read_exact(&mut got).await.unwrap();
        assert!(got[..100_000].iter().all(|&b| b == 1));
        assert!(got[100_000..].iter().all(|&b| b == 2));
    }

    #[tokio::test]
    async fn shutdown_writes_what_is_pending() {
        let (mut io, mut peer, _) = counting(1 << 10);
        io.write_all(b"bye").await.unwrap();
        io.shutdown().await.unwrap();
        let mut got = Vec::new();
        peer.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"bye");
    }
}
