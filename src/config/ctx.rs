//! The validation context every section shares: the file text (for line
//! numbers), its name and the environment, plus the value readers built on
//! them (`${VAR}` expansion, durations, sizes, counts, paths).
//!
//! Owns: turning a spanned raw value into a typed one or a [`ConfigError`]
//! that names the key and the place. Receives: spanned values from the raw
//! tables. Hands on: typed values to `validate` and the section modules
//! (`acme`, `apps`, `supabase`), which all import this module and never each
//! other's validation code.

use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::error::{ConfigError, invalid, line_col};
use super::expand::expand;
use super::units::{parse_duration_opt, parse_size};

/// A string value with its position in the file, for error messages.
pub(crate) type SpStr = Spanned<String>;

/// What validation needs besides the raw values: the text (for line numbers),
/// the file name and the environment.
pub(crate) struct Ctx<'a> {
    text: &'a str,
    file: &'a str,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        text: &'a str,
        file: &'a str,
        env: &'a dyn Fn(&str) -> Option<String>,
    ) -> Self {
        Ctx { text, file, env }
    }

    /// The config file's name (or `<embedded default>`).
    pub(crate) fn file(&self) -> &'a str {
        self.file
    }

    /// An error about `key` at `span`.
    pub(crate) fn err(
        &self,
        key: impl Into<String>,
        span: Option<std::ops::Range<usize>>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> ConfigError {
        invalid(self.text, self.file, key, span, problem, fix)
    }

    /// The 1-based line of a byte offset, for messages that point elsewhere.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        line_col(self.text, offset).0
    }

    /// The string value with `${VAR}` expanded.
    pub(crate) fn string(&self, key: &str, v: &SpStr) -> Result<String, ConfigError> {
        expand(v.get_ref(), self.env).map_err(|e| {
            self.err(
                key,
                Some(v.span()),
                e.to_string(),
                "export the variable, or give a default: ${NAME:-value}",
            )
        })
    }

    pub(crate) fn duration(&self, key: &str, v: &SpStr) -> Result<Option<Duration>, ConfigError> {
        let s = self.string(key, v)?;
        parse_duration_opt(&s).map_err(|p| {
            self.err(
                key,
                Some(v.span()),
                p,
                "write a duration such as \"500ms\", \"30s\", \"5m\" or \"off\"",
            )
        })
    }

    pub(crate) fn duration_or(
        &self,
        key: &str,
        v: Option<&SpStr>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match v {
            None => Ok(default),
            Some(v) => self.duration(key, v)?.ok_or_else(|| {
                self.err(
                    key,
                    Some(v.span()),
                    "this timeout cannot be turned off",
                    "write a duration such as \"30s\"",
                )
            }),
        }
    }

    pub(crate) fn size_or(
        &self,
        key: &str,
        v: Option<&SpStr>,
        default: u64,
    ) -> Result<u64, ConfigError> {
        match v {
            None => Ok(default),
            Some(v) => {
                let s = self.string(key, v)?;
                parse_size(&s).map_err(|p| {
                    self.err(
                        key,
                        Some(v.span()),
                        p,
                        "write a size such as \"512KiB\" or \"64MiB\"",
                    )
                })
            }
        }
    }

    pub(crate) fn count(
        &self,
        key: &str,
        v: Option<&Spanned<i64>>,
        default: usize,
    ) -> Result<usize, ConfigError> {
        match v {
            None => Ok(default),
            Some(v) if *v.get_ref() >= 1 => Ok(*v.get_ref() as usize),
            Some(v) => Err(self.err(
                key,
                Some(v.span()),
                "must be at least 1",
                "write a positive whole number",
            )),
        }
    }

    /// A file or directory path; empty is refused.
    pub(crate) fn path(&self, key: &str, v: &SpStr) -> Result<PathBuf, ConfigError> {
        let s = self.string(key, v)?;
        if s.trim().is_empty() {
            return Err(self.err(
                key,
                Some(v.span()),
                "path is empty",
                "give a file or directory path",
            ));
        }
        Ok(PathBuf::from(s))
    }
}
