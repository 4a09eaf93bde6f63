//! `[[apps]]`/`[pusher]` validation: accepted shapes and one rejecting test
//! per rule.

use std::time::Duration;

use super::*;
use crate::config::Config;
// The methods of the runtime app (the front's view of this data).
use crate::pusher::app::App;

fn load(toml: &str) -> Result<Config, ConfigError> {
    let text = format!("[server]\nplain = \"127.0.0.1:0\"\n{toml}");
    Config::from_str_with_env(&text, "test.toml", &|_| None)
}

fn err_key(toml: &str) -> String {
    match load(toml) {
        Ok(_) => panic!("accepted:\n{toml}"),
        Err(e) => e.diagnostic().map(|d| d.key.clone()).unwrap_or_default(),
    }
}

const BASE: &str = "[[apps]]\nid = \"1\"\nkey = \"k\"\nsecret = \"s\"\n";

#[test]
fn full_app() {
    let c = load(&format!(
        "{BASE}client_events = true\nallowed_origins = [\"example.com\", \"*.example.com\"]\nmax_connections = 5\n\
         max_message_size = \"20KiB\"\nactivity_timeout = \"30s\"\nping_interval = \"45s\"\nuser_authentication = true\nwatchlist = true\n\
         subscription_count = true\npresence_max_members = 10\ncache_ttl = \"1m\"\n\
         [apps.rate_limit]\nmax_events = 5\nper = \"2s\"\nterminate = true\n\
         [apps.api_rate_limit]\nmax_requests = 50\nper = \"10s\"\n\
         [[apps.webhooks]]\nurl = \"http://127.0.0.1:8000/hooks\"\nevents = [\"channel_occupied\", \"member_added\"]\n\
         [pusher]\npath_prefix = \"/ws/\"\ndrain_spread = \"10s\"\n"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let a = &c.apps.apps[0];
    let rt = App::from(&**a);
    assert!(a.client_events);
    assert_eq!(a.allowed_origins.len(), 2);
    assert_eq!(a.max_connections, Some(5));
    assert_eq!(a.max_message_size, 20 * 1024);
    assert_eq!(a.activity_timeout, Duration::from_secs(30));
    assert_eq!(a.ping_interval, Some(Duration::from_secs(45)));
    assert_eq!(rt.ping_after(), Duration::from_secs(45));
    assert_eq!(a.user_authentication_timeout, Some(Duration::from_secs(30)));
    assert!(a.watchlist && a.subscription_count);
    assert_eq!(a.max_presence_members, 10);
    assert_eq!(
        a.client_event_rate.map(|r| (r.max, r.terminate)),
        Some((5, true))
    );
    assert_eq!(
        a.api_rate_limit,
        Some(ApiRateLimit {
            max: 50,
            per: Duration::from_secs(10)
        })
    );
    assert_eq!(a.webhooks[0].events.len(), 2);
    assert_eq!(c.apps.front.path_prefix.as_deref(), Some("/ws"));
    assert_eq!(c.apps.front.drain_spread, Duration::from_secs(10));
}

#[test]
fn defaults() {
    let c = load(BASE).unwrap_or_else(|e| panic!("{e}"));
    let a = &c.apps.apps[0];
    let rt = App::from(&**a);
    assert!(!a.client_events);
    assert_eq!(a.activity_timeout, Duration::from_secs(120));
    // Without ping_interval the server pings after the announced activity_timeout.
    assert_eq!(a.ping_interval, None);
    assert_eq!(rt.ping_after(), Duration::from_secs(120));
    assert_eq!(a.api_rate_limit, None);
    assert!(rt.origin_allowed(None));
}

#[test]
fn rejections() {
    assert_eq!(
        err_key("[[apps]]\nkey = \"k\"\nsecret = \"s\"\n"),
        "apps[0].id"
    );
    assert_eq!(
        err_key("[[apps]]\nid = \"\"\nkey = \"k\"\nsecret = \"s\"\n"),
        "apps[0].id"
    );
    assert_eq!(
        err_key("[[apps]]\nid = \"a/b\"\nkey = \"k\"\nsecret = \"s\"\n"),
        "apps[0].id"
    );
    assert_eq!(err_key(&format!("{BASE}{BASE}")), "apps[1].key");
    assert_eq!(
        err_key(&format!("{BASE}allowed_origins = [\"https://x.com\"]\n")),
        "apps[0].allowed_origins[0]"
    );
    assert_eq!(
        err_key(&format!("{BASE}max_connections = 0\n")),
        "apps[0].max_connections"
    );
    assert_eq!(
        err_key(&format!("{BASE}max_message_size = \"lots\"\n")),
        "apps[0].max_message_size"
    );
    assert_eq!(
        err_key(&format!("{BASE}max_message_size = \"0\"\n")),
        "apps[0].max_message_size"
    );
    assert_eq!(
        err_key(&format!("{BASE}activity_timeout = \"off\"\n")),
        "apps[0].activity_timeout"
    );
    assert_eq!(
        err_key(&format!("{BASE}activity_timeout = \"soon\"\n")),
        "apps[0].activity_timeout"
    );
    assert_eq!(
        err_key(&format!("{BASE}[apps.api_rate_limit]\nmax_requests = 0\n")),
        "apps[0].api_rate_limit.max_requests"
    );
    assert_eq!(
        err_key(&format!("{BASE}[apps.api_rate_limit]\nper = \"off\"\n")),
        "apps[0].api_rate_limit.per"
    );
    assert_eq!(
        err_key(&format!("{BASE}ping_interval = \"off\"\n")),
        "apps[0].ping_interval"
    );
    assert_eq!(
        err_key(&format!("{BASE}ping_interval = \"0s\"\n")),
        "apps[0].ping_interval"
    );
    assert_eq!(
        err_key(&format!("{BASE}presence_max_members = -1\n")),
        "apps[0].presence_max_members"
    );
    assert_eq!(
        err_key(&format!("{BASE}max_queue_messages = 0\n")),
        "apps[0].max_queue_messages"
    );
    assert_eq!(
        err_key(&format!("{BASE}max_queue_bytes = \"x\"\n")),
        "apps[0].max_queue_bytes"
    );
    assert_eq!(
        err_key(&format!("{BASE}[apps.rate_limit]\nmax_events = 0\n")),
        "apps[0].rate_limit.max_events"
    );
    assert_eq!(
        err_key(&format!("{BASE}[[apps.webhooks]]\nurl = \"ftp://x\"\n")),
        "apps[0].webhooks[0].url"
    );
    assert_eq!(
        err_key(&format!(
            "{BASE}[[apps.webhooks]]\nurl = \"http://x/\"\nevents = [\"nope\"]\n"
        )),
        "apps[0].webhooks[0].events[0]"
    );
    assert_eq!(
        err_key("[pusher]\npath_prefix = \"ws\"\n"),
        "pusher.path_prefix"
    );
    assert_eq!(
        err_key("[pusher]\nenv_file = \"/nonexistent/.env\"\n"),
        "pusher.env_file"
    );
    assert_eq!(
        err_key("[pusher]\ndrain_spread = \"x\"\n"),
        "pusher.drain_spread"
    );
    assert!(load(&format!("{BASE}bogus = 1\n")).is_err());
}

#[test]
fn dotenv_parsing_and_reverb_knobs() {
    let env = parse_dotenv(
        "# comment\nAPP_NAME=\"My App\"\nexport REVERB_APP_ID=123\nREVERB_APP_KEY='key'\nREVERB_APP_SECRET=sec # trailing\n\
         REVERB_SERVER_PATH=/ws\nREVERB_APP_ACTIVITY_TIMEOUT=30\nREVERB_APP_PING_INTERVAL=60\nREVERB_APP_MAX_MESSAGE_SIZE=20000\n\
         REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM=members\nVITE_REVERB_APP_KEY=\"${REVERB_APP_KEY}\"\n",
    );
    assert_eq!(env["APP_NAME"], "My App");
    assert_eq!(env["REVERB_APP_SECRET"], "sec");
    assert_eq!(env["VITE_REVERB_APP_KEY"], "key");
    let (app, path) = app_from_env(&env).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((&*app.id, &*app.key, &*app.secret), ("123", "key", "sec"));
    assert_eq!(app.activity_timeout, Duration::from_secs(30));
    assert_eq!(app.ping_interval, Some(Duration::from_secs(60)));
    assert_eq!(app.max_message_size, 20000);
    assert!(app.client_events);
    assert_eq!(path.as_deref(), Some("/ws"));
    let pusher_env = parse_dotenv("PUSHER_APP_ID=1\nPUSHER_APP_KEY=k\nPUSHER_APP_SECRET=s\n");
    assert!(app_from_env(&pusher_env).is_ok());
    assert!(app_from_env(&parse_dotenv("REVERB_APP_ID=1\n")).is_err());
    let bad = parse_dotenv(
        "REVERB_APP_ID=1\nREVERB_APP_KEY=k\nREVERB_APP_SECRET=s\nREVERB_APP_ACTIVITY_TIMEOUT=soon\n",
    );
    assert!(app_from_env(&bad).is_err());
    let bad = parse_dotenv(
        "REVERB_APP_ID=1\nREVERB_APP_KEY=k\nREVERB_APP_SECRET=s\nREVERB_APP_PING_INTERVAL=1m\n",
    );
    assert!(app_from_env(&bad).is_err());
}

#[test]
fn env_file_adds_an_app_and_prefix() {
    let dir = std::env::temp_dir().join(format!("portico-env-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(".env");
    let _ = std::fs::write(
        &path,
        "REVERB_APP_ID=9\nREVERB_APP_KEY=envkey\nREVERB_APP_SECRET=x\nREVERB_SERVER_PATH=reverb\n",
    );
    let c = load(&format!(
        "{BASE}[pusher]\nenv_file = \"{}\"\n",
        path.display()
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.apps.apps.len(), 2);
    assert_eq!(&*c.apps.apps[1].key, "envkey");
    assert_eq!(c.apps.front.path_prefix.as_deref(), Some("/reverb"));
    let _ = std::fs::remove_dir_all(&dir);
}
