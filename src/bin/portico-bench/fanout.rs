//! `fanout`: S subscribers spread over C channels; REST publishes at a fixed
//! rate for a duration, each carrying its *intended* send time (so a
//! publisher held up by a slow server counts as latency, not as a lower
//! rate); every subscriber records end-to-end latency. Reports deliveries/s,
//! p50/p99/p99.9/max, publish-call latency and lost messages.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::net::{self, HttpConn, Target};
use crate::pusher::{self as p, PONG};
use crate::report::{self, Progress, Report, r1};

/// Options of `fanout`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct Args {
    /// Subscribers (one process holds up to ~19.9k here).
    #[arg(short, long, default_value_t = 1000)]
    subscribers: u64,
    /// Channels; subscriber i joins `bench-{i % C}`, publishes go round-robin.
    #[arg(short, long, default_value_t = 1)]
    channels: u64,
    /// REST publishes per second (over all channels).
    #[arg(short, long, default_value_t = 100.0)]
    rate: f64,
    /// Seconds of publishing.
    #[arg(short, long, default_value_t = 10)]
    duration: u64,
    /// Concurrent REST connections publishing.
    #[arg(long, default_value_t = 8)]
    publishers: usize,
    /// Most seconds to wait for outstanding deliveries after the last publish.
    #[arg(long, default_value_t = 30)]
    drain: u64,
    /// Handshakes in flight at once while subscribing.
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
}

const SHARDS: usize = 16;

struct Shared {
    received: AtomicU64,
    closed: AtomicU64,
    last_rx_us: AtomicU64,
    lat: Vec<Mutex<Histogram<u64>>>,
}

/// What every subscriber task shares.
#[derive(Clone)]
struct Ctx {
    t: Arc<Target>,
    tls: Option<tokio_rustls::TlsConnector>,
    sh: Arc<Shared>,
    stop: CancellationToken,
    ready: mpsc::UnboundedSender<bool>,
    sem: Arc<Semaphore>,
}

async fn subscriber(cx: Ctx, i: u64, ch: String) {
    let Ctx {
        t,
        tls,
        sh,
        stop,
        ready,
        sem,
    } = cx;
    let permit = sem.acquire_owned().await;
    let res = async {
        let mut ws = net::ws_connect(&t, tls.as_ref(), i, &net::pusher_path(&t)).await?;
        let sid = p::established(&mut ws).await?;
        p::subscribe(&mut ws, &t, &sid, &ch, None).await?;
        anyhow::Ok(ws)
    }
    .await;
    drop(permit);
    let Ok(mut ws) = res else {
        let _ = ready.send(false);
        return;
    };
    let _ = ready.send(true);
    let shard = &sh.lat[i as usize % SHARDS];
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            m = ws.next() => match m {
                Some(Ok(Message::Text(txt))) => {
                    if let Some((_, sent)) = p::parse_payload(&txt) {
                        let now = p::now_us();
                        let _ = shard.lock().record(now.saturating_sub(sent).max(1));
                        sh.received.fetch_add(1, Ordering::Relaxed);
                        sh.last_rx_us.fetch_max(now, Ordering::Relaxed);
                    } else if txt.contains("pusher:ping") && ws.send(Message::text(PONG)).await.is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                _ => {
                    sh.closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }
    let _ = ws.close(None).await;
}

/// Runs `fanout`.
pub(crate) async fn run(t: &Target, a: Args, quiet: bool) -> anyhow::Result<()> {
    let t = Arc::new(t.clone());
    let tls = net::connector_for(&t);
    let c = a.channels.max(1);
    let sh = Arc::new(Shared {
        received: AtomicU64::new(0),
        closed: AtomicU64::new(0),
        last_rx_us: AtomicU64::new(0),
        lat: (0..SHARDS)
            .map(|_| Mutex::new(report::histogram()))
            .collect(),
    });
    let stop = CancellationToken::new();
    let (rtx, mut rrx) = mpsc::unbounded_channel();
    let sem = Arc::new(Semaphore::new(a.concurrency));
    let mut per_channel = vec![0u64; c as usize];
    let cx = Ctx {
        t: t.clone(),
        tls: tls.clone(),
        sh: sh.clone(),
        stop: stop.clone(),
        ready: rtx,
        sem,
    };
    for i in 0..a.subscribers {
        per_channel[(i % c) as usize] += 1;
        tokio::spawn(subscriber(cx.clone(), i, format!("bench-{}", i % c)));
    }
    drop(cx);
    let mut prog = Progress::new(quiet);
    let (mut up, mut failed) = (0u64, 0u64);
    let t0 = Instant::now();
    while up + failed < a.subscribers {
        match rrx.recv().await {
            Some(true) => up += 1,
            Some(false) => failed += 1,
            None => break,
        }
        prog.tick(|| format!("subscribed {up} failed {failed} of {}", a.subscribers));
    }
    prog.done();
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} subscribers failed to connect: fix that first",
            a.subscribers
        );
    }
    let subscribe_secs = t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Publishers pull (seq, intended time) from one queue.
    let (ptx, prx) = mpsc::channel::<(u64, u64)>(100_000);
    let prx = Arc::new(tokio::sync::Mutex::new(prx));
    let expected = Arc::new(AtomicU64::new(0));
    let published = Arc::new(AtomicU64::new(0));
    let pub_failed = Arc::new(AtomicU64::new(0));
    let pub_lat = Arc::new(Mutex::new(report::histogram()));
    let pub_errors = Arc::new(Mutex::new(std::collections::BTreeMap::<String, u64>::new()));
    let per_channel = Arc::new(per_channel);
    let mut pubs = Vec::new();
    for w in 0..a.publishers {
        let (t, tls, prx) = (t.clone(), tls.clone(), prx.clone());
        let pub_errors = pub_errors.clone();
        let (expected, published, pub_failed, pub_lat, per_channel) = (
            expected.clone(),
            published.clone(),
            pub_failed.clone(),
            pub_lat.clone(),
            per_channel.clone(),
        );
        pubs.push(tokio::spawn(async move {
            let mut http: Option<HttpConn> = None;
            loop {
                let Some((seq, intended)) = prx.lock().await.recv().await else {
                    break;
                };
                let ch_idx = (seq % c) as usize;
                let ch = format!("bench-{ch_idx}");
                let t_start = Instant::now();
                // One retry on a fresh connection: a server may close an idle
                // keep-alive connection just as we reuse it.
                let mut res = Err(anyhow::anyhow!("not sent"));
                for _ in 0..2 {
                    if http.as_ref().is_none_or(|h| h.closed) {
                        http = HttpConn::open(&t, tls.as_ref(), 1_000_000 + w as u64)
                            .await
                            .ok();
                    }
                    res = match http.as_mut() {
                        Some(h) => {
                            p::publish(h, &t, &[&ch], "bench", &p::payload(seq, intended)).await
                        }
                        None => Err(anyhow::anyhow!("cannot connect for REST")),
                    };
                    if res.is_ok() {
                        break;
                    }
                    http = None;
                }
                if let Err(e) = &res {
                    let mut m = format!("{e:#}");
                    m.truncate(80);
                    *pub_errors.lock().entry(m).or_default() += 1;
                }
                let ok = res.is_ok();
                if ok {
                    published.fetch_add(1, Ordering::Relaxed);
                    expected.fetch_add(per_channel[ch_idx], Ordering::Relaxed);
                    let _ = pub_lat.lock().record(t_start.elapsed().as_micros() as u64);
                } else {
                    http = None;
                    pub_failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let interval = Duration::from_secs_f64(1.0 / a.rate);
    let total = (a.rate * a.duration as f64).round() as u64;
    let pub_start = Instant::now();
    let first_us = p::now_us();
    for seq in 0..total {
        let due = pub_start + interval.mul_f64(seq as f64);
        tokio::time::sleep_until(due.into()).await;
        let _ = ptx
            .send((seq, first_us + (due - pub_start).as_micros() as u64))
            .await;
        prog.tick(|| {
            format!(
                "published {} received {}",
                published.load(Ordering::Relaxed),
                sh.received.load(Ordering::Relaxed)
            )
        });
    }
    drop(ptx);
    for p in pubs {
        let _ = p.await;
    }
    let drain_end = Instant::now() + Duration::from_secs(a.drain);
    let mut last = (sh.received.load(Ordering::Relaxed), Instant::now());
    while Instant::now() < drain_end {
        let got = sh.received.load(Ordering::Relaxed);
        if got >= expected.load(Ordering::Relaxed) {
            break;
        }
        if got != last.0 {
            last = (got, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        prog.tick(|| {
            format!(
                "draining: received {got} of {}",
                expected.load(Ordering::Relaxed)
            )
        });
    }
    prog.done();
    stop.cancel();
    let received = sh.received.load(Ordering::Relaxed);
    let exp = expected.load(Ordering::Relaxed);
    let span_s = (sh
        .last_rx_us
        .load(Ordering::Relaxed)
        .saturating_sub(first_us)) as f64
        / 1e6;
    let mut lat = report::histogram();
    for h in &sh.lat {
        let _ = lat.add(&*h.lock());
    }
    let mut r = Report::new("fanout");
    r.set("subscribers", a.subscribers);
    r.set("channels", c);
    r.set("subscribe_secs", r1(subscribe_secs));
    r.set("publish_rate_offered", a.rate);
    r.set("publishes_ok", published.load(Ordering::Relaxed));
    r.set("publishes_failed", pub_failed.load(Ordering::Relaxed));
    r.set("errors", report::errors_json(&pub_errors.lock()));
    r.set(
        "deliveries_offered_per_s",
        r1(a.rate * a.subscribers as f64 / c as f64),
    );
    r.set("deliveries_expected", exp);
    r.set("deliveries_received", received);
    r.set("lost", exp.saturating_sub(received));
    r.set("deliveries_per_s", r1(received as f64 / span_s.max(1e-3)));
    r.set(
        "subscribers_closed_by_server",
        sh.closed.load(Ordering::Relaxed),
    );
    r.latency("latency", &lat);
    r.latency("publish_call", &pub_lat.lock());
    r.print(quiet);
    Ok(())
}
