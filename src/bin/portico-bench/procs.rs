//! Running one workload over several processes of this binary: the open
//! files limit is per process (20000 here and not raisable), so 100k client
//! sockets need at least six load-generator processes.
//!
//! The parent re-executes itself with the same arguments plus
//! `--shard I/K`; each child prints `READY {json}` when its connections are
//! up and `JSON {json}` at the end; the parent collects both.

use std::process::Stdio;

use anyhow::Context as _;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// One line a child printed.
pub(crate) enum Line {
    /// The child's connections are up.
    Ready(usize, Value),
    /// The child's final figures.
    Done(usize, Value),
}

/// Which part of the work this process does: `(index, count)`.
pub(crate) fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (i, k) = s.split_once('/').ok_or("expected I/K")?;
    let i: u64 = i.parse().map_err(|_| "bad I")?;
    let k: u64 = k.parse().map_err(|_| "bad K")?;
    if k == 0 || i >= k {
        return Err("need I < K".into());
    }
    Ok((i, k))
}

/// The slice `[start, end)` of `n` items that shard `(i, k)` takes.
pub(crate) fn slice(n: u64, (i, k): (u64, u64)) -> (u64, u64) {
    let per = n / k;
    let extra = n % k;
    let start = i * per + i.min(extra);
    (start, start + per + u64::from(i < extra))
}

/// Starts `k` children running this binary with our arguments (minus
/// `--procs`) plus `--shard i/k --json`; their lines arrive on the receiver.
pub(crate) fn spawn(k: u64) -> anyhow::Result<(Vec<Child>, mpsc::UnboundedReceiver<Line>)> {
    let exe = std::env::current_exe().context("current_exe")?;
    let mut args: Vec<String> = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        if a == "--procs" {
            it.next();
        } else if !a.starts_with("--procs=") {
            args.push(a);
        }
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let mut children = Vec::new();
    for i in 0..k {
        let mut child = Command::new(&exe)
            .args(&args)
            .arg("--shard")
            .arg(format!("{i}/{k}"))
            .arg("--json")
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("spawning a load-generator process")?;
        let out = child.stdout.take().context("child stdout")?;
        let tx = tx.clone();
        let idx = i as usize;
        tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                let parsed = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
                if let Some(j) = l.strip_prefix("READY ") {
                    let _ = tx.send(Line::Ready(idx, parsed(j)));
                } else if let Some(j) = l.strip_prefix("JSON ") {
                    let _ = tx.send(Line::Done(idx, parsed(j)));
                }
            }
        });
        children.push(child);
    }
    Ok((children, rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_everything_once() {
        let mut next = 0;
        for i in 0..7 {
            let (s, e) = slice(100, (i, 7));
            assert_eq!(s, next);
            next = e;
        }
        assert_eq!(next, 100);
        assert_eq!(parse_shard("2/5"), Ok((2, 5)));
        assert!(parse_shard("5/5").is_err());
    }
}
