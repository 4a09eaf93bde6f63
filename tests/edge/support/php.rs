//! `php -S` serving a script: the real PHP upstream. php-cli must be
//! installed (Debian: `apt-get install -y php-cli`); a missing `php` fails
//! the test with that instruction instead of skipping it.

use std::net::SocketAddr;
use std::process::Stdio;

use tokio::process::{Child, Command};

use super::{TempDir, poll_until};

/// A running `php -S`; killed on drop.
pub(crate) struct Php {
    pub(crate) addr: SocketAddr,
    _child: Child,
    _dir: TempDir,
}

impl Php {
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Serves `script` (the PHP source) as the router script of `php -S`.
pub(crate) async fn serve(script: &str) -> Php {
    let dir = TempDir::new("php");
    let path = dir.path().join("index.php");
    std::fs::write(&path, script).expect("write script");
    // php picks no port itself: take a free one and hand it over.
    let addr = super::upstream::refusing_addr().await;
    let child = Command::new("php")
        .arg("-S")
        .arg(addr.to_string())
        .arg(&path)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `php` ({e}): these tests need php-cli; install it with \
                 `apt-get install -y php-cli` (Debian/Ubuntu)"
            )
        });
    poll_until("php -S accepts connections", || async {
        tokio::net::TcpStream::connect(addr).await.ok().map(|_| ())
    })
    .await;
    Php {
        addr,
        _child: child,
        _dir: dir,
    }
}
