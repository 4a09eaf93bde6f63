//! [`ConfigError`]: every way a config can be refused, with key, place and fix.
//!
//! Also the first parsing stage, because turning serde/TOML errors into
//! key + line + column is the main thing that stage can get wrong. It is
//! generic over the raw mirror it fills, so this file depends on nothing
//! else in `config`.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

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
        if self.line == 0 {
            write!(
                f,
                "{}: `{}`: {}\n  fix: {}",
                self.file, self.key, self.problem, self.fix
            )
        } else {
            write!(
                f,
                "{}:{}:{}: `{}`: {}\n  fix: {}",
                self.file, self.line, self.column, self.key, self.problem, self.fix
            )
        }
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

/// Stage one: TOML text to the raw mirror `T` (`raw::RawConfig`), with the
/// failing key's path.
pub(crate) fn parse_raw<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &str,
) -> Result<T, ConfigError> {
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
        let (problem, fix) = explain_serde_message(&message, &key);
        invalid(text, file, key, inner.span(), problem, fix)
    })
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

/// `serde_path_to_error` paths print as `routes[0].to`; the root is `.`.
/// `toml::Spanned` adds an internal segment, which users never wrote.
fn dotted(path: &serde_path_to_error::Path) -> String {
    let s = path
        .to_string()
        .replace(".$__serde_spanned_private_value", "");
    if s == "." {
        "(top level)".to_string()
    } else {
        s
    }
}

/// Rewords serde's message into (problem, fix).
fn explain_serde_message(message: &str, key: &str) -> (String, String) {
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let (name, allowed) = match rest.split_once(", expected ") {
            Some((n, a)) => (n.trim_matches('`'), a.trim_start_matches("one of ")),
            None => (rest.trim_matches('`'), ""),
        };
        let problem = format!("unknown key `{name}`");
        let names: Vec<&str> = allowed
            .split(", ")
            .map(|a| a.trim_matches('`'))
            .filter(|a| !a.is_empty())
            .collect();
        let fix = match names.iter().min_by_key(|c| edit_distance(name, c)) {
            Some(best) if edit_distance(name, best) <= 2 => format!(
                "did you mean `{best}`? (allowed here: {})",
                names.join(", ")
            ),
            _ if names.is_empty() => "remove this key".to_string(),
            _ => format!("remove or rename it; allowed here: {}", names.join(", ")),
        };
        (problem, fix)
    } else if message.starts_with("invalid type") {
        (
            message.to_string(),
            format!(
                "give `{key}` the type named above (strings need quotes; durations and sizes are strings like \"30s\" or \"10MiB\")"
            ),
        )
    } else if message.starts_with("missing field") {
        (message.to_string(), "add the missing key".to_string())
    } else {
        (
            message.to_string(),
            "see the config reference in README.md".to_string(),
        )
    }
}

/// Levenshtein distance, for "did you mean" hints on short key names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
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
