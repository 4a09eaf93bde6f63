//! Edge workloads: new connections per second (full TLS handshakes with
//! `--tls`, resumption off, one `Connection: close` request each), WebSocket
//! echo round trips through a proxy, and the echo upstream itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

use crate::net::{self, Target};
use crate::report::{self, Progress, Report, r1};

/// Options of `handshakes`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct HandshakeArgs {
    /// Connections in flight at once.
    #[arg(short, long, default_value_t = 32)]
    concurrency: u64,
    /// Seconds to run.
    #[arg(short, long, default_value_t = 10)]
    duration: u64,
    /// Request path.
    #[arg(long, default_value = "/")]
    path: String,
}

/// Options of `ws-echo`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct EchoArgs {
    /// WebSocket connections, each with one message in flight.
    #[arg(short, long, default_value_t = 64)]
    connections: u64,
    /// Seconds to run.
    #[arg(short, long, default_value_t = 10)]
    duration: u64,
    /// Request path (routed by the proxy to the echo upstream).
    #[arg(long, default_value = "/ws")]
    path: String,
    /// Message size in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
}

/// Options of `echo-server`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct EchoServerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9001")]
    listen: SocketAddr,
}

/// Runs `handshakes`.
pub(crate) async fn handshakes(t: &Target, a: HandshakeArgs, quiet: bool) -> anyhow::Result<()> {
    let t = Arc::new(t.clone());
    let tls = t.tls.then(|| net::tls_connector(true, false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let lat = Arc::new(Mutex::new(report::histogram()));
    let deadline = Instant::now() + Duration::from_secs(a.duration);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..a.concurrency {
        let (t, tls, done, failed, lat, path) = (
            t.clone(),
            tls.clone(),
            done.clone(),
            failed.clone(),
            lat.clone(),
            a.path.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            let req =
                format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
            let mut buf = vec![0u8; 4096];
            while Instant::now() < deadline {
                let s = Instant::now();
                let r = async {
                    let mut c = net::connect(&t, tls.as_ref(), i).await?;
                    c.write_all(req.as_bytes()).await?;
                    let mut got = Vec::new();
                    loop {
                        let n = c.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        got.extend_from_slice(&buf[..n]);
                    }
                    anyhow::ensure!(got.starts_with(b"HTTP/1.1 200"), "not a 200");
                    anyhow::Ok(())
                }
                .await;
                match r {
                    Ok(()) => {
                        done.fetch_add(1, Ordering::Relaxed);
                        let _ = lat.lock().record(s.elapsed().as_micros() as u64);
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                i += a.concurrency;
            }
        }));
    }
    let mut prog = Progress::new(quiet);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        prog.tick(|| {
            format!(
                "connections {} failed {}",
                done.load(Ordering::Relaxed),
                failed.load(Ordering::Relaxed)
            )
        });
    }
    for task in tasks {
        let _ = task.await;
    }
    prog.done();
    let secs = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    let mut r = Report::new(if t.tls {
        "tls-handshakes"
    } else {
        "new-connections"
    });
    r.set("concurrency", a.concurrency);
    r.set("completed", n);
    r.set("failed", failed.load(Ordering::Relaxed));
    r.set("per_s", r1(n as f64 / secs));
    r.latency("connection", &lat.lock());
    r.print(quiet);
    Ok(())
}

/// Runs `ws-echo`.
pub(crate) async fn ws_echo(t: &Target, a: EchoArgs, quiet: bool) -> anyhow::Result<()> {
    let t = Arc::new(t.clone());
    let tls = net::connector_for(&t);
    let mut socks = Vec::new();
    for i in 0..a.connections {
        socks.push(net::ws_connect(&t, tls.as_ref(), i, &a.path).await?);
    }
    let trips = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let lat = Arc::new(Mutex::new(report::histogram()));
    let deadline = Instant::now() + Duration::from_secs(a.duration);
    let started = Instant::now();
    let msg = "x".repeat(a.size);
    let mut tasks = Vec::new();
    for mut ws in socks {
        let (trips, failed, lat, msg) = (trips.clone(), failed.clone(), lat.clone(), msg.clone());
        tasks.push(tokio::spawn(async move {
            let mut h = report::histogram();
            while Instant::now() < deadline {
                let s = Instant::now();
                if ws.send(Message::text(msg.clone())).await.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                match ws.next().await {
                    Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                        trips.fetch_add(1, Ordering::Relaxed);
                        let _ = h.record(s.elapsed().as_micros() as u64);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
            let _ = lat.lock().add(&h);
            let _ = ws.close(None).await;
        }));
    }
    let mut prog = Progress::new(quiet);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        prog.tick(|| format!("round trips {}", trips.load(Ordering::Relaxed)));
    }
    for task in tasks {
        let _ = task.await;
    }
    prog.done();
    let secs = started.elapsed().as_secs_f64();
    let n = trips.load(Ordering::Relaxed);
    let mut r = Report::new("ws-echo");
    r.set("connections", a.connections);
    r.set("round_trips", n);
    r.set("failed", failed.load(Ordering::Relaxed));
    r.set("round_trips_per_s", r1(n as f64 / secs));
    r.latency("round_trip", &lat.lock());
    r.print(quiet);
    Ok(())
}

/// Runs `echo-server` until killed.
pub(crate) async fn echo_server(a: EchoServerArgs) -> anyhow::Result<()> {
    let l = TcpListener::bind(a.listen).await?;
    eprintln!("echo-server listening on {}", l.local_addr()?);
    loop {
        let (s, _) = l.accept().await?;
        let _ = s.set_nodelay(true);
        tokio::spawn(async move {
            let Ok(mut ws) =
                tokio_tungstenite::accept_async_with_config(s, Some(net::ws_config())).await
            else {
                return;
            };
            while let Some(Ok(m)) = ws.next().await {
                let data = matches!(m, Message::Text(_) | Message::Binary(_));
                if matches!(m, Message::Close(_)) || (data && ws.send(m).await.is_err()) {
                    break;
                }
            }
        });
    }
}
