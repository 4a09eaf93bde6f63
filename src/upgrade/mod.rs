//! Binary upgrade without a refused connection (SIGUSR2), as nginx and
//! HAProxy do it: a new portico process takes over the listening sockets,
//! and the old one drains what it holds.
//!
//! Owns: the hand-over between the two processes, nothing else. Receives:
//! (old side) the listeners' fds by name, the path and arguments to start;
//! (new side) the hand-over socket named in its environment. Hands on:
//! (new side) the inherited listeners by name, for `listener` and `admin`
//! to adopt instead of binding; (old side) the new process's pid once it
//! is ready. What each side does around it (drain, sd_notify, keeping the
//! cluster node id) is the binary's (`src/main.rs`).
//!
//! # The handshake
//!
//! 1. The old process makes a private (0700) temporary directory, listens
//!    on a unix socket in it, and starts the new binary ([`Exe`]: the path
//!    it was itself started as) with its own arguments and environment
//!    plus [`SOCKET_ENV`] naming that socket (and [`CLUSTER_NODE_ENV`]
//!    with its cluster node id, so the node keeps its identity).
//! 2. The new process connects and receives one message: the listener
//!    names (`https plain admin`) as data and their fds as `SCM_RIGHTS`
//!    ([`handoff`]). It adopts them instead of binding: from then on both
//!    processes accept from the same sockets, so nothing is refused.
//! 3. Once it serves (accept loops running, its `[[processes]]` ready) it
//!    writes `ready` on the socket ([`Inherited::ready`]).
//! 4. The old process then tells systemd `MAINPID=<new>`, stops accepting
//!    and drains. If instead the new process exits, closes the socket, or
//!    is not ready within [`TIMEOUT`], the upgrade failed: the old process
//!    stops it (SIGTERM, then SIGKILL), logs why, and keeps serving.
//!
//! Passing the fds over a socket (rather than leaving them open across
//! `exec`) keeps every fd close-on-exec at all times, so no supervised
//! process started meanwhile inherits a listener, and the new process gets
//! owned fds through a safe API.

pub mod handoff;
mod parent;

pub use handoff::{HandoffError, Inherited};
pub use parent::{Exe, UpgradeError, start};

use std::time::Duration;

/// The environment variable naming the hand-over socket (set for the new
/// process only).
pub const SOCKET_ENV: &str = "PORTICO_UPGRADE_SOCKET";

/// The environment variable carrying the cluster node id to the new
/// process, so other nodes see the same node before and after.
pub const CLUSTER_NODE_ENV: &str = "PORTICO_CLUSTER_NODE";

/// How long the new process has to connect, start and be ready (its
/// `[[processes]]` included) before the old one gives up on it.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The line the new process writes when it is ready.
const READY: &[u8] = b"ready\n";
