//! The document root and its rules: a request path (from
//! [`super::decode`]) is joined to the canonical root, the result is
//! canonicalised (every symlink resolved), and only a real path inside the
//! root — or inside the target of a link the config allows by name
//! (`allow_symlinks = ["storage"]`, what `php artisan storage:link` makes)
//! — is handed on as a [`Hit`]. Directories give their index file; there
//! are no listings.
//!
//! Most paths hold no link at all, and for them the realpath walk (a
//! `readlink` per component) is wasted: the lookup first opens the path
//! under the root's descriptor with one `openat2` that refuses every
//! symlink and any escape. When that succeeds the joined path is already
//! canonical, and the open file goes on with the [`Hit`]; when a link is on
//! the way, the canonicalising lookup decides as before.

use std::fs::{File, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use super::decode::{self, Decoded, decode};
use super::{Hit, Lookup};

/// What must be escaped in a path segment of a `Location` we build.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// A canonicalised document root and the names of the links under it that
/// may point outside it.
#[derive(Debug, Clone)]
pub struct Root {
    real: PathBuf,
    allow_symlinks: Vec<String>,
    /// The root directory, open, for link-free lookups beneath it.
    dir: Arc<File>,
}

impl Root {
    /// `dir` must exist and be a directory; it is canonicalised once
    /// (realpath). `allow_symlinks`: names of entries directly under the
    /// root whose symlink may point outside the root.
    pub fn open(dir: &Path, allow_symlinks: &[String]) -> io::Result<Root> {
        let real = std::fs::canonicalize(dir)?;
        if !std::fs::metadata(&real)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", dir.display()),
            ));
        }
        let dir = Arc::new(File::open(&real)?);
        Ok(Root {
            real,
            allow_symlinks: allow_symlinks.to_vec(),
            dir,
        })
    }

    /// The real (canonical) path of the root.
    pub fn real_path(&self) -> &Path {
        &self.real
    }

    /// The names of the links under the root allowed to point outside it.
    pub fn allowed_symlinks(&self) -> &[String] {
        &self.allow_symlinks
    }

    /// Resolves a request path (still percent-encoded, no query string)
    /// against the root; `index` are the index names tried for a directory.
    pub fn lookup(&self, path: &str, index: &[&str]) -> Lookup {
        let Ok(req) = decode(path) else {
            return Lookup::Forbidden;
        };
        if decode::hidden(req.segments.iter().map(String::as_str)) {
            return Lookup::Forbidden;
        }
        if let Some(found) = self.lookup_plain(&req, index) {
            return found;
        }
        let mut joined = self.real.clone();
        joined.extend(&req.segments);
        let real = match self.resolve(&joined, req.segments.first()) {
            Ok(real) => real,
            Err(miss) => return miss.into(),
        };
        let Ok(meta) = std::fs::metadata(&real) else {
            return Lookup::NotFound;
        };
        let rel = rel_of(&req.segments);
        if meta.is_file() {
            if req.trailing_slash {
                return Lookup::NotFound;
            }
            return Lookup::File(Hit {
                path: real,
                rel,
                meta,
                file: None,
            });
        }
        if !meta.is_dir() {
            // FIFOs, sockets, devices: never served.
            return Lookup::NotFound;
        }
        for name in index.iter().filter(|n| plain_name(n)) {
            let candidate = joined.join(name);
            let Ok(real) = self.resolve(&candidate, req.segments.first()) else {
                continue;
            };
            let Ok(meta) = std::fs::metadata(&real) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            if !req.trailing_slash {
                return Lookup::AddSlash {
                    location: location_of(&req.segments),
                };
            }
            let rel = if rel.ends_with('/') {
                format!("{rel}{name}")
            } else {
                format!("{rel}/{name}")
            };
            return Lookup::File(Hit {
                path: real,
                rel,
                meta,
                file: None,
            });
        }
        Lookup::NotFound
    }

    /// The lookup of `req` when no link is on the way, with the same
    /// answers as the canonicalising one; `None` when a link (or anything
    /// else unusual) is met and that one must decide.
    fn lookup_plain(&self, req: &Decoded, index: &[&str]) -> Option<Lookup> {
        let under = if req.segments.is_empty() {
            ".".to_owned()
        } else {
            req.segments.join("/")
        };
        let (file, meta) = match self.open_plain(&under) {
            Ok(found) => found,
            Err(Errno::ENOENT | Errno::ENOTDIR) => return Some(Lookup::NotFound),
            Err(_) => return None,
        };
        let rel = rel_of(&req.segments);
        let mut joined = self.real.clone();
        joined.extend(&req.segments);
        if meta.is_file() {
            if req.trailing_slash {
                return Some(Lookup::NotFound);
            }
            return Some(Lookup::File(Hit {
                path: joined,
                rel,
                meta,
                file: Some(Arc::new(file)),
            }));
        }
        if !meta.is_dir() {
            return Some(Lookup::NotFound);
        }
        drop(file);
        for name in index.iter().filter(|n| plain_name(n)) {
            let (file, meta) = match self.open_plain(&format!("{under}/{name}")) {
                Ok(found) => found,
                Err(Errno::ENOENT | Errno::ENOTDIR) => continue,
                Err(_) => return None,
            };
            if !meta.is_file() {
                continue;
            }
            if !req.trailing_slash {
                return Some(Lookup::AddSlash {
                    location: location_of(&req.segments),
                });
            }
            let rel = if rel.ends_with('/') {
                format!("{rel}{name}")
            } else {
                format!("{rel}/{name}")
            };
            return Some(Lookup::File(Hit {
                path: joined.join(name),
                rel,
                meta,
                file: Some(Arc::new(file)),
            }));
        }
        Some(Lookup::NotFound)
    }

    /// Opens `under` (relative, '/'-separated) beneath the root, refusing
    /// any symlink and any way out, and reads its metadata. Non-blocking,
    /// so a FIFO left in the root cannot hold the open; it is refused as
    /// not a file afterwards.
    fn open_plain(&self, under: &str) -> Result<(File, Metadata), Errno> {
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
        let file = File::from(openat2(&*self.dir, under, how)?);
        let meta = file
            .metadata()
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))?;
        Ok((file, meta))
    }

    /// The canonical path of `joined` if it may be served: inside the
    /// root (and not a dotfile there once links are resolved), or inside
    /// the target of the allowed link named by the path's first segment.
    fn resolve(&self, joined: &Path, first: Option<&String>) -> Result<PathBuf, Miss> {
        let real = match std::fs::canonicalize(joined) {
            Ok(real) => real,
            Err(e) if is_absent(&e) => return Err(Miss::NotFound),
            Err(_) => return Err(Miss::Forbidden),
        };
        if let Ok(inside) = real.strip_prefix(&self.real) {
            let names = inside.iter().map(|c| c.to_str().unwrap_or("."));
            if decode::hidden(names) {
                return Err(Miss::Forbidden);
            }
            return Ok(real);
        }
        if let Some(base) = first.and_then(|f| self.allowed_target(f))
            && let Ok(inside) = real.strip_prefix(&base)
        {
            let names = inside.iter().map(|c| c.to_str().unwrap_or("."));
            if decode::hidden(names) {
                return Err(Miss::Forbidden);
            }
            return Ok(real);
        }
        Err(Miss::Forbidden)
    }

    /// The canonical target of the allowed link `name` directly under the
    /// root, if `name` is allowed and is a symlink.
    fn allowed_target(&self, name: &str) -> Option<PathBuf> {
        if !self.allow_symlinks.iter().any(|a| a == name) {
            return None;
        }
        let link = self.real.join(name);
        let meta = std::fs::symlink_metadata(&link).ok()?;
        if !meta.file_type().is_symlink() {
            return None;
        }
        std::fs::canonicalize(link).ok()
    }
}

/// Entries directly under `dir` that are symlinks whose target leaves
/// `dir` (e.g. Laravel's `public/storage`): what `allow_symlinks` would
/// have to name for them to be served. For `portico check` to suggest.
pub fn escaping_symlinks(dir: &Path) -> io::Result<Vec<String>> {
    let real = std::fs::canonicalize(dir)?;
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&real)? {
        let entry = entry?;
        if !entry.file_type()?.is_symlink() {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        match std::fs::canonicalize(entry.path()) {
            Ok(target) if target.starts_with(&real) => {}
            Ok(_) => found.push(name),
            Err(_) => {}
        }
    }
    found.sort();
    Ok(found)
}

/// Why a path cannot be served.
#[derive(Debug, Clone, Copy)]
enum Miss {
    NotFound,
    Forbidden,
}

impl From<Miss> for Lookup {
    fn from(m: Miss) -> Lookup {
        match m {
            Miss::NotFound => Lookup::NotFound,
            Miss::Forbidden => Lookup::Forbidden,
        }
    }
}

fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// An index name is one plain file name.
fn plain_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\', '\0'])
}

/// `/a/b` for `["a", "b"]`; `/` for none.
fn rel_of(segments: &[String]) -> String {
    if segments.is_empty() {
        return "/".to_owned();
    }
    let mut rel = String::new();
    for s in segments {
        rel.push('/');
        rel.push_str(s);
    }
    rel
}

/// The redirect target for a directory asked for without its slash, built
/// from the checked segments (so `//evil.example` can never come out).
fn location_of(segments: &[String]) -> String {
    let mut loc = String::new();
    for s in segments {
        loc.push('/');
        loc.extend(utf8_percent_encode(s, SEGMENT));
    }
    loc.push('/');
    loc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_rebuilt_from_segments() {
        assert_eq!(location_of(&["docs".into()]), "/docs/");
        assert_eq!(
            location_of(&["evil.example".into(), "a b".into()]),
            "/evil.example/a%20b/"
        );
        assert_eq!(location_of(&["100%".into()]), "/100%25/");
    }

    #[test]
    fn index_names_are_plain() {
        assert!(plain_name("index.html"));
        assert!(!plain_name("../x"));
        assert!(!plain_name(".htaccess"));
        assert!(!plain_name(""));
    }
}
