//! `connections`: open N WebSockets (optionally subscribed), hold them, and
//! report connect rate, failures, connect latency and the server's RSS per
//! connection (`--server-pid`). With `--procs K` the N connections are split
//! over K processes of this binary.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use crate::net::{self, Target};
use crate::procs::{self, Line};
use crate::pusher::{self as p, PONG};
use crate::report::{self, Progress, Report, r1};

/// Options of `connections`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct Args {
    /// Connections to open (over all processes).
    #[arg(short, long, default_value_t = 10_000)]
    n: u64,
    /// Subscribe each connection to one of `--channels` public channels.
    #[arg(long)]
    subscribe: bool,
    /// Channels the subscriptions are spread over (`bench-0` …).
    #[arg(long, default_value_t = 100)]
    channels: u64,
    /// Handshakes in flight at once per process.
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
    /// Seconds to hold the connections once all are up.
    #[arg(long, default_value_t = 10)]
    hold: u64,
    /// The server's pid: its VmRSS is read before and after.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Seconds to wait after the last connect before reading the RSS.
    #[arg(long, default_value_t = 3)]
    settle: u64,
    /// Load-generator processes (each may hold ~19.9k sockets here).
    #[arg(long, default_value_t = 1)]
    procs: u64,
    /// Internal: this process's share, `I/K`.
    #[arg(long, value_parser = procs::parse_shard, hide = true)]
    shard: Option<(u64, u64)>,
}

#[derive(Default)]
struct Stats {
    ok: AtomicU64,
    failed: AtomicU64,
    open: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    hist: Mutex<Option<Histogram<u64>>>,
}

fn hist_json(h: &Histogram<u64>) -> Value {
    Value::Array(
        h.iter_recorded()
            .map(|v| json!([v.value_iterated_to(), v.count_at_value()]))
            .collect(),
    )
}

fn hist_merge(into: &mut Histogram<u64>, v: &Value) {
    for pair in v.as_array().into_iter().flatten() {
        if let (Some(val), Some(n)) = (pair[0].as_u64(), pair[1].as_u64()) {
            let _ = into.record_n(val, n);
        }
    }
}

async fn one(
    t: Arc<Target>,
    tls: Option<tokio_rustls::TlsConnector>,
    i: u64,
    a: Arc<Args>,
    st: Arc<Stats>,
    release: Arc<Notify>,
    sem: Arc<Semaphore>,
) {
    let permit = sem.acquire_owned().await;
    let start = Instant::now();
    let res = async {
        let mut ws = net::ws_connect(&t, tls.as_ref(), i, &net::pusher_path(&t)).await?;
        let sid = p::established(&mut ws).await?;
        if a.subscribe {
            let ch = format!("bench-{}", i % a.channels.max(1));
            p::subscribe(&mut ws, &t, &sid, &ch, None).await?;
        }
        anyhow::Ok(ws)
    }
    .await;
    drop(permit);
    let mut ws = match res {
        Ok(ws) => ws,
        Err(e) => {
            st.failed.fetch_add(1, Ordering::Relaxed);
            let mut msg = format!("{e:#}");
            msg.truncate(80);
            *st.errors.lock().entry(msg).or_default() += 1;
            return;
        }
    };
    if let Some(h) = st.hist.lock().as_mut() {
        let _ = h.record(start.elapsed().as_micros() as u64);
    }
    st.ok.fetch_add(1, Ordering::Relaxed);
    st.open.fetch_add(1, Ordering::Relaxed);
    let released = release.notified();
    tokio::pin!(released);
    loop {
        tokio::select! {
            _ = &mut released => break,
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) if t.contains("pusher:ping") => {
                    if ws.send(Message::text(PONG)).await.is_err() { break; }
                }
                Some(Ok(_)) => {}
                _ => break,
            }
        }
    }
    st.open.fetch_sub(1, Ordering::Relaxed);
    let _ = ws.close(None).await;
}

/// Runs `connections` (as the parent of `--procs` children or as one worker).
pub(crate) async fn run(t: &Target, a: Args, nofile: u64, quiet: bool) -> anyhow::Result<()> {
    if a.procs > 1 && a.shard.is_none() {
        return parent(a, quiet).await;
    }
    let (start_i, end_i) = a.shard.map_or((0, a.n), |s| procs::slice(a.n, s));
    let n = end_i - start_i;
    if n + 64 > nofile && !quiet {
        eprintln!("warning: {n} connections but the open-files limit is {nofile}: use --procs");
    }
    let rss_before = a.server_pid.and_then(report::rss_kib);
    let st = Arc::new(Stats {
        hist: Mutex::new(Some(report::histogram())),
        ..Stats::default()
    });
    let release = Arc::new(Notify::new());
    let sem = Arc::new(Semaphore::new(a.concurrency));
    let t = Arc::new(t.clone());
    let tls = net::connector_for(&t);
    let aa = Arc::new(a.clone());
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(n as usize);
    for i in start_i..end_i {
        tasks.push(tokio::spawn(one(
            t.clone(),
            tls.clone(),
            i,
            aa.clone(),
            st.clone(),
            release.clone(),
            sem.clone(),
        )));
    }
    let mut prog = Progress::new(quiet);
    while st.ok.load(Ordering::Relaxed) + st.failed.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(50)).await;
        prog.tick(|| {
            format!(
                "connected {} failed {} of {n}",
                st.ok.load(Ordering::Relaxed),
                st.failed.load(Ordering::Relaxed)
            )
        });
    }
    prog.done();
    let connect_secs = started.elapsed().as_secs_f64();
    let ok = st.ok.load(Ordering::Relaxed);
    let hist = st.hist.lock().take().unwrap_or_else(report::histogram);
    let mut r = Report::new("connections");
    r.set("connections_ok", ok);
    r.set("connections_failed", st.failed.load(Ordering::Relaxed));
    r.set("connect_secs", r1(connect_secs));
    r.set("connect_rate_per_s", r1(ok as f64 / connect_secs));
    r.latency("connect", &hist);
    r.set("errors", report::errors_json(&st.errors.lock()));
    if a.shard.is_some() {
        let mut ready = r.fields.clone();
        ready.insert("connect_hist".into(), hist_json(&hist));
        println!("READY {}", Value::Object(ready));
    } else if let Some(pid) = a.server_pid {
        tokio::time::sleep(Duration::from_secs(a.settle)).await;
        rss_figures(&mut r, rss_before, report::rss_kib(pid), ok);
    }
    tokio::time::sleep(Duration::from_secs(a.hold)).await;
    r.set("still_open_after_hold", st.open.load(Ordering::Relaxed));
    release.notify_waiters();
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    r.print(quiet);
    Ok(())
}

fn rss_figures(r: &mut Report, before: Option<u64>, after: Option<u64>, ok: u64) {
    if let (Some(b), Some(a)) = (before, after) {
        r.set("server_rss_before_kib", b);
        r.set("server_rss_after_kib", a);
        let per = (a.saturating_sub(b)) as f64 / ok.max(1) as f64;
        r.set("server_rss_per_conn_kib", (per * 100.0).round() / 100.0);
    }
}

async fn parent(a: Args, quiet: bool) -> anyhow::Result<()> {
    let rss_before = a.server_pid.and_then(report::rss_kib);
    let started = Instant::now();
    let (mut children, mut rx) = procs::spawn(a.procs)?;
    let k = a.procs as usize;
    let mut ready: Vec<Option<Value>> = vec![None; k];
    let mut done: Vec<Option<Value>> = vec![None; k];
    let mut prog = Progress::new(quiet);
    let mut connect_secs = 0.0;
    while let Some(line) = rx.recv().await {
        match line {
            Line::Ready(i, v) => ready[i] = Some(v),
            Line::Done(i, v) => done[i] = Some(v),
        }
        let nr = ready.iter().flatten().count();
        prog.tick(|| format!("{nr}/{k} processes connected"));
        if nr == k && connect_secs == 0.0 {
            connect_secs = started.elapsed().as_secs_f64();
            break;
        }
    }
    prog.done();
    let sum = |vs: &[Option<Value>], key: &str| {
        vs.iter()
            .flatten()
            .map(|v| v[key].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    let ok = sum(&ready, "connections_ok");
    let mut r = Report::new("connections");
    r.set("processes", a.procs);
    r.set("connections_ok", ok);
    r.set("connections_failed", sum(&ready, "connections_failed"));
    r.set("connect_secs", r1(connect_secs));
    r.set("connect_rate_per_s", r1(ok as f64 / connect_secs));
    let mut h = report::histogram();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for v in ready.iter().flatten() {
        hist_merge(&mut h, &v["connect_hist"]);
        for (e, n) in v["errors"].as_object().into_iter().flatten() {
            *errors.entry(e.clone()).or_default() += n.as_u64().unwrap_or(0);
        }
    }
    r.latency("connect", &h);
    r.set("errors", report::errors_json(&errors));
    if let Some(pid) = a.server_pid {
        tokio::time::sleep(Duration::from_secs(a.settle)).await;
        rss_figures(&mut r, rss_before, report::rss_kib(pid), ok);
    }
    while let Some(line) = rx.recv().await {
        if let Line::Done(i, v) = line {
            done[i] = Some(v);
        }
        if done.iter().flatten().count() == k {
            break;
        }
    }
    r.set("still_open_after_hold", sum(&done, "still_open_after_hold"));
    for c in &mut children {
        let _ = c.wait().await;
    }
    r.print(quiet);
    Ok(())
}
