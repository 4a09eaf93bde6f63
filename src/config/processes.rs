//! `[[processes]]`: the programs portico starts and keeps running (php-fpm,
//! `php artisan queue:work`, `npm run dev`), replacing Supervisor.
//!
//! Owns: the rules for a process entry (unique name, the command split
//! shell-like or given as an array, working directory, environment,
//! readiness target, stop signal, grace period, restart backoff bounds).
//! Receives: the raw tables. Hands on: [`ProcessSpec`]s in file order to
//! `Config::processes`, which the supervisor runs and `routes` checks
//! `wait_for` against.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::ctx::{Ctx, SpStr};
use super::error::ConfigError;

/// Default time a process gets to exit after its stop signal.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);
/// Default first restart delay (doubled per quick exit).
pub const DEFAULT_RESTART_DELAY: Duration = Duration::from_secs(1);
/// Default upper bound of the restart delay.
pub const DEFAULT_RESTART_MAX_DELAY: Duration = Duration::from_secs(30);

/// One `[[processes]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProcess {
    pub(crate) name: Option<SpStr>,
    /// A string (split shell-like) or an array of strings.
    pub(crate) command: Option<Spanned<toml::Value>>,
    pub(crate) cwd: Option<SpStr>,
    pub(crate) env: Option<BTreeMap<String, SpStr>>,
    pub(crate) ready: Option<SpStr>,
    pub(crate) grace: Option<SpStr>,
    pub(crate) restart_delay: Option<SpStr>,
    pub(crate) restart_max_delay: Option<SpStr>,
    pub(crate) stop_signal: Option<SpStr>,
}

/// A validated process entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessSpec {
    /// Unique among the entries; names the process in logs and `wait_for`.
    pub name: Arc<str>,
    /// The program (looked up in `PATH` when it has no `/`).
    pub program: String,
    pub args: Vec<String>,
    /// Working directory; portico's own when absent.
    pub cwd: Option<PathBuf>,
    /// Added to (or overriding) portico's own environment, sorted by name.
    pub env: Vec<(String, String)>,
    /// When the process counts as ready; `None`: as soon as it has started.
    pub ready: Option<ReadyProbe>,
    /// Time between the stop signal and SIGKILL.
    pub grace: Duration,
    /// First delay before a restart; doubled per exit that came too soon.
    pub restart_delay: Duration,
    /// Upper bound of the restart delay.
    pub restart_max_delay: Duration,
    pub stop_signal: StopSignal,
}

impl ProcessSpec {
    /// Whether `other` runs the same thing (program, arguments, directory,
    /// environment): a reload keeps such a process running.
    pub fn same_run(&self, other: &ProcessSpec) -> bool {
        self.program == other.program
            && self.args == other.args
            && self.cwd == other.cwd
            && self.env == other.env
    }

    /// The command line, for messages.
    pub fn command_line(&self) -> String {
        shell_words::join(std::iter::once(&self.program).chain(&self.args))
    }
}

/// What "ready" means for a process: a socket that accepts connections.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadyProbe {
    /// `tcp:127.0.0.1:9000`
    Tcp(SocketAddr),
    /// `unix:/run/php/php-fpm.sock`
    Unix(PathBuf),
}

impl std::fmt::Display for ReadyProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadyProbe::Tcp(a) => write!(f, "tcp:{a}"),
            ReadyProbe::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// The signal that asks a process to stop (php-fpm stops gracefully on
/// QUIT, Apache on WINCH, most others on TERM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    Term,
    Quit,
    Int,
    Hup,
    Usr1,
    Usr2,
    Winch,
}

impl StopSignal {
    const ALL: [(&'static str, StopSignal); 7] = [
        ("TERM", StopSignal::Term),
        ("QUIT", StopSignal::Quit),
        ("INT", StopSignal::Int),
        ("HUP", StopSignal::Hup),
        ("USR1", StopSignal::Usr1),
        ("USR2", StopSignal::Usr2),
        ("WINCH", StopSignal::Winch),
    ];

    /// The name without `SIG`, e.g. `TERM`.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("TERM", |(n, _)| n)
    }

    fn parse(s: &str) -> Option<StopSignal> {
        let up = s.trim().to_ascii_uppercase();
        let bare = up.strip_prefix("SIG").unwrap_or(&up);
        Self::ALL.iter().find(|(n, _)| *n == bare).map(|&(_, s)| s)
    }
}

pub(super) fn validate(
    raw: &[Spanned<RawProcess>],
    cx: &Ctx<'_>,
) -> Result<Vec<ProcessSpec>, ConfigError> {
    let mut out: Vec<ProcessSpec> = Vec::with_capacity(raw.len());
    for (i, p) in raw.iter().enumerate() {
        let spec = process(i, p.get_ref(), p.span(), cx)?;
        if let Some(j) = out.iter().position(|o| o.name == spec.name) {
            let span = p.get_ref().name.as_ref().map(|n| n.span());
            return Err(cx.err(
                format!("processes[{i}].name"),
                span,
                format!("`{}` is already the name of processes[{j}]", spec.name),
                "give every process its own name",
            ));
        }
        out.push(spec);
    }
    Ok(out)
}

fn process(
    i: usize,
    p: &RawProcess,
    span: std::ops::Range<usize>,
    cx: &Ctx<'_>,
) -> Result<ProcessSpec, ConfigError> {
    let k = |f: &str| format!("processes[{i}].{f}");
    let name_v = p.name.as_ref().ok_or_else(|| {
        cx.err(
            k("name"),
            Some(span.clone()),
            "every process needs a `name`",
            "add e.g. `name = \"queue\"`",
        )
    })?;
    let name = cx.string(&k("name"), name_v)?;
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(cx.err(
            k("name"),
            Some(name_v.span()),
            format!("`{name}` is not a process name"),
            "use letters, digits, `-`, `_` and `.` only, e.g. \"php-fpm\"",
        ));
    }
    let cmd_v = p.command.as_ref().ok_or_else(|| {
        cx.err(
            k("command"),
            Some(name_v.span()),
            "every process needs a `command`",
            "add e.g. `command = \"php artisan queue:work\"`",
        )
    })?;
    let mut words = command(&k("command"), cmd_v, cx)?;
    let program = words.remove(0);
    let cwd = match &p.cwd {
        None => None,
        Some(v) => {
            let dir = cx.path(&k("cwd"), v)?;
            if !dir.is_dir() {
                return Err(cx.err(
                    k("cwd"),
                    Some(v.span()),
                    format!("`{}` is not a directory", dir.display()),
                    "give the directory the command runs in, e.g. the Laravel app's root",
                ));
            }
            Some(dir)
        }
    };
    let mut env = Vec::new();
    for (name, v) in p.env.iter().flatten() {
        let key = k(&format!("env.{name}"));
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            return Err(cx.err(
                key,
                Some(v.span()),
                "not an environment variable name",
                "use a name such as APP_ENV",
            ));
        }
        let value = cx.string(&key, v)?;
        if value.contains('\0') {
            return Err(cx.err(key, Some(v.span()), "contains a NUL byte", "remove it"));
        }
        env.push((name.clone(), value));
    }
    let ready = p
        .ready
        .as_ref()
        .map(|v| ready_probe(&k("ready"), v, cx))
        .transpose()?;
    let grace = cx.duration_or(&k("grace"), p.grace.as_ref(), DEFAULT_GRACE)?;
    let restart_delay = cx.duration_or(
        &k("restart_delay"),
        p.restart_delay.as_ref(),
        DEFAULT_RESTART_DELAY,
    )?;
    let restart_max_delay = cx.duration_or(
        &k("restart_max_delay"),
        p.restart_max_delay.as_ref(),
        DEFAULT_RESTART_MAX_DELAY.max(restart_delay),
    )?;
    if restart_max_delay < restart_delay {
        let span = p.restart_max_delay.as_ref().map(|v| v.span());
        return Err(cx.err(
            k("restart_max_delay"),
            span,
            format!("{restart_max_delay:?} is shorter than `restart_delay` ({restart_delay:?})"),
            "make `restart_max_delay` at least `restart_delay`",
        ));
    }
    let stop_signal = match &p.stop_signal {
        None => StopSignal::Term,
        Some(v) => {
            let s = cx.string(&k("stop_signal"), v)?;
            StopSignal::parse(&s).ok_or_else(|| {
                cx.err(
                    k("stop_signal"),
                    Some(v.span()),
                    format!("`{s}` is not a stop signal portico sends"),
                    "write one of TERM, QUIT (php-fpm's graceful stop), INT, HUP, USR1, USR2, WINCH",
                )
            })?
        }
    };
    Ok(ProcessSpec {
        name: Arc::from(name.as_str()),
        program,
        args: words,
        cwd,
        env,
        ready,
        grace,
        restart_delay,
        restart_max_delay,
        stop_signal,
    })
}

/// The command's words: a string split as a POSIX shell would (quotes,
/// backslashes; no variables, globs or pipes), or an array of strings.
fn command(key: &str, v: &Spanned<toml::Value>, cx: &Ctx<'_>) -> Result<Vec<String>, ConfigError> {
    let bad = |problem: String| {
        cx.err(
            key,
            Some(v.span()),
            problem,
            "write `command = \"php artisan queue:work --tries=3\"` or `command = [\"php\", \"artisan\", \"queue:work\"]`",
        )
    };
    let words = match v.get_ref() {
        toml::Value::String(s) => {
            let s = cx.string(key, &Spanned::new(v.span(), s.clone()))?;
            shell_words::split(&s).map_err(|e| bad(format!("cannot split `{s}`: {e}")))?
        }
        toml::Value::Array(items) => {
            let mut words = Vec::with_capacity(items.len());
            for item in items {
                let toml::Value::String(s) = item else {
                    return Err(bad(format!("`{item}` is not a string")));
                };
                words.push(cx.string(key, &Spanned::new(v.span(), s.clone()))?);
            }
            words
        }
        other => return Err(bad(format!("a {} is not a command", other.type_str()))),
    };
    if words.first().is_none_or(|w| w.is_empty()) {
        return Err(bad("the command is empty".to_string()));
    }
    if words.iter().any(|w| w.contains('\0')) {
        return Err(bad("the command contains a NUL byte".to_string()));
    }
    Ok(words)
}

fn ready_probe(key: &str, v: &SpStr, cx: &Ctx<'_>) -> Result<ReadyProbe, ConfigError> {
    let s = cx.string(key, v)?;
    let fix = "write \"tcp:127.0.0.1:9000\" or \"unix:/run/php/php-fpm.sock\" (or leave `ready` out: ready once started)";
    if let Some(addr) = s.strip_prefix("tcp:") {
        let addr = addr.trim_start_matches("//");
        return addr.parse().map(ReadyProbe::Tcp).map_err(|_| {
            cx.err(
                key,
                Some(v.span()),
                format!("`{addr}` is not an IP address and port"),
                fix,
            )
        });
    }
    if let Some(path) = s.strip_prefix("unix:") {
        let path = path.trim_start_matches("//");
        if path.is_empty() {
            return Err(cx.err(key, Some(v.span()), "the socket path is empty", fix));
        }
        return Ok(ReadyProbe::Unix(PathBuf::from(path)));
    }
    Err(cx.err(
        key,
        Some(v.span()),
        format!("`{s}` is neither tcp: nor unix:"),
        fix,
    ))
}

#[cfg(test)]
mod tests;
