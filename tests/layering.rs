//! The library's layering, read from its own source so it cannot rot
//! silently: every `crate::`/`super::` path in code (not in comments, doc
//! links, string literals or `#[cfg(test)]` code) is an edge between the
//! modules it joins.
//!
//! - Between top-level modules: each sits on a layer ([`LAYERS`]) and may
//!   import only strictly lower layers; a few pairs are named "nevers"
//!   ([`NEVERS`]) with their own message; a module missing from the table
//!   fails; the graph has no cycle.
//! - Between sibling submodules (`config::apps` ↔ `config::validate`, at
//!   every depth): no cycle. A module's own root file (`mod.rs`, or `x.rs`
//!   beside `x/`) is the top of its children, as `lib.rs` is of the crate.
//!
//! `src/main.rs` and `src/bin/**` are separate binaries and not scanned.
//! Every violation is collected, then the test fails once with all of them.
//!
//! The scanner is a small lexer (comments, strings, raw strings, chars vs
//! lifetimes) and a path reader over its tokens; its own tests are at the
//! bottom of this file.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

/// The layers, bottom to top. A module imports only strictly lower layers.
const LAYERS: &[(&str, u32)] = &[
    // The ground floor: shared by everyone. `shutdown`, `workers` and
    // `io` import no one; `http` (the shared HTTP vocabulary: bodies,
    // error kinds, `Front`, `RequestCtx`) holds the shutdown handle.
    ("shutdown", 0),
    ("workers", 0),
    ("io", 0),
    ("sd_notify", 0), // readiness datagrams to systemd: imports no one
    ("metrics", 0),   // event counters for `/metrics`; imports no one
    ("upgrade", 0),   // SIGUSR2 hand-over of the listening fds; imports no one
    ("http", 1),
    ("config", 2),
    ("tls", 3),       // `acme` lives inside
    ("supervise", 3), // `[[processes]]`: needs config and shutdown only
    ("files", 3),     // static files: over `http` bodies, knows no config
    ("ws", 4),
    ("hub", 5),
    ("proxy", 6),
    ("cluster", 6), // the hub across nodes, on its observer seam; knows no front
    ("pusher", 7),  // the fronts
    ("phoenix", 7),
    ("bridge", 8),
    ("server", 9), // the request stack: connections, h1 path, router
    ("edge", 10),  // the composition root
    ("listener", 11),
    ("admin", 11),   // the admin listener: `/metrics` and `/status`, read from the edge
    ("cli", 12),     // the banner names the listeners
    ("fuzzing", 13), // the fuzz targets' entry points, beside lib.rs
];

/// Imports that are never allowed, each with the rule's own words.
const NEVERS: &[(&str, &[&str], &str)] = &[
    ("hub", &["pusher", "phoenix"], "the hub knows no front"),
    ("hub", &["http"], "the hub knows no HTTP"),
    ("hub", &["config"], "the hub reads no config"),
    ("config", &["pusher", "phoenix"], "config knows no front"),
    ("config", &["http"], "config knows no HTTP"),
    ("config", &["proxy"], "config knows no proxy"),
    ("config", &["hub"], "config knows no hub"),
    ("proxy", &["hub"], "the proxy never reaches the hub"),
    (
        "proxy",
        &["pusher", "phoenix"],
        "the proxy never reaches a front",
    ),
    (
        "cluster",
        &["pusher", "phoenix", "bridge"],
        "the cluster carries the hub's messages and knows no front",
    ),
    ("pusher", &["phoenix"], "the fronts don't import each other"),
    ("phoenix", &["pusher"], "the fronts don't import each other"),
];

fn layer(module: &str) -> Option<u32> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|&(_, l)| l)
}

/// Why `from` may not import `to`, if it may not.
fn broken_rule(from: &str, to: &str) -> Option<String> {
    if let Some((_, _, why)) = NEVERS
        .iter()
        .find(|(f, ts, _)| *f == from && ts.contains(&to))
    {
        return Some((*why).to_string());
    }
    let (lf, lt) = (layer(from)?, layer(to)?);
    if lt == lf {
        Some("modules on one layer don't import each other".into())
    } else if lt > lf {
        Some("nothing imports upward".into())
    } else {
        None
    }
}

// ---------------------------------------------------------------- lexer --

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Ident(String),
    /// `::`
    Sep,
    Punct(char),
}

#[derive(Debug, Clone)]
struct Tok {
    kind: Kind,
    line: usize,
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Tokens of `src` without comments, string/char literals and numbers.
fn lex(src: &str) -> Vec<Tok> {
    let c: Vec<char> = src.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let mut toks = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            // Block comments nest.
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(c[i] == '\n');
                    i += 1;
                }
            }
        } else if ch == '"' {
            i = skip_string(&c, i + 1, &mut line);
        } else if ch == '\'' {
            i = skip_char_or_lifetime(&c, i);
        } else if is_ident_start(ch) {
            let start = i;
            while i < c.len() && is_ident_char(c[i]) {
                i += 1;
            }
            let id: String = c[start..i].iter().collect();
            match (id.as_str(), at(i)) {
                ("r" | "br" | "cr", '"' | '#') if raw_string_start(&c, i) => {
                    i = skip_raw_string(&c, i, &mut line);
                }
                ("b" | "c", '"') => i = skip_string(&c, i + 1, &mut line),
                ("b", '\'') => i = skip_char_or_lifetime(&c, i),
                ("r", '#') if is_ident_start(at(i + 1)) => {
                    // A raw identifier, `r#type`.
                    let s = i + 1;
                    i = s;
                    while i < c.len() && is_ident_char(c[i]) {
                        i += 1;
                    }
                    let kind = Kind::Ident(c[s..i].iter().collect());
                    toks.push(Tok { kind, line });
                }
                _ => toks.push(Tok {
                    kind: Kind::Ident(id),
                    line,
                }),
            }
        } else if ch.is_ascii_digit() {
            while i < c.len() && is_ident_char(c[i]) {
                i += 1;
            }
        } else if ch == ':' && at(i + 1) == ':' {
            toks.push(Tok {
                kind: Kind::Sep,
                line,
            });
            i += 2;
        } else {
            toks.push(Tok {
                kind: Kind::Punct(ch),
                line,
            });
            i += 1;
        }
    }
    toks
}

/// Skips a `"…"` body starting after the opening quote.
fn skip_string(c: &[char], mut i: usize, line: &mut usize) -> usize {
    while i < c.len() {
        match c[i] {
            '\\' => {
                // An escaped newline continues the string on the next line.
                *line += usize::from(c.get(i + 1) == Some(&'\n'));
                i += 2;
            }
            '"' => return i + 1,
            '\n' => {
                *line += 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    i
}

/// Whether `#…#"` (or `"`) starts at `i`.
fn raw_string_start(c: &[char], mut i: usize) -> bool {
    while c.get(i) == Some(&'#') {
        i += 1;
    }
    c.get(i) == Some(&'"')
}

/// Skips `#…#"…"#…#` starting at the first `#` or `"`.
fn skip_raw_string(c: &[char], mut i: usize, line: &mut usize) -> usize {
    let mut hashes = 0;
    while c.get(i) == Some(&'#') {
        hashes += 1;
        i += 1;
    }
    i += 1; // the opening quote
    while i < c.len() {
        if c[i] == '"' && (1..=hashes).all(|k| c.get(i + k) == Some(&'#')) {
            return i + 1 + hashes;
        }
        *line += usize::from(c[i] == '\n');
        i += 1;
    }
    i
}

/// Skips a char literal (`'x'`, `'\n'`, `'\u{1F600}'`) or a lifetime/label.
fn skip_char_or_lifetime(c: &[char], i: usize) -> usize {
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    if at(i + 1) == '\\' {
        let mut j = i + 3;
        while j < c.len() && c[j] != '\'' {
            j += 1;
        }
        j + 1
    } else if at(i + 2) == '\'' {
        i + 3
    } else {
        let mut j = i + 1;
        while j < c.len() && is_ident_char(c[j]) {
            j += 1;
        }
        j
    }
}

// ------------------------------------------------------------- scanner --

/// How a path was written.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Form {
    /// A leaf of a `use` tree (a relative first segment may name a child
    /// module or a name in scope).
    Use,
    /// A path in code: `crate::a::f()`, `super::T`, or relative `apps::f()`.
    Code,
    /// A lone identifier, which a glob import (`use super::*`) may have
    /// brought in.
    Bare,
}

/// A path as written.
#[derive(Debug, Clone, PartialEq)]
struct Written {
    segs: Vec<String>,
    line: usize,
    /// The inline modules (`mod m { … }`) around it, outermost first.
    inline: Vec<String>,
    form: Form,
    /// A `use` leaf ending in `*`.
    glob: bool,
    /// The name a module-level `use` binds (`None` for globs, `_`, and
    /// uses inside functions).
    binds: Option<String>,
}

/// What one file says, before resolution.
#[derive(Debug, Default)]
struct FileScan {
    paths: Vec<Written>,
    /// `#[cfg(test)] mod name;` declarations: (inline modules, name).
    test_mods: Vec<(Vec<String>, String)>,
    /// Non-test inline modules (`mod m { … }`), as inline paths.
    inline_mods: Vec<Vec<String>>,
    /// `#![cfg(test)]`: the whole file is test code.
    test_only: bool,
}

fn ident(t: Option<&Tok>) -> Option<&str> {
    match t.map(|t| &t.kind) {
        Some(Kind::Ident(s)) => Some(s),
        _ => None,
    }
}

fn punct(t: Option<&Tok>, p: char) -> bool {
    matches!(t.map(|t| &t.kind), Some(Kind::Punct(c)) if *c == p)
}

fn sep(t: Option<&Tok>) -> bool {
    matches!(t.map(|t| &t.kind), Some(Kind::Sep))
}

/// Reads an attribute at `i` (`#[…]` or `#![…]`): (end, inner, is `cfg(test)`).
fn attribute(toks: &[Tok], i: usize) -> Option<(usize, bool, bool)> {
    if !punct(toks.get(i), '#') {
        return None;
    }
    let inner = punct(toks.get(i + 1), '!');
    let open = i + 1 + usize::from(inner);
    if !punct(toks.get(open), '[') {
        return None;
    }
    let mut depth = 0;
    let mut j = open;
    while j < toks.len() {
        match toks[j].kind {
            Kind::Punct('[') => depth += 1,
            Kind::Punct(']') => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            _ => {}
        }
        j += 1;
    }
    let body: Vec<&Kind> = toks[open + 1..j.min(toks.len())]
        .iter()
        .map(|t| &t.kind)
        .collect();
    let cfg_test = body
        == [
            &Kind::Ident("cfg".into()),
            &Kind::Punct('('),
            &Kind::Ident("test".into()),
            &Kind::Punct(')'),
        ];
    Some((j + 1, inner, cfg_test))
}

const ITEM_KEYWORDS: &[&str] = &[
    "pub",
    "mod",
    "fn",
    "use",
    "impl",
    "struct",
    "enum",
    "union",
    "trait",
    "type",
    "const",
    "static",
    "unsafe",
    "async",
    "extern",
    "let",
    "macro_rules",
];

/// Skips the item after a `#[cfg(test)]` ending at `i`; returns the index
/// after it and, for `mod name;`, the name.
fn skip_item(toks: &[Tok], mut i: usize) -> (usize, Option<String>) {
    while let Some((end, _, _)) = attribute(toks, i) {
        i = end;
    }
    let mut k = i;
    if ident(toks.get(k)) == Some("pub") {
        k += 1;
        if punct(toks.get(k), '(') {
            while k < toks.len() && !punct(toks.get(k), ')') {
                k += 1;
            }
            k += 1;
        }
    }
    let file_mod = match (ident(toks.get(k)), ident(toks.get(k + 1))) {
        (Some("mod"), Some(name)) if punct(toks.get(k + 2), ';') => Some(name.to_string()),
        _ => None,
    };
    // An item ends at `;` or its closing brace; a field or an arm (no
    // keyword) also at `,`.
    let is_item = ident(toks.get(i)).is_some_and(|s| ITEM_KEYWORDS.contains(&s));
    let mut depth = 0usize;
    while i < toks.len() {
        match toks[i].kind {
            Kind::Punct('(' | '[' | '{') => depth += 1,
            Kind::Punct(c @ (')' | ']' | '}')) => {
                if depth == 0 {
                    return (i, file_mod); // the enclosing block's end
                }
                depth -= 1;
                if depth == 0 && c == '}' {
                    return (i + 1, file_mod);
                }
            }
            Kind::Punct(';') if depth == 0 => return (i + 1, file_mod),
            Kind::Punct(',') if depth == 0 && !is_item => return (i + 1, file_mod),
            _ => {}
        }
        i += 1;
    }
    (i, file_mod)
}

/// One leaf of a use tree.
struct Leaf {
    path: Vec<String>,
    binds: Option<String>,
    line: usize,
    glob: bool,
}

/// Reads a use tree at `i` under `prefix`, pushing its leaves; returns the
/// index after it.
fn use_tree(toks: &[Tok], mut i: usize, prefix: Vec<String>, out: &mut Vec<Leaf>) -> usize {
    let mut path = prefix;
    loop {
        let line = toks.get(i).map_or(0, |t| t.line);
        if sep(toks.get(i)) {
            // A leading `::` names an external crate.
            path.push("::".into());
            i += 1;
        } else if let Some(s) = ident(toks.get(i)) {
            path.push(s.to_string());
            i += 1;
            if sep(toks.get(i)) {
                i += 1;
                continue;
            }
            let mut name = s.to_string();
            if ident(toks.get(i)) == Some("as") {
                name = ident(toks.get(i + 1)).unwrap_or("_").to_string();
                i += 2;
            }
            if path.last().is_some_and(|s| s == "self") {
                // `a::{self}` binds `a`.
                path.pop();
                if name == "self" {
                    name = path.last().cloned().unwrap_or_default();
                }
            }
            out.push(Leaf {
                path,
                binds: (name != "_").then_some(name),
                line,
                glob: false,
            });
            return i;
        } else if punct(toks.get(i), '*') {
            out.push(Leaf {
                path,
                binds: None,
                line,
                glob: true,
            });
            return i + 1;
        } else if punct(toks.get(i), '{') {
            i += 1;
            while i < toks.len() && !punct(toks.get(i), '}') {
                let next = use_tree(toks, i, path.clone(), out);
                i = if next == i { i + 1 } else { next };
                if punct(toks.get(i), ',') {
                    i += 1;
                }
            }
            return i + 1;
        } else {
            return i;
        }
    }
}

/// Whether an identifier after `prev` is not the start of a path: it
/// continues one (`a::b`), is a field or method (`x.f`), or is a name
/// being defined.
fn after_path_or_def(prev: &Tok) -> bool {
    match &prev.kind {
        Kind::Sep | Kind::Punct('.') => true,
        Kind::Ident(k) => matches!(
            k.as_str(),
            "fn" | "struct"
                | "enum"
                | "union"
                | "trait"
                | "type"
                | "mod"
                | "let"
                | "const"
                | "static"
                | "macro_rules"
                | "as"
        ),
        _ => false,
    }
}

/// Scans one file's text.
fn scan(src: &str) -> FileScan {
    let toks = lex(src);
    let mut out = FileScan::default();
    // Open inline modules: (name, brace depth inside their body).
    let mut mods: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        let inline: Vec<String> = mods.iter().map(|(m, _)| m.clone()).collect();
        let module_level = depth == mods.last().map_or(0, |&(_, d)| d);
        if let Some((end, inner, cfg_test)) = attribute(&toks, i) {
            i = end;
            if cfg_test && inner && mods.is_empty() {
                out.test_only = true;
                return out;
            }
            if cfg_test && !inner {
                let (next, file_mod) = skip_item(&toks, i);
                if let Some(name) = file_mod {
                    out.test_mods.push((inline, name));
                }
                i = next;
            }
            continue;
        }
        let t = &toks[i];
        match &t.kind {
            Kind::Punct('{') => depth += 1,
            Kind::Punct('}') => {
                if mods.last().is_some_and(|&(_, d)| d == depth) {
                    mods.pop();
                }
                depth = depth.saturating_sub(1);
            }
            Kind::Ident(k) if k == "mod" => {
                if let Some(name) = ident(toks.get(i + 1))
                    && punct(toks.get(i + 2), '{')
                {
                    let mut path = inline.clone();
                    path.push(name.to_string());
                    out.inline_mods.push(path);
                    mods.push((name.to_string(), depth + 1));
                    i += 2;
                    continue;
                }
            }
            Kind::Ident(k) if k == "use" => {
                let mut leaves = Vec::new();
                i = use_tree(&toks, i + 1, Vec::new(), &mut leaves);
                for l in leaves {
                    out.paths.push(Written {
                        segs: l.path,
                        line: l.line,
                        inline: inline.clone(),
                        form: Form::Use,
                        glob: l.glob,
                        binds: l.binds.filter(|_| module_level),
                    });
                }
                continue;
            }
            Kind::Ident(k) if k != "Self" && !(i > 0 && after_path_or_def(&toks[i - 1])) => {
                let mut segs = vec![k.clone()];
                i += 1;
                while sep(toks.get(i))
                    && let Some(s) = ident(toks.get(i + 1))
                {
                    segs.push(s.to_string());
                    i += 2;
                }
                let form = if segs.len() > 1 {
                    Form::Code
                } else {
                    Form::Bare
                };
                // `pub(crate)`, `pub(super)` and a lone `self` name no path.
                if form == Form::Code || !matches!(k.as_str(), "crate" | "super" | "self") {
                    out.paths.push(Written {
                        segs,
                        line: t.line,
                        inline,
                        form,
                        glob: false,
                        binds: None,
                    });
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

// ---------------------------------------------------------- resolution --

/// Where a path was written.
#[derive(Debug, Clone)]
struct Site {
    file: String,
    line: usize,
    path: String,
}

impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

type Module = Vec<String>;

/// Names in scope, per module: what its `use`s bind, and the modules it
/// glob-imports.
#[derive(Debug, Default)]
struct Scope {
    binds: BTreeMap<Module, BTreeMap<String, Module>>,
    globs: BTreeMap<Module, Vec<Module>>,
}

/// Edges between sibling modules: parent → (from child, to child) → sites.
type Edges = BTreeMap<Module, BTreeMap<(String, String), Vec<Site>>>;

/// The library's module graph.
#[derive(Debug, Default)]
struct Graph {
    /// Every non-test module; `[]` is the crate root (`lib.rs`).
    modules: BTreeSet<Module>,
    /// The top-level modules' names.
    top: BTreeSet<String>,
    edges: Edges,
    /// Paths that reach an item of `lib.rs` itself from inside a module.
    root_items: Vec<Site>,
}

/// `src/a/b.rs` → `[a, b]`; `src/a/mod.rs` → `[a]`; `src/lib.rs` → `[]`.
fn module_of(rel: &str) -> Option<Module> {
    let p = rel.strip_prefix("src/")?.strip_suffix(".rs")?;
    let mut segs: Module = p.split('/').map(str::to_string).collect();
    if segs == ["lib"] {
        return Some(Vec::new());
    }
    if segs == ["main"] || segs[0] == "bin" {
        return None;
    }
    if segs.last().is_some_and(|s| s == "mod") {
        segs.pop();
    }
    Some(segs)
}

fn join(m: &[String]) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

impl Graph {
    /// Builds the graph from `(path under the crate, text)` pairs.
    fn build(files: &[(String, String)]) -> Graph {
        let scanned: Vec<(String, Module, FileScan)> = files
            .iter()
            .filter_map(|(rel, text)| Some((rel.clone(), module_of(rel)?, scan(text))))
            .collect();
        let mut test_mods: Vec<Module> = Vec::new();
        for (_, m, s) in &scanned {
            for (inline, name) in &s.test_mods {
                test_mods.push([m.clone(), inline.clone(), vec![name.clone()]].concat());
            }
        }
        let is_test = |m: &Module| test_mods.iter().any(|t| m.starts_with(t));
        let live: Vec<&(String, Module, FileScan)> = scanned
            .iter()
            .filter(|(_, m, s)| !s.test_only && !is_test(m))
            .collect();
        let mut g = Graph::default();
        for (_, m, s) in &live {
            g.modules.insert(m.clone());
            for inline in &s.inline_mods {
                g.modules.insert([m.clone(), inline.clone()].concat());
            }
        }
        g.top = g
            .modules
            .iter()
            .filter_map(|m| m.first().cloned())
            .collect();
        // What each module's `use`s bind and glob-import (read with what
        // anchored paths and child modules resolve; enough for re-exports).
        let mut scope = Scope::default();
        for (_, m, s) in &live {
            for w in s.paths.iter().filter(|w| w.form == Form::Use) {
                let ctx = [m.clone(), w.inline.clone()].concat();
                let Some(abs) = g.absolute(w, &ctx, &Scope::default()) else {
                    continue;
                };
                if w.glob {
                    scope.globs.entry(ctx).or_default().push(abs);
                } else if let Some(name) = &w.binds {
                    scope
                        .binds
                        .entry(ctx)
                        .or_default()
                        .insert(name.clone(), abs);
                }
            }
        }
        for (rel, m, s) in &live {
            for w in &s.paths {
                let ctx = [m.clone(), w.inline.clone()].concat();
                let Some(abs) = g.absolute(w, &ctx, &scope) else {
                    continue;
                };
                let target = g.target(&abs, &scope.binds, 0);
                let site = Site {
                    file: rel.clone(),
                    line: w.line,
                    path: w.segs.join("::"),
                };
                let common = ctx.iter().zip(&target).take_while(|(a, b)| a == b).count();
                if common < ctx.len() && common < target.len() {
                    g.edges
                        .entry(ctx[..common].to_vec())
                        .or_default()
                        .entry((ctx[common].clone(), target[common].clone()))
                        .or_default()
                        .push(site);
                } else if target.is_empty() && !ctx.is_empty() {
                    g.root_items.push(site);
                }
            }
        }
        g
    }

    /// The absolute path `w` names from module `ctx`; `None` for external
    /// crates, locals, and names its own `use`s bound (that `use` is the
    /// edge).
    fn absolute(&self, w: &Written, ctx: &[String], scope: &Scope) -> Option<Module> {
        let first = w.segs.first()?;
        let (mut base, rest): (Module, &[String]) = match first.as_str() {
            "crate" => (Vec::new(), &w.segs[1..]),
            "self" => (ctx.to_vec(), &w.segs[1..]),
            "super" => {
                let mut base = ctx.to_vec();
                let mut n = 0;
                while w.segs.get(n).is_some_and(|s| s == "super") {
                    base.pop()?;
                    n += 1;
                }
                (base, &w.segs[n..])
            }
            _ if w.form == Form::Bare => {
                // Only through a glob import that brings this name.
                let g = scope
                    .globs
                    .get(ctx)?
                    .iter()
                    .find(|g| scope.binds.get(*g).is_some_and(|b| b.contains_key(first)))?;
                (g.clone(), &w.segs[..])
            }
            _ if self.modules.contains(&[ctx, &w.segs[..1]].concat()) => {
                (ctx.to_vec(), &w.segs[..])
            }
            _ => {
                // A child module or a bound name of a glob-imported module.
                let globs = scope.globs.get(ctx)?;
                if let Some(g) = globs
                    .iter()
                    .find(|g| self.modules.contains(&[g, &w.segs[..1]].concat()))
                {
                    (g.clone(), &w.segs[..])
                } else {
                    let to = globs.iter().find_map(|g| scope.binds.get(g)?.get(first))?;
                    (to.clone(), &w.segs[1..])
                }
            }
        };
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The module an absolute path lands in: its longest module prefix, or
    /// the child that prefix re-exports the next name from.
    fn target(
        &self,
        abs: &[String],
        binds: &BTreeMap<Module, BTreeMap<String, Module>>,
        hops: usize,
    ) -> Module {
        let m = (0..=abs.len())
            .rev()
            .map(|n| abs[..n].to_vec())
            .find(|p| self.modules.contains(p))
            .unwrap_or_default();
        if let Some(name) = abs.get(m.len())
            && let Some(to) = binds.get(&m).and_then(|b| b.get(name))
            && hops < 8
        {
            let t = self.target(to, binds, hops + 1);
            if t.len() > m.len() && t.starts_with(&m) {
                return t;
            }
        }
        m
    }

    /// Top-level edges: (from, to) → sites.
    fn top_edges(&self) -> BTreeMap<(String, String), Vec<Site>> {
        self.edges.get(&Vec::new()).cloned().unwrap_or_default()
    }
}

/// Every elementary cycle found through each edge of a strongly connected
/// part of `edges` (shortest return path per edge), as node lists.
fn cycles(edges: &BTreeMap<(String, String), Vec<Site>>) -> Vec<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges.keys() {
        next.entry(a).or_default().push(b);
    }
    let mut found: BTreeSet<Vec<String>> = BTreeSet::new();
    for (a, b) in edges.keys() {
        // Shortest path b → a (BFS over at most every node once).
        let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([b.as_str()]);
        let mut seen = BTreeSet::from([b.as_str()]);
        while let Some(n) = queue.pop_front() {
            if n == a {
                break;
            }
            for &m in next.get(n).into_iter().flatten() {
                if seen.insert(m) {
                    prev.insert(m, n);
                    queue.push_back(m);
                }
            }
        }
        if !seen.contains(a.as_str()) {
            continue;
        }
        let mut cycle = vec![a.to_string()];
        let mut n = a.as_str();
        while n != b {
            n = prev[n];
            cycle.push(n.to_string());
        }
        cycle.reverse(); // b … a
        // Start each cycle at its smallest node, so rotations dedupe.
        let start = (0..cycle.len()).min_by_key(|&k| &cycle[k]).unwrap_or(0);
        cycle.rotate_left(start);
        found.insert(cycle);
    }
    found.into_iter().collect()
}

/// `a -> b -> a (a -> b at f:1; b -> a at g:2)`.
fn describe_cycle(cycle: &[String], edges: &BTreeMap<(String, String), Vec<Site>>) -> String {
    let mut names = cycle.to_vec();
    names.push(cycle[0].clone());
    let hops: Vec<String> = names
        .windows(2)
        .map(|w| {
            let site = &edges[&(w[0].clone(), w[1].clone())][0];
            format!("{} -> {} at {site}", w[0], w[1])
        })
        .collect();
    format!("{} ({})", names.join(" -> "), hops.join("; "))
}

/// Sites grouped by file and line: (`file:line`, "`a`, `b`"), in order.
fn by_line(sites: &[Site]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for s in sites {
        let place = s.to_string();
        match out.last_mut() {
            Some((p, paths)) if *p == place => paths.push_str(&format!(", `{}`", s.path)),
            _ => out.push((place, format!("`{}`", s.path))),
        }
    }
    out
}

/// Violations of the top-level rules.
fn layering_violations(g: &Graph) -> Vec<String> {
    let mut out = Vec::new();
    for m in &g.top {
        if layer(m).is_none() {
            out.push(format!(
                "src/{m}: top-level module `{m}` is not in the layer table: place it in LAYERS in tests/layering.rs"
            ));
        }
    }
    let edges = g.top_edges();
    for ((from, to), sites) in &edges {
        if let Some(why) = broken_rule(from, to) {
            let (lf, lt) = (layer(from).unwrap_or(0), layer(to).unwrap_or(0));
            for (place, paths) in by_line(sites) {
                out.push(format!(
                    "{place}: {from} (layer {lf}) imports {to} (layer {lt}): {why} [{paths}]"
                ));
            }
        }
    }
    for s in &g.root_items {
        out.push(format!(
            "{s}: `{}` reaches an item of src/lib.rs, the top: import it from the module that owns it",
            s.path
        ));
    }
    out.extend(report_cycles("", &edges));
    out
}

/// One entry per strongly connected part of `edges`, naming its cycles.
fn report_cycles(within: &str, edges: &BTreeMap<(String, String), Vec<Site>>) -> Vec<String> {
    let all = cycles(edges);
    strongly_connected(edges)
        .into_iter()
        .filter(|part| part.len() > 1)
        .map(|part| {
            let mut lines: Vec<String> = all
                .iter()
                .filter(|c| part.contains(&c[0]))
                .map(|c| describe_cycle(c, edges))
                .collect();
            let names: Vec<&str> = part.iter().map(String::as_str).collect();
            if lines.len() == 1 {
                format!("cycle{within}: {}", lines.remove(0))
            } else {
                format!(
                    "cycles{within} among {}:\n      {}",
                    names.join(", "),
                    lines.join("\n      ")
                )
            }
        })
        .collect()
}

/// Tarjan's strongly connected components of the graph `edges`.
fn strongly_connected(edges: &BTreeMap<(String, String), Vec<Site>>) -> Vec<BTreeSet<String>> {
    struct Tarjan<'a> {
        next: BTreeMap<&'a str, Vec<&'a str>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        parts: Vec<BTreeSet<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.next.get(v).cloned().unwrap_or_default() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut part = BTreeSet::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    part.insert(w.to_string());
                    if w == v {
                        break;
                    }
                }
                self.parts.push(part);
            }
        }
    }
    let mut t = Tarjan {
        next: BTreeMap::new(),
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        parts: Vec::new(),
    };
    for (a, b) in edges.keys() {
        t.next.entry(a.as_str()).or_default().push(b.as_str());
        t.next.entry(b.as_str()).or_default();
    }
    let nodes: Vec<&str> = t.next.keys().copied().collect();
    for v in nodes {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    t.parts.sort();
    t.parts
}

/// Cycles between sibling submodules, under every module.
fn submodule_cycles(g: &Graph) -> Vec<String> {
    let mut out = Vec::new();
    for (parent, edges) in &g.edges {
        if parent.is_empty() {
            continue;
        }
        out.extend(report_cycles(&format!(" in {}", join(parent)), edges));
    }
    out
}

/// Reads `src/**/*.rs` (paths relative to the crate, sorted).
fn read_crate() -> Vec<(String, String)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {dir:?}: {e}"));
        for e in entries {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                walk(&p, root, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(root).expect("under the crate");
                let text =
                    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {p:?}: {e}"));
                out.push((rel.to_string_lossy().replace('\\', "/"), text));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    walk(&root.join("src"), root, &mut out);
    out.sort();
    out
}

fn fail_with(what: &str, violations: &[String]) {
    assert!(
        violations.is_empty(),
        "{what}: {} violation(s)\n  {}\n",
        violations.len(),
        violations.join("\n  ")
    );
}

#[test]
fn top_level_modules_keep_their_layers() {
    let g = Graph::build(&read_crate());
    fail_with("layering", &layering_violations(&g));
}

#[test]
fn no_cycle_between_sibling_submodules() {
    let g = Graph::build(&read_crate());
    fail_with("submodule cycles", &submodule_cycles(&g));
}

/// Prints the scanned graph: `cargo test --test layering -- --ignored
/// --nocapture print_graph`.
#[test]
#[ignore = "a tool, not a check"]
fn print_graph() {
    let g = Graph::build(&read_crate());
    for (parent, edges) in &g.edges {
        println!("{}:", join(parent));
        for ((a, b), sites) in edges {
            println!("  {a} -> {b} ({}, first at {})", sites.len(), sites[0]);
        }
    }
}

/// The scanner sees the real tree: edges that the architecture requires
/// are found, so an empty scan cannot pass.
#[test]
fn scanner_sees_the_real_graph() {
    let g = Graph::build(&read_crate());
    let edges = g.top_edges();
    for (a, b) in [
        ("pusher", "hub"),
        ("phoenix", "hub"),
        ("server", "proxy"),
        ("edge", "server"),
    ] {
        assert!(
            edges.contains_key(&(a.to_string(), b.to_string())),
            "the scan found no {a} -> {b}; edges: {:?}",
            edges.keys().collect::<Vec<_>>()
        );
    }
    for m in ["config", "hub", "pusher", "server", "edge"] {
        assert!(g.top.contains(m), "module {m} not found: {:?}", g.top);
    }
    assert!(
        g.modules
            .contains(&vec!["config".to_string(), "apps".to_string()])
    );
}

// ------------------------------------------------------ scanner's tests --

/// A crate of `(path, text)` files, with empty `a`, `b`, `c`, `x` modules
/// unless given.
fn crate_of(files: &[(&str, &str)]) -> Graph {
    let mut all: Vec<(String, String)> = files
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect();
    for m in ["lib", "a", "b", "c", "x"] {
        let p = format!("src/{m}.rs");
        if !all.iter().any(|(q, _)| *q == p) {
            all.push((p, String::new()));
        }
    }
    Graph::build(&all)
}

/// Top-level targets `from` imports, with their lines.
fn imports(g: &Graph, from: &str) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = g
        .top_edges()
        .into_iter()
        .filter(|((f, _), _)| f == from)
        .flat_map(|((_, t), sites)| sites.into_iter().map(move |s| (t.clone(), s.line)))
        .collect();
    out.sort();
    out
}

fn pairs(v: &[(&str, usize)]) -> Vec<(String, usize)> {
    v.iter().map(|&(m, l)| (m.to_string(), l)).collect()
}

#[test]
fn scanner_skips_comments_and_doc_links() {
    let g = crate_of(&[(
        "src/a.rs",
        "//! see [`crate::x`]\n/// and crate::b::f\n// crate::c\n/* crate::x /* nested crate::b */ crate::c */\nfn f() {}\n",
    )]);
    assert_eq!(imports(&g, "a"), vec![]);
}

#[test]
fn scanner_counts_multi_line_groups() {
    let g = crate_of(&[("src/a.rs", "use crate::{\n    b::thing,\n    c,\n};\n")]);
    assert_eq!(imports(&g, "a"), pairs(&[("b", 2), ("c", 3)]));
}

#[test]
fn scanner_counts_every_use_form() {
    let g = crate_of(&[(
        "src/a.rs",
        "pub use crate::b::B;\npub(crate) use crate::c::{self, C as D};\nuse crate::x::*;\n",
    )]);
    assert_eq!(
        imports(&g, "a"),
        pairs(&[("b", 1), ("c", 2), ("c", 2), ("x", 3)])
    );
}

#[test]
fn scanner_counts_inline_paths_and_macros() {
    let g = crate_of(&[(
        "src/a.rs",
        "fn f() -> crate::b::T {\n    crate::c::event(1);\n    crate::x::m::mac!(y)\n}\nimpl crate::b::Tr for S {}\n",
    )]);
    assert_eq!(
        imports(&g, "a"),
        pairs(&[("b", 1), ("b", 5), ("c", 2), ("x", 3)])
    );
}

#[test]
fn scanner_skips_string_and_char_literals() {
    let g = crate_of(&[(
        "src/a.rs",
        r####"fn f<'a>(s: &'a str) {
    let _ = "crate::b";
    let _ = r#"crate::c "quoted""#;
    let _ = b"crate::x";
    let _ = ('"', '\'', b'"', "\"crate::b\"");
    'outer: loop { break 'outer; }
    crate::c::real();
}
"####,
    )]);
    assert_eq!(imports(&g, "a"), pairs(&[("c", 7)]));
}

#[test]
fn scanner_skips_cfg_test_code() {
    let g = crate_of(&[
        (
            "src/a.rs",
            "use crate::b::B;\n#[cfg(test)]\nmod tests {\n    use crate::x::X;\n    fn t() { crate::c::f(); }\n}\n#[cfg(test)]\nuse crate::c::C;\n#[cfg(test)]\nmod more;\nfn g() { crate::b::f(); }\n",
        ),
        ("src/a/more.rs", "use crate::x::Y;\n"),
        ("src/c/mod.rs", "#[cfg(test)]\nmod tests;\n"),
        ("src/c/tests.rs", "use crate::a::A;\n"),
    ]);
    assert_eq!(imports(&g, "a"), pairs(&[("b", 1), ("b", 11)]));
    assert_eq!(imports(&g, "c"), vec![]);
}

#[test]
fn scanner_follows_glob_imports() {
    let g = crate_of(&[
        ("src/b/mod.rs", "mod one;\nmod two;\npub use two::Two;\n"),
        (
            "src/b/one.rs",
            "use super::*;\nfn f(two: u8) -> Two {\n    let t = two;\n    two::make()\n}\n",
        ),
        ("src/b/two.rs", "pub struct Two;\n"),
    ]);
    let sites = &g.edges[&vec!["b".to_string()]][&("one".into(), "two".into())];
    let lines: Vec<usize> = sites.iter().map(|s| s.line).collect();
    assert_eq!(lines, vec![2, 4], "{sites:?}");
}

#[test]
fn scanner_resolves_super_and_reexports() {
    let g = crate_of(&[
        ("src/lib.rs", "pub mod a;\npub use a::A;\n"),
        ("src/b/mod.rs", "mod one;\nmod two;\npub use two::Two;\n"),
        (
            "src/b/one.rs",
            "use super::Two;\nuse super::super::c::C;\nuse crate::A;\n",
        ),
        ("src/b/two.rs", "use crate::b::one::f;\n"),
    ]);
    assert_eq!(imports(&g, "b"), pairs(&[("a", 3), ("c", 2)]));
    let sub = &g.edges[&vec!["b".to_string()]];
    let keys: Vec<_> = sub.keys().cloned().collect();
    assert_eq!(
        keys,
        vec![("one".into(), "two".into()), ("two".into(), "one".into())]
    );
    assert_eq!(submodule_cycles(&g).len(), 1, "{:?}", submodule_cycles(&g));
    assert!(submodule_cycles(&g)[0].starts_with("cycle in b: one -> two -> one"));
}

#[test]
fn layering_reports_file_line_and_rule() {
    let files = [
        ("src/lib.rs", ""),
        ("src/config/mod.rs", "mod apps;\n"),
        ("src/config/apps.rs", "\n\npub use crate::pusher::Front;\n"),
        ("src/pusher.rs", "use crate::config::Config;\n"),
        ("src/hub.rs", "use crate::http::Body;\n"),
        ("src/http.rs", ""),
        ("src/io.rs", "use crate::workers::X;\n"),
        ("src/workers.rs", ""),
        ("src/newthing.rs", ""),
        ("src/server.rs", "fn f() { crate::run(); }\n"),
    ];
    let g = Graph::build(&files.map(|(p, t)| (p.to_string(), t.to_string())));
    let v = layering_violations(&g);
    let expected = [
        "src/newthing: top-level module `newthing` is not in the layer table",
        "src/config/apps.rs:3: config (layer 2) imports pusher (layer 7): config knows no front",
        "src/hub.rs:1: hub (layer 5) imports http (layer 1): the hub knows no HTTP",
        "src/io.rs:1: io (layer 0) imports workers (layer 0): modules on one layer don't import each other",
        "src/server.rs:1: `crate::run` reaches an item of src/lib.rs",
        "cycle: config -> pusher -> config (config -> pusher at src/config/apps.rs:3; pusher -> config at src/pusher.rs:1)",
    ];
    for e in expected {
        assert!(
            v.iter().any(|l| l.starts_with(e)),
            "missing {e:?} in {v:#?}"
        );
    }
    assert_eq!(v.len(), expected.len(), "{v:#?}");
}

#[test]
fn lexer_keeps_lines_across_literals_and_comments() {
    let toks = lex("/* a\nb */ \"x\ny\" r#\"\n\"# '\\n' \"a\\\nb\" x");
    assert_eq!(toks.len(), 1);
    assert_eq!(toks[0].kind, Kind::Ident("x".into()));
    assert_eq!(toks[0].line, 5);
}
