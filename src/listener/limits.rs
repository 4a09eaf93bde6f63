//! Connection caps held from accept until the socket closes — through TLS,
//! HTTP and any WebSocket upgrade — because the guards travel with the
//! socket itself ([`Guarded`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Global and per-IP connection limits.
#[derive(Debug)]
pub struct Limits {
    global: Arc<Semaphore>,
    per_ip: Arc<parking_lot::Mutex<HashMap<IpAddr, usize>>>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Global,
    PerIp,
}

/// Proof that a connection fits under the caps; releases its slots on drop.
#[derive(Debug)]
pub struct ConnGuard {
    _permit: OwnedSemaphorePermit,
    ip: IpAddr,
    per_ip: Arc<parking_lot::Mutex<HashMap<IpAddr, usize>>>,
}

impl Limits {
    pub fn new(max_connections: usize) -> Self {
        Limits {
            global: Arc::new(Semaphore::new(max_connections)),
            per_ip: Arc::default(),
        }
    }

    /// Takes a slot for a connection from `ip`, or says which cap is full.
    pub fn try_admit(&self, ip: IpAddr, per_ip_max: usize) -> Result<ConnGuard, Refused> {
        let permit = self
            .global
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refused::Global)?;
        let mut map = self.per_ip.lock();
        let n = map.entry(ip).or_insert(0);
        if *n >= per_ip_max {
            return Err(Refused::PerIp);
        }
        *n += 1;
        drop(map);
        Ok(ConnGuard {
            _permit: permit,
            ip,
            per_ip: self.per_ip.clone(),
        })
    }

    /// Connections currently held.
    pub fn in_use(&self, max: usize) -> usize {
        max.saturating_sub(self.global.available_permits())
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut map = self.per_ip.lock();
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// An I/O stream that carries its [`ConnGuard`] for as long as it lives.
#[derive(Debug)]
pub struct Guarded<I> {
    io: I,
    _guard: ConnGuard,
}

impl<I> Guarded<I> {
    pub fn new(io: I, guard: ConnGuard) -> Self {
        Guarded { io, _guard: guard }
    }
}

impl<I: crate::io::movable::Movable> crate::io::movable::Movable for Guarded<I> {
    fn detach(&mut self) -> std::io::Result<()> {
        self.io.detach()
    }

    fn attach(&mut self) -> std::io::Result<()> {
        self.io.attach()
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Guarded<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

crate::io::write_through::write_through!(Guarded);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_and_releases() {
        let l = Limits::new(3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let g1 = l.try_admit(a, 2).unwrap();
        let _g2 = l.try_admit(a, 2).unwrap();
        assert_eq!(l.try_admit(a, 2).unwrap_err(), Refused::PerIp);
        let _g3 = l.try_admit(b, 2).unwrap();
        assert_eq!(l.try_admit(b, 2).unwrap_err(), Refused::Global);
        drop(g1);
        assert!(l.try_admit(a, 2).is_ok());
    }
}
