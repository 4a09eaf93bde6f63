//! `[[processes]]` and `wait_for` validation: accepted shapes and one
//! rejecting test per rule.

use std::time::Duration;

use super::*;
use crate::config::Config;

fn load(toml: &str) -> Result<Config, ConfigError> {
    let text = format!("[server]\nplain = \"127.0.0.1:0\"\n[tls]\nmode = \"off\"\n{toml}");
    Config::from_str_with_env(&text, "test.toml", &|k| {
        (k == "APP").then(|| "/srv/app".to_string())
    })
}

fn err(toml: &str) -> (String, String) {
    match load(toml) {
        Ok(_) => panic!("accepted:\n{toml}"),
        Err(e) => {
            let d = e.diagnostic().expect("a diagnostic").clone();
            assert_eq!(d.file, "test.toml");
            (d.key, d.problem)
        }
    }
}

#[test]
fn full_entry_and_defaults() {
    let c = load(
        r#"
[[processes]]
name = "fpm"
command = "php-fpm8.2 -F --fpm-config '/etc/php/8.2/fpm/php fpm.conf'"
cwd = "/"
env = { APP_ENV = "production", ROOT = "${APP}" }
ready = "unix:/run/php/fpm.sock"
grace = "30s"
restart_delay = "200ms"
restart_max_delay = "5s"
stop_signal = "SIGQUIT"

[[processes]]
name = "queue"
command = ["php", "artisan", "queue:work", "--tries=3"]
ready = "tcp:127.0.0.1:9000"
"#,
    )
    .unwrap();
    let fpm = &c.processes[0];
    assert_eq!(&*fpm.name, "fpm");
    assert_eq!(fpm.program, "php-fpm8.2");
    assert_eq!(
        fpm.args,
        ["-F", "--fpm-config", "/etc/php/8.2/fpm/php fpm.conf"]
    );
    assert_eq!(fpm.cwd.as_deref(), Some(std::path::Path::new("/")));
    assert_eq!(
        fpm.env,
        [
            ("APP_ENV".to_string(), "production".to_string()),
            ("ROOT".to_string(), "/srv/app".to_string())
        ]
    );
    assert_eq!(
        fpm.ready,
        Some(ReadyProbe::Unix(PathBuf::from("/run/php/fpm.sock")))
    );
    assert_eq!(fpm.grace, Duration::from_secs(30));
    assert_eq!(fpm.restart_delay, Duration::from_millis(200));
    assert_eq!(fpm.restart_max_delay, Duration::from_secs(5));
    assert_eq!(fpm.stop_signal, StopSignal::Quit);

    let q = &c.processes[1];
    assert_eq!(q.program, "php");
    assert_eq!(q.args, ["artisan", "queue:work", "--tries=3"]);
    assert_eq!(q.cwd, None);
    assert_eq!(
        q.ready,
        Some(ReadyProbe::Tcp("127.0.0.1:9000".parse().unwrap()))
    );
    assert_eq!(q.grace, DEFAULT_GRACE);
    assert_eq!(q.restart_delay, DEFAULT_RESTART_DELAY);
    assert_eq!(q.restart_max_delay, DEFAULT_RESTART_MAX_DELAY);
    assert_eq!(q.stop_signal, StopSignal::Term);
    assert!(!q.same_run(fpm));
    assert!(c.effective().to_string().contains("queue: php artisan"));
}

#[test]
fn absent_section_means_no_processes() {
    assert!(load("").unwrap().processes.is_empty());
}

#[test]
fn same_run_ignores_stop_settings() {
    let a = load("[[processes]]\nname = \"a\"\ncommand = \"sleep 1\"\n").unwrap();
    let b = load("[[processes]]\nname = \"a\"\ncommand = \"sleep 1\"\ngrace = \"1s\"\n").unwrap();
    let c =
        load("[[processes]]\nname = \"a\"\ncommand = \"sleep 1\"\nenv = { X = \"1\" }\n").unwrap();
    assert!(a.processes[0].same_run(&b.processes[0]));
    assert!(!a.processes[0].same_run(&c.processes[0]));
}

#[test]
fn rejections() {
    let p = |body: &str| format!("[[processes]]\n{body}\n");
    let ok = "name = \"a\"\ncommand = \"sleep 1\"\n";
    let table: &[(String, &str, &str)] = &[
        (p("command = \"x\""), "processes[0].name", "needs a `name`"),
        (
            p("name = \"a b\"\ncommand = \"x\""),
            "processes[0].name",
            "not a process name",
        ),
        (
            p("name = \"a\""),
            "processes[0].command",
            "needs a `command`",
        ),
        (
            p("name = \"a\"\ncommand = \"\""),
            "processes[0].command",
            "empty",
        ),
        (
            p("name = \"a\"\ncommand = []"),
            "processes[0].command",
            "empty",
        ),
        (
            p("name = \"a\"\ncommand = \"php 'unterminated\""),
            "processes[0].command",
            "cannot split",
        ),
        (
            p("name = \"a\"\ncommand = [\"php\", 1]"),
            "processes[0].command",
            "not a string",
        ),
        (
            p("name = \"a\"\ncommand = 5"),
            "processes[0].command",
            "not a command",
        ),
        (
            p(&format!("{ok}cwd = \"/nonexistent/portico/dir\"")),
            "processes[0].cwd",
            "not a directory",
        ),
        (
            p(&format!("{ok}ready = \"127.0.0.1:9000\"")),
            "processes[0].ready",
            "neither tcp: nor unix:",
        ),
        (
            p(&format!("{ok}ready = \"tcp:localhost\"")),
            "processes[0].ready",
            "not an IP address",
        ),
        (
            p(&format!("{ok}ready = \"unix:\"")),
            "processes[0].ready",
            "empty",
        ),
        (
            p(&format!("{ok}grace = \"soon\"")),
            "processes[0].grace",
            "",
        ),
        (
            p(&format!("{ok}grace = \"off\"")),
            "processes[0].grace",
            "cannot be turned off",
        ),
        (
            p(&format!(
                "{ok}restart_delay = \"10s\"\nrestart_max_delay = \"1s\""
            )),
            "processes[0].restart_max_delay",
            "shorter",
        ),
        (
            p(&format!("{ok}stop_signal = \"KILL\"")),
            "processes[0].stop_signal",
            "not a stop signal",
        ),
        (
            p(&format!("{ok}env = {{ X = \"${{NOPE}}\" }}")),
            "processes[0].env.X",
            "NOPE",
        ),
        (
            format!("{}{}", p(ok), p(ok)),
            "processes[1].name",
            "already the name of processes[0]",
        ),
        (
            p(&format!("{ok}restart = true")),
            "processes[0].restart",
            "unknown",
        ),
    ];
    for (toml, key, problem) in table {
        let (k, pr) = err(toml);
        assert_eq!(&k, key, "{toml}");
        assert!(pr.contains(problem), "{toml}: {pr}");
    }
}

#[test]
fn wait_for_names_a_process_on_a_proxy_route() {
    let procs = "[[processes]]\nname = \"web\"\ncommand = \"php -S 127.0.0.1:8000\"\n";
    let c = load(&format!(
        "{procs}[[routes]]\npath = \"/\"\nto = \"upstream\"\nwait_for = \"web\"\n"
    ))
    .unwrap();
    assert_eq!(c.routes[0].wait_for.as_deref(), Some("web"));
    assert_eq!(
        c.routes[1].wait_for, None,
        "the catch-all waits for nothing"
    );
    assert!(
        c.effective()
            .to_string()
            .contains("[waits for process web]")
    );

    let (k, pr) = err(&format!(
        "{procs}[[routes]]\npath = \"/\"\nto = \"upstream\"\nwait_for = \"fpm\"\n"
    ));
    assert_eq!(
        (k.as_str(), pr.contains("no process is named `fpm`")),
        ("routes[0].wait_for", true)
    );
    let (k, pr) = err("[[routes]]\npath = \"/\"\nto = \"upstream\"\nwait_for = \"fpm\"\n");
    assert_eq!(
        (k.as_str(), pr.contains("no process")),
        ("routes[0].wait_for", true)
    );
    let (k, pr) = err(&format!(
        "{procs}[[routes]]\npath = \"/app/\"\nto = \"pusher\"\nwait_for = \"web\"\n"
    ));
    assert_eq!(
        (k.as_str(), pr.contains("only applies")),
        ("routes[0].wait_for", true)
    );
}

#[test]
fn upstream_wait_for_makes_the_fallback_wait() {
    let procs = "[[processes]]\nname = \"php-fpm\"\ncommand = \"php-fpm8.2 -F\"\n";
    let c = load(&format!(
        "{procs}[upstream]\nurl = \"http://127.0.0.1:9000\"\nwait_for = \"php-fpm\"\n"
    ))
    .unwrap();
    let fallback = c.routes.last().expect("the fallback route");
    assert_eq!(fallback.wait_for.as_deref(), Some("php-fpm"));
    assert!(
        c.routes[..c.routes.len() - 1]
            .iter()
            .all(|r| r.wait_for.is_none()),
        "only the fallback waits"
    );
    let (k, pr) = err(&format!(
        "{procs}[upstream]\nurl = \"http://127.0.0.1:9000\"\nwait_for = \"fpm\"\n"
    ));
    assert_eq!(
        (k.as_str(), pr.contains("no process is named `fpm`")),
        ("upstream.wait_for", true)
    );
}
