//! Every example config shipped in `config/` validates, with the
//! environment a deployment would give it.

use portico::Config;

/// A Laravel-shaped app directory (`public/`, `.env`) for the configs'
/// `${APP_DIR}`: roots and working directories must exist at load.
fn app_dir() -> &'static str {
    static DIR: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("example-app");
        std::fs::create_dir_all(dir.join("public")).unwrap();
        std::fs::write(
            dir.join(".env"),
            "REVERB_APP_ID=123456\nREVERB_APP_KEY=appkey\nREVERB_APP_SECRET=appsecret\n",
        )
        .unwrap();
        dir.display().to_string()
    })
}

fn env(name: &str) -> Option<String> {
    match name {
        "APP_DIR" => Some(app_dir().to_string()),
        "APP_DOMAIN" => Some("example.com".into()),
        "REVERB_APP_ID" => Some("123456".into()),
        "REVERB_APP_KEY" => Some("appkey".into()),
        "REVERB_APP_SECRET" => Some("appsecret".into()),
        "SUPABASE_JWT_SECRET" => {
            Some("super-secret-jwt-token-with-at-least-32-characters-long".into())
        }
        _ => None,
    }
}

#[test]
fn every_example_config_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let cfg = Config::from_str_with_env(&text, &path.display().to_string(), &env);
            assert!(cfg.is_ok(), "{}: {}", path.display(), cfg.unwrap_err());
            seen += 1;
        }
    }
    assert!(
        seen >= 6,
        "expected the five deployment examples and the dev ones, found {seen}"
    );
}

#[test]
fn kinsta_example_listens_on_port_from_environment() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/kinsta-single-port.toml"
    ))
    .unwrap();
    let with_port = |name: &str| {
        if name == "PORT" {
            Some("9123".to_string())
        } else {
            env(name)
        }
    };
    let cfg = Config::from_str_with_env(&text, "kinsta", &with_port).unwrap();
    assert_eq!(cfg.server.plain.unwrap().port(), 9123);
    let cfg = Config::from_str_with_env(&text, "kinsta", &env).unwrap();
    assert_eq!(cfg.server.plain.unwrap().port(), 8080);
    assert!(cfg.server.https.is_none());
}

#[test]
fn embedded_default_is_the_dev_edge() {
    let cfg = Config::from_str_with_env(portico::config::EMBEDDED_DEFAULT, "embedded", &|_| None)
        .unwrap();
    assert_eq!(cfg.server.https.unwrap().to_string(), "127.0.0.1:8443");
    assert_eq!(cfg.server.http.unwrap().to_string(), "127.0.0.1:8080");
    assert_eq!(&*cfg.upstream.label(), "http://127.0.0.1:8000");
    let paths: Vec<&str> = cfg.routes.iter().map(|r| &*r.path).collect();
    assert_eq!(paths, ["/app/", "/apps/", "/realtime/v1/", "/"]);
}
