//! Readiness for a service manager: systemd's notify protocol
//! (`sd_notify(3)`), so a `Type=notify` unit counts portico as started only
//! once its listeners are bound, and sees it stopping when it drains.
//!
//! Owns: nothing but the send. Receives: a state line (`READY=1`,
//! `STOPPING=1`, `MAINPID=` after a binary upgrade). Hands on: one datagram to the unix socket named by
//! `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace). Without
//! the variable (not under systemd) it does nothing.
//!
//! Written here rather than taken from a crate: the protocol is one
//! datagram, and `std` has everything it needs.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;

/// The environment variable naming the service manager's socket.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Tells the service manager that portico is serving (`READY=1`).
/// `Ok(false)` when there is no service manager to tell.
pub fn ready() -> io::Result<bool> {
    send(std::env::var_os(NOTIFY_SOCKET), "READY=1\n")
}

/// Tells the service manager that portico is shutting down (`STOPPING=1`).
pub fn stopping() -> io::Result<bool> {
    send(std::env::var_os(NOTIFY_SOCKET), "STOPPING=1\n")
}

/// Tells the service manager that the process `pid` is now the main
/// process (`MAINPID=`): after a binary upgrade, the new portico. Sent by
/// the current main process, so `NotifyAccess=main` accepts it.
pub fn main_pid(pid: u32) -> io::Result<bool> {
    send(std::env::var_os(NOTIFY_SOCKET), &format!("MAINPID={pid}\n"))
}

/// Sends `state` to the socket `addr` names; `Ok(false)` when it names none.
fn send(addr: Option<OsString>, state: &str) -> io::Result<bool> {
    let Some(addr) = addr.filter(|a| !a.is_empty()) else {
        return Ok(false);
    };
    let sock = UnixDatagram::unbound()?;
    let bytes = addr.as_bytes();
    match bytes.first() {
        Some(b'/') => {
            sock.send_to(state.as_bytes(), &addr)?;
        }
        Some(b'@') => send_abstract(&sock, &bytes[1..], state)?,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "{NOTIFY_SOCKET}={} is neither a path nor an @abstract name",
                    addr.display()
                ),
            ));
        }
    }
    Ok(true)
}

#[cfg(target_os = "linux")]
fn send_abstract(sock: &UnixDatagram, name: &[u8], state: &str) -> io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    sock.send_to_addr(state.as_bytes(), &addr).map(drop)
}

#[cfg(not(target_os = "linux"))]
fn send_abstract(_: &UnixDatagram, _: &[u8], _: &str) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract unix sockets exist only on Linux",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receiver(tag: &str) -> (UnixDatagram, std::path::PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("portico-sd-notify-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        (sock, path)
    }

    #[test]
    fn sends_the_state_to_a_path_socket() {
        let (sock, path) = receiver("path");
        assert!(send(Some(path.clone().into()), "READY=1\n").unwrap());
        let mut buf = [0u8; 64];
        let n = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\n");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sends_the_state_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("portico-sd-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        assert!(send(Some(format!("@{name}").into()), "STOPPING=1\n").unwrap());
        let mut buf = [0u8; 64];
        let n = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1\n");
    }

    #[test]
    fn without_a_socket_nothing_is_sent() {
        assert!(!send(None, "READY=1\n").unwrap());
        assert!(!send(Some(OsString::new()), "READY=1\n").unwrap());
    }

    #[test]
    fn an_unknown_address_kind_is_an_error() {
        let e = send(Some("vsock:2:1234".into()), "READY=1\n").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
    }
}
