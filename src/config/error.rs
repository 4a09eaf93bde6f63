//! [`ConfigError`]: every way a config can be refused, with key, place and fix.
//!
//! Also the first parsing stage, because turning serde/TOML errors into
//! key + line + column is the main thing that stage can get wrong.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use super::raw::RawConfig;

/// A config the edge will not run with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("cannot read config file {}: {source}\n  fix: check the path given to --config", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A key or value is wrong.
    #[error("{0}")]
    Invalid(Box<Diagnostic>),
}

/// Where a config problem is and how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// The config file (or `<embedded default>`).
    pub file: String,
    /// Dotted key, e.g. `routes[2].to` or `server.https`.
    pub key: String,
    /// 1-based line and column of the offending value (0 when unknown).
    pub line: usize,
    pub column: usize,
    /// What is wrong.
    pub problem: String,
    /// What to write instead.
    pub fix: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: `{}`: {}\n  fix: {}",
            self.file, self.line, self.column, self.key, self.problem, self.fix
        )
    }
}

impl ConfigError {
    /// The diagnostic, when the error is about a key.
    pub fn diagnostic(&self) -> Option<&Diagnostic> {
        match self {
            ConfigError::Invalid(d) => Some(d),
            ConfigError::Read { .. } => None,
        }
    }
}

/// Turns a byte offset into a 1-based (line, column).
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
    (line, col)
}

/// Builds an [`ConfigError::Invalid`] for a value at `span`.
pub(crate) fn invalid(
    text: &str,
    file: &str,
    key: impl Into<String>,
    span: Option<Range<usize>>,
    problem: impl Into<String>,
    fix: impl Into<String>,
) -> ConfigError {
    let (line, column) = span.map_or((0, 0), |s| line_col(text, s.start));
    ConfigError::Invalid(Box::new(Diagnostic {
        file: file.to_string(),
        key: key.into(),
        line,
        column,
        problem: problem.into(),
        fix: fix.into(),
    }))
}

/// Stage one: TOML text to [`RawConfig`], with the failing key's path.
pub(crate) fn parse_raw(text: &str, file: &str) -> Result<RawConfig, ConfigError> {
    let de = match toml::Deserializer::parse(text) {
        Ok(de) => de,
        Err(e) => {
            return Err(invalid(
                text,
                file,
                "(syntax)",
                e.span(),
                first_line(e.message()),
                "fix the TOML syntax at that place (strings need quotes, tables use [name])",
            ));
        }
    };
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = dotted(e.path());
        let inner = e.into_inner();
        let message = first_line(inner.message());
        let fix = fix_for_serde_message(&message);
        invalid(text, file, key, inner.span(), message, fix)
    })
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

/// The field `toml::Spanned` deserializes its value through; it is an
/// implementation detail and must not show up in a dotted key.
const SPANNED_VALUE_FIELD: &str = "$__serde_spanned_private_value";

/// The failing key as `routes[0].to`; the root is `(top level)`.
fn dotted(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut s = String::new();
    for seg in path {
        let name = match seg {
            Segment::Seq { index } => {
                s.push_str(&format!("[{index}]"));
                continue;
            }
            Segment::Map { key } if key == SPANNED_VALUE_FIELD => continue,
            Segment::Map { key } | Segment::Enum { variant: key } => key.as_str(),
            Segment::Unknown => "?",
        };
        if !s.is_empty() {
            s.push('.');
        }
        s.push_str(name);
    }
    if s.is_empty() {
        "(top level)".to_string()
    } else {
        s
    }
}

fn fix_for_serde_message(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let allowed = rest
            .split_once("expected ")
            .map(|(_, a)| a.to_string())
            .unwrap_or_default();
        if allowed.is_empty() {
            "remove this key".to_string()
        } else {
            format!("remove or rename this key; allowed here: {allowed}")
        }
    } else if message.starts_with("invalid type") {
        "use the type named above (strings need quotes; durations are strings like \"30s\")"
            .to_string()
    } else if message.starts_with("missing field") {
        "add the missing key".to_string()
    } else {
        "see the config reference in README.md".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let t = "a = 1\nbb = 2\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, 11), (2, 6));
    }
}
