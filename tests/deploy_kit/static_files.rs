//! The files of the kit that are not configs: the systemd unit, the
//! Procfile and the Dockerfile (built when a Docker daemon answers).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::repo;

fn read(name: &str) -> String {
    std::fs::read_to_string(repo().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `key=value` lines of a unit file (comments and sections skipped).
fn unit_values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim())
        .collect()
}

#[test]
fn the_systemd_unit_runs_unprivileged_with_notify_readiness() {
    let unit = read("deploy/portico.service");
    assert_eq!(unit_values(&unit, "Type"), ["notify"]);
    assert_eq!(
        unit_values(&unit, "AmbientCapabilities"),
        ["CAP_NET_BIND_SERVICE"]
    );
    let user = unit_values(&unit, "User");
    assert!(
        user.len() == 1 && user[0] != "root" && user[0] != "0",
        "runs as a user: {user:?}"
    );
    let exec = unit_values(&unit, "ExecStart");
    assert_eq!(exec.len(), 1);
    assert!(
        exec[0].contains("portico run --config /etc/portico/portico.toml"),
        "{exec:?}"
    );
    assert_eq!(
        unit_values(&unit, "ExecReload"),
        ["/bin/kill -HUP $MAINPID"]
    );
    // Only portico's own datagrams count (and children never get the socket).
    assert_eq!(unit_values(&unit, "NotifyAccess"), ["main"]);
}

#[test]
fn the_procfile_runs_the_kinsta_config() {
    let procfile = read("Procfile");
    let web: Vec<&str> = procfile
        .lines()
        .filter_map(|l| l.strip_prefix("web:"))
        .map(str::trim)
        .collect();
    assert_eq!(web.len(), 1, "{procfile}");
    let config = web[0]
        .strip_prefix("portico run --config ")
        .unwrap_or_else(|| panic!("not a `portico run --config` line: {}", web[0]));
    assert!(repo().join(config).is_file(), "{config} does not exist");
}

#[test]
fn the_dockerfile_builds_when_docker_is_there() {
    let dockerfile = read("Dockerfile");
    assert!(
        dockerfile.contains("FROM debian:bookworm-slim"),
        "small final image"
    );
    assert!(dockerfile.contains("ca-certificates"));
    let daemon = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output();
    match daemon {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            eprintln!(
                "SKIPPED: the Dockerfile was not built: no Docker daemon answers ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return;
        }
        Err(e) => {
            eprintln!("SKIPPED: the Dockerfile was not built: no `docker` command ({e})");
            return;
        }
    }
    // A release build from scratch: bounded, and killed past the bound.
    let limit = Duration::from_secs(60 * 60);
    let tag = format!("portico-deploy-kit-test:{}", std::process::id());
    let mut child = Command::new("docker")
        .args(["build", "--tag", &tag, "."])
        .current_dir(repo())
        .spawn()
        .expect("docker build");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait docker build") {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("docker build took longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    assert!(status.success(), "docker build failed: {status}");
    let out = Command::new("docker")
        .args(["run", "--rm", &tag, "portico", "--version"])
        .output()
        .expect("docker run");
    let _ = Command::new("docker").args(["rmi", &tag]).output();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).starts_with("portico "),
        "the image runs portico: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
