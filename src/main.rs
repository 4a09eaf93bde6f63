//! The `portico` command: parse the CLI, load config, bind, forward signals.

use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};
use portico::config::{Config, LogFormat};
use portico::upgrade::{Exe, Inherited};
use portico::workers::Mode;
use portico::{Edge, Listeners, Shutdown, Workers};

#[derive(Parser)]
#[command(
    name = "portico",
    version,
    about = "One binary on your PHP app's public port: TLS, routing, proxy and a Pusher/Supabase WebSocket hub."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the edge (the default command).
    Run {
        /// Config file; default: config/portico.toml if it exists, else the embedded default.
        #[arg(long, short, env = "PORTICO_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Validate a config and print what it means.
    Check {
        #[arg(long, short, env = "PORTICO_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Create or renew the local dev CA and certificate, and say how to trust the CA.
    CertsDev {
        /// Directory for the CA and certificate.
        #[arg(long, default_value = "certs-dev")]
        dir: PathBuf,
        /// Extra host names or IPs for the certificate (repeatable).
        #[arg(long = "host")]
        hosts: Vec<String>,
    },
    /// Print a fresh app id/key/secret as .env lines and a TOML [[apps]] block.
    Keygen,
    /// Show ACME certificates: domain, issuer, expiry, next renewal (reads storage).
    Certs {
        #[arg(long, short, env = "PORTICO_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Ask a running portico (its [admin] listener) what it is doing.
    Status {
        /// Config file whose `[admin] listen` to ask; default as for `run`.
        #[arg(long, short, env = "PORTICO_CONFIG")]
        config: Option<PathBuf>,
        /// The admin listener's address, instead of the config's.
        #[arg(long)]
        admin: Option<SocketAddr>,
        /// Print the status document as JSON.
        #[arg(long)]
        json: bool,
    },
}

const DEFAULT_PATH: &str = "config/portico.toml";

fn load(path: Option<&Path>) -> Result<Config, portico::config::ConfigError> {
    match path {
        Some(p) => Config::load(p),
        None if Path::new(DEFAULT_PATH).exists() => Config::load(Path::new(DEFAULT_PATH)),
        None => Config::embedded(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run { config: None }) {
        Command::Keygen => {
            print!("{}", portico::cli::keygen::generate().render());
            ExitCode::SUCCESS
        }
        Command::Certs { config } => certs(config.as_deref()),
        Command::Status {
            config,
            admin,
            json,
        } => status(config.as_deref(), admin, json),
        Command::Check { config } => match load(config.as_deref()) {
            Ok(c) => {
                print!("{}", c.effective());
                println!("ok");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::CertsDev { dir, hosts } => match portico::tls::dev::ensure(&dir, &hosts) {
            Ok(certs) => {
                println!("{}", portico::tls::trust_instructions(&certs.ca_cert));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run { config } => {
            let path = config.or_else(|| {
                Path::new(DEFAULT_PATH)
                    .exists()
                    .then(|| PathBuf::from(DEFAULT_PATH))
            });
            let cfg = match load(path.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            init_tracing(&cfg);
            // Recorded now, before anything can change the directory: what
            // SIGUSR2 starts.
            let exe = portico::upgrade::Exe::at_start()
                .map_err(|e| tracing::warn!(error = %e, "cannot tell this binary's path; SIGUSR2 upgrades are off"))
                .ok();
            // Started by an upgrade: take the listeners over from the
            // running portico instead of binding.
            let inherited = match std::env::var_os(portico::upgrade::SOCKET_ENV) {
                Some(p) if !p.is_empty() => {
                    match portico::upgrade::Inherited::receive(
                        Path::new(&p),
                        portico::upgrade::TIMEOUT,
                    ) {
                        Ok(i) => {
                            tracing::info!(listeners = ?i.names(), "upgrade: took the listeners over from the running portico");
                            Some(i)
                        }
                        Err(e) => {
                            tracing::error!("{e}");
                            eprintln!("error: {e}");
                            return ExitCode::FAILURE;
                        }
                    }
                }
                _ => None,
            };
            let mode = match Mode::parse(std::env::var("PORTICO_WORKERS").ok().as_deref()) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            // The main runtime runs signals, accept loops, ACME, reloads
            // and the hub sockets; per-core workers, if on, run the rest of
            // the connections.
            let rt = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(run(cfg, path, mode, exe, inherited)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn certs(config: Option<&Path>) -> ExitCode {
    let cfg = match load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let portico::config::Tls::Acme(settings) = &cfg.tls else {
        eprintln!(
            "error: {}: `tls.mode` is not \"acme\"; `portico certs` shows ACME certificates (use `portico check` for the others)",
            cfg.source
        );
        return ExitCode::from(2);
    };
    let rows = portico::tls::acme::status::report(settings);
    let table = portico::tls::acme::status::Table {
        settings,
        rows: &rows,
        now: std::time::SystemTime::now(),
    };
    print!("{table}");
    ExitCode::SUCCESS
}

/// `portico status`: exit 0 with the report, 1 when nothing answered,
/// 2 on a config error.
fn status(config: Option<&Path>, admin: Option<SocketAddr>, json: bool) -> ExitCode {
    use portico::cli::status::{StatusError, fetch, render};
    let addr = match admin {
        Some(a) => a,
        None => match load(config) {
            Ok(cfg) => match cfg.admin {
                Some(a) => connectable(a.listen),
                None => {
                    let e = StatusError::NotEnabled {
                        config: cfg.source.to_string(),
                    };
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            },
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(fetch(addr)) {
        Ok((text, doc)) => {
            if json {
                print!("{text}");
            } else {
                print!("{}", render(&doc));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A listen address as a client reaches it: the unspecified address
/// (`0.0.0.0`, `::`) is this machine's loopback.
fn connectable(a: SocketAddr) -> SocketAddr {
    if a.ip().is_unspecified() {
        let ip: std::net::IpAddr = if a.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
        SocketAddr::new(ip, a.port())
    } else {
        a
    }
}

fn init_tracing(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&*cfg.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cfg.log.format {
        LogFormat::Json => builder.with_ansi(false).json().init(),
        // Colour only on a terminal: systemd, Docker and `2> file` get
        // plain text. NO_COLOR (https://no-color.org) turns it off too.
        LogFormat::Text => builder.with_ansi(colour_stderr()).init(),
    }
}

/// Whether log lines on stderr may carry ANSI colour codes.
fn colour_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

async fn run(
    cfg: Config,
    path: Option<PathBuf>,
    mode: Mode,
    exe: Option<Exe>,
    mut inherited: Option<Inherited>,
) -> anyhow::Result<()> {
    // Handlers first: a SIGTERM while the supervised processes start must
    // drain and stop them, not kill portico with the default action and
    // leave them running.
    let caught = Caught::install()?;
    let listeners = match inherited.as_mut() {
        Some(i) => Listeners::bind_or_adopt(&cfg.server, |k| i.take(k))?,
        None => Listeners::bind(&cfg.server)?,
    };
    let admin = match &cfg.admin {
        Some(a) => {
            let adopted = inherited
                .as_mut()
                .and_then(|i| i.take("admin"))
                .and_then(|l| portico::listener::adopt("admin", l, a.listen));
            Some(match adopted {
                Some(l) => l,
                None => portico::admin::bind(a)?,
            })
        }
        None => None,
    };
    // The node id of the process this one replaces, kept so the cluster
    // sees one node throughout.
    let node = inherited
        .as_ref()
        .and_then(|_| std::env::var(portico::upgrade::CLUSTER_NODE_ENV).ok())
        .filter(|n| !n.is_empty());
    let edge = Edge::with_cluster_node(cfg, Shutdown::new(), node.as_deref())?;
    let workers = Arc::new(Workers::start(mode)?);
    if !workers.is_empty() {
        tracing::info!(
            workers = workers.len(),
            "connections run on per-core runtimes"
        );
    }
    print_banner(&edge, &listeners);
    // What a later upgrade hands over: copies of the listening fds
    // (close-on-exec, like every fd here).
    let fds = handover_fds(&listeners, admin.as_ref());
    if let Some(p) = &path {
        spawn_config_watch(edge.clone(), p.clone());
    }
    if let Some(admin) = admin {
        start_admin(admin, &edge, &listeners);
    }
    let upgrader = Upgrader {
        exe,
        fds: Arc::new(fds),
        edge: edge.clone(),
        busy: Arc::default(),
    };
    let signals = signals(caught, edge.clone(), path, upgrader);
    match inherited {
        // Started by an upgrade: the old process is main for systemd until
        // it hands over; say `ready` to it once this one serves.
        Some(i) => spawn_ready_for_upgrade(edge.clone(), i),
        // Listeners are bound (connections queue from now on): tell systemd.
        None => match portico::sd_notify::ready() {
            Ok(true) => tracing::debug!("told the service manager we are ready"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not tell the service manager we are ready"),
        },
    }
    portico::serve_with(edge, listeners, workers.clone(), signals).await;
    // Joining threads blocks: off the async thread.
    let _ = tokio::task::spawn_blocking(move || workers.stop()).await;
    Ok(())
}

/// Copies of the listening sockets by name, for a later upgrade.
fn handover_fds(
    listeners: &Listeners,
    admin: Option<&tokio::net::TcpListener>,
) -> Vec<(&'static str, OwnedFd)> {
    let mut fds = Vec::new();
    let named = [
        ("https", listeners.https.as_ref()),
        ("http", listeners.http.as_ref()),
        ("plain", listeners.plain.as_ref()),
        ("admin", admin),
    ];
    for (name, l) in named {
        let Some(l) = l else { continue };
        match l.as_fd().try_clone_to_owned() {
            Ok(fd) => fds.push((name, fd)),
            Err(e) => {
                tracing::warn!(listener = name, error = %e, "cannot keep a copy of the listener for upgrades")
            }
        }
    }
    fds
}

/// Waits until the supervised processes are ready (bounded by the
/// upgrade timeout), then tells the old process this one serves.
fn spawn_ready_for_upgrade(edge: Edge, inherited: Inherited) {
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + portico::upgrade::TIMEOUT;
        loop {
            let procs = edge.inner().supervisor().status();
            if procs.iter().all(|p| p.ready) {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                let waiting: Vec<_> = procs
                    .iter()
                    .filter(|p| !p.ready)
                    .map(|p| p.name.clone())
                    .collect();
                tracing::error!(processes = ?waiting, "upgrade: processes not ready in time; not taking over");
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        match tokio::task::spawn_blocking(move || inherited.ready()).await {
            Ok(Ok(())) => tracing::info!("upgrade: serving; the old process drains"),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "upgrade: could not tell the old process we are ready")
            }
            Err(e) => {
                tracing::error!(error = %e, "upgrade: could not tell the old process we are ready")
            }
        }
    });
}

/// What SIGUSR2 needs: the binary, the listeners' fds, the edge (for the
/// cluster node id), and whether an upgrade is under way.
struct Upgrader {
    exe: Option<Exe>,
    fds: Arc<Vec<(&'static str, OwnedFd)>>,
    edge: Edge,
    busy: Arc<AtomicBool>,
}

impl Upgrader {
    /// Starts an upgrade in the background; the new process's pid is sent
    /// on `done` once it serves.
    fn start(&self, done: tokio::sync::mpsc::Sender<u32>) {
        let Some(exe) = self.exe.clone() else {
            tracing::error!(
                "upgrade failed: this binary's path is unknown; this process keeps serving"
            );
            return;
        };
        if self.busy.swap(true, Ordering::AcqRel) {
            tracing::warn!("{}", portico::upgrade::UpgradeError::Busy);
            return;
        }
        let fds = self.fds.clone();
        let busy = self.busy.clone();
        let mut env = Vec::new();
        if let Some(c) = self.edge.inner().cluster() {
            env.push((portico::upgrade::CLUSTER_NODE_ENV, c.node_id().to_string()));
        }
        tokio::spawn(async move {
            let named: Vec<(&str, BorrowedFd<'_>)> =
                fds.iter().map(|(n, fd)| (*n, fd.as_fd())).collect();
            match portico::upgrade::start(&exe, &named, &env, portico::upgrade::TIMEOUT).await {
                Ok(pid) => {
                    let _ = done.send(pid).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, exe = %exe.path().display(), "upgrade failed; this process keeps serving");
                    busy.store(false, Ordering::Release);
                }
            }
        });
    }
}

fn print_banner(edge: &Edge, listeners: &Listeners) {
    let cfg = edge.config();
    for (kind, addr) in listeners.addrs() {
        if let Some(a) = addr {
            tracing::info!(listener = kind.name(), addr = %a, "listening");
        }
    }
    eprint!("{}", portico::cli::banner::render(&cfg, listeners));
}

/// Serves `[admin]` on `listener` until the edge drains.
fn start_admin(listener: tokio::net::TcpListener, edge: &Edge, listeners: &Listeners) {
    use portico::admin::status::{Context, Listening};
    let mut bound: Vec<Listening> = listeners
        .addrs()
        .into_iter()
        .filter_map(|(kind, a)| {
            a.map(|addr| Listening {
                name: kind.name().to_string(),
                addr,
            })
        })
        .collect();
    if let Ok(a) = listener.local_addr() {
        tracing::info!(listener = "admin", addr = %a, "listening");
        eprintln!("  admin  http://{a}/metrics and /status (portico status)");
        bound.push(Listening {
            name: "admin".to_string(),
            addr: a,
        });
    }
    let cx = Context {
        listeners: bound,
        started: std::time::SystemTime::now(),
    };
    tokio::spawn(portico::admin::serve(listener, edge.inner().clone(), cx));
}

/// Resolves on SIGTERM or SIGINT (telling systemd portico is stopping),
/// or once a new process started by SIGUSR2 serves (telling systemd it is
/// the main process now); reloads on SIGHUP.
fn signals(
    caught: Caught,
    edge: Edge,
    path: Option<PathBuf>,
    upgrader: Upgrader,
) -> impl std::future::Future<Output = ()> {
    let Caught {
        mut term,
        mut int,
        mut hup,
        mut usr2,
    } = caught;
    let (done, mut upgraded) = tokio::sync::mpsc::channel(1);
    async move {
        let handed_to = loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM received"); break None; }
                _ = int.recv() => { tracing::info!("SIGINT received"); break None; }
                _ = hup.recv() => {
                    tracing::info!("SIGHUP received: reloading configuration");
                    reload(&edge, path.as_deref());
                }
                _ = usr2.recv() => {
                    tracing::info!("SIGUSR2 received: starting the new binary");
                    upgrader.start(done.clone());
                }
                Some(pid) = upgraded.recv() => break Some(pid),
            }
        };
        match handed_to {
            Some(pid) => {
                tracing::info!(
                    pid,
                    "upgrade: the new process serves; this one stops accepting and drains"
                );
                edge.shutdown().begin_handover();
                if let Err(e) = portico::sd_notify::main_pid(pid) {
                    tracing::warn!(error = %e, "could not tell the service manager the new main pid");
                }
            }
            None => {
                if let Err(e) = portico::sd_notify::stopping() {
                    tracing::warn!(error = %e, "could not tell the service manager we are stopping");
                }
            }
        }
    }
}

/// The signals portico handles, caught from the start of `run`.
struct Caught {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    usr2: tokio::signal::unix::Signal,
}

impl Caught {
    fn install() -> std::io::Result<Caught> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Caught {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
            usr2: signal(SignalKind::user_defined2())?,
        })
    }
}

/// What SIGHUP does, and a config file change: load the file again and swap
/// it in; an invalid one is refused with the error (file, line, key, fix)
/// and the running configuration stays.
fn reload(edge: &Edge, path: Option<&Path>) {
    match load(path) {
        Ok(cfg) => {
            if let Err(e) = edge.reload(cfg) {
                tracing::error!("reload refused, keeping the running configuration: {e}");
            }
        }
        Err(e) => tracing::error!("reload refused, keeping the running configuration:\n{e}"),
    }
}

/// Reloads when the config file changes while `[server] watch_config` (of
/// the running configuration) is on; stops when draining starts.
fn spawn_config_watch(edge: Edge, path: PathBuf) {
    let cancel = edge.shutdown().drain_token();
    let (for_switch, for_reload, p) = (edge.clone(), edge, path.clone());
    tokio::spawn(portico::config::watch::watch(
        path,
        portico::config::watch::Timing::default(),
        cancel,
        move || for_switch.config().server.watch_config,
        move || reload(&for_reload, Some(&p)),
    ));
}
