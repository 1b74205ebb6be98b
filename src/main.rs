//! The `splitgate` command: `serve`, `check`, `route`, `keys new`.
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use splitgate::accesslog::AccessLog;
use splitgate::config::{self, Plan};
use splitgate::metrics::Metrics;
use splitgate::proxy::Proxy;
use splitgate::server::Server;
use splitgate::snapshot::Source;

const DEFAULT_CONFIG: &str = "config/splitgate.toml";

#[derive(Parser)]
#[command(
    name = "splitgate",
    version,
    about = "Sticky champion/challenger and shadow proxy for ML models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Serve {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Override `server.listen` (e.g. 0.0.0.0:8080 in a container).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Override `server.admin_listen`.
        #[arg(long)]
        admin_listen: Option<SocketAddr>,
    },
    /// Validate a config file and report every problem with its field path.
    Check {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Print `user_id<TAB>variant<TAB>model` for each user id, as the proxy would route it.
    Route {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// User ids, or `-` to read one per line from stdin.
        #[arg(required = true)]
        user_ids: Vec<String>,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a fresh random key and the `[[auth.keys]]` entry to paste into the config.
    New {
        #[arg(long)]
        name: String,
        #[arg(long)]
        allow_override: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            config,
            listen,
            admin_listen,
        } => serve(&config, listen, admin_listen),
        Command::Check { config } => check(&config),
        Command::Route { config, user_ids } => route(&config, &user_ids),
        Command::Keys {
            command:
                KeysCommand::New {
                    name,
                    allow_override,
                },
        } => keys_new(&name, allow_override),
    }
}

fn load(path: &Path) -> Result<(String, Plan), ExitCode> {
    let text = config::read(path).map_err(|e| fail(&e.to_string()))?;
    let raw = config::parse(&text).map_err(|e| fail(&format!("{}: {e}", path.display())))?;
    let plan = config::validate(&raw).map_err(|issues| {
        fail(&format!(
            "{}: {} problem(s):\n{}",
            path.display(),
            issues.len(),
            config::Issue::render(&issues)
        ))
    })?;
    Ok((text, plan))
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::FAILURE
}

fn check(path: &Path) -> ExitCode {
    match load(path) {
        Ok((_, plan)) => {
            println!(
                "{}: ok — {} model(s), {} variant(s), {} shadow(s), {} key(s)",
                path.display(),
                plan.models.len(),
                plan.variants.len(),
                plan.shadows.len(),
                plan.keys.len()
            );
            for w in warnings(&plan) {
                println!("warning: {w}");
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// Valid but risky settings.
fn warnings(plan: &Plan) -> Vec<String> {
    let mut w = Vec::new();
    if !plan.admin_listen.ip().is_loopback() {
        w.push(format!("server.admin_listen {} is not loopback: the admin API is reachable from the network without TLS", plan.admin_listen));
    }
    if plan.throttle.is_none() {
        w.push("no [throttle]: the listener is not rate limited".into());
    }
    w
}

fn route(path: &Path, user_ids: &[String]) -> ExitCode {
    let (_, plan) = match load(path) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let from_stdin: Vec<String>;
    let user_ids = if user_ids == ["-"] {
        from_stdin = std::io::stdin()
            .lines()
            .map_while(Result::ok)
            .filter(|l| !l.is_empty())
            .collect();
        &from_stdin[..]
    } else {
        user_ids
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for id in user_ids {
        let v = &plan.variants[plan
            .layout
            .variant_of(splitgate::split::bucket(&plan.salt, id.as_bytes()))];
        let _ = writeln!(out, "{id}\t{}\t{}", v.name, plan.models[v.model].name);
    }
    ExitCode::SUCCESS
}

fn keys_new(name: &str, allow_override: bool) -> ExitCode {
    match splitgate::auth::generate_key() {
        Ok((key, digest)) => {
            println!("# X-API-Key: {key}\n# Store the key in your secret manager; only its SHA-256 goes in the config.");
            println!("[[auth.keys]]\nname = {name:?}\nsha256 = \"{digest}\"\nallow_override = {allow_override}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("no OS randomness: {e}")),
    }
}

fn serve(path: &Path, listen: Option<SocketAddr>, admin_listen: Option<SocketAddr>) -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(log_level())
        .with_ansi(false)
        .init();
    let (text, plan) = match load(path) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if plan.server.workers > 0 {
        runtime.worker_threads(plan.server.workers);
    }
    let runtime = match runtime.enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(run(path, text, plan, listen, admin_listen))
}

fn log_level() -> tracing::Level {
    match std::env::var("SPLITGATE_LOG")
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "error" => tracing::Level::ERROR,
        "warn" => tracing::Level::WARN,
        "debug" => tracing::Level::DEBUG,
        "trace" => tracing::Level::TRACE,
        _ => tracing::Level::INFO,
    }
}

async fn run(
    path: &Path,
    text: String,
    plan: Plan,
    listen: Option<SocketAddr>,
    admin_listen: Option<SocketAddr>,
) -> ExitCode {
    let listen = listen.unwrap_or(plan.listen);
    let admin_listen = admin_listen.unwrap_or(plan.admin_listen);
    let (main, admin) = match (
        tokio::net::TcpListener::bind(listen).await,
        tokio::net::TcpListener::bind(admin_listen).await,
    ) {
        (Ok(m), Ok(a)) => (m, a),
        (Err(e), _) => return fail(&format!("cannot listen on {listen}: {e}")),
        (_, Err(e)) => return fail(&format!("cannot listen on {admin_listen}: {e}")),
    };
    let metrics = Metrics::new();
    let access_log = if plan.server.access_log {
        match AccessLog::spawn(
            65_536,
            Box::new(std::io::stdout()),
            metrics.access_log_dropped.clone(),
        ) {
            Ok(l) => l,
            Err(e) => return fail(&format!("cannot start the access log: {e}")),
        }
    } else {
        AccessLog::disabled(metrics.access_log_dropped.clone())
    };
    let client = splitgate::backend::http_client(Duration::from_secs(2), 256);
    let source = Source::File(path.display().to_string());
    let digest = splitgate::reload::digest(text.as_bytes());
    let proxy = Arc::new(Proxy::new(
        plan, digest, source, client, access_log, metrics,
    ));
    if let Err(e) = splitgate::reload::watch_file(proxy.clone(), path.to_path_buf(), &text) {
        tracing::warn!(error = %e, "cannot watch the config file; live reload is off");
    }
    let server = match Server::start(proxy, main, admin) {
        Ok(s) => s,
        Err(e) => return fail(&format!("cannot start: {e}")),
    };
    tracing::info!(addr = %server.addr, admin_addr = %server.admin_addr, config = %path.display(), "splitgate listening");
    shutdown_signal().await;
    tracing::info!("draining");
    let clean = server
        .shutdown(
            Duration::from_millis(drain_grace_ms()),
            Duration::from_secs(30),
        )
        .await;
    if !clean {
        tracing::warn!("drain deadline passed with connections still open");
    }
    ExitCode::SUCCESS
}

/// Time between failing readiness and closing the listener (`SPLITGATE_DRAIN_GRACE_MS`, default 0).
fn drain_grace_ms() -> u64 {
    std::env::var("SPLITGATE_DRAIN_GRACE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
