//! Laravel's front-controller rules (nginx's official Laravel block,
//! Caddy's `php_fastcgi`), made strict: a file that exists under the root
//! is served as it is, except `.php` files; a directory with an index file
//! is served as such; everything else runs the one configured index
//! script. No other `.php` file is ever run or served as source.
//!
//! Owns: that decision. Receives: the request path (after the route's
//! rewrite, still percent-encoded) and the [`Root`]. Hands on: a
//! [`Decision`] to [`super::serve`].

use crate::files::{Hit, Lookup, Root};

use super::params::Script;

/// Index files tried for a directory that is served statically.
const STATIC_INDEX: &[&str] = &["index.html"];

/// What to do with a request path.
#[derive(Debug)]
pub enum Decision {
    /// A static file under the root.
    Static(Hit),
    /// A directory with an index, asked for without its trailing slash.
    AddSlash(String),
    /// Run the front controller.
    Run(Script),
    /// `.`/`..` segments: never resolved.
    NotFound,
    /// A dotfile (other than `/.well-known/`), a symlink leaving the root,
    /// an undecodable path.
    Forbidden,
}

fn is_php(path: &str) -> bool {
    path.len() >= 4 && path[path.len() - 4..].eq_ignore_ascii_case(".php")
}

/// Where `.php` ends a path segment: the split point of PATH_INFO.
fn php_split(path: &str) -> Option<usize> {
    let lower = path.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(".php") {
        let end = from + i + 4;
        if end == path.len() || path.as_bytes()[end] == b'/' {
            return Some(end);
        }
        from = end;
    }
    None
}

/// Whether any segment, decoded, is `.` or `..`.
fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|s| {
        let d = percent_encoding::percent_decode_str(s).decode_utf8_lossy();
        d == "." || d == ".."
    })
}

/// Decides what `path` is under `root`, with `index` (`index.php`) the
/// only script that runs.
pub fn decide(root: &Root, index: &str, path: &str) -> Decision {
    if has_dot_segment(path) {
        return Decision::NotFound;
    }
    let run = |path_info: String| {
        Decision::Run(Script {
            name: format!("/{index}"),
            path_info,
        })
    };
    if let Some(end) = php_split(path) {
        // The dotfile rule comes before anything else, as nginx's
        // `location ~ /\.(?!well-known)` does.
        if let Lookup::Forbidden = root.lookup(&path[..end], &[]) {
            return Decision::Forbidden;
        }
        let script = &path[..end];
        if script.len() == index.len() + 1 && script[1..].eq_ignore_ascii_case(index) {
            let info = percent_encoding::percent_decode_str(&path[end..])
                .decode_utf8_lossy()
                .into_owned();
            return run(info);
        }
        // Another .php (`/uploads/evil.php`, `/test.php`): never run, never
        // served; the front controller gets the URI and routes it.
        return run(String::new());
    }
    match root.lookup(path, STATIC_INDEX) {
        Lookup::File(hit) if is_php(&hit.rel) => run(String::new()),
        Lookup::File(hit) => Decision::Static(hit),
        Lookup::AddSlash { location } => Decision::AddSlash(location),
        Lookup::NotFound => run(String::new()),
        Lookup::Forbidden => Decision::Forbidden,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_points() {
        assert_eq!(php_split("/index.php"), Some(10));
        assert_eq!(php_split("/index.php/foo"), Some(10));
        assert_eq!(php_split("/index.PHP/foo"), Some(10));
        assert_eq!(php_split("/a.phpx/b.php/c"), Some(13));
        assert_eq!(php_split("/foo"), None);
        assert!(has_dot_segment("/index.php/../x.php"));
        assert!(has_dot_segment("/a/%2e%2e/b"));
        assert!(!has_dot_segment("/a/..b/c"));
    }
}
