//! A client socket that can leave one runtime for another mid-connection.
//!
//! Owns: the accepted [`TcpStream`], registered with at most one reactor.
//! Receives: [`Movable::detach`] on the runtime it is leaving and
//! [`Movable::attach`] on the one it joins. Hands on: reads and writes, as
//! the plain stream would. With per-core workers ([`crate::workers`]) a
//! connection that turns out to be a hub socket moves to the shared
//! runtime, where every other hub socket lives; TLS state moves with it,
//! since only the socket underneath is re-registered.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Something whose socket can be moved between runtimes.
pub trait Movable {
    /// Deregisters the socket from the reactor of the runtime this runs
    /// on. Until [`Movable::attach`], reads and writes fail.
    fn detach(&mut self) -> io::Result<()>;
    /// Registers the socket with the reactor of the runtime this runs on.
    /// Must be called from inside that runtime.
    fn attach(&mut self) -> io::Result<()>;
}

/// An accepted TCP stream that [`Movable`] can move.
#[derive(Debug)]
pub struct MovableTcp {
    state: State,
}

#[derive(Debug)]
enum State {
    Registered(TcpStream),
    Detached(std::net::TcpStream),
    /// Moving failed; the socket is closed.
    Lost,
}

impl MovableTcp {
    pub fn new(stream: TcpStream) -> Self {
        MovableTcp {
            state: State::Registered(stream),
        }
    }

    fn stream(&mut self) -> io::Result<&mut TcpStream> {
        match &mut self.state {
            State::Registered(s) => Ok(s),
            State::Detached(_) => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the socket is between runtimes",
            )),
            State::Lost => Err(lost()),
        }
    }
}

fn lost() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the socket was lost moving between runtimes",
    )
}

impl Movable for MovableTcp {
    fn detach(&mut self) -> io::Result<()> {
        self.state = match std::mem::replace(&mut self.state, State::Lost) {
            State::Registered(s) => State::Detached(s.into_std()?),
            State::Lost => return Err(lost()),
            detached => detached,
        };
        Ok(())
    }

    fn attach(&mut self) -> io::Result<()> {
        self.state = match std::mem::replace(&mut self.state, State::Lost) {
            State::Detached(s) => State::Registered(TcpStream::from_std(s)?),
            State::Lost => return Err(lost()),
            registered => registered,
        };
        Ok(())
    }
}

impl<I: Movable> Movable for tokio_rustls::server::TlsStream<I> {
    fn detach(&mut self) -> io::Result<()> {
        self.get_mut().0.detach()
    }

    fn attach(&mut self) -> io::Result<()> {
        self.get_mut().0.attach()
    }
}

/// Turns "not registered" into a poll error instead of a panic.
macro_rules! poll_registered {
    ($self:ident, |$s:ident| $body:expr) => {
        match $self.get_mut().stream() {
            Ok($s) => $body,
            Err(e) => Poll::Ready(Err(e)),
        }
    };
}

impl AsyncRead for MovableTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        poll_registered!(self, |s| Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for MovableTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll_registered!(self, |s| Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        poll_registered!(self, |s| Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        poll_registered!(self, |s| Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        poll_registered!(self, |s| Pin::new(s).poll_shutdown(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A connection read on one runtime, moved, and served on another.
    #[test]
    fn moves_between_runtimes_without_losing_bytes() {
        let a = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let b = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (mut moved, client) = a.block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
            let (s, _) = l.accept().await.unwrap();
            let mut moved = MovableTcp::new(s);
            let mut client = client;
            client.write_all(b"one").await.unwrap();
            let mut got = [0u8; 3];
            moved.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"one");
            moved.detach().unwrap();
            // Detached: I/O fails instead of touching a foreign reactor.
            let e = moved.write_all(b"x").await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::NotConnected);
            client.write_all(b"two").await.unwrap();
            (moved, client.into_std().unwrap())
        });
        drop(a);
        b.block_on(async move {
            moved.attach().unwrap();
            let mut client = TcpStream::from_std(client).unwrap();
            let mut got = [0u8; 3];
            moved.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"two", "bytes sent while detached are kept");
            moved.write_all(b"three").await.unwrap();
            let mut back = [0u8; 5];
            client.read_exact(&mut back).await.unwrap();
            assert_eq!(&back, b"three");
        });
    }
}
