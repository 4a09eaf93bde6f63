//! Request path → the segments a file name is made of. Receives the path
//! as it came on the wire (still percent-encoded, no query string) and
//! hands [`super::root`] plain, checked names, or says why not.
//!
//! Each raw segment is percent-decoded exactly once and on its own, so an
//! encoded separator (`%2f`, `%5c`) can never join two segments. A segment
//! is refused when it is `.` or `..` (raw or encoded), holds a backslash, a
//! NUL or another control byte, a `%` left after decoding (double
//! encoding: `%252e`), or is not UTF-8 after decoding (overlong forms such
//! as `%c0%ae` are not UTF-8). Empty segments (`//`) are skipped, as
//! nginx merges slashes.

use percent_encoding::percent_decode_str;

/// A request path that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoded {
    /// The decoded names, in order; empty for `/`.
    pub(crate) segments: Vec<String>,
    /// Whether the path ended in `/` (a directory was asked for).
    pub(crate) trailing_slash: bool,
}

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    #[error("the path does not start with '/'")]
    NotAbsolute,
    #[error("a segment is '.' or '..'")]
    DotSegment,
    #[error("a segment holds a backslash")]
    Backslash,
    #[error("a segment holds a NUL or another control character")]
    Control,
    #[error("a segment is still percent-encoded after decoding once")]
    DoubleEncoded,
    #[error("a segment is not UTF-8 after decoding")]
    NotUtf8,
    #[error("a segment decodes to a path separator")]
    EncodedSlash,
    #[error("the path holds a query or fragment character")]
    QueryOrFragment,
}

/// Decodes and checks `path`.
pub(crate) fn decode(path: &str) -> Result<Decoded, Refused> {
    let rest = path.strip_prefix('/').ok_or(Refused::NotAbsolute)?;
    if rest.contains(['?', '#']) {
        return Err(Refused::QueryOrFragment);
    }
    let mut segments = Vec::new();
    for raw in rest.split('/') {
        if raw.is_empty() {
            continue;
        }
        segments.push(segment(raw)?);
    }
    let trailing_slash = path.ends_with('/');
    Ok(Decoded {
        segments,
        trailing_slash,
    })
}

/// One raw segment, decoded and checked.
fn segment(raw: &str) -> Result<String, Refused> {
    if raw.contains('\\') {
        return Err(Refused::Backslash);
    }
    let bytes: Vec<u8> = percent_decode_str(raw).collect();
    let name = String::from_utf8(bytes).map_err(|_| Refused::NotUtf8)?;
    if name == "." || name == ".." {
        return Err(Refused::DotSegment);
    }
    if name.contains('/') {
        return Err(Refused::EncodedSlash);
    }
    if name.contains('\\') {
        return Err(Refused::Backslash);
    }
    if name.chars().any(char::is_control) {
        return Err(Refused::Control);
    }
    if name.contains('%') {
        return Err(Refused::DoubleEncoded);
    }
    Ok(name)
}

/// Whether `segments` break the dotfile rule: any name starting with `.`
/// is hidden, except a first segment `.well-known` (nginx's
/// `location ~ /\.(?!well-known)`).
pub(crate) fn hidden<'a>(segments: impl IntoIterator<Item = &'a str>) -> bool {
    segments
        .into_iter()
        .enumerate()
        .any(|(i, s)| s.starts_with('.') && !(i == 0 && s == ".well-known"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(path: &str) -> Vec<String> {
        decode(path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .segments
    }

    #[test]
    fn plain_paths_decode() {
        assert_eq!(ok("/"), Vec::<String>::new());
        assert_eq!(ok("/build/app.js"), ["build", "app.js"]);
        assert_eq!(ok("//build///app.js"), ["build", "app.js"]);
        assert_eq!(ok("/a%20b.txt"), ["a b.txt"]);
        assert_eq!(ok("/caf%C3%A9.txt"), ["café.txt"]);
        assert!(decode("/dir/").unwrap().trailing_slash);
        assert!(!decode("/dir").unwrap().trailing_slash);
    }

    #[test]
    fn every_traversal_form_is_refused() {
        let cases = [
            ("relative", Refused::NotAbsolute),
            ("", Refused::NotAbsolute),
            ("/../etc/passwd", Refused::DotSegment),
            ("/a/./b", Refused::DotSegment),
            ("/%2e%2e/etc/passwd", Refused::DotSegment),
            ("/%2E%2E/etc/passwd", Refused::DotSegment),
            ("/.%2e/x", Refused::DotSegment),
            ("/%252e%252e/etc/passwd", Refused::DoubleEncoded),
            ("/a%2f..%2fb", Refused::EncodedSlash),
            ("/a%2F..", Refused::EncodedSlash),
            ("/..\\etc", Refused::Backslash),
            ("/a%5c..%5cb", Refused::Backslash),
            ("/a%00.txt", Refused::Control),
            ("/a%0a.txt", Refused::Control),
            ("/%c0%ae%c0%ae/etc", Refused::NotUtf8),
            ("/%e0%80%ae", Refused::NotUtf8),
            ("/%ff", Refused::NotUtf8),
            ("/a?b", Refused::QueryOrFragment),
            ("/a#b", Refused::QueryOrFragment),
        ];
        for (path, want) in cases {
            assert_eq!(decode(path), Err(want), "{path}");
        }
    }

    #[test]
    fn dotfile_rule() {
        assert!(hidden([".env"]));
        assert!(hidden(["a", ".git", "config"]));
        assert!(hidden([".well-known", ".secret"]));
        assert!(hidden(["a", ".well-known", "x"]));
        assert!(!hidden([".well-known", "security.txt"]));
        assert!(!hidden(["a.b", "c..d"]));
    }
}
