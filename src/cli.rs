//! The `splitgate` command line: the clap tree and the dispatch to each command — `serve`
//! (`serve`), the local ones (`check`, `route`, `keys new`, in `local`), and the operator
//! commands (admin API, DynamoDB source, model registry, in the library's `ops`). Bin-only.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use splitgate::config::{self, ConfigInput, RawConfig};
use splitgate::ops;

mod local;
pub mod serve;

use local::{check, fail, keys_new, route};
use serve::serve;

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

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
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
