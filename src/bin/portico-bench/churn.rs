//! `churn`: W clients each looping connect → subscribe → hold → leave for a
//! duration. With `--presence` they join `presence-bench` as fresh users
//! while `--watchers` long-lived members count the member_added and
//! member_removed events the server fans out (and time member_added from
//! the joiner's subscribe to the watcher).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::net::{self, Target};
use crate::pusher::{self as p, PONG};
use crate::report::{self, Progress, Report, r1};

/// Options of `churn`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct Args {
    /// Concurrent churning clients.
    #[arg(short, long, default_value_t = 100)]
    workers: u64,
    /// Seconds of churn.
    #[arg(short, long, default_value_t = 10)]
    duration: u64,
    /// Milliseconds each client stays subscribed before leaving.
    #[arg(long, default_value_t = 100)]
    hold_ms: u64,
    /// Join `presence-bench` (signed) instead of the public `bench-churn`.
    #[arg(long)]
    presence: bool,
    /// Long-lived presence members counting member_added/removed.
    #[arg(long, default_value_t = 100)]
    watchers: u64,
}

#[derive(Default)]
struct Counts {
    cycles: AtomicU64,
    failed: AtomicU64,
    added: AtomicU64,
    removed: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
}

async fn watcher(
    t: Arc<Target>,
    tls: Option<tokio_rustls::TlsConnector>,
    i: u64,
    c: Arc<Counts>,
    lat: Arc<Mutex<hdrhistogram::Histogram<u64>>>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut ws = net::ws_connect(&t, tls.as_ref(), 2_000_000 + i, &net::pusher_path(&t)).await?;
    let sid = p::established(&mut ws).await?;
    p::subscribe(&mut ws, &t, &sid, "presence-bench", Some(&format!("w{i}"))).await?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                m = ws.next() => match m {
                    Some(Ok(Message::Text(txt))) => {
                        if txt.contains("member_added") {
                            c.added.fetch_add(1, Ordering::Relaxed);
                            if let Some((_, sent)) = p::parse_payload(&txt) {
                                let _ = lat.lock().record(p::now_us().saturating_sub(sent).max(1));
                            }
                        } else if txt.contains("member_removed") {
                            c.removed.fetch_add(1, Ordering::Relaxed);
                        } else if txt.contains("pusher:ping") && ws.send(Message::text(PONG)).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                }
            }
        }
        let _ = ws.close(None).await;
    });
    Ok(())
}

async fn cycle(
    t: &Target,
    tls: Option<&tokio_rustls::TlsConnector>,
    w: u64,
    n: u64,
    presence: bool,
    hold: Duration,
) -> anyhow::Result<()> {
    let mut ws = net::ws_connect(t, tls, w * 1_000 + n % 1_000, &net::pusher_path(t)).await?;
    let sid = p::established(&mut ws).await?;
    if presence {
        // The user id carries the join time so watchers can time member_added.
        let uid = p::payload(w, p::now_us());
        p::subscribe(&mut ws, t, &sid, "presence-bench", Some(&uid)).await?;
    } else {
        p::subscribe(&mut ws, t, &sid, "bench-churn", None).await?;
    }
    tokio::time::sleep(hold).await;
    ws.close(None).await?;
    // Read until the server's close reply so the leave is processed.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    Ok(())
}

/// Runs `churn`.
pub(crate) async fn run(t: &Target, a: Args, quiet: bool) -> anyhow::Result<()> {
    let t = Arc::new(t.clone());
    let tls = net::connector_for(&t);
    let c = Arc::new(Counts::default());
    let stop = CancellationToken::new();
    let member_lat = Arc::new(Mutex::new(report::histogram()));
    if a.presence {
        for i in 0..a.watchers {
            watcher(
                t.clone(),
                tls.clone(),
                i,
                c.clone(),
                member_lat.clone(),
                stop.clone(),
            )
            .await?;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.added.store(0, Ordering::Relaxed);
        c.removed.store(0, Ordering::Relaxed);
    }
    let cycle_lat = Arc::new(Mutex::new(report::histogram()));
    let deadline = Instant::now() + Duration::from_secs(a.duration);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..a.workers {
        let (t, tls, c, cycle_lat) = (t.clone(), tls.clone(), c.clone(), cycle_lat.clone());
        let (presence, hold) = (a.presence, Duration::from_millis(a.hold_ms));
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while Instant::now() < deadline {
                let s = Instant::now();
                match cycle(&t, tls.as_ref(), w, n, presence, hold).await {
                    Ok(()) => {
                        c.cycles.fetch_add(1, Ordering::Relaxed);
                        let spent = s.elapsed().saturating_sub(hold);
                        let _ = cycle_lat.lock().record(spent.as_micros() as u64);
                    }
                    Err(e) => {
                        c.failed.fetch_add(1, Ordering::Relaxed);
                        let mut m = format!("{e:#}");
                        m.truncate(80);
                        *c.errors.lock().entry(m).or_default() += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                n += 1;
            }
        }));
    }
    let mut prog = Progress::new(quiet);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        prog.tick(|| {
            format!(
                "cycles {} failed {} member events {}",
                c.cycles.load(Ordering::Relaxed),
                c.failed.load(Ordering::Relaxed),
                c.added.load(Ordering::Relaxed) + c.removed.load(Ordering::Relaxed)
            )
        });
    }
    for task in tasks {
        let _ = task.await;
    }
    let secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    prog.done();
    stop.cancel();
    let cycles = c.cycles.load(Ordering::Relaxed);
    let mut r = Report::new(if a.presence {
        "churn-presence"
    } else {
        "churn"
    });
    r.set("workers", a.workers);
    r.set("cycles", cycles);
    r.set("cycles_failed", c.failed.load(Ordering::Relaxed));
    r.set("cycles_per_s", r1(cycles as f64 / secs));
    r.latency("connect_subscribe", &cycle_lat.lock());
    if a.presence {
        let (added, removed) = (
            c.added.load(Ordering::Relaxed),
            c.removed.load(Ordering::Relaxed),
        );
        r.set("watchers", a.watchers);
        r.set("member_added_received", added);
        r.set("member_removed_received", removed);
        r.set("member_events_expected", 2 * cycles * a.watchers);
        r.set("member_events_per_s", r1((added + removed) as f64 / secs));
        r.latency("member_added", &member_lat.lock());
    }
    r.set("errors", report::errors_json(&c.errors.lock()));
    r.print(quiet);
    Ok(())
}
