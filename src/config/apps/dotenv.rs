//! `[pusher] env_file`: the app of a Laravel `.env` (`REVERB_APP_*` or
//! `PUSHER_APP_*`, plus Reverb's knobs) and `REVERB_SERVER_PATH`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::spec::{AppSpec, PusherSettings};
use crate::config::ctx::{Ctx, SpStr};
use crate::config::error::ConfigError;

/// `[pusher] env_file`: reads the `.env`, adds its app to `apps` (unless an
/// identical `[[apps]]` entry is there) and takes `REVERB_SERVER_PATH` as
/// the path prefix when `[pusher] path_prefix` is not set.
pub(super) fn add_env_file(
    cx: &Ctx<'_>,
    file: &SpStr,
    apps: &mut Vec<Arc<AppSpec>>,
    front: &mut PusherSettings,
) -> Result<(), ConfigError> {
    let path = cx.string("pusher.env_file", file)?;
    let text = std::fs::read_to_string(&path).map_err(|e| {
        cx.err(
            "pusher.env_file",
            Some(file.span()),
            format!("cannot read {path}: {e}"),
            "point env_file at your Laravel app's .env (relative to where portico runs)",
        )
    })?;
    let env = parse_dotenv(&text);
    let (app, server_path) = app_from_env(&env).map_err(|problem| {
        cx.err("pusher.env_file", Some(file.span()), format!("{path}: {problem}"), "set REVERB_APP_ID, REVERB_APP_KEY and REVERB_APP_SECRET (or PUSHER_APP_*) in that file")
    })?;
    if front.path_prefix.is_none()
        && let Some(sp) = server_path.filter(|s| !s.trim_matches('/').is_empty())
    {
        front.path_prefix = Some(Arc::from(format!("/{}", sp.trim_matches('/'))));
    }
    match apps.iter().find(|o| o.id == app.id || o.key == app.key) {
        Some(o) if o.id == app.id && o.key == app.key => {}
        Some(_) => {
            return Err(cx.err(
                "pusher.env_file",
                Some(file.span()),
                format!(
                    "the app in {path} shares its id or key with an [[apps]] entry but differs"
                ),
                "remove the [[apps]] entry or make it match the .env values",
            ));
        }
        None => apps.push(Arc::new(app)),
    }
    Ok(())
}

/// Parses a Laravel `.env`: `KEY=value`, optional `export`, quotes, `#`
/// comments; `${VAR}` references to earlier keys are expanded.
pub fn parse_dotenv(text: &str) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let value = if let Some(inner) = v
            .strip_prefix('"')
            .and_then(|r| r.rsplit_once('"'))
            .map(|(a, _)| a)
        {
            inner.replace("\\n", "\n").replace("\\\"", "\"")
        } else if let Some(inner) = v
            .strip_prefix('\'')
            .and_then(|r| r.rsplit_once('\''))
            .map(|(a, _)| a)
        {
            inner.to_owned()
        } else {
            v.split(" #").next().unwrap_or("").trim().to_owned()
        };
        let value = expand_refs(&value, &out);
        out.insert(k.trim().to_owned(), value);
    }
    out
}

fn expand_refs(v: &str, env: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        match rest[i + 2..].find('}') {
            Some(j) => {
                let name = &rest[i + 2..i + 2 + j];
                out.push_str(env.get(name).map_or("", String::as_str));
                rest = &rest[i + 3 + j..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The app described by a Laravel `.env`, and `REVERB_SERVER_PATH`.
pub fn app_from_env(env: &HashMap<String, String>) -> Result<(AppSpec, Option<String>), String> {
    let get = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| env.get(*n).filter(|v| !v.is_empty()).cloned())
    };
    let id = get(&["REVERB_APP_ID", "PUSHER_APP_ID"])
        .ok_or("REVERB_APP_ID (or PUSHER_APP_ID) is not set")?;
    let key = get(&["REVERB_APP_KEY", "PUSHER_APP_KEY"])
        .ok_or("REVERB_APP_KEY (or PUSHER_APP_KEY) is not set")?;
    let secret = get(&["REVERB_APP_SECRET", "PUSHER_APP_SECRET"])
        .ok_or("REVERB_APP_SECRET (or PUSHER_APP_SECRET) is not set")?;
    let mut app = AppSpec::new(&id, &key, &secret);
    let secs = |name: &str| -> Result<Option<Duration>, String> {
        get(&[name])
            .map(|v| {
                v.parse::<u64>()
                    .map(Duration::from_secs)
                    .map_err(|_| format!("{name}={v:?} is not a number of seconds"))
            })
            .transpose()
    };
    let num = |name: &str| -> Result<Option<usize>, String> {
        get(&[name])
            .map(|v| {
                v.parse::<usize>()
                    .map_err(|_| format!("{name}={v:?} is not a number"))
            })
            .transpose()
    };
    if let Some(d) = secs("REVERB_APP_ACTIVITY_TIMEOUT")?.filter(|d| !d.is_zero()) {
        app.activity_timeout = d;
    }
    if let Some(d) = secs("REVERB_APP_PING_INTERVAL")?.filter(|d| !d.is_zero()) {
        app.ping_interval = Some(d);
    }
    if let Some(n) = num("REVERB_APP_MAX_MESSAGE_SIZE")?.filter(|n| *n > 0) {
        app.max_message_size = n;
    }
    app.max_connections = num("REVERB_APP_MAX_CONNECTIONS")?.filter(|n| *n > 0);
    if let Some(from) = get(&["REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM"]) {
        app.client_events = matches!(from.as_str(), "members" | "all");
    }
    if let Some(origins) = get(&["REVERB_APP_ALLOWED_ORIGINS"]) {
        app.allowed_origins = origins
            .split(',')
            .map(|o| o.trim())
            .filter(|o| !o.is_empty())
            .map(|o| Arc::from(o.to_ascii_lowercase()))
            .collect();
    }
    Ok((app, get(&["REVERB_SERVER_PATH"])))
}
