//! The `splitgate` command: `serve` (in `cli::serve`), `check`, `route`, `keys new`, and the
//! operator commands (admin API, DynamoDB source, model registry).
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use splitgate::config::{self, ConfigInput, Plan, RawConfig};
use splitgate::ops;

mod cli;
use cli::serve::serve;

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
    if text.len() > max {
        return Err(config::ConfigError::TooLarge { path: input.label(), max });
    }
    Ok(())
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
    if plan.keys.iter().any(|(d, _)| splitgate::auth::is_demo_key(d)) {
        w.push(
            "the config holds the published demo key (splitgate-demo-key): `serve` refuses it off loopback \
             without --demo, and always on ECS"
                .into(),
        );
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
