//! The old process's side: start the new binary, hand it the listeners,
//! wait until it says `ready`; on any failure stop it and say why.

use std::ffi::OsString;
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, Interest};
use tokio::net::{UnixListener, UnixStream};
use tokio::process::{Child, Command};

use super::{READY, SOCKET_ENV, handoff};

/// How long a new process that failed gets to stop after SIGTERM.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// Why an upgrade did not happen (the old process keeps serving).
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error("an upgrade is already under way")]
    Busy,
    #[error("cannot prepare the hand-over socket: {0}")]
    Socket(io::Error),
    #[error("cannot start {exe}: {source}")]
    Spawn { exe: String, source: io::Error },
    #[error("the new process exited before it was ready ({0})")]
    Exited(String),
    #[error("the new process closed the hand-over socket before it was ready")]
    Closed,
    #[error("the new process was not ready within {0:?}")]
    Timeout(Duration),
    #[error("the new process answered something other than `ready`")]
    Malformed,
    #[error("hand-over with the new process failed: {0}")]
    Io(#[from] io::Error),
}

/// What an upgrade starts: the path this process was started as, and its
/// arguments.
#[derive(Debug, Clone)]
pub struct Exe {
    path: PathBuf,
    args: Vec<OsString>,
}

impl Exe {
    /// Records, at start, how to start this binary again, as nginx does:
    /// `argv[0]` made absolute (joined to the current directory if
    /// relative), so a binary installed over the same path is the one the
    /// upgrade runs; when started by a bare name found through `PATH`,
    /// `/proc/self/exe` as resolved now (the same path, not the inode).
    pub fn at_start() -> io::Result<Exe> {
        let mut args = std::env::args_os();
        let argv0 = args.next();
        let path = match argv0 {
            Some(a) if a.as_bytes().contains(&b'/') => {
                let p = PathBuf::from(a);
                if p.is_absolute() {
                    p
                } else {
                    std::env::current_dir()?.join(p)
                }
            }
            _ => std::env::current_exe()?,
        };
        Ok(Exe {
            path,
            args: args.collect(),
        })
    }

    /// The binary an upgrade starts.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Starts `exe` with this process's environment plus `env`, hands it
/// `fds` (listener name, fd) and waits until it is ready (at most
/// `limit`). Returns the new process's pid. On failure the new process is
/// stopped (SIGTERM, then SIGKILL) before this returns.
pub async fn start(
    exe: &Exe,
    fds: &[(&str, BorrowedFd<'_>)],
    env: &[(&str, String)],
    limit: Duration,
) -> Result<u32, UpgradeError> {
    let dir = tempfile::Builder::new()
        .prefix("portico-upgrade-")
        .tempdir()
        .map_err(UpgradeError::Socket)?;
    let path = dir.path().join("handoff.sock");
    let listener = UnixListener::bind(&path).map_err(UpgradeError::Socket)?;
    let mut child = Command::new(&exe.path)
        .args(&exe.args)
        .env(SOCKET_ENV, &path)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .spawn()
        .map_err(|source| UpgradeError::Spawn {
            exe: exe.path.display().to_string(),
            source,
        })?;
    let pid = child.id().unwrap_or(0);
    tracing::info!(pid, exe = %exe.path.display(), "upgrade: new process started; handing over the listeners");
    let result = tokio::time::timeout(limit, handshake(&listener, &mut child, fds))
        .await
        .unwrap_or(Err(UpgradeError::Timeout(limit)));
    match result {
        Ok(()) => Ok(pid),
        Err(e) => {
            stop(&mut child, pid).await;
            Err(e)
        }
    }
}

fn exited(s: io::Result<std::process::ExitStatus>) -> UpgradeError {
    UpgradeError::Exited(match s {
        Ok(s) => s.to_string(),
        Err(e) => e.to_string(),
    })
}

async fn handshake(
    listener: &UnixListener,
    child: &mut Child,
    fds: &[(&str, BorrowedFd<'_>)],
) -> Result<(), UpgradeError> {
    let mut stream = tokio::select! {
        a = listener.accept() => a?.0,
        s = child.wait() => return Err(exited(s)),
    };
    send(&stream, fds).await?;
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        tokio::select! {
            r = stream.read(&mut buf) => match r? {
                0 => return Err(UpgradeError::Closed),
                n => {
                    got.extend_from_slice(&buf[..n]);
                    if got.contains(&b'\n') {
                        return if got == READY { Ok(()) } else { Err(UpgradeError::Malformed) };
                    }
                    if got.len() > READY.len() {
                        return Err(UpgradeError::Malformed);
                    }
                }
            },
            s = child.wait() => return Err(exited(s)),
        }
    }
}

async fn send(stream: &UnixStream, fds: &[(&str, BorrowedFd<'_>)]) -> io::Result<()> {
    loop {
        stream.writable().await?;
        match stream.try_io(Interest::WRITABLE, || handoff::send(stream, fds)) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            r => return r,
        }
    }
}

/// Stops a new process that failed: SIGTERM (it drains what little it
/// holds and stops its processes), SIGKILL after [`STOP_WAIT`].
async fn stop(child: &mut Child, pid: u32) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    if let Ok(p) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(p), Signal::SIGTERM);
    }
    if tokio::time::timeout(STOP_WAIT, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}
