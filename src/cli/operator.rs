//! The operator commands: their arguments (admin API address and token, the DynamoDB source, the
//! model registry) and how they run — one small runtime, the output printed, the error mapped to
//! an exit code (`ops::OpsError::exit_code`: 1 failure, 2 usage, 3 version conflict).

use std::path::PathBuf;
use std::process::ExitCode;

use splitgate::config::{self, RawConfig};
use splitgate::ops;

use super::local::fail;
use super::ConfigArg;

/// Where the admin API is and how to authenticate.
#[derive(clap::Args)]
pub(super) struct AdminArgs {
    /// The admin listener's base URL.
    #[arg(long, value_name = "URL", env = "SPLITGATE_ADMIN_URL", default_value = "http://127.0.0.1:9901")]
    admin: String,
    /// An admin bearer token (`[[admin.tokens]]` or the proxy's SPLITGATE_ADMIN_TOKEN).
    #[arg(long, env = "SPLITGATE_ADMIN_TOKEN", hide_env_values = true)]
    token: String,
}

/// Makes a change conditional on the version it was decided on.
#[derive(clap::Args)]
pub(super) struct IfVersion {
    /// Change only if the live config is still at this version (`version` in `splitgate
    /// status`; sent as `If-Match`); exit 3 when it has moved on.
    #[arg(long, value_name = "N")]
    expect_version: Option<u64>,
}

#[derive(clap::Subcommand)]
pub(super) enum WeightsCommand {
    /// e.g. `splitgate weights set challenger=50`; `--dry-run` estimates who would move.
    Set {
        #[command(flatten)]
        admin: AdminArgs,
        #[command(flatten)]
        if_version: IfVersion,
        /// New weights as VARIANT=PERCENT (up to two decimals), e.g. `challenger=10`; the champion
        /// absorbs the difference.
        #[arg(required = true, value_name = "WEIGHTS", value_parser = parse_weight)]
        weights: Vec<(String, f64)>,
        /// Why, for the audit trail.
        #[arg(long)]
        reason: Option<String>,
        /// Change nothing: estimate how much of the last hour's traffic would change variant.
        #[arg(long)]
        dry_run: bool,
    },
}

fn parse_weight(s: &str) -> Result<(String, f64), String> {
    let (name, w) = s.split_once('=').ok_or("expected VARIANT=PERCENT")?;
    Ok((name.to_owned(), w.parse().map_err(|_| format!("`{w}` is not a number"))?))
}

#[derive(clap::Subcommand)]
pub(super) enum ModelsCommand {
    /// List every model with its status, artifact and metrics.
    List {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Add a model to the registry, or replace its entry (a pipeline's first step).
    Register {
        #[command(flatten)]
        config: ConfigArg,
        /// The model's id: its name in the config's `[models.NAME]` (e.g. rec-v2-3).
        #[arg(value_name = "MODEL_ID")]
        model_id: String,
        /// Where the model's artifact is (e.g. s3://model-artifacts/v2.3.0/).
        #[arg(long, value_name = "URI")]
        artifact: String,
        /// Its lifecycle status.
        #[arg(long, default_value = "candidate", value_parser = clap::builder::PossibleValuesParser::new(ops::MODEL_STATUSES))]
        status: String,
        /// Offline evaluation metrics as a JSON object, e.g. '{"ndcg@10": 0.52}'.
        #[arg(long, value_name = "JSON")]
        metrics: Option<String>,
    },
    /// Set a registered model's status (e.g. `champion` after a promotion).
    SetStatus {
        #[command(flatten)]
        config: ConfigArg,
        /// The model's id in the registry.
        #[arg(value_name = "MODEL_ID")]
        model_id: String,
        /// The new status.
        #[arg(value_name = "STATUS", value_parser = clap::builder::PossibleValuesParser::new(ops::MODEL_STATUSES))]
        status: String,
    },
}

#[derive(clap::Subcommand)]
pub(super) enum SourceCommand {
    /// Print the item's version (first line, `# version = N`) and document.
    Get {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Validate a document (TOML: auth, throttle, models, split, shadow) and write it, only if the
    /// item is still at `--expect-version` (omit it to create the item). Exit 3 on a conflict.
    Put {
        #[command(flatten)]
        config: ConfigArg,
        /// The document to write: the hot part of the config, as TOML.
        #[arg(long, value_name = "FILE")]
        document: PathBuf,
        /// The version `source get` showed; the write fails (exit 3) if the item moved on.
        /// Without it the item must not exist yet.
        #[arg(long, value_name = "N")]
        expect_version: Option<u64>,
        /// Recorded as `updated_by`.
        #[arg(long, value_name = "NAME", default_value = "splitgate-cli")]
        who: String,
    },
}

pub(super) fn weights(command: WeightsCommand) -> ExitCode {
    let WeightsCommand::Set { admin, if_version, weights, reason, dry_run } = command;
    let mut body: serde_json::Map<String, serde_json::Value> =
        weights.into_iter().map(|(k, v)| (k, v.into())).collect();
    if let Some(r) = reason {
        body.insert("reason".into(), r.into());
    }
    let path = if dry_run { "/admin/weights?dry_run=true" } else { "/admin/weights" };
    admin_cli(admin, if_version, http::Method::PUT, path, Some(body.into()))
}

pub(super) fn promote(
    admin: AdminArgs,
    if_version: IfVersion,
    variant: Option<String>,
    reason: Option<String>,
) -> ExitCode {
    let body = serde_json::json!({"variant": variant, "reason": reason});
    admin_cli(admin, if_version, http::Method::POST, "/admin/promote", Some(body))
}

pub(super) fn rollback(admin: AdminArgs, if_version: IfVersion, reason: String) -> ExitCode {
    let body = serde_json::json!({ "reason": reason });
    admin_cli(admin, if_version, http::Method::POST, "/admin/rollback", Some(body))
}

pub(super) fn status(admin: AdminArgs) -> ExitCode {
    admin_cli(admin, IfVersion { expect_version: None }, http::Method::GET, "/admin/status", None)
}

pub(super) fn models(command: ModelsCommand) -> ExitCode {
    match command {
        ModelsCommand::List { config } => with_config(config, |raw| async move { ops::models_list(&raw).await }),
        ModelsCommand::Register { config, model_id, artifact, status, metrics } => {
            with_config(config, |raw| async move {
                ops::models_register(&raw, &model_id, &artifact, &status, metrics.as_deref()).await
            })
        }
        ModelsCommand::SetStatus { config, model_id, status } => {
            with_config(config, |raw| async move { ops::models_set_status(&raw, &model_id, &status).await })
        }
    }
}

pub(super) fn source(command: SourceCommand) -> ExitCode {
    match command {
        SourceCommand::Get { config } => with_config(config, |raw| async move { ops::source_get(&raw).await }),
        SourceCommand::Put { config, document, expect_version, who } => {
            let doc = match std::fs::read_to_string(&document) {
                Ok(d) => d,
                Err(e) => return fail(&format!("cannot read {}: {e}", document.display())),
            };
            with_config(config, |raw| async move {
                ops::source_put(&raw, &doc, expect_version, &who).await.map(|v| format!("written: version {v}\n"))
            })
        }
    }
}

fn admin_cli(
    a: AdminArgs,
    if_version: IfVersion,
    method: http::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> ExitCode {
    run_op(ops::admin_call(&a.admin, &a.token, method, path, body, if_version.expect_version))
}

/// Runs an AWS-backed operator command with the config's settings.
fn with_config<F, Fut>(config: ConfigArg, f: F) -> ExitCode
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
