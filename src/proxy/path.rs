//! The path a proxied request takes upstream: the route's rewrite applied.

use crate::config::{Rewrite, Route};

/// Applies a route's rewrite to a path.
pub fn rewrite_path(route: &Route, path: &str) -> String {
    let rest = path.strip_prefix(&*route.path).unwrap_or({
        // Matched as "prefix without trailing slash": nothing after it.
        ""
    });
    match &route.rewrite {
        Rewrite::Keep => path.to_string(),
        Rewrite::Strip => format!("/{}", rest.trim_start_matches('/')),
        Rewrite::Replace(new) => {
            if new.ends_with('/') || rest.is_empty() || rest.starts_with('/') {
                format!("{new}{rest}")
            } else {
                format!("{new}/{rest}")
            }
        }
    }
}
