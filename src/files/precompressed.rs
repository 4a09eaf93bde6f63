//! Precompressed siblings: for `app.js`, an `app.js.br` or `app.js.gz`
//! next to it is sent instead when `Accept-Encoding` allows (q-values
//! respected, `q=0` refuses, `br` preferred on a tie), with
//! `Content-Encoding`. A sibling must be a regular file, not a symlink, in
//! the same real directory as the file — so it passes the root's rules
//! exactly as the file did.

use std::path::{Path, PathBuf};

use http::{HeaderMap, header};

/// A content coding portico can serve from a sibling file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    Br,
    Gzip,
}

impl Coding {
    /// In order of preference on equal q.
    pub(crate) const ALL: [Coding; 2] = [Coding::Br, Coding::Gzip];

    /// The `Content-Encoding` token.
    pub(crate) fn token(self) -> &'static str {
        match self {
            Coding::Br => "br",
            Coding::Gzip => "gzip",
        }
    }

    /// The sibling file's suffix.
    fn suffix(self) -> &'static str {
        match self {
            Coding::Br => ".br",
            Coding::Gzip => ".gz",
        }
    }

    /// `path` with this coding's suffix.
    pub(crate) fn sibling(self, path: &Path) -> PathBuf {
        let mut s = path.as_os_str().to_owned();
        s.push(self.suffix());
        PathBuf::from(s)
    }
}

/// The client's q-value for `coding` (`x-gzip` counts as `gzip`; `*`
/// covers codings not named); 0 when not accepted.
pub(crate) fn q_value(headers: &HeaderMap, coding: Coding) -> u16 {
    let mut named = None;
    let mut star = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
                .map(parse_q)
                .next()
                .unwrap_or(Some(1000));
            let Some(q) = q else {
                continue;
            };
            let is_it = name.eq_ignore_ascii_case(coding.token())
                || (coding == Coding::Gzip && name.eq_ignore_ascii_case("x-gzip"));
            if is_it {
                named = Some(named.map_or(q, |n: u16| n.max(q)));
            } else if name == "*" {
                star = Some(q);
            }
        }
    }
    named.or(star).unwrap_or(0)
}

/// A q-value as thousandths (`0.8` → 800); `None` when malformed.
fn parse_q(s: &str) -> Option<u16> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole = match int {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    let mut thousandths = 0u16;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    let q = whole + thousandths;
    (q <= 1000).then_some(q)
}

/// The siblings of `path` that exist, checked as the module doc says.
/// One `lstat` each, on the connection's thread (as the lookup itself).
pub(crate) fn siblings(path: &Path) -> Vec<(Coding, PathBuf, std::fs::Metadata)> {
    let mut found = Vec::new();
    for coding in Coding::ALL {
        let sib = coding.sibling(path);
        match std::fs::symlink_metadata(&sib) {
            Ok(meta) if meta.file_type().is_file() => found.push((coding, sib, meta)),
            _ => {}
        }
    }
    found
}

/// Of `available` siblings, the one to send for `headers`: highest q
/// above 0, `br` first on a tie; `None` for the identity file.
pub(crate) fn choose(headers: &HeaderMap, available: &[Coding]) -> Option<Coding> {
    let mut best: Option<(Coding, u16)> = None;
    for &c in available {
        let q = q_value(headers, c);
        if q > 0 && best.is_none_or(|(_, bq)| q > bq) {
            best = Some((c, q));
        }
    }
    best.map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ae(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, v.parse().unwrap());
        h
    }

    #[test]
    fn q_values() {
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("0.8"), Some(800));
        assert_eq!(parse_q("0.05"), Some(50));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("1.5"), None);
        assert_eq!(parse_q("0.0001"), None);
        assert_eq!(parse_q("2"), None);
    }

    #[test]
    fn choice() {
        let both = [Coding::Br, Coding::Gzip];
        assert_eq!(
            choose(&ae("gzip, deflate, br, zstd"), &both),
            Some(Coding::Br)
        );
        assert_eq!(choose(&ae("gzip;q=1, br;q=0.5"), &both), Some(Coding::Gzip));
        assert_eq!(choose(&ae("br;q=0, gzip"), &both), Some(Coding::Gzip));
        assert_eq!(choose(&ae("br;q=0, gzip;q=0"), &both), None);
        assert_eq!(choose(&ae("identity"), &both), None);
        assert_eq!(choose(&ae("*"), &both), Some(Coding::Br));
        assert_eq!(choose(&ae("*;q=0, gzip"), &both), Some(Coding::Gzip));
        assert_eq!(choose(&ae("x-gzip"), &[Coding::Gzip]), Some(Coding::Gzip));
        assert_eq!(choose(&ae("br"), &[Coding::Gzip]), None);
        assert_eq!(choose(&HeaderMap::new(), &both), None);
    }

    #[test]
    fn sibling_names() {
        assert_eq!(
            Coding::Br.sibling(Path::new("/p/app.js")),
            Path::new("/p/app.js.br")
        );
        assert_eq!(
            Coding::Gzip.sibling(Path::new("/p/app.js")),
            Path::new("/p/app.js.gz")
        );
    }
}
