//! `Range: bytes=…` (RFC 9110 §14) against a representation of `len`
//! bytes: which parts to send, or that none can be (416), or that the
//! header is ignored and the whole file goes out (200) — a malformed
//! header, another unit, more than [`MAX_RANGES`] ranges, or overlapping
//! ones (nginx refuses to amplify the same way).

/// More ranges than this in one request: the whole file instead.
pub(crate) const MAX_RANGES: usize = 16;

/// One satisfiable range, both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteRange {
    pub(crate) start: u64,
    pub(crate) end: u64,
}

impl ByteRange {
    pub(crate) fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// `bytes 0-99/1234`.
    pub(crate) fn content_range(&self, total: u64) -> String {
        format!("bytes {}-{}/{total}", self.start, self.end)
    }
}

/// What a `Range` header asks of a representation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ranges {
    /// Ignore the header: 200 with the whole representation.
    Whole,
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
    /// 206: one range, or several as `multipart/byteranges`, in the
    /// client's order.
    Parts(Vec<ByteRange>),
}

/// Reads `value` (a `Range` header) against `len` bytes.
pub(crate) fn parse(value: &str, len: u64) -> Ranges {
    let Some((unit, set)) = value.split_once('=') else {
        return Ranges::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || len == 0 {
        return Ranges::Whole;
    }
    let mut parts = Vec::new();
    let mut specs = 0usize;
    for spec in set.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        specs += 1;
        if specs > MAX_RANGES {
            return Ranges::Whole;
        }
        match spec_range(spec, len) {
            Spec::Invalid => return Ranges::Whole,
            Spec::Unsatisfiable => {}
            Spec::Range(r) => parts.push(r),
        }
    }
    if specs == 0 {
        return Ranges::Whole;
    }
    if parts.is_empty() {
        return Ranges::Unsatisfiable;
    }
    let mut sorted = parts.clone();
    sorted.sort_by_key(|r| r.start);
    if sorted.windows(2).any(|w| w[1].start <= w[0].end) {
        return Ranges::Whole;
    }
    Ranges::Parts(parts)
}

enum Spec {
    Invalid,
    Unsatisfiable,
    Range(ByteRange),
}

fn spec_range(spec: &str, len: u64) -> Spec {
    let Some((first, last)) = spec.split_once('-') else {
        return Spec::Invalid;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // Suffix: the last N bytes.
        let Some(n) = number(last) else {
            return Spec::Invalid;
        };
        if n == 0 {
            return Spec::Unsatisfiable;
        }
        return Spec::Range(ByteRange {
            start: len.saturating_sub(n),
            end: len - 1,
        });
    }
    let Some(start) = number(first) else {
        return Spec::Invalid;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match number(last) {
            Some(end) if end >= start => end,
            _ => return Spec::Invalid,
        }
    };
    if start >= len {
        return Spec::Unsatisfiable;
    }
    Spec::Range(ByteRange {
        start,
        end: end.min(len - 1),
    })
}

/// Digits only (no sign, no spaces inside); `None` on overflow too.
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    #[test]
    fn single_suffix_open_ended() {
        assert_eq!(parse("bytes=0-9", 100), Ranges::Parts(vec![r(0, 9)]));
        assert_eq!(parse("bytes=90-", 100), Ranges::Parts(vec![r(90, 99)]));
        assert_eq!(parse("bytes=-10", 100), Ranges::Parts(vec![r(90, 99)]));
        assert_eq!(parse("bytes=-500", 100), Ranges::Parts(vec![r(0, 99)]));
        assert_eq!(parse("bytes=50-500", 100), Ranges::Parts(vec![r(50, 99)]));
        assert_eq!(parse("BYTES = 1-1", 100), Ranges::Parts(vec![r(1, 1)]));
    }

    #[test]
    fn multi_keeps_order_and_refuses_overlap() {
        assert_eq!(
            parse("bytes=50-59, 0-9", 100),
            Ranges::Parts(vec![r(50, 59), r(0, 9)])
        );
        assert_eq!(parse("bytes=0-9,5-20", 100), Ranges::Whole);
        assert_eq!(parse("bytes=0-9,-95", 100), Ranges::Whole);
        let many: Vec<String> = (0..=MAX_RANGES).map(|i| format!("{i}-{i}")).collect();
        assert_eq!(
            parse(&format!("bytes={}", many.join(",")), 100),
            Ranges::Whole
        );
        // Unsatisfiable members are dropped when another is satisfiable.
        assert_eq!(
            parse("bytes=200-300,0-0", 100),
            Ranges::Parts(vec![r(0, 0)])
        );
    }

    #[test]
    fn unsatisfiable_and_ignored() {
        assert_eq!(parse("bytes=100-", 100), Ranges::Unsatisfiable);
        assert_eq!(parse("bytes=100-200,300-", 100), Ranges::Unsatisfiable);
        assert_eq!(parse("bytes=-0", 100), Ranges::Unsatisfiable);
        for ignored in [
            "bytes=9-0",
            "bytes=a-b",
            "bytes=-",
            "bytes=",
            "items=0-1",
            "bytes 0-1",
            "bytes=+1-2",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(parse(ignored, 100), Ranges::Whole, "{ignored}");
        }
        assert_eq!(parse("bytes=0-0", 0), Ranges::Whole);
    }

    #[test]
    fn content_range() {
        assert_eq!(r(0, 99).content_range(1234), "bytes 0-99/1234");
        assert_eq!(r(5, 5).len(), 1);
    }
}
