//! `portico-bench`: a load generator for any Pusher-protocol server (and the
//! edge comparisons): `connections`, `fanout`, `churn`, plus `handshakes`,
//! `ws-echo` and `echo-server` for proxies. See `bench/README.md`.
//!
//! Layout: [`net`] (sockets, TLS, WebSocket and HTTP clients), [`pusher`]
//! (the client side of the protocol), [`report`] (tables, JSON, progress,
//! RSS), one module per workload, and [`procs`] (forking the workload over
//! several processes, because one process here may hold at most 20000 fds).

mod churn;
mod connections;
mod edge;
mod fanout;
mod net;
mod procs;
mod pusher;
mod report;

use clap::{Parser, Subcommand};

/// Load generator for Pusher-protocol servers and HTTP/WebSocket proxies.
#[derive(Parser, Debug)]
#[command(name = "portico-bench", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    #[command(flatten)]
    target: net::Target,
    /// Print only the JSON line, no table and no progress.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Open N WebSocket connections, optionally subscribe each, hold them;
    /// connect rate, failures and the server's RSS per connection.
    Connections(connections::Args),
    /// S subscribers over C channels, REST publishes at a rate: deliveries/s,
    /// end-to-end latency, lost messages.
    Fanout(fanout::Args),
    /// Clients connecting, subscribing and leaving continuously (public or
    /// presence channel, with watchers counting member_added/removed).
    Churn(churn::Args),
    /// New connections (TLS full handshakes with --tls) per second, each
    /// with one `Connection: close` request.
    Handshakes(edge::HandshakeArgs),
    /// WebSocket echo round trips through a proxy.
    WsEcho(edge::EchoArgs),
    /// A WebSocket echo upstream for `ws-echo`.
    EchoServer(edge::EchoServerArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let nofile = report::raise_nofile();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let t = cli.target;
        let quiet = cli.json;
        match cli.cmd {
            Cmd::Connections(a) => connections::run(&t, a, nofile, quiet).await,
            Cmd::Fanout(a) => fanout::run(&t, a, quiet).await,
            Cmd::Churn(a) => churn::run(&t, a, quiet).await,
            Cmd::Handshakes(a) => edge::handshakes(&t, a, quiet).await,
            Cmd::WsEcho(a) => edge::ws_echo(&t, a, quiet).await,
            Cmd::EchoServer(a) => edge::echo_server(a).await,
        }
    })
}
