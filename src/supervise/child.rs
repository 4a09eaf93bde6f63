//! One supervised process: the task that starts it, logs its output,
//! probes readiness, restarts it with backoff when it exits, restarts it
//! when a reload changes what it runs, and stops it gracefully.
//!
//! Owns: one process's life, run after run. Receives: its spec (a `watch`,
//! so a reload can change it), its stop token (cancelled by the supervisor
//! when the process is removed, and by the drain) and the shutdown handle
//! (abort: SIGKILL at once). Hands on: events to its [`Shared`] record.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::state::{Exit, Shared};
use super::{group, output, probe};
use crate::config::ProcessSpec;
use crate::shutdown::Shutdown;

/// Why a run ended.
enum Ended {
    /// It exited on its own.
    Exited(std::io::Result<std::process::ExitStatus>),
    /// Portico asked it to stop (removed, or shutting down).
    Stop,
    /// A reload changed its command, directory or environment.
    Changed,
}

/// Runs the process until `stop` is cancelled, then stops it and returns.
pub(super) async fn supervise(
    mut spec_rx: watch::Receiver<Arc<ProcessSpec>>,
    shared: Arc<Shared>,
    stop: CancellationToken,
    shutdown: Shutdown,
) {
    let mut spec = spec_rx.borrow_and_update().clone();
    let mut backoff = Backoff::new(spec.restart_delay, spec.restart_max_delay);
    while !stop.is_cancelled() {
        let started = Instant::now();
        let (mut child, mut output) = match spawn(&spec) {
            Ok(run) => run,
            Err(e) => {
                let delay = backoff.after_run(Duration::ZERO);
                tracing::error!(process = %spec.name, command = %spec.command_line(), error = %e, retry_in_ms = delay.as_millis() as u64, "cannot start process");
                shared.exited(Exit::SpawnFailed(e.to_string()), true);
                if !pause(delay, &mut spec, &mut spec_rx, &stop).await {
                    return;
                }
                continue;
            }
        };
        // Only `None` once reaped, which nothing has done yet; 0 is never
        // signalled.
        let pid = child.id().unwrap_or(0);
        shared.started(Some(pid));
        match run(&mut child, &mut spec, &mut spec_rx, &shared, &stop).await {
            Ended::Exited(status) => {
                let deadline = Instant::now() + spec.grace;
                group::reap_leftovers(&spec.name, pid, spec.stop_signal, deadline).await;
                flush(&mut output).await;
                let exit = match status {
                    Ok(s) => Exit::from_status(s),
                    Err(e) => Exit::SpawnFailed(e.to_string()),
                };
                shared.exited(exit.clone(), true);
                let delay = backoff.after_run(started.elapsed());
                tracing::warn!(process = %spec.name, pid, exit = %exit, restart_in_ms = delay.as_millis() as u64, "process exited; restarting");
                if !pause(delay, &mut spec, &mut spec_rx, &stop).await {
                    return;
                }
            }
            Ended::Stop => {
                stop_child(&mut child, pid, &spec, &shared, &shutdown, &mut output).await;
                return;
            }
            Ended::Changed => {
                tracing::info!(process = %spec.name, "command changed; restarting process");
                stop_child(&mut child, pid, &spec, &shared, &shutdown, &mut output).await;
                spec = spec_rx.borrow_and_update().clone();
                backoff.reset(spec.restart_delay, spec.restart_max_delay);
            }
        }
    }
}

/// The tasks logging a run's stdout and stderr.
type Output = Vec<tokio::task::JoinHandle<()>>;

/// How long a stopped run's last output may take to be logged.
const FLUSH: Duration = Duration::from_secs(1);

/// Waits (bounded) for the run's output to be logged, so its last lines
/// come before the exit in the log.
async fn flush(output: &mut Output) {
    let all = futures_util::future::join_all(output.drain(..));
    let _ = tokio::time::timeout(FLUSH, all).await;
}

fn spawn(spec: &ProcessSpec) -> std::io::Result<(Child, Output)> {
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        // systemd's readiness socket is portico's: php-fpm built with
        // systemd support would report itself ready on it in our name.
        .env_remove("NOTIFY_SOCKET")
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so signals reach what it starts; and never left
        // running if this task is dropped without stopping it.
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = &spec.cwd {
        cmd.current_dir(dir);
    }
    let mut child = cmd.spawn()?;
    // Logged before the output readers exist, so the process's first line
    // can never come before it in the log.
    let pid = child.id().unwrap_or(0);
    tracing::info!(process = %spec.name, pid, command = %spec.command_line(), "process started");
    // The readers end at end of file, when the last writer of the pipe
    // (the process, or what it left behind) is gone.
    let mut readers = Vec::with_capacity(2);
    if let Some(out) = child.stdout.take() {
        readers.push(tokio::spawn(output::log_lines(
            out,
            spec.name.clone(),
            "stdout",
        )));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(tokio::spawn(output::log_lines(
            err,
            spec.name.clone(),
            "stderr",
        )));
    }
    Ok((child, readers))
}

/// Waits for the run to end, marking the process ready when its probe
/// succeeds. A reload that keeps the command updates `spec` in place.
async fn run(
    child: &mut Child,
    spec: &mut Arc<ProcessSpec>,
    spec_rx: &mut watch::Receiver<Arc<ProcessSpec>>,
    shared: &Shared,
    stop: &CancellationToken,
) -> Ended {
    let name = spec.name.clone();
    let probe = probe::until_ready(spec.ready.clone(), &name);
    tokio::pin!(probe);
    let mut probing = true;
    loop {
        tokio::select! {
            status = child.wait() => return Ended::Exited(status),
            _ = stop.cancelled() => return Ended::Stop,
            _ = &mut probe, if probing => {
                probing = false;
                shared.set_ready(true);
                tracing::info!(process = %name, "process ready");
            }
            changed = spec_rx.changed() => {
                if changed.is_err() {
                    return Ended::Stop;
                }
                let new = spec_rx.borrow_and_update().clone();
                if !new.same_run(spec) {
                    return Ended::Changed;
                }
                *spec = new;
            }
        }
    }
}

/// Sleeps `delay` before a restart; false when the process is to stop
/// instead. A reload during the pause takes effect at once.
async fn pause(
    delay: Duration,
    spec: &mut Arc<ProcessSpec>,
    spec_rx: &mut watch::Receiver<Arc<ProcessSpec>>,
    stop: &CancellationToken,
) -> bool {
    let sleep = tokio::time::sleep(delay);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            _ = &mut sleep => return true,
            _ = stop.cancelled() => return false,
            changed = spec_rx.changed() => {
                if changed.is_err() {
                    return false;
                }
                let new = spec_rx.borrow_and_update().clone();
                let restart_now = !new.same_run(spec);
                *spec = new;
                if restart_now {
                    return true;
                }
            }
        }
    }
}

/// The stop signal to the group, then SIGKILL after `grace` (or at once
/// when the shutdown's grace period is over).
async fn stop_child(
    child: &mut Child,
    pid: u32,
    spec: &ProcessSpec,
    shared: &Shared,
    shutdown: &Shutdown,
    output: &mut Output,
) {
    let name = &*spec.name;
    let deadline = Instant::now() + spec.grace;
    tracing::info!(process = name, pid, signal = spec.stop_signal.name(), grace = ?spec.grace, "stopping process");
    group::stop(name, pid, spec.stop_signal);
    let mut cut = false;
    let status = tokio::select! {
        s = tokio::time::timeout(spec.grace, child.wait()) => s.ok(),
        _ = shutdown.aborted() => {
            cut = true;
            None
        }
    };
    let status = match status {
        Some(s) => s,
        None => {
            tracing::warn!(
                process = name,
                pid,
                "process did not stop in time; killing it"
            );
            group::kill(name, pid);
            child.wait().await
        }
    };
    if cut {
        group::kill(name, pid);
    } else {
        group::reap_leftovers(name, pid, spec.stop_signal, deadline).await;
    }
    flush(output).await;
    let exit = match status {
        Ok(s) => Exit::from_status(s),
        Err(e) => Exit::SpawnFailed(e.to_string()),
    };
    tracing::info!(process = name, pid, exit = %exit, "process stopped");
    shared.exited(exit, false);
}
