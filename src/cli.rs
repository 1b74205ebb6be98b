//! The `splitgate` command line: the clap tree and the dispatch to each command — `serve`
//! (`serve`), the local ones (`check`, `route`, `keys new`, in `local`), the operator commands
//! (admin API, DynamoDB source, model registry: their arguments and runner in `operator`, their
//! work in the library's `ops`), and the generated shell completions and man pages (`docs`).
//! Bin-only. Every flag and argument has help text (a unit test walks the tree to keep it so).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use splitgate::config::ConfigInput;

mod docs;
mod local;
mod logging;
mod operator;
pub mod serve;

use local::{check, fail, keys_new, route};
use operator::{AdminArgs, IfVersion, ModelsCommand, SourceCommand, WeightsCommand};
use serve::serve;

/// Where the config comes from, shared by every command that reads one.
#[derive(clap::Args)]
struct ConfigArg {
    /// The config file. Without it: `SPLITGATE_CONFIG` (TOML text, or a file path), else
    /// `config/splitgate.toml` in the working directory.
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

const SERVE_HELP: &str = "\
Config: `--config PATH` when given, else the SPLITGATE_CONFIG environment variable, else
config/splitgate.toml (from the working directory). SPLITGATE_CONFIG holds TOML text (a value
with a newline, or starting with `[` or `#`) or a file path. A file is watched and reloaded;
TOML text is static, unless its `[source] kind = \"dynamodb\"` supplies the hot part.

Environment: SPLITGATE_LOG=error|warn|info|debug|trace (default info) and
SPLITGATE_LOG_FORMAT=text|json (default text; colored only on a terminal) for the diagnostic log
on stderr; the access log is JSON lines on stdout. SPLITGATE_DRAIN_GRACE_MS (default 500): time
between failing /health?ready and closing the listener on SIGTERM. SPLITGATE_ADMIN_TOKEN: an
admin bearer token besides [[admin.tokens]].";

#[derive(Parser)]
#[command(
    name = "splitgate",
    version,
    about = "Sticky champion/challenger and shadow proxy for ML models",
    after_help = "Run `splitgate COMMAND --help` for a command's flags; `splitgate man` prints the manual page."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    #[command(after_help = SERVE_HELP)]
    Serve {
        #[command(flatten)]
        config: ConfigArg,
        /// Override `server.listen`, the main listener (e.g. 0.0.0.0:8080 in a container).
        #[arg(long, value_name = "IP:PORT")]
        listen: Option<SocketAddr>,
        /// Override `server.admin_listen`, the admin listener (metrics, health, the admin API).
        #[arg(long, value_name = "IP:PORT")]
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
        /// The config file to check (the same as `--config PATH`).
        #[arg(value_name = "PATH", conflicts_with = "config")]
        path: Option<PathBuf>,
        /// A DynamoDB document (the hot part: keys, models, split, shadows) to check together
        /// with the config's static part, as `source put` would before writing it. Without it, a
        /// config whose `[source] kind = "dynamodb"` has no `[split]` is checked as a static part.
        #[arg(long, value_name = "FILE")]
        document: Option<PathBuf>,
    },
    /// Print `user_id<TAB>variant<TAB>model` for each user id, as the proxy would route it.
    #[command(after_help = CONFIG_HELP)]
    Route {
        #[command(flatten)]
        config: ConfigArg,
        /// User ids, or `-` to read one per line from stdin.
        #[arg(required = true, value_name = "USER_ID")]
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
        #[command(flatten)]
        if_version: IfVersion,
        /// The variant to promote (default: the only challenger).
        #[arg(long, value_name = "VARIANT")]
        variant: Option<String>,
        /// Why, for the audit trail.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Every challenger to 0%, the champion to 100%.
    Rollback {
        #[command(flatten)]
        admin: AdminArgs,
        #[command(flatten)]
        if_version: IfVersion,
        /// Why, for the audit trail (required: a rollback is always explained).
        #[arg(long)]
        reason: String,
    },
    /// The live split and each variant's health (JSON).
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
    /// Print a shell completion script, e.g. `splitgate completions bash > /etc/bash_completion.d/splitgate`.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `splitgate man | man -l -`; `--out-dir` writes one page
    /// per command.
    Man {
        /// Write splitgate.1 and a page per command (splitgate-serve.1, …) into this directory.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a fresh random key and the `[[auth.keys]]` entry to paste into the config.
    New {
        /// The key's name: shown in the access log's `caller` and in metrics.
        #[arg(long)]
        name: String,
        /// Let this key choose a variant with the `x-splitgate-variant` request header.
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
        Command::Check { config, path, document } => {
            let config = ConfigArg { config: config.config.or(path) };
            config.resolve().map_or_else(|c| c, |input| check(&input, document.as_deref()))
        }
        Command::Route { config, user_ids } => config.resolve().map_or_else(|c| c, |input| route(&input, &user_ids)),
        Command::Keys { command: KeysCommand::New { name, allow_override } } => keys_new(&name, allow_override),
        Command::Weights { command } => operator::weights(command),
        Command::Promote { admin, if_version, variant, reason } => {
            operator::promote(admin, if_version, variant, reason)
        }
        Command::Rollback { admin, if_version, reason } => operator::rollback(admin, if_version, reason),
        Command::Status { admin } => operator::status(admin),
        Command::Models { command } => operator::models(command),
        Command::Source { command } => operator::source(command),
        Command::Completions { shell } => docs::completions(shell),
        Command::Man { out_dir } => docs::man(out_dir.as_deref()),
    }
}

/// The whole command tree, for completions, man pages and tests.
fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every flag and positional argument of every command explains itself in `--help`.
    #[test]
    fn every_argument_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {} (the command itself)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&command(), "splitgate", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }

    #[test]
    fn the_tree_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn check_takes_its_path_as_an_argument_or_a_flag_but_not_both() {
        use clap::Parser as _;
        assert!(Cli::try_parse_from(["splitgate", "check", "config/aws.toml"]).is_ok());
        assert!(Cli::try_parse_from(["splitgate", "check", "--config", "config/aws.toml"]).is_ok());
        assert!(Cli::try_parse_from(["splitgate", "check", "a.toml", "--config", "b.toml"]).is_err());
    }
}
