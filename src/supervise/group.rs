//! Signals to a supervised process's process group. Every process is
//! started as the leader of its own group (pgid = its pid), so a signal
//! reaches what it started too (`npm run dev` → `sh` → `node vite`).
//!
//! Owns: turning a [`StopSignal`] into a signal and sending it with `nix`
//! (no `unsafe` here). Receives: a pgid from `child`. Hands on: nothing;
//! failures other than "no such group" are logged.

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::config::StopSignal;

fn signal_of(s: StopSignal) -> Signal {
    match s {
        StopSignal::Term => Signal::SIGTERM,
        StopSignal::Quit => Signal::SIGQUIT,
        StopSignal::Int => Signal::SIGINT,
        StopSignal::Hup => Signal::SIGHUP,
        StopSignal::Usr1 => Signal::SIGUSR1,
        StopSignal::Usr2 => Signal::SIGUSR2,
        StopSignal::Winch => Signal::SIGWINCH,
    }
}

fn pgid(pid: u32) -> Option<Pid> {
    i32::try_from(pid)
        .ok()
        .filter(|p| *p > 1)
        .map(Pid::from_raw)
}

fn send(name: &str, pid: u32, sig: Option<Signal>) -> bool {
    let Some(pg) = pgid(pid) else { return false };
    match killpg(pg, sig) {
        Ok(()) => true,
        Err(Errno::ESRCH) => false,
        Err(e) => {
            tracing::warn!(process = name, pid, signal = ?sig, error = %e, "cannot signal the process group");
            false
        }
    }
}

/// Sends the stop signal to the group.
pub(super) fn stop(name: &str, pid: u32, s: StopSignal) {
    send(name, pid, Some(signal_of(s)));
}

/// Sends SIGKILL to the group.
pub(super) fn kill(name: &str, pid: u32) {
    send(name, pid, Some(Signal::SIGKILL));
}

/// Whether any process of the group is still alive.
fn alive(name: &str, pid: u32) -> bool {
    send(name, pid, None)
}

/// After the leader has exited: gives what is left of its group (children
/// it did not wait for) the stop signal and until `deadline` to go, then
/// SIGKILL, so nothing it started keeps a port or a socket for the next
/// run. Polls at most every 50 ms, bounded by the deadline.
pub(super) async fn reap_leftovers(name: &str, pid: u32, s: StopSignal, deadline: Instant) {
    if !alive(name, pid) {
        return;
    }
    stop(name, pid, s);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if !alive(name, pid) {
            return;
        }
    }
    tracing::warn!(
        process = name,
        pid,
        "processes it started did not stop in time; killing them"
    );
    kill(name, pid);
}
