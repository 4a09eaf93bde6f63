//! Supervised processes (`[[processes]]`): php-fpm, `php artisan
//! queue:work`, `npm run dev` — started with portico, restarted with
//! backoff when they exit, their output logged line by line with their
//! name, stopped gracefully on shutdown; what Supervisor (and `composer
//! dev`'s four terminals) did.
//!
//! Owns: the set of running processes by name and the reload diff
//! ([`Supervisor::apply`]: added start, removed stop gracefully, changed
//! command/cwd/env restart, the rest keep running). Receives: validated
//! [`ProcessSpec`]s from config and the one [`Shutdown`] (a drain stops
//! every process in parallel, each task is tracked so portico's exit waits
//! for it, abort kills). Hands on: [`Ready`] handles (for `wait_for`
//! routes; the request stack never sees the supervisor) and
//! [`ProcessStatus`] snapshots.
//!
//! Parts: `child` (one process's task), `group` (signals to its process
//! group), `probe` (readiness), `output` (line logging), `backoff`,
//! `state` (the shared record).

mod backoff;
mod child;
mod group;
mod output;
mod probe;
mod state;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use state::{Exit, ProcessStatus, Ready};

use crate::config::ProcessSpec;
use crate::shutdown::Shutdown;
use state::Shared;

/// One running entry: how to reach its task.
struct Entry {
    spec: watch::Sender<Arc<ProcessSpec>>,
    /// Cancelled to stop just this process (removed by a reload).
    stop: CancellationToken,
    shared: Arc<Shared>,
}

/// The supervised processes; cheap to clone.
#[derive(Clone)]
pub struct Supervisor {
    procs: Arc<parking_lot::Mutex<BTreeMap<Arc<str>, Entry>>>,
    shutdown: Shutdown,
    /// Cancelled when the drain starts: every process stops.
    all: CancellationToken,
}

impl Supervisor {
    /// A supervisor with no processes; [`apply`](Self::apply) starts them.
    pub fn new(shutdown: &Shutdown) -> Supervisor {
        Supervisor {
            procs: Arc::default(),
            shutdown: shutdown.clone(),
            all: shutdown.drain_token(),
        }
    }

    /// Makes the running set match `specs`: new names start, missing names
    /// stop gracefully, a changed command, directory or environment
    /// restarts that process, and everything else keeps running (same pid;
    /// changed stop settings apply from the next stop). Needs a tokio
    /// runtime when it starts a process. Nothing starts once draining.
    pub fn apply(&self, specs: &[ProcessSpec]) {
        let mut procs = self.procs.lock();
        procs.retain(|name, e| {
            let keep = specs.iter().any(|s| s.name == *name);
            if !keep {
                tracing::info!(process = %name, "process removed from the config; stopping it");
                e.stop.cancel();
            }
            keep
        });
        if self.shutdown.is_draining() {
            return;
        }
        for spec in specs {
            match procs.get(&spec.name) {
                Some(e) => {
                    if **e.spec.borrow() != *spec {
                        e.spec.send_replace(Arc::new(spec.clone()));
                    }
                }
                None => {
                    let shared = Arc::new(Shared::new(spec.name.clone()));
                    let (tx, rx) = watch::channel(Arc::new(spec.clone()));
                    let stop = self.all.child_token();
                    self.shutdown.spawn(child::supervise(
                        rx,
                        shared.clone(),
                        stop.clone(),
                        self.shutdown.clone(),
                    ));
                    procs.insert(
                        spec.name.clone(),
                        Entry {
                            spec: tx,
                            stop,
                            shared,
                        },
                    );
                }
            }
        }
    }

    /// The readiness handle of the process named `name`.
    pub fn ready(&self, name: &str) -> Option<Ready> {
        self.procs
            .lock()
            .get(name)
            .map(|e| e.shared.ready().clone())
    }

    /// Every process's state, by name.
    pub fn status(&self) -> Vec<ProcessStatus> {
        self.procs
            .lock()
            .values()
            .map(|e| e.shared.status())
            .collect()
    }
}
