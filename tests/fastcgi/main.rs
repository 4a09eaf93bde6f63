//! FastCGI to a real php-fpm (started per test, see `fpm`), serving the
//! Laravel-shaped app in `tests/fixtures/laravel-app/` through portico
//! in-process (`../common/inproc.rs`).
//!
//! - `params`: the CGI environment PHP sees (nginx's `fastcgi_params` +
//!   Laravel block), over TLS h1/h2, TCP and unix sockets, trusted proxies.
//! - `front`: the front-controller rules: static files, directories,
//!   dotfiles, PATH_INFO, `.php` files that must never run nor be served.
//! - `app`: sessions + CSRF, a 30 MB upload, streamed responses, `Status:`,
//!   several `Set-Cookie`, stderr logged, body limits.
//! - `failures`: php-fpm down → 502 naming the socket, then recovery; no
//!   head in time → 504, while a streaming body is not cut; connections
//!   kept alive and bounded.
//! - `files`: a route with `root` and no upstream.
//! - `downloads`: `X-Accel-Redirect` hand-overs from `downloads` dirs only.
//! - `diagnostics`: the `/.portico/` page answered before the root's
//!   dotfile rule in dev mode, absent outside it, behind its token.
//! - `supervised`: php-fpm as a `[[processes]]` entry: killed, restarted,
//!   stopped gracefully.
//!
//! Skipped (with a message) only when no php-fpm binary is installed.

mod app;
#[allow(
    dead_code,
    reason = "shared with the edge tests; this crate uses a part"
)]
#[path = "../edge/support/client.rs"]
mod client;
#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../common/config.rs"]
mod config;
mod diagnostics;
mod downloads;
mod failures;
mod files;
mod fpm;
mod front;
#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../common/inproc.rs"]
mod inproc;
mod logs;
mod params;
mod supervised;
#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../common/wait.rs"]
mod wait;

use std::path::PathBuf;
use std::time::Duration;

use crate::config::ConfigText;
use crate::fpm::Fpm;

/// Upper bound for any single wait in these tests.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// Awaits `fut` for at most [`WAIT`], panicking with `what` on timeout.
pub(crate) async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    crate::wait::within(WAIT, what, fut).await
}

/// Polls `check` every 50 ms until it returns `Some`, for at most [`WAIT`].
pub(crate) async fn poll_until<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    crate::wait::poll_until(WAIT, what, check).await
}

/// The fixture app's document root.
pub(crate) fn public() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/laravel-app/public")
}

/// An edge config (https + plain listeners, dev TLS) whose `[upstream]` is
/// php-fpm at `url` with the fixture app's root.
pub(crate) fn php_config(url: &str) -> ConfigText {
    config::base()
        .set("upstream.url", url)
        .set("upstream.root", public().display().to_string())
}

/// php-fpm and portico in front of it (`[upstream]` on its unix socket).
pub(crate) struct Stack {
    pub(crate) fpm: Fpm,
    pub(crate) edge: inproc::Inproc,
}

/// Starts php-fpm and portico with `edit` applied to the config; `None`
/// when php-fpm is not installed.
pub(crate) async fn stack(edit: impl FnOnce(&Fpm) -> ConfigText) -> Option<Stack> {
    let fpm = Fpm::start().await?;
    let text = edit(&fpm).to_string();
    let edge = inproc::start(&text, &[]).await;
    Some(Stack { fpm, edge })
}
