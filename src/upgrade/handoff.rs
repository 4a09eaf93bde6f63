//! The wire of the hand-over: one message carrying the listener names as
//! data (space-separated, ending in `\n`) and their fds as `SCM_RIGHTS`,
//! then the new process's `ready\n` line back.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

use super::READY;

/// At most this many listeners are handed over (https, http, plain, admin).
pub const MAX_FDS: usize = 8;

/// Why the new process could not take the listeners over.
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    #[error("cannot reach the running portico at {path}: {source}")]
    Connect { path: String, source: io::Error },
    #[error("hand-over from the running portico failed: {0}")]
    Io(#[from] io::Error),
    #[error("hand-over from the running portico: {0}")]
    Malformed(&'static str),
}

/// Sends `fds` with their names on `sock` (the old process's side).
pub(super) fn send(sock: impl AsFd, fds: &[(&str, BorrowedFd<'_>)]) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::other("too many listeners to hand over"));
    }
    let mut names = fds.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(" ");
    names.push('\n');
    let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|(_, fd)| *fd).collect();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !borrowed.is_empty() && !control.push(SendAncillaryMessage::ScmRights(&borrowed)) {
        return Err(io::Error::other("fds do not fit the control message"));
    }
    let sent = rustix::net::sendmsg(
        sock,
        &[IoSlice::new(names.as_bytes())],
        &mut control,
        SendFlags::empty(),
    )?;
    if sent != names.len() {
        return Err(io::Error::other("hand-over message cut short"));
    }
    Ok(())
}

/// What the new process received: the listeners by name, and the socket to
/// say `ready` on.
#[derive(Debug)]
pub struct Inherited {
    stream: UnixStream,
    fds: Vec<(String, OwnedFd)>,
}

impl Inherited {
    /// Connects to the hand-over socket at `path` and receives the
    /// listeners (bounded by `limit`).
    pub fn receive(path: &Path, limit: Duration) -> Result<Inherited, HandoffError> {
        let stream = UnixStream::connect(path).map_err(|source| HandoffError::Connect {
            path: path.display().to_string(),
            source,
        })?;
        stream.set_read_timeout(Some(limit))?;
        stream.set_write_timeout(Some(limit))?;
        let mut buf = [0u8; 256];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = rustix::net::recvmsg(
            &stream,
            &mut [IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        let mut fds = Vec::new();
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(owned) = msg {
                fds.extend(owned);
            }
        }
        let text = std::str::from_utf8(&buf[..got.bytes])
            .map_err(|_| HandoffError::Malformed("listener names are not UTF-8"))?;
        let Some(text) = text.strip_suffix('\n') else {
            return Err(HandoffError::Malformed("the message was cut short"));
        };
        let names: Vec<&str> = text.split(' ').filter(|n| !n.is_empty()).collect();
        if names.len() != fds.len() {
            return Err(HandoffError::Malformed(
                "the number of names and fds differ",
            ));
        }
        Ok(Inherited {
            stream,
            fds: names.into_iter().map(str::to_owned).zip(fds).collect(),
        })
    }

    /// The names of the listeners received.
    pub fn names(&self) -> Vec<&str> {
        self.fds.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// Takes the listener named `name`, if one was handed over.
    pub fn take(&mut self, name: &str) -> Option<std::net::TcpListener> {
        let i = self.fds.iter().position(|(n, _)| n == name)?;
        let (_, fd) = self.fds.swap_remove(i);
        Some(std::net::TcpListener::from(fd))
    }

    /// Tells the old process this one serves: it stops accepting and
    /// drains. Listeners not taken are closed here.
    pub fn ready(mut self) -> io::Result<()> {
        self.fds.clear();
        self.stream.write_all(READY)?;
        self.stream.flush()?;
        // Wait (bounded) for the old side to close, so `ready` is read
        // before this process goes on.
        self.stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut rest = [0u8; 16];
        let _ = self.stream.read(&mut rest);
        Ok(())
    }
}
