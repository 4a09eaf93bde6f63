//! Debian's php-fpm, started by the test with its own config in a temp
//! dir (no system php.ini or pool): two pools with `pm = static`, one on a
//! unix socket, one on `127.0.0.1:<free port>`, in the foreground (`-F`),
//! its log in the temp dir. It runs in its own process group, so stopping
//! it (SIGTERM to the group, as `systemctl stop` does to the service) takes
//! its workers too; dropping it does the same.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::{Child, Command};

use crate::inproc::TempDir;
use crate::poll_until;

/// Workers per pool.
const CHILDREN: usize = 3;

/// A running php-fpm.
pub(crate) struct Fpm {
    pub(crate) sock: PathBuf,
    pub(crate) tcp: SocketAddr,
    bin: PathBuf,
    child: Option<Child>,
    dir: TempDir,
}

/// The php-fpm binary: `php-fpm8.2`/`php-fpm` on PATH or `/usr/sbin/php-fpm*`.
fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.push(PathBuf::from("/usr/sbin"));
    for d in &dirs {
        for name in ["php-fpm8.2", "php-fpm"] {
            let p = d.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/sbin")
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("php-fpm"))
        })
        .collect();
    found.sort();
    found.pop()
}

fn id(flag: &str) -> String {
    let out = std::process::Command::new("id")
        .arg(flag)
        .output()
        .expect("run `id`");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Fpm {
    /// Starts php-fpm, or returns `None` (after saying why) when no php-fpm
    /// binary is installed: CI installs it (`scripts/test`), so there the
    /// tests run.
    pub(crate) async fn start() -> Option<Fpm> {
        let mut fpm = Fpm::configure().await?;
        fpm.spawn().await;
        Some(fpm)
    }

    /// Writes php-fpm's config without starting it: for a test where
    /// portico runs it (`[[processes]]`, with [`Fpm::command`]).
    pub(crate) async fn configure() -> Option<Fpm> {
        let Some(bin) = find() else {
            eprintln!(
                "SKIPPED: php-fpm is not installed (Debian: `apt-get install -y php-fpm`; scripts/test installs it)"
            );
            return None;
        };
        let dir = TempDir::new("fpm");
        let tcp = free_addr().await;
        let sock = dir.path().join("php.sock");
        std::fs::create_dir_all(dir.path().join("sessions")).expect("sessions dir");
        let (user, group) = (id("-un"), id("-gn"));
        let pool = |name: &str, listen: &str| {
            format!(
                "[{name}]\nuser = {user}\ngroup = {group}\nlisten = {listen}\nlisten.mode = 0666\n\
                 pm = static\npm.max_children = {CHILDREN}\ncatch_workers_output = yes\n\
                 clear_env = yes\n"
            )
        };
        let conf = format!(
            "[global]\nerror_log = {log}\ndaemonize = no\nlog_level = notice\n\n{unix}\n{tcp}\n",
            log = dir.path().join("fpm.log").display(),
            unix = pool("unix", &sock.display().to_string()),
            tcp = pool("tcp", &tcp.to_string()),
        );
        std::fs::write(dir.path().join("php-fpm.conf"), conf).expect("write fpm conf");
        Some(Fpm {
            sock,
            tcp,
            bin,
            child: None,
            dir,
        })
    }

    /// The command line that runs this php-fpm in the foreground.
    pub(crate) fn command(&self) -> Vec<String> {
        let d = self.dir.path();
        let mut argv: Vec<String> = vec![
            self.bin.display().to_string(),
            "-n".into(),
            "-F".into(),
            "-y".into(),
            d.join("php-fpm.conf").display().to_string(),
        ];
        if id("-u") == "0" {
            argv.push("-R".into());
        }
        let session = format!("session.save_path={}", d.join("sessions").display());
        for setting in [
            "output_buffering=0",
            "upload_max_filesize=64M",
            "post_max_size=64M",
            "log_errors=On",
            "display_errors=Off",
            "expose_php=On",
            session.as_str(),
        ] {
            argv.push("-d".into());
            argv.push(setting.into());
        }
        argv
    }

    async fn spawn(&mut self) {
        let d = self.dir.path();
        let argv = self.command();
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        let stderr = std::fs::File::create(d.join("fpm.stderr")).expect("stderr file");
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("start php-fpm");
        self.child = Some(child);
        let (sock, tcp) = (self.sock.clone(), self.tcp);
        poll_until("php-fpm listens on its socket and port", || {
            let sock = sock.clone();
            async move {
                tokio::net::UnixStream::connect(&sock).await.ok()?;
                tokio::net::TcpStream::connect(tcp).await.ok()?;
                Some(())
            }
        })
        .await;
    }

    /// Stops php-fpm and its workers (SIGTERM to the process group) and
    /// waits until they are gone and the port refuses.
    pub(crate) async fn kill(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        signal_group(&c, "-TERM");
        if crate::within("php-fpm exits", c.wait()).await.is_err() {
            let _ = c.kill().await;
        }
        let tcp = self.tcp;
        poll_until("php-fpm's workers let go of the port", || async move {
            tokio::net::TcpStream::connect(tcp)
                .await
                .is_err()
                .then_some(())
        })
        .await;
    }

    /// Starts it again with the same config, socket and port.
    pub(crate) async fn restart(&mut self) {
        self.kill().await;
        let _ = std::fs::remove_file(&self.sock);
        self.spawn().await;
    }

    pub(crate) fn unix_url(&self) -> String {
        format!("fastcgi+unix://{}", self.sock.display())
    }

    pub(crate) fn tcp_url(&self) -> String {
        format!("fastcgi://{}", self.tcp)
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Sends `sig` to the process group `child` leads.
fn signal_group(child: &Child, sig: &str) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .arg(sig)
            .arg("--")
            .arg(format!("-{pid}"))
            .status();
    }
}

impl Drop for Fpm {
    fn drop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        signal_group(&c, "-TERM");
        // Bounded: 60 × 50 ms, then the whole group is killed.
        for _ in 0..60 {
            if c.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        signal_group(&c, "-KILL");
    }
}

/// A loopback port nothing listens on (bound, then released).
async fn free_addr() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    l.local_addr().expect("addr")
}
