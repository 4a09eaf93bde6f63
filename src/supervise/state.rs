//! What the rest of portico may know about a supervised process: whether
//! it is ready ([`Ready`], one atomic load, for the request path) and its
//! status ([`ProcessStatus`]: pid, running, ready, restarts, last exit, for
//! `portico status` and logs).
//!
//! Owns: the per-process shared record the process task writes. Receives:
//! events from `child` (started, ready, exited). Hands on: [`Ready`] handles
//! to the request stack and status snapshots to whoever asks.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

/// A cheap readiness handle for one process (what a `wait_for` route holds).
#[derive(Clone, Debug)]
pub struct Ready {
    name: Arc<str>,
    flag: Arc<AtomicBool>,
}

impl Ready {
    /// Whether the process is running and its `ready` probe has succeeded.
    pub fn is_ready(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// The process name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }
}

/// How a process run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
    /// It could not be started (program missing, bad directory).
    SpawnFailed(String),
}

impl Exit {
    pub(super) fn from_status(s: std::process::ExitStatus) -> Exit {
        use std::os::unix::process::ExitStatusExt;
        match (s.code(), s.signal()) {
            (Some(c), _) => Exit::Code(c),
            (None, Some(sig)) => Exit::Signal(sig),
            (None, None) => Exit::Code(-1),
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
            Exit::SpawnFailed(e) => write!(f, "could not start: {e}"),
        }
    }
}

/// A snapshot of one process's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessStatus {
    pub name: Arc<str>,
    /// The running process's id (also its process group's).
    pub pid: Option<u32>,
    pub running: bool,
    pub ready: bool,
    /// Restarts after an exit portico did not ask for.
    pub restarts: u64,
    /// How the previous run ended.
    pub last_exit: Option<Exit>,
    /// When the current (or last) run started.
    pub started_at: Option<SystemTime>,
}

/// The record a process task writes and everyone else reads.
#[derive(Debug)]
pub(super) struct Shared {
    ready: Ready,
    status: parking_lot::Mutex<ProcessStatus>,
}

impl Shared {
    pub(super) fn new(name: Arc<str>) -> Shared {
        Shared {
            ready: Ready {
                name: name.clone(),
                flag: Arc::new(AtomicBool::new(false)),
            },
            status: parking_lot::Mutex::new(ProcessStatus {
                name,
                pid: None,
                running: false,
                ready: false,
                restarts: 0,
                last_exit: None,
                started_at: None,
            }),
        }
    }

    pub(super) fn ready(&self) -> &Ready {
        &self.ready
    }

    pub(super) fn status(&self) -> ProcessStatus {
        self.status.lock().clone()
    }

    pub(super) fn started(&self, pid: Option<u32>) {
        let mut s = self.status.lock();
        s.pid = pid;
        s.running = true;
        s.started_at = Some(SystemTime::now());
    }

    pub(super) fn set_ready(&self, ready: bool) {
        self.status.lock().ready = ready;
        self.ready.flag.store(ready, Ordering::Release);
    }

    /// The run ended; `unasked` counts it as a restart.
    pub(super) fn exited(&self, exit: Exit, unasked: bool) {
        self.set_ready(false);
        let mut s = self.status.lock();
        s.pid = None;
        s.running = false;
        s.last_exit = Some(exit);
        if unasked {
            s.restarts += 1;
        }
    }
}
