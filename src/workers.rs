//! Where accepted connections run: on one single-threaded runtime per core
//! (`per-core`, the default) or on the caller's multi-threaded runtime
//! (`shared`).
//!
//! Owns: in `per-core` mode, N OS threads each running a current-thread
//! tokio runtime until [`Workers::stop`]. Receives: accepted sockets from the
//! accept loops. Hands on: each socket, round-robin, to one worker; every
//! task the connection spawns (upstream requests, WebSocket pass-through
//! tunnels) then stays on that worker's thread, as in nginx's one event loop
//! per core. A connection whose request turns out to be for a hub front
//! leaves its worker for the runtime that started the workers
//! ([`Workers::hub_home`], [`crate::io::movable`]).
//! Chosen at startup by `PORTICO_WORKERS=per-core|shared`; see
//! `bench/results/2026-11-22-summary.md` for what each costs.

use std::cell::Cell;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

/// How connections are scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Connections are tasks on the runtime that runs the accept loops.
    Shared,
    /// One current-thread runtime per core; connections assigned round-robin.
    PerCore,
}

/// `PORTICO_WORKERS` held a value that is neither mode.
#[derive(Debug, thiserror::Error)]
#[error("PORTICO_WORKERS={value:?} is not valid; use \"shared\" or \"per-core\"")]
pub struct ModeError {
    pub value: String,
}

impl Mode {
    /// Parses `PORTICO_WORKERS` (unset or empty: [`Mode::PerCore`]).
    pub fn parse(value: Option<&str>) -> Result<Mode, ModeError> {
        match value.map(str::trim) {
            None | Some("") | Some("per-core") => Ok(Mode::PerCore),
            Some("shared") => Ok(Mode::Shared),
            Some(v) => Err(ModeError { value: v.into() }),
        }
    }
}

thread_local! {
    /// The index of the worker this thread runs, if it is one.
    static CURRENT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The worker running on this thread, if any: the upstream pool keeps each
/// connection on the worker whose reactor it is registered with.
pub fn current() -> Option<usize> {
    CURRENT.with(Cell::get)
}

/// The connection runtimes; empty in [`Mode::Shared`].
#[derive(Debug, Default)]
pub struct Workers {
    handles: Vec<Handle>,
    /// The runtime that started the workers: hub sockets move there.
    hub_home: Option<Handle>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next: AtomicUsize,
    stop: CancellationToken,
}

impl Workers {
    /// No workers: connections are spawned on the caller's runtime.
    pub fn shared() -> Workers {
        Workers::default()
    }

    /// Starts `n` worker threads, each a current-thread runtime.
    pub fn per_core(n: usize) -> io::Result<Workers> {
        let mut w = Workers {
            hub_home: Handle::try_current().ok(),
            ..Workers::default()
        };
        for i in 0..n.max(1) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            w.handles.push(rt.handle().clone());
            let stop = w.stop.clone();
            let t = std::thread::Builder::new()
                .name(format!("portico-worker-{i}"))
                .spawn(move || {
                    CURRENT.with(|c| c.set(Some(i)));
                    rt.block_on(stop.cancelled_owned());
                    // Dropping the runtime cancels whatever is left.
                })?;
            w.threads.get_mut().push(t);
        }
        Ok(w)
    }

    /// Starts workers for `mode`, one per available core.
    pub fn start(mode: Mode) -> io::Result<Workers> {
        match mode {
            Mode::Shared => Ok(Workers::shared()),
            Mode::PerCore => {
                let n = std::thread::available_parallelism().map_or(1, |n| n.get());
                Workers::per_core(n)
            }
        }
    }

    /// Number of worker runtimes (0 in shared mode).
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// The next worker's runtime, round-robin; `None` in shared mode.
    pub fn next(&self) -> Option<&Handle> {
        if self.handles.is_empty() {
            return None;
        }
        let k = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        Some(&self.handles[k])
    }

    /// Where a connection running on a worker goes once it turns out to be
    /// for a hub front (the Pusher or Supabase WebSocket or REST API): the
    /// runtime that started the workers. All hub sockets and publishes then
    /// share one multi-threaded runtime, as in shared mode; spread over the
    /// workers instead, a 10k-subscriber fan-out's p99 was ~1.5× higher.
    /// `None` in shared mode.
    pub fn hub_home(&self) -> Option<&Handle> {
        self.hub_home.as_ref()
    }

    /// Stops the worker threads (cancelling what still runs on them) and
    /// joins them. Call after [`crate::serve_with`] has returned; a no-op in
    /// shared mode.
    pub fn stop(&self) {
        self.stop.cancel();
        let threads = std::mem::take(&mut *self.threads.lock());
        for t in threads {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shutdown::Shutdown;

    #[test]
    fn mode_parses_both_values_and_rejects_others() {
        assert_eq!(Mode::parse(None).unwrap(), Mode::PerCore);
        assert_eq!(Mode::parse(Some("")).unwrap(), Mode::PerCore);
        assert_eq!(Mode::parse(Some("shared")).unwrap(), Mode::Shared);
        assert_eq!(Mode::parse(Some("per-core")).unwrap(), Mode::PerCore);
        let e = Mode::parse(Some("percore")).unwrap_err();
        assert!(e.to_string().contains("PORTICO_WORKERS=\"percore\""));
    }

    #[test]
    fn tasks_run_on_worker_threads_and_stop_ends_them() {
        let w = Workers::per_core(2).unwrap();
        let sd = Shutdown::new();
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..4 {
            let tx = tx.clone();
            let h = w.next().unwrap();
            sd.spawn_on(async move { tx.send(current()).unwrap() }, h);
        }
        let mut seen: Vec<_> = (0..4).map(|_| rx.recv().unwrap()).collect();
        seen.sort();
        assert_eq!(seen, [Some(0), Some(0), Some(1), Some(1)]);
        w.stop();
    }
}
