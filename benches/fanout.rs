//! The hub's fan-out hot path: one message to N subscribers of one channel
//! (`AppHub::publish` → each socket's bounded queue), timed with criterion,
//! plus a dhat count of heap allocations per publish showing the path
//! allocates nothing per subscriber (house-style rule 23).
//!
//! Run: `cargo bench --bench fanout` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput};
use futures_util::FutureExt;
use portico::hub::{AppHub, Conn, DataKind, Frames, Hub, Message, Origin};
use portico::ws::{Frame, OutboundRx, QueueLimits, outbound};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const CHANNEL: &str = "bench";

struct Setup {
    _hub: Hub,
    app: Arc<AppHub>,
    rxs: Vec<OutboundRx>,
    frames: Frames,
    data: Bytes,
    buf: Vec<Frame>,
}

fn setup(n: usize) -> Setup {
    let hub = Hub::default();
    let app = hub.app("bench");
    let mut rxs = Vec::with_capacity(n);
    for i in 0..n {
        let (tx, rx) = outbound(QueueLimits::default());
        let conn = Arc::new(Conn {
            id: hub.next_conn_id(),
            socket_id: Arc::from(format!("{i}.{i}")),
            codec: 0,
            tx,
        });
        app.subscribe(CHANNEL, &conn)
            .unwrap_or_else(|e| panic!("subscribe: {e}"));
        rxs.push(rx);
    }
    let payload = format!(
        r#"{{"event":"bench","channel":"{CHANNEL}","data":"{}"}}"#,
        "x".repeat(100)
    );
    let mut s = Setup {
        _hub: hub,
        app,
        rxs,
        frames: Frames::One(Frame::from(payload)),
        data: Bytes::from("x".repeat(100)),
        buf: Vec::new(),
    };
    // Warm up: every queue has had a frame once, as a live socket has.
    publish(&s);
    drain(&mut s);
    s
}

fn publish(s: &Setup) -> usize {
    s.app
        .publish(&Message {
            channel: CHANNEL,
            event: "bench",
            data: &s.data,
            kind: DataKind::Text,
            except: None,
            origin: Origin::Rest,
            frames: &s.frames,
        })
        .delivered
}

/// Empties every queue as the writer tasks would (never waits: they are
/// non-empty).
fn drain(s: &mut Setup) {
    for rx in &mut s.rxs {
        if let Some(portico::ws::queue::Work::Frames(v)) =
            rx.next(std::mem::take(&mut s.buf)).now_or_never()
        {
            s.buf = v;
        }
    }
}

fn allocation_report() {
    let _profiler = dhat::Profiler::builder().testing().build();
    println!("allocations per publish (dhat, after one warm-up publish):");
    for n in [1usize, 100, 1_000, 10_000] {
        let mut s = setup(n);
        let before = dhat::HeapStats::get();
        let delivered = publish(&s);
        let after = dhat::HeapStats::get();
        drain(&mut s);
        let blocks = after.total_blocks - before.total_blocks;
        let bytes = after.total_bytes - before.total_bytes;
        assert_eq!(delivered, n);
        println!("  1 -> {n:>6} subscribers: {blocks} allocations, {bytes} bytes");
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("fanout_one_channel");
    g.measurement_time(Duration::from_secs(3));
    for n in [100usize, 1_000, 10_000] {
        let mut s = setup(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    black_box(publish(&s));
                    spent += t.elapsed();
                    drain(&mut s);
                }
                spent
            });
        });
    }
    g.finish();
}

fn main() {
    allocation_report();
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
