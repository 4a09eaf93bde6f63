//! A raw WebSocket client over TCP: the HTTP handshake written by hand and
//! a small frame encoder (masked, as a client must) and decoder, so tests
//! can send what a WebSocket library refuses to (invalid UTF-8, reserved
//! close codes).

use std::net::SocketAddr;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::WAIT;

pub(crate) const CONTINUATION: u8 = 0x0;
pub(crate) const TEXT: u8 = 0x1;
pub(crate) const CLOSE: u8 = 0x8;
pub(crate) const PING: u8 = 0x9;
pub(crate) const PONG: u8 = 0xA;

/// One frame.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub(crate) fin: bool,
    pub(crate) opcode: u8,
    pub(crate) payload: Vec<u8>,
}

impl Frame {
    pub(crate) fn new(opcode: u8, payload: Vec<u8>, fin: bool) -> Frame {
        Frame {
            fin,
            opcode,
            payload,
        }
    }

    /// A whole text message (the bytes are sent as they are).
    pub(crate) fn text(payload: &[u8]) -> Frame {
        Frame::new(TEXT, payload.to_vec(), true)
    }

    pub(crate) fn fragment(opcode: u8, payload: &[u8], fin: bool) -> Frame {
        Frame::new(opcode, payload.to_vec(), fin)
    }

    pub(crate) fn close(code: u16, reason: &[u8]) -> Frame {
        let mut p = code.to_be_bytes().to_vec();
        p.extend_from_slice(reason);
        Frame::new(CLOSE, p, true)
    }

    /// The frame on the wire, masked with a fixed key.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        let len = self.payload.len();
        let mut out = Vec::with_capacity(len + 14);
        out.push(u8::from(self.fin) << 7 | self.opcode);
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if len <= usize::from(u16::MAX) {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(&mask);
        out.extend(
            self.payload
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4]),
        );
        out
    }
}

/// The code of a close frame's payload.
pub(crate) fn close_code(payload: &[u8]) -> Option<u16> {
    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))
}

/// How a socket ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// A close frame with this code.
    Close(Option<u16>),
    /// The stream ended (or failed) without a close frame.
    Eof,
    /// Nothing within the wait.
    Timeout,
}

/// The headers of a valid upgrade (RFC 6455's example key).
pub(crate) fn good_headers() -> Vec<(&'static str, String)> {
    vec![
        ("Upgrade", "websocket".into()),
        ("Connection", "Upgrade".into()),
        ("Sec-WebSocket-Version", "13".into()),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==".into()),
    ]
}

/// A header's value in a response head (case-insensitive name).
pub(crate) fn header(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// Sends a GET with `headers` to `path`; the status, the response head,
/// and the socket (with any bytes read past the head).
pub(crate) async fn handshake(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, String)],
) -> (u16, String, Ws) {
    let mut tcp = tokio::time::timeout(WAIT, TcpStream::connect(addr))
        .await
        .expect("connect timeout")
        .expect("connect");
    tcp.set_nodelay(true).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, tcp.read(&mut chunk))
            .await
            .expect("response timeout")
            .expect("read");
        assert!(n > 0, "EOF before a response head: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status: {head}"));
    let (rd, wr) = tcp.into_split();
    let ws = Ws {
        rd: Reader {
            rd,
            buf: buf[end..].to_vec(),
        },
        wr: Writer { wr },
    };
    (status, head, ws)
}

/// Both halves of a raw socket.
pub(crate) struct Ws {
    rd: Reader,
    wr: Writer,
}

impl Ws {
    pub(crate) fn split(self) -> (Reader, Writer) {
        (self.rd, self.wr)
    }

    pub(crate) async fn send(&mut self, f: &Frame) {
        self.wr.write(&f.encode()).await.expect("send");
    }

    /// The next text message as JSON (skipping control frames); `None` at
    /// a close or EOF.
    pub(crate) async fn next_json(&mut self) -> Option<Value> {
        loop {
            let f = tokio::time::timeout(WAIT, self.rd.next_frame())
                .await
                .expect("no message within the wait")?;
            match f.opcode {
                TEXT => return Some(serde_json::from_slice(&f.payload).expect("JSON")),
                CLOSE => return None,
                _ => {}
            }
        }
    }

    /// Reads (skipping data) until the close frame or the end.
    pub(crate) async fn until_close(&mut self) -> Ended {
        loop {
            match tokio::time::timeout(WAIT, self.rd.next_frame()).await {
                Err(_) => return Ended::Timeout,
                Ok(None) => return Ended::Eof,
                Ok(Some(f)) if f.opcode == CLOSE => return Ended::Close(close_code(&f.payload)),
                Ok(Some(f)) if f.opcode == PING => {
                    let _ = self
                        .wr
                        .write(&Frame::new(PONG, f.payload, true).encode())
                        .await;
                }
                Ok(Some(_)) => {}
            }
        }
    }
}

/// The read half: decodes the server's (unmasked) frames.
pub(crate) struct Reader {
    rd: OwnedReadHalf,
    buf: Vec<u8>,
}

impl Reader {
    /// The next frame, or `None` at EOF or a read error.
    pub(crate) async fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some((f, used)) = decode(&self.buf) {
                self.buf.drain(..used);
                return Some(f);
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.rd.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// The write half.
pub(crate) struct Writer {
    wr: OwnedWriteHalf,
}

impl Writer {
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.wr.write_all(bytes).await
    }
}

/// One frame from the front of `buf` and the bytes it took.
fn decode(buf: &[u8]) -> Option<(Frame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let fin = buf[0] & 0x80 != 0;
    let opcode = buf[0] & 0x0F;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7F {
        126 => (
            usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
            4,
        ),
        127 => {
            let b: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            (usize::try_from(u64::from_be_bytes(b)).ok()?, 10)
        }
        n => (usize::from(n), 2),
    };
    let mask = if masked {
        let m: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(m)
    } else {
        None
    };
    let mut payload = buf.get(at..at + len)?.to_vec();
    if let Some(m) = mask {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= m[i % 4];
        }
    }
    Some((Frame::new(opcode, payload, fin), at + len))
}
