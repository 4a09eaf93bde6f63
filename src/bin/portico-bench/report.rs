//! Results: a two-column table on stderr-free stdout plus one JSON object,
//! latency summaries from HdrHistogram, the progress line, the server's RSS
//! from `/proc/PID/status`, and raising the open-files limit.

use std::io::Write;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};

/// An ordered list of named figures printed as a table and as JSON.
#[derive(Default)]
pub(crate) struct Report {
    pub(crate) fields: Map<String, Value>,
}

impl Report {
    /// A report for `workload`.
    pub(crate) fn new(workload: &str) -> Report {
        let mut r = Report::default();
        r.set("workload", workload);
        r
    }

    /// Sets one figure.
    pub(crate) fn set(&mut self, k: &str, v: impl Into<Value>) {
        self.fields.insert(k.to_owned(), v.into());
    }

    /// Adds p50/p99/p99.9/max (ms) of `h` (recorded in µs) under `prefix`.
    pub(crate) fn latency(&mut self, prefix: &str, h: &Histogram<u64>) {
        self.set(&format!("{prefix}_samples"), h.len());
        for (name, q) in [("p50", 0.5), ("p99", 0.99), ("p999", 0.999)] {
            self.set(&format!("{prefix}_{name}_ms"), ms(h.value_at_quantile(q)));
        }
        self.set(&format!("{prefix}_max_ms"), ms(h.max()));
    }

    /// Prints the table (unless `json_only`) and the JSON line.
    pub(crate) fn print(&self, json_only: bool) {
        if !json_only {
            let w = self.fields.keys().map(String::len).max().unwrap_or(0);
            println!("{:-<1$}", "", w + 24);
            for (k, v) in &self.fields {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                println!("{k:<w$}  {v}");
            }
            println!("{:-<1$}", "", w + 24);
        }
        println!("JSON {}", Value::Object(self.fields.clone()));
    }
}

fn ms(us: u64) -> f64 {
    (us as f64 / 1000.0 * 1000.0).round() / 1000.0
}

/// A histogram of µs from 1 µs to 10 min, 3 significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| unreachable!("valid bounds"))
}

/// Rounds to 1 decimal.
pub(crate) fn r1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// `VmRSS` of `pid` in KiB.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Raises the soft open-files limit to the hard limit; returns the new soft limit.
pub(crate) fn raise_nofile() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(_) => rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(s, _)| s),
    }
}

/// A progress line on stderr, redrawn at most every 500 ms.
pub(crate) struct Progress {
    last: Instant,
    start: Instant,
    quiet: bool,
}

impl Progress {
    /// Starts the clock.
    pub(crate) fn new(quiet: bool) -> Progress {
        let now = Instant::now();
        Progress {
            last: now - Duration::from_secs(1),
            start: now,
            quiet,
        }
    }

    /// Redraws `msg` if it is time.
    pub(crate) fn tick(&mut self, msg: impl FnOnce() -> String) {
        if self.quiet || self.last.elapsed() < Duration::from_millis(500) {
            return;
        }
        self.last = Instant::now();
        let mut e = std::io::stderr().lock();
        let _ = write!(
            e,
            "\r\x1b[2K[{:>6.1}s] {}",
            self.start.elapsed().as_secs_f64(),
            msg()
        );
        let _ = e.flush();
    }

    /// Ends the line.
    pub(crate) fn done(&self) {
        if !self.quiet {
            eprintln!();
        }
    }
}

/// `{"error": ...}` counts by message, for failure breakdowns.
pub(crate) fn errors_json(errs: &std::collections::BTreeMap<String, u64>) -> Value {
    json!(errs)
}
