//! php-fpm run by portico itself (`[[processes]]`, as Supervisor ran it in
//! seed 004): `[upstream] wait_for` answers 503 until its socket accepts;
//! php-fpm killed (the whole process group, as the OOM killer or a crash
//! leaves it) gives 502/503, never a hang, and the supervisor's restart
//! brings PHP back with no action from anyone; on shutdown php-fpm gets
//! its graceful `QUIT` and is gone when portico returns.

use crate::client::Client;
use crate::fpm::Fpm;
use crate::{inproc, php_config, poll_until};

fn alive(pid: u32) -> bool {
    std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test]
async fn a_supervised_php_fpm_killed_comes_back_and_stops_gracefully() {
    let Some(fpm) = Fpm::configure().await else {
        return;
    };
    let argv: Vec<toml::Value> = fpm.command().into_iter().map(toml::Value::String).collect();
    let procs = format!(
        "[[processes]]\nname = \"php-fpm\"\ncommand = {}\nready = \"unix:{}\"\n\
         stop_signal = \"QUIT\"\ngrace = \"5s\"\nrestart_delay = \"100ms\"\n\
         restart_max_delay = \"200ms\"\n",
        toml::Value::Array(argv),
        fpm.sock.display()
    );
    let cfg = php_config(&fpm.unix_url())
        .set("upstream.wait_for", "php-fpm")
        .set("server.grace_period", "8s")
        .with(&procs)
        .to_string();
    let e = inproc::start(&cfg, &[]).await;
    let sup = e.edge.inner().supervisor().clone();

    // Served once php-fpm's socket accepts (503 + Retry-After before).
    let addr = e.plain();
    poll_until("the supervised php-fpm serves", || async move {
        let r = Client::plain(addr).await.get("/server").await;
        if r.status == 503 {
            assert_eq!(r.header("retry-after"), Some("1"));
        }
        (r.status == 200).then_some(())
    })
    .await;
    let first = sup.status().pop().expect("php-fpm status");
    let pid = first.pid.expect("running");
    assert!(first.ready && first.restarts == 0, "{first:?}");

    // Kill php-fpm and its workers at once.
    let killed = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .status()
        .expect("kill");
    assert!(killed.success());
    let sock = fpm.sock.display().to_string();
    // While it is down: 502 naming the socket, or 503 once the supervisor
    // has seen the exit; never a hang, never a 200 from nowhere.
    let back = poll_until("php-fpm restarted by portico and serving", || {
        let sock = sock.clone();
        async move {
            let r = Client::plain(addr).await.get("/server").await;
            match r.status.as_u16() {
                200 => Some(r.json()),
                502 => {
                    assert!(r.text().contains(&sock), "names {sock}: {}", r.text());
                    None
                }
                503 => {
                    assert_eq!(r.header("retry-after"), Some("1"));
                    None
                }
                s => panic!("unexpected {s} while php-fpm is down: {}", r.text()),
            }
        }
    })
    .await;
    assert!(back["SCRIPT_NAME"].is_string(), "{back}");
    let now = sup.status().pop().expect("php-fpm status");
    assert_eq!(now.restarts, 1, "{now:?}");
    let new_pid = now.pid.expect("running again");
    assert_ne!(new_pid, pid);
    assert!(!alive(pid), "the killed master is gone");

    // Graceful stop: QUIT, and php-fpm is gone once portico returns.
    e.shutdown().await;
    assert!(!alive(new_pid), "php-fpm still runs after portico stopped");
    assert!(
        tokio::net::UnixStream::connect(&fpm.sock).await.is_err(),
        "php-fpm's socket still accepts"
    );
}
