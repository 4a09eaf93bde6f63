//! The deployment kit, run as far as this machine can: every config in
//! `config/` and every `toml` block in the guides (`docs/`) through the
//! real `portico check`; each guide's config is the file in `config/`
//! verbatim; the Kinsta `$PORT` story (the real binary on the shipped
//! config, `PORT` set, one port serving the app and `/app/{key}`); systemd
//! readiness (`READY=1`/`STOPPING=1` on `$NOTIFY_SOCKET`, hidden from
//! supervised processes); the unit, the Procfile and the Dockerfile (built
//! when a Docker daemon answers, else skipped with a message).

#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../common/inproc.rs"]
mod inproc;
#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../edge/support/mod.rs"]
mod support;

mod checks;
mod kinsta;
mod readiness;
mod static_files;
#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../common/wait.rs"]
mod wait;

use std::path::{Path, PathBuf};

/// The repository root.
fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The app id, key and secret every checked config gets.
const APP_ID: &str = "123456";
const APP_KEY: &str = "deploy-kit-key";
const APP_SECRET: &str = "deploy-kit-secret";

/// A Laravel-shaped app directory (`public/`, `.env`) for `${APP_DIR}`,
/// made once per test binary.
fn app_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deploy-kit-app");
        std::fs::create_dir_all(path.join("public")).expect("public/");
        std::fs::write(
            path.join(".env"),
            format!(
                "REVERB_APP_ID={APP_ID}\nREVERB_APP_KEY={APP_KEY}\nREVERB_APP_SECRET={APP_SECRET}\n"
            ),
        )
        .expect(".env");
        path
    })
    .clone()
}

/// The environment a deployment would give the configs.
fn deploy_env(app: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("APP_DIR", app.display().to_string()),
        ("APP_DOMAIN", "example.com".into()),
        ("REVERB_APP_ID", APP_ID.into()),
        ("REVERB_APP_KEY", APP_KEY.into()),
        ("REVERB_APP_SECRET", APP_SECRET.into()),
        (
            "SUPABASE_JWT_SECRET",
            "super-secret-jwt-token-with-at-least-32-characters-long".into(),
        ),
        ("PORT", "8080".into()),
        ("PORTICO_DIAGNOSTICS_TOKEN", "diagnostics-token".into()),
    ]
}
