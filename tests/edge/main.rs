//! The edge against real things: portico in-process (`serve` on
//! `127.0.0.1:0`, see `../common/inproc.rs`, configs from the one base in
//! `../common/config.rs`) or as the real binary, real hyper/WebSocket upstreams
//! and `php -S`, real TLS with a per-test dev CA the client trusts.
//!
//! - `tls`: h1 and h2 over TLS (negotiated versions), plain h1.
//! - `forwarded`: X-Forwarded-* / X-Real-IP, spoofing, trusted proxies,
//!   hop-by-hop headers both ways.
//! - `streaming`: SSE first chunk before the upstream ends; request bodies
//!   streamed up.
//! - `errors`: 502 (text and HTML), 504, 413 with and without Content-Length.
//! - `websocket`: pass-through of large, fragmented, text and binary
//!   messages; non-101 answers relayed; `websocket = false`.
//! - `rewrite`: `strip_prefix`, `rewrite`, `host_header` (Supabase Realtime).
//! - `lifecycle`: drain in-process, reload keeping WebSockets, WebSocket
//!   idle timeout.
//! - `port80`: 308 redirect, ACME path, health endpoint.
//! - `limits`: slowloris header timeout, TLS handshake timeout, per-IP and
//!   global connection caps.
//! - `php`: `php -S` behind the TLS listener.
//! - `binary`: the real binary: SIGHUP reload (routes, TLS files), SIGTERM
//!   drain, access log.
//! - `cli`: `check`, `keygen`, `certs-dev`.
//! - `config_watch`: the real binary reloads when its config file is
//!   written or renamed over, and keeps serving when the new file is bad.
//! - `processes`: `[[processes]]` with real `sh` and `php -S` processes:
//!   output logging, restart backoff, `wait_for` 503s, graceful stop on
//!   SIGTERM, SIGHUP add/remove/change/keep.
//! - `upgrade`: SIGUSR2 binary upgrade under load (no refused connection,
//!   no failed request, 4200 for the old process's sockets), a failed
//!   upgrade keeping the old process, and a reload removing one app.

mod binary;
mod cli;
#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../common/config.rs"]
mod config;
mod config_watch;
mod errors;
mod forwarded;
mod http1_path;
#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../common/inproc.rs"]
mod inproc;
mod lifecycle;
mod limits;
mod php;
mod pool;
mod port80;
mod processes;
mod rewrite;
mod streaming;
mod strict;
mod support;
mod tls;
mod upgrade;
#[allow(dead_code, reason = "shared by several test crates; each uses a part")]
#[path = "../common/wait.rs"]
mod wait;
mod websocket;
mod workers;
