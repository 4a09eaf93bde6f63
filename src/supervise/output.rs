//! A process's stdout and stderr, logged line by line with its name.
//!
//! Owns: splitting a byte stream into lines of bounded length (a longer
//! line is logged in pieces of [`MAX_LINE`] bytes, marked `truncated`), so a
//! process printing megabytes without a newline never grows memory.
//! Receives: the child's pipes. Hands on: one tracing event per line
//! (`process`, `stream` fields), at info level.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Longest line logged as one event, in bytes.
pub(super) const MAX_LINE: usize = 8 * 1024;

/// Logs every line read from `from` until end of file or a read error.
pub(super) async fn log_lines(from: impl AsyncRead + Unpin, name: Arc<str>, stream: &'static str) {
    let mut lines = Lines::default();
    let mut from = from;
    let mut chunk = vec![0u8; 4096];
    loop {
        let n = match from.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        lines.push(&chunk[..n], |line, truncated| {
            emit(&name, stream, line, truncated)
        });
    }
    lines.finish(|line, truncated| emit(&name, stream, line, truncated));
}

fn emit(name: &str, stream: &'static str, line: &[u8], truncated: bool) {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches('\r');
    if truncated {
        tracing::info!(target: "portico::process", process = name, stream, truncated, "{text}");
    } else {
        tracing::info!(target: "portico::process", process = name, stream, "{text}");
    }
}

/// Line splitting with a bounded buffer. Pure.
#[derive(Default)]
struct Lines {
    buf: Vec<u8>,
}

impl Lines {
    /// Feeds bytes; calls `out(line, truncated)` per complete line (without
    /// the newline) and per [`MAX_LINE`] piece of an overlong one.
    fn push(&mut self, mut bytes: &[u8], mut out: impl FnMut(&[u8], bool)) {
        while !bytes.is_empty() {
            let room = MAX_LINE - self.buf.len();
            match bytes.iter().position(|&b| b == b'\n') {
                Some(i) if i <= room => {
                    self.buf.extend_from_slice(&bytes[..i]);
                    out(&self.buf, false);
                    self.buf.clear();
                    bytes = &bytes[i + 1..];
                }
                _ => {
                    let take = room.min(bytes.len());
                    self.buf.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if self.buf.len() == MAX_LINE {
                        out(&self.buf, true);
                        self.buf.clear();
                    }
                }
            }
        }
    }

    /// The last line, when the stream ended without a newline.
    fn finish(self, mut out: impl FnMut(&[u8], bool)) {
        if !self.buf.is_empty() {
            out(&self.buf, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<(String, bool)> {
        let mut got = Vec::new();
        let mut l = Lines::default();
        for c in chunks {
            l.push(c, |s, t| {
                got.push((String::from_utf8_lossy(s).into_owned(), t))
            });
        }
        l.finish(|s, t| got.push((String::from_utf8_lossy(s).into_owned(), t)));
        got
    }

    #[test]
    fn lines_across_chunks() {
        assert_eq!(
            split(&[b"a\nb", b"c\n\nd"]),
            [
                ("a".into(), false),
                ("bc".into(), false),
                ("".into(), false),
                ("d".into(), false)
            ]
        );
    }

    #[test]
    fn overlong_lines_are_cut_into_bounded_pieces() {
        let long = vec![b'x'; MAX_LINE * 2 + 3];
        let mut input = long.clone();
        input.extend_from_slice(b"\nnext\n");
        let got = split(&[&input[..5000], &input[5000..]]);
        let lens: Vec<_> = got.iter().map(|(s, t)| (s.len(), *t)).collect();
        assert_eq!(
            lens,
            [(MAX_LINE, true), (MAX_LINE, true), (3, false), (4, false)]
        );
    }

    #[test]
    fn a_newline_right_at_the_bound_ends_the_line() {
        let mut input = vec![b'y'; MAX_LINE];
        input.push(b'\n');
        let got = split(&[&input]);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0.len(), got[0].1), (MAX_LINE, false));
    }
}
