//! `[[apps]]` and `[pusher]`: the Pusher/Reverb applications the hub serves.
//!
//! Owns: app ids, keys and secrets and their per-app options. Receives the
//! raw tables from [`super::raw`]; hands a validated [`Apps`] to the Pusher front.

use std::sync::Arc;

use serde::Deserialize;

use super::ConfigError;
use super::raw::SpStr;
use super::validate::Ctx;

/// One `[[apps]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApp {
    pub(crate) id: Option<SpStr>,
    pub(crate) key: Option<SpStr>,
    pub(crate) secret: Option<SpStr>,
}

/// `[pusher]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPusher {}

/// Every configured app.
#[derive(Debug, Clone, Default)]
pub struct Apps {
    pub apps: Vec<Arc<App>>,
}

/// One Pusher application.
#[derive(Clone)]
pub struct App {
    pub id: Arc<str>,
    pub key: Arc<str>,
    pub secret: Arc<str>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("id", &self.id)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

pub(crate) fn validate(
    raw: &[RawApp],
    _pusher: Option<&RawPusher>,
    cx: &Ctx<'_>,
) -> Result<Apps, ConfigError> {
    let mut apps: Vec<Arc<App>> = Vec::new();
    for (i, a) in raw.iter().enumerate() {
        let field = |name: &str, v: &Option<SpStr>| -> Result<Arc<str>, ConfigError> {
            let key = format!("apps[{i}].{name}");
            let v = v.as_ref().ok_or_else(|| {
                // Point at a key of the same [[apps]] table.
                let near = [&a.id, &a.key, &a.secret]
                    .into_iter()
                    .find_map(|f| f.as_ref().map(|f| f.span()));
                cx.err(
                    &key,
                    near,
                    format!("app {i} has no `{name}`"),
                    "run `portico keygen` for a fresh id/key/secret",
                )
            })?;
            let s = cx.string(&key, v)?;
            if s.is_empty() {
                return Err(cx.err(
                    &key,
                    Some(v.span()),
                    "is empty",
                    "run `portico keygen` for a fresh id/key/secret",
                ));
            }
            Ok(Arc::from(s.as_str()))
        };
        let app = App {
            id: field("id", &a.id)?,
            key: field("key", &a.key)?,
            secret: field("secret", &a.secret)?,
        };
        if apps.iter().any(|o| o.id == app.id || o.key == app.key) {
            return Err(cx.err(
                format!("apps[{i}].key"),
                a.key.as_ref().map(|k| k.span()),
                "another app has the same id or key",
                "give every app its own id and key",
            ));
        }
        apps.push(Arc::new(app));
    }
    Ok(Apps { apps })
}
