//! Validators and conditional requests (RFC 9110 §8.8, §13): the
//! `ETag`/`Last-Modified` of a file, the precondition headers evaluated in
//! the RFC's order (`If-Match`, `If-Unmodified-Since`, `If-None-Match`,
//! `If-Modified-Since`) into proceed / 304 / 412, and `If-Range`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, Method, header};

/// A file's validators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Validators {
    /// A strong entity tag, quotes included: `"<mtime>-<len>[-<coding>]"`.
    pub(crate) etag: String,
    /// Modification time, whole seconds (what an HTTP date can say).
    pub(crate) modified: Option<SystemTime>,
}

impl Validators {
    /// The validators of a file with `meta`; `coding` tells a precompressed
    /// variant's tag from the identity one's.
    pub(crate) fn of(meta: &std::fs::Metadata, coding: Option<&str>) -> Validators {
        let since = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(UNIX_EPOCH).ok());
        let mut etag = match since {
            Some(d) => format!(
                "\"{:x}.{:x}-{:x}",
                d.as_secs(),
                d.subsec_nanos(),
                meta.len()
            ),
            None => format!("\"{:x}", meta.len()),
        };
        if let Some(c) = coding {
            etag.push('-');
            etag.push_str(c);
        }
        etag.push('"');
        let modified = since.map(|d| UNIX_EPOCH + Duration::from_secs(d.as_secs()));
        Validators { etag, modified }
    }

    /// The `Last-Modified` value, if the file has a time.
    pub(crate) fn last_modified(&self) -> Option<String> {
        self.modified.map(httpdate::fmt_http_date)
    }
}

/// What the preconditions say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Serve the file.
    Proceed,
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// Evaluates the precondition headers of a GET/HEAD against `v`.
pub(crate) fn evaluate(method: &Method, headers: &HeaderMap, v: &Validators) -> Outcome {
    if let Some(im) = text(headers, header::IF_MATCH) {
        if !matches_any(im, &v.etag, Compare::Strong) {
            return Outcome::Failed;
        }
    } else if let Some(date) = date(headers, header::IF_UNMODIFIED_SINCE)
        && v.modified.is_none_or(|m| m > date)
    {
        return Outcome::Failed;
    }
    if let Some(inm) = text(headers, header::IF_NONE_MATCH) {
        if matches_any(inm, &v.etag, Compare::Weak) {
            return if method == Method::GET || method == Method::HEAD {
                Outcome::NotModified
            } else {
                Outcome::Failed
            };
        }
    } else if (method == Method::GET || method == Method::HEAD)
        && let Some(date) = date(headers, header::IF_MODIFIED_SINCE)
        && v.modified.is_some_and(|m| m <= date)
    {
        return Outcome::NotModified;
    }
    Outcome::Proceed
}

/// Whether a `Range` may be honoured: no `If-Range`, or one naming the
/// current representation (a strong tag, or exactly its date).
pub(crate) fn if_range_holds(headers: &HeaderMap, v: &Validators) -> bool {
    let Some(value) = headers.get(header::IF_RANGE) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let value = value.trim();
    if value.starts_with('"') {
        return value == v.etag;
    }
    if value.starts_with("W/") {
        return false;
    }
    match (httpdate::parse_http_date(value), v.modified) {
        (Ok(date), Some(m)) => date == m,
        _ => false,
    }
}

#[derive(Clone, Copy)]
enum Compare {
    Strong,
    Weak,
}

fn text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    let mut it = headers.get_all(name).iter();
    let first = it.next()?;
    // A header split over several lines is rare; the first line decides.
    first.to_str().ok().map(str::trim)
}

fn date(headers: &HeaderMap, name: header::HeaderName) -> Option<SystemTime> {
    httpdate::parse_http_date(text(headers, name)?).ok()
}

/// Whether the list `list` (`*`, or `"a", W/"b"`) names `etag` (ours is
/// always strong). A malformed list matches nothing.
fn matches_any(list: &str, etag: &str, cmp: Compare) -> bool {
    if list == "*" {
        return true;
    }
    let mut rest = list;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return false;
        }
        let weak = rest.starts_with("W/");
        if weak {
            rest = &rest[2..];
        }
        if !rest.starts_with('"') {
            return false;
        }
        let Some(end) = rest[1..].find('"') else {
            return false;
        };
        let tag = &rest[..end + 2];
        let hit = tag == etag && (!weak || matches!(cmp, Compare::Weak));
        if hit {
            return true;
        }
        rest = &rest[end + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v() -> Validators {
        Validators {
            etag: "\"abc-1\"".into(),
            modified: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        }
    }

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, val) in pairs {
            m.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                val.parse().unwrap(),
            );
        }
        m
    }

    fn date_of(secs: u64) -> String {
        httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn lists_match_as_the_rfc_says() {
        assert!(matches_any("\"abc-1\"", "\"abc-1\"", Compare::Strong));
        assert!(matches_any(
            "\"x\", W/\"abc-1\"",
            "\"abc-1\"",
            Compare::Weak
        ));
        assert!(!matches_any("W/\"abc-1\"", "\"abc-1\"", Compare::Strong));
        assert!(matches_any("*", "\"abc-1\"", Compare::Strong));
        assert!(!matches_any("abc-1", "\"abc-1\"", Compare::Weak));
        assert!(!matches_any("\"abc-1", "\"abc-1\"", Compare::Weak));
        assert!(!matches_any("", "\"abc-1\"", Compare::Weak));
    }

    #[test]
    fn not_modified_by_tag_or_date() {
        let get = Method::GET;
        let v = v();
        let (same, before, after, long_ago) = (
            date_of(1_700_000_000),
            date_of(1_699_999_999),
            date_of(1_800_000_000),
            date_of(1_600_000_000),
        );
        let cases = [
            (vec![("if-none-match", "\"abc-1\"")], Outcome::NotModified),
            (vec![("if-none-match", "\"other\"")], Outcome::Proceed),
            (
                vec![("if-modified-since", same.as_str())],
                Outcome::NotModified,
            ),
            (
                vec![("if-modified-since", before.as_str())],
                Outcome::Proceed,
            ),
            // If-None-Match wins over the date.
            (
                vec![
                    ("if-none-match", "\"other\""),
                    ("if-modified-since", after.as_str()),
                ],
                Outcome::Proceed,
            ),
            (vec![("if-match", "\"other\"")], Outcome::Failed),
            (vec![("if-match", "\"abc-1\"")], Outcome::Proceed),
            (
                vec![("if-unmodified-since", long_ago.as_str())],
                Outcome::Failed,
            ),
            (vec![("if-modified-since", "garbage")], Outcome::Proceed),
        ];
        for (headers, want) in cases {
            assert_eq!(evaluate(&get, &h(&headers), &v), want, "{headers:?}");
        }
    }

    #[test]
    fn if_range() {
        let v = v();
        assert!(if_range_holds(&h(&[]), &v));
        assert!(if_range_holds(&h(&[("if-range", "\"abc-1\"")]), &v));
        assert!(!if_range_holds(&h(&[("if-range", "\"old\"")]), &v));
        assert!(!if_range_holds(&h(&[("if-range", "W/\"abc-1\"")]), &v));
        let exact = date_of(1_700_000_000);
        assert!(if_range_holds(&h(&[("if-range", exact.as_str())]), &v));
        let later = date_of(1_700_000_001);
        assert!(!if_range_holds(&h(&[("if-range", later.as_str())]), &v));
    }

    #[test]
    fn precompressed_variants_have_their_own_tag() {
        let dir = std::env::temp_dir().join(format!("portico-cond-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("a.txt");
        std::fs::write(&f, b"hello").unwrap();
        let meta = std::fs::metadata(&f).unwrap();
        let plain = Validators::of(&meta, None);
        let br = Validators::of(&meta, Some("br"));
        assert_ne!(plain.etag, br.etag);
        assert!(plain.etag.starts_with('"') && plain.etag.ends_with('"'));
        assert!(plain.last_modified().is_some());
        let _ = std::fs::remove_dir_all(dir);
    }
}
