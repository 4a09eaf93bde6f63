//! A real local HTTP receiver for webhooks: every POSTed
//! `{"time_ms","events":[…]}` is answered 200 and its events collected.

use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The receiver; its task ends with the test's runtime.
pub(crate) struct Hooks {
    pub(crate) addr: SocketAddr,
    events: Arc<Mutex<Vec<Value>>>,
}

impl Hooks {
    pub(crate) async fn start() -> Hooks {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let events: Arc<Mutex<Vec<Value>>> = Arc::default();
        let ev = events.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(serve(s, ev.clone()));
            }
        });
        Hooks { addr, events }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    /// How many received events are `name` on `channel` (with `user_id`).
    pub(crate) fn count(&self, name: &str, channel: &str, user: Option<&str>) -> usize {
        self.events
            .lock()
            .iter()
            .filter(|e| {
                e["name"] == name
                    && e["channel"] == channel
                    && user.is_none_or(|u| e["user_id"] == u)
            })
            .count()
    }

    /// Waits (bounded: 100 × 100 ms) until that event arrived at least once.
    pub(crate) async fn wait_for(&self, name: &str, channel: &str, user: Option<&str>) {
        for _ in 0..100 {
            if self.count(name, channel, user) > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "no webhook {name} on {channel} ({user:?}); got {:?}",
            self.events.lock()
        );
    }
}

/// One connection: requests until it closes (bounded per request).
async fn serve(mut s: TcpStream, events: Arc<Mutex<Vec<Value>>>) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout(Duration::from_secs(30), s.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return,
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return,
            }
        }
        let body: Vec<u8> = buf.drain(..head_end + len).skip(head_end).collect();
        if let Ok(v) = serde_json::from_slice::<Value>(&body)
            && let Some(evs) = v["events"].as_array()
        {
            events.lock().extend(evs.iter().cloned());
        }
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        if s.write_all(ok).await.is_err() {
            return;
        }
    }
}
