//! File name → `Content-Type`. The table is `mime_guess`'s, with the few
//! web-asset types it lacks or names in an older way; text types carry
//! `charset=utf-8`, as Vite writes UTF-8.

use std::path::Path;

/// The `Content-Type` for a file named like `path` (its extension only).
pub(crate) fn content_type(path: &Path) -> String {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let ext = ext.as_deref().unwrap_or("");
    let base = match ext {
        // Modules and source maps, as browsers and Vite expect them.
        "js" | "mjs" | "cjs" => "text/javascript".to_owned(),
        "map" => "application/json".to_owned(),
        "webmanifest" => "application/manifest+json".to_owned(),
        "wasm" => "application/wasm".to_owned(),
        "ico" => "image/x-icon".to_owned(),
        "" => "application/octet-stream".to_owned(),
        _ => mime_guess::from_ext(ext)
            .first_raw()
            .unwrap_or("application/octet-stream")
            .to_owned(),
    };
    if needs_charset(&base) {
        format!("{base}; charset=utf-8")
    } else {
        base
    }
}

fn needs_charset(ty: &str) -> bool {
    ty.starts_with("text/")
        || matches!(
            ty,
            "application/json" | "application/manifest+json" | "image/svg+xml"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laravel_assets() {
        let cases = [
            ("app.js", "text/javascript; charset=utf-8"),
            ("app.CSS", "text/css; charset=utf-8"),
            ("logo.svg", "image/svg+xml; charset=utf-8"),
            ("font.woff2", "font/woff2"),
            ("manifest.json", "application/json; charset=utf-8"),
            ("app.js.map", "application/json; charset=utf-8"),
            ("hero.webp", "image/webp"),
            ("favicon.ico", "image/x-icon"),
            ("robots.txt", "text/plain; charset=utf-8"),
            ("index.html", "text/html; charset=utf-8"),
            ("photo.png", "image/png"),
            ("Makefile", "application/octet-stream"),
            ("x.unknownext", "application/octet-stream"),
        ];
        for (name, want) in cases {
            assert_eq!(content_type(Path::new(name)), want, "{name}");
        }
    }
}
