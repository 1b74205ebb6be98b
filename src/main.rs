//! The `splitgate` command: `serve`, `check`, `route`, `keys new`.
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use splitgate::accesslog::AccessLog;
use splitgate::auth::DemoPolicy;
use splitgate::aws::dynamo::ConfigTable;
use splitgate::aws::AwsClients;
use splitgate::config::{self, ConfigInput, Plan, RawConfig, SourceKind};
use splitgate::metrics::Metrics;
use splitgate::ops;
use splitgate::proxy::Proxy;
use splitgate::server::Server;
use splitgate::snapshot::Source;

/// Where the config comes from, shared by every command that reads one.
#[derive(clap::Args)]
struct ConfigArg {
    /// The config file. Without it: `SPLITGATE_CONFIG` (TOML text, or a file path), else
    /// `config/splitgate.toml`.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

impl ConfigArg {
    fn resolve(self) -> Result<ConfigInput, ExitCode> {
        ConfigInput::resolve(self.config).map_err(|e| fail(&e.to_string()))
    }
}

const CONFIG_HELP: &str = "\
Config: `--config PATH` when given, else the SPLITGATE_CONFIG environment variable, else
config/splitgate.toml (from the working directory). SPLITGATE_CONFIG holds TOML text (a value
with a newline, or starting with `[` or `#`) or a file path. A file is watched and reloaded;
TOML text is static, unless its `[source] kind = \"dynamodb\"` supplies the hot part.";

#[derive(Parser)]
#[command(name = "splitgate", version, about = "Sticky champion/challenger and shadow proxy for ML models")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    #[command(after_help = CONFIG_HELP)]
    Serve {
        #[command(flatten)]
        config: ConfigArg,
        /// Override `server.listen` (e.g. 0.0.0.0:8080 in a container).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Override `server.admin_listen`.
        #[arg(long)]
        admin_listen: Option<SocketAddr>,
        /// Serve a config holding the published demo key (`splitgate-demo-key`) on a
        /// non-loopback listener. Refused on ECS regardless.
        #[arg(long)]
        demo: bool,
    },
    /// Validate a config file and report every problem with its field path.
    #[command(after_help = CONFIG_HELP)]
    Check {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Print `user_id<TAB>variant<TAB>model` for each user id, as the proxy would route it.
    #[command(after_help = CONFIG_HELP)]
    Route {
        #[command(flatten)]
        config: ConfigArg,
        /// User ids, or `-` to read one per line from stdin.
        #[arg(required = true)]
        user_ids: Vec<String>,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Change live weights through the admin API; the champion absorbs the difference.
    Weights {
        #[command(subcommand)]
        command: WeightsCommand,
    },
    /// Make a challenger's model the champion's, at 100%.
    Promote {
        #[command(flatten)]
        admin: AdminArgs,
        /// The variant to promote (default: the only challenger).
        #[arg(long)]
        variant: Option<String>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Every challenger to 0%, the champion to 100%.
    Rollback {
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long)]
        reason: String,
    },
    /// The live split and each variant's health.
    Status {
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// The model registry (`[registry]` table).
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// The DynamoDB config item (`[source] kind = "dynamodb"`).
    Source {
        #[command(subcommand)]
        command: SourceCommand,
    },
}

/// Where the admin API is and how to authenticate.
#[derive(clap::Args)]
struct AdminArgs {
    #[arg(long, env = "SPLITGATE_ADMIN_URL", default_value = "http://127.0.0.1:9901")]
    admin: String,
    #[arg(long, env = "SPLITGATE_ADMIN_TOKEN", hide_env_values = true)]
    token: String,
}

#[derive(Subcommand)]
enum WeightsCommand {
    /// e.g. `splitgate weights set challenger=50`; `--dry-run` estimates who would move.
    Set {
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(required = true, value_parser = parse_weight)]
        weights: Vec<(String, f64)>,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        dry_run: bool,
    },
}

fn parse_weight(s: &str) -> Result<(String, f64), String> {
    let (name, w) = s.split_once('=').ok_or("expected VARIANT=PERCENT")?;
    Ok((name.to_owned(), w.parse().map_err(|_| format!("`{w}` is not a number"))?))
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// List every model with its status, artifact and metrics.
    List {
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Subcommand)]
enum SourceCommand {
    /// Print the item's version and document.
    Get {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Validate a document (TOML: auth, throttle, models, split, shadow) and write it, only if the
    /// item is still at `--expect-version` (omit it to create the item). Exit 3 on a conflict.
    Put {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        document: PathBuf,
        #[arg(long)]
        expect_version: Option<u64>,
        /// Recorded as `updated_by`.
        #[arg(long, default_value = "splitgate-cli")]
        who: String,
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
        Command::Serve { config, listen, admin_listen, demo } => match config.resolve() {
            Ok(input) => serve(&input, listen, admin_listen, demo),
            Err(code) => code,
        },
        Command::Check { config } => config.resolve().map_or_else(|c| c, |input| check(&input)),
        Command::Route { config, user_ids } => config.resolve().map_or_else(|c| c, |input| route(&input, &user_ids)),
        Command::Keys { command: KeysCommand::New { name, allow_override } } => keys_new(&name, allow_override),
        Command::Weights { command: WeightsCommand::Set { admin, weights, reason, dry_run } } => {
            let mut body: serde_json::Map<String, serde_json::Value> =
                weights.into_iter().map(|(k, v)| (k, v.into())).collect();
            if let Some(r) = reason {
                body.insert("reason".into(), r.into());
            }
            let path = if dry_run { "/admin/weights?dry_run=true" } else { "/admin/weights" };
            admin_cli(admin, http::Method::PUT, path, Some(body.into()))
        }
        Command::Promote { admin, variant, reason } => admin_cli(
            admin,
            http::Method::POST,
            "/admin/promote",
            Some(serde_json::json!({"variant": variant, "reason": reason})),
        ),
        Command::Rollback { admin, reason } => {
            admin_cli(admin, http::Method::POST, "/admin/rollback", Some(serde_json::json!({ "reason": reason })))
        }
        Command::Status { admin } => admin_cli(admin, http::Method::GET, "/admin/status", None),
        Command::Models { command: ModelsCommand::List { config } } => {
            ops(config, |raw| async move { ops::models_list(&raw).await })
        }
        Command::Source { command: SourceCommand::Get { config } } => {
            ops(config, |raw| async move { ops::source_get(&raw).await })
        }
        Command::Source { command: SourceCommand::Put { config, document, expect_version, who } } => {
            let doc = match std::fs::read_to_string(&document) {
                Ok(d) => d,
                Err(e) => return fail(&format!("cannot read {}: {e}", document.display())),
            };
            ops(config, |raw| async move {
                ops::source_put(&raw, &doc, expect_version, &who).await.map(|v| format!("written: version {v}\n"))
            })
        }
    }
}

fn admin_cli(a: AdminArgs, method: http::Method, path: &str, body: Option<serde_json::Value>) -> ExitCode {
    run_op(ops::admin_call(&a.admin, &a.token, method, path, body))
}

/// Runs an AWS-backed operator command with the config's settings.
fn ops<F, Fut>(config: ConfigArg, f: F) -> ExitCode
where
    F: FnOnce(RawConfig) -> Fut,
    Fut: std::future::Future<Output = Result<String, ops::OpsError>>,
{
    let input = match config.resolve() {
        Ok(i) => i,
        Err(code) => return code,
    };
    match input.read().and_then(|t| config::parse(&t)) {
        Ok(raw) => run_op(f(raw)),
        Err(e) => fail(&format!("{}: {e}", input.label())),
    }
}

/// Runs one operator command on a small runtime, prints its output, maps its error to an exit code.
fn run_op(op: impl std::future::Future<Output = Result<String, ops::OpsError>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(op) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn load(input: &ConfigInput) -> Result<(String, Plan), ExitCode> {
    let label = input.label();
    let text = input.read().map_err(|e| fail(&e.to_string()))?;
    let raw = config::parse(&text).map_err(|e| fail(&format!("{label}: {e}")))?;
    within_own_limit(input, &text, &raw).map_err(|e| fail(&e.to_string()))?;
    let plan = config::validate(&raw).map_err(|issues| {
        fail(&format!("{label}: {} problem(s):\n{}", issues.len(), config::Issue::render(&issues)))
    })?;
    Ok((text, plan))
}

/// Start-up reads up to 64 MiB before the config's own `server.max_config_bytes` is known; once
/// parsed, the config must fit its own limit (or the first reload of the same text would fail).
fn within_own_limit(input: &ConfigInput, text: &str, raw: &RawConfig) -> Result<(), config::ConfigError> {
    let max = raw.server.max_config_bytes;
    match text.len() > max {
        true => Err(config::ConfigError::TooLarge { path: input.label(), max }),
        false => Ok(()),
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::FAILURE
}

fn check(input: &ConfigInput) -> ExitCode {
    match load(input) {
        Ok((_, plan)) => {
            println!(
                "{}: ok — {} model(s), {} variant(s), {} shadow(s), {} key(s)",
                input.label(),
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
        w.push(format!(
            "server.admin_listen {} is not loopback: the admin API is reachable from the network without TLS",
            plan.admin_listen
        ));
    }
    if plan.throttle.is_none() {
        w.push("no [throttle]: the listener is not rate limited".into());
    }
    w
}

fn route(input: &ConfigInput, user_ids: &[String]) -> ExitCode {
    let (_, plan) = match load(input) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let from_stdin: Vec<String>;
    let user_ids = if user_ids == ["-"] {
        from_stdin = std::io::stdin().lines().map_while(Result::ok).filter(|l| !l.is_empty()).collect();
        &from_stdin[..]
    } else {
        user_ids
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for id in user_ids {
        let v = &plan.variants[plan.layout.variant_of(splitgate::split::bucket(&plan.salt, id.as_bytes()))];
        let _ = writeln!(out, "{id}\t{}\t{}", v.name, plan.models[v.model].name);
    }
    ExitCode::SUCCESS
}

fn keys_new(name: &str, allow_override: bool) -> ExitCode {
    match splitgate::auth::generate_key() {
        Ok((key, digest)) => {
            println!(
                "# X-API-Key: {key}\n# Store the key in your secret manager; only its SHA-256 goes in the config."
            );
            println!("[[auth.keys]]\nname = {name:?}\nsha256 = \"{digest}\"\nallow_override = {allow_override}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("no OS randomness: {e}")),
    }
}

fn serve(input: &ConfigInput, listen: Option<SocketAddr>, admin_listen: Option<SocketAddr>, demo: bool) -> ExitCode {
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(log_level()).with_ansi(false).init();
    let (text, raw) = match input.read().and_then(|t| config::parse(&t).map(|r| (t, r))) {
        Ok(x) => x,
        Err(e) => return fail(&format!("{}: {e}", input.label())),
    };
    if let Err(e) = within_own_limit(input, &text, &raw) {
        return fail(&e.to_string());
    }
    // One worker: a current-thread runtime, so a request never crosses threads (no work-stealing
    // queues, no cross-thread wake-ups). More: the work-stealing scheduler.
    let mut runtime = if raw.server.workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if raw.server.workers > 0 {
            b.worker_threads(raw.server.workers);
        }
        b
    };
    let runtime = match runtime.enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(run(input, text, raw, listen, admin_listen, demo))
}

fn log_level() -> tracing::Level {
    match std::env::var("SPLITGATE_LOG").unwrap_or_default().to_ascii_lowercase().as_str() {
        "error" => tracing::Level::ERROR,
        "warn" => tracing::Level::WARN,
        "debug" => tracing::Level::DEBUG,
        "trace" => tracing::Level::TRACE,
        _ => tracing::Level::INFO,
    }
}

/// How long start-up keeps trying to read the DynamoDB item before giving up.
const SOURCE_STARTUP: Duration = Duration::from_secs(30);

/// The config to start with: the file (or `SPLITGATE_CONFIG` text), or its static part plus the
/// DynamoDB item.
async fn initial(
    input: &ConfigInput,
    text: &str,
    raw: &RawConfig,
    aws: &AwsClients,
) -> Result<(RawConfig, String, Source, Option<ConfigTable>), String> {
    let own = match input {
        ConfigInput::File(path) => Source::File(path.display().to_string()),
        ConfigInput::Inline(_) => Source::Inline,
    };
    let file = (raw.clone(), splitgate::reload::digest(text.as_bytes()), own, None);
    let Some(src) = raw.source.as_ref().filter(|s| s.kind == SourceKind::Dynamodb) else { return Ok(file) };
    let table = ConfigTable::connect(aws, src).await.ok_or("[source] needs table and key")?;
    let label = format!("{}/{}", src.table.as_deref().unwrap_or(""), src.key.as_deref().unwrap_or(""));
    let deadline = tokio::time::Instant::now() + SOURCE_STARTUP;
    let mut delay = Duration::from_millis(250);
    let failure = loop {
        match table.fetch().await {
            Ok(Some((version, document))) => {
                let combined = splitgate::reload::combine(raw, version, &document).map_err(|e| e.to_string())?;
                let digest = splitgate::reload::digest(document.as_bytes());
                return Ok((combined, digest, Source::Dynamodb(label), Some(table)));
            }
            Ok(None) => break format!("item {label} does not exist"),
            Err(e) if tokio::time::Instant::now() + delay < deadline => {
                tracing::warn!(error = %e, "config source not reachable yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => break e.to_string(),
        }
    };
    if raw.split.is_some() {
        tracing::warn!(error = %failure, "starting from the file's own config until DynamoDB answers");
        Ok((file.0, file.1, file.2, Some(table)))
    } else {
        Err(format!("cannot read the DynamoDB config ({failure}) and the file has no [split] to start from"))
    }
}

async fn run(
    input: &ConfigInput,
    text: String,
    raw: RawConfig,
    listen: Option<SocketAddr>,
    admin_listen: Option<SocketAddr>,
    demo: bool,
) -> ExitCode {
    let aws = AwsClients::new();
    let (effective, digest, source, table) = match initial(input, &text, &raw, &aws).await {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    let plan = match config::validate(&effective) {
        Ok(p) => p,
        Err(issues) => return fail(&format!("{} problem(s):\n{}", issues.len(), config::Issue::render(&issues))),
    };
    aws.prepare(&plan).await;
    let listen = listen.unwrap_or(plan.listen);
    let admin_listen = admin_listen.unwrap_or(plan.admin_listen);
    // Before binding anything: the published demo key never serves beyond this machine unless
    // asked for (`--demo`), and never in a deployment.
    let demo_policy = DemoPolicy::from_env(listen, demo);
    if let Err(e) = demo_policy.check(plan.keys.iter().map(|(d, _)| d)) {
        return fail(&e.to_string());
    }
    let (main, admin) =
        match (tokio::net::TcpListener::bind(listen).await, tokio::net::TcpListener::bind(admin_listen).await) {
            (Ok(m), Ok(a)) => (m, a),
            (Err(e), _) => return fail(&format!("cannot listen on {listen}: {e}")),
            (_, Err(e)) => return fail(&format!("cannot listen on {admin_listen}: {e}")),
        };
    let metrics = Metrics::new();
    let access_log = if plan.server.access_log {
        match AccessLog::spawn(4_096, Box::new(std::io::stdout()), metrics.access_log_dropped.clone()) {
            Ok(l) => l,
            Err(e) => return fail(&format!("cannot start the access log: {e}")),
        }
    } else {
        AccessLog::disabled(metrics.access_log_dropped.clone())
    };
    let ca = plan.server.upstream_ca_path.as_ref().map(std::path::PathBuf::from);
    let client = match splitgate::backend::http_client_with_ca(Duration::from_secs(2), 256, ca.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(&format!("cannot set up TLS for upstreams: {e}")),
    };
    let poll = raw.source.as_ref().map(|s| Duration::from_millis(s.poll_interval_ms));
    let proxy = Arc::new(Proxy::new(plan, digest, source.clone(), client, access_log, metrics, aws));
    let _ = proxy.admin.demo_policy.set(demo_policy);
    match (table, poll) {
        (Some(table), Some(poll)) => {
            let _ = proxy.admin.dynamo.set((table.clone(), raw.clone()));
            let label = match &source {
                Source::Dynamodb(_) => source.clone(),
                _ => Source::Dynamodb(format!(
                    "{}/{}",
                    raw.source.as_ref().and_then(|s| s.table.clone()).unwrap_or_default(),
                    raw.source.as_ref().and_then(|s| s.key.clone()).unwrap_or_default()
                )),
            };
            splitgate::reload::watch_dynamodb(proxy.clone(), raw.clone(), table, poll, label);
        }
        _ => match input {
            ConfigInput::File(path) => {
                if let Err(e) = splitgate::reload::watch_file(proxy.clone(), path.clone(), &text) {
                    tracing::warn!(error = %e, "cannot watch the config file; live reload is off");
                }
            }
            ConfigInput::Inline(_) => tracing::info!(
                "config from SPLITGATE_CONFIG (TOML text) is static: it will not hot-reload and admin edits answer \
                 400; use a file, or [source] kind = \"dynamodb\", for live changes"
            ),
        },
    }
    splitgate::admin::guard_task::spawn(Arc::downgrade(&proxy));
    splitgate::aws::cloudwatch::spawn(
        Arc::downgrade(&proxy),
        |p: &Proxy| p.snapshot.load().plan.cloudwatch.clone(),
        |p: &Proxy| (&p.aws, &p.cloudwatch, &p.metrics.cloudwatch),
    );
    let tls = match &proxy.snapshot.load().plan.server.tls {
        Some(t) => match splitgate::tls::Tls::load(t.cert_path.as_ref(), t.key_path.as_ref()) {
            Ok(tls) => {
                splitgate::tls::Tls::watch(&tls);
                Some(tls)
            }
            Err(e) => return fail(&format!("server.tls: {e}")),
        },
        None => None,
    };
    let server = match Server::start(proxy.clone(), main, admin, tls) {
        Ok(s) => s,
        Err(e) => return fail(&format!("cannot start: {e}")),
    };
    tracing::info!(addr = %server.addr, admin_addr = %server.admin_addr, config = %input.label(), "splitgate listening");
    shutdown_signal().await;
    tracing::info!("draining");
    let clean = server.shutdown(Duration::from_millis(drain_grace_ms()), Duration::from_secs(30)).await;
    if !clean {
        tracing::warn!("drain deadline passed with connections still open");
    }
    // Let queued shadow copies finish (bounded), so comparisons of the last requests are kept.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while splitgate::shadow::pending(&proxy.snapshot.load().shadows) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Last CloudWatch batch, so the final interval's numbers are not lost.
    if let Some(cw) = proxy.snapshot.load().plan.cloudwatch.clone() {
        let flush =
            splitgate::aws::cloudwatch::publish_once(&proxy.aws, &cw, &proxy.cloudwatch, &proxy.metrics.cloudwatch);
        let _ = tokio::time::timeout(Duration::from_secs(5), flush).await;
    }
    // The access-log writer drains its queue every few milliseconds; give it one more turn.
    tokio::time::sleep(Duration::from_millis(50)).await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Time between failing readiness and closing the listener (`SPLITGATE_DRAIN_GRACE_MS`, default
/// 500): long enough for keep-alive clients to get a `Connection: close` answer and move on.
fn drain_grace_ms() -> u64 {
    std::env::var("SPLITGATE_DRAIN_GRACE_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(500)
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
