//! The configuration file: its TOML shape, its validation into a [`Plan`], and the list of settings
//! that only take effect at start-up.
//!
//! One file per section owns that section's raw serde structs, their defaults and their
//! validation: `server`, `auth` (`[auth]` and `[throttle]`), `models`, `split` (with
//! `interleave` for interleaving arms), `shadow`, `aws` (`[source]`, `[registry]`,
//! `[cloudwatch]`), `admin`, `guard`, `experiment`. This module holds the whole-file
//! shape ([`RawConfig`], [`HotConfig`]), the [`Plan`] and [`validate`], which runs every section's
//! checks in file order and assembles the plan. `restart` lists what a reload cannot change;
//! `load` and `input` read and parse the text.
//!
//! The raw structs mirror the documented TOML exactly and reject unknown fields, so a typo is an
//! error instead of a silently ignored setting.
//!
//! **One default style:** a field whose default is not its type's own `Default` (false, 0, empty,
//! `None`) names a function, `#[serde(default = "fn")]`, next to its struct; a section that may be
//! absent as a whole implements `Default` from those same functions. No container-level
//! `#[serde(default)]`, so a required field can never silently default.
//!
//! Validation is pure (no I/O) and never stops at the first error: operators fix a file once, not
//! once per problem. Each [`Issue`] names its field by path (`split.variants[1].weight`); tests
//! and the fuzz corpus pin those paths and messages. The plan holds every value already parsed
//! (addresses, digests, URIs, bucket counts, the layout, durations, event kinds) so building the
//! runtime snapshot from it cannot fail and runtime code never parses config strings.

mod admin;
mod auth;
mod aws;
mod experiment;
mod fleet;
mod guard;
mod input;
mod interleave;
mod load;
mod models;
mod restart;
mod server;
mod shadow;
mod split;
#[cfg(test)]
mod support_tests;

pub use admin::{AdminConfig, TokenConfig};
pub use auth::{AuthConfig, KeyConfig, ThrottleConfig};
pub use aws::{AwsTarget, CloudWatchConfig, RegistryConfig, SourceConfig, SourceKind};
pub use experiment::{ExperimentConfig, SAMPLE_USERS};
pub use fleet::{valid_replica_id, FleetConfig};
pub use guard::{parse_duration, GuardConfig, GuardPlan, RampConfig, RampPlan};
pub use input::{ConfigInput, NoConfig, CONFIG_ENV, DEFAULT_CONFIG};
pub use interleave::{InterleavePlan, DEFAULT_WAIT_MS as DEFAULT_INTERLEAVE_WAIT_MS};
pub use load::{load, parse, parse_as, read, read_limited, ConfigError, SyntaxError, STARTUP_MAX_CONFIG_BYTES};
pub use models::{BackendKind, ModelConfig, ModelPlan, SageMakerClient, SageMakerPlan};
pub use restart::{restart_required, RESTART_REQUIRED};
pub use server::{listeners_conflict, ServerConfig, TlsConfig, LISTENERS_MUST_DIFFER};
pub use shadow::{CapturePlan, ShadowConfig, ShadowPlan};
pub use split::{SplitConfig, VariantConfig, VariantPlan};

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;

use http::header::HeaderName;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::split::Layout;
use crate::throttle::Gcra;

/// The whole file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Optional operator-managed version; when absent the proxy numbers applied configs itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<ThrottleConfig>,
    #[serde(default)]
    pub models: BTreeMap<String, ModelConfig>,
    /// Required unless `[source] kind = "dynamodb"` supplies it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shadow: Vec<ShadowConfig>,
    /// Where the hot-reloadable part lives: this file (default) or a DynamoDB item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceConfig>,
    /// The model registry table (`splitgate models list`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistryConfig>,
    /// CloudWatch publishing; off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloudwatch: Option<CloudWatchConfig>,
    /// The admin API: bearer tokens and the audit log.
    #[serde(default)]
    pub admin: AdminConfig,
    /// Automatic rollback triggers for non-champion variants; off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<GuardConfig>,
    /// Fleet-wide counters and the guard lease in DynamoDB; off (per-process) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetConfig>,
    /// Experiment statistics (SRM threshold, sequential test, user sample); defaults when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<ExperimentConfig>,
}

/// The hot-reloadable part of the config: what a DynamoDB config item's `document` holds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HotConfig {
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<ThrottleConfig>,
    #[serde(default)]
    pub models: BTreeMap<String, ModelConfig>,
    pub split: SplitConfig,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shadow: Vec<ShadowConfig>,
    /// The guard and its ramp, hot like the split: one conditional write changes thresholds for
    /// the whole fleet. A document without `[guard]` keeps the file's `[guard]`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<GuardConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<ExperimentConfig>,
}

impl RawConfig {
    /// This file's static part with the hot part replaced by `hot` at `version`.
    pub fn with_hot(&self, hot: HotConfig, version: u64) -> RawConfig {
        RawConfig {
            version: Some(version),
            auth: hot.auth,
            throttle: hot.throttle,
            models: hot.models,
            split: Some(hot.split),
            shadow: hot.shadow,
            guard: hot.guard.or_else(|| self.guard.clone()),
            experiment: hot.experiment.or_else(|| self.experiment.clone()),
            ..self.clone()
        }
    }
}

/// Everything the proxy needs, parsed and checked.
#[derive(Debug, Clone)]
pub struct Plan {
    pub version: Option<u64>,
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub server: ServerConfig,
    pub keys: Vec<([u8; 32], Caller)>,
    pub throttle: Option<Gcra>,
    pub models: Vec<ModelPlan>,
    pub salt: String,
    pub user_id_field: String,
    pub user_id_header: HeaderName,
    pub fallback_to_champion: bool,
    pub variants: Vec<VariantPlan>,
    pub champion: usize,
    pub layout: Layout,
    pub shadows: Vec<ShadowPlan>,
    pub source: Option<SourceConfig>,
    pub registry: Option<RegistryConfig>,
    pub cloudwatch: Option<CloudWatchConfig>,
    pub admin_tokens: Vec<([u8; 32], String)>,
    pub audit_log: Option<std::path::PathBuf>,
    pub audit_table: Option<String>,
    pub guard: Option<GuardPlan>,
    pub fleet: Option<FleetConfig>,
    pub experiment: ExperimentConfig,
    /// `server.trusted_proxies`: whose `X-Forwarded-For` names the client.
    pub trusted_proxies: crate::clientip::TrustedProxies,
}

impl Plan {
    /// The variant serving `user_id`: the one definition of "assign a user to a variant" (the
    /// proxy, feedback attribution and `splitgate route` all call it).
    #[inline]
    pub fn assign(&self, user_id: &[u8]) -> usize {
        self.layout.variant_of(crate::split::bucket(&self.salt, user_id))
    }
}

/// One problem, at one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Dotted path with indices, e.g. `split.variants[1].weight`.
    pub path: String,
    pub message: String,
}

impl Issue {
    /// One `- path: message` line per issue.
    pub fn render(issues: &[Issue]) -> String {
        let mut out = String::new();
        for i in issues {
            let _ = writeln!(out, "  - {}: {}", i.path, i.message);
        }
        out.trim_end().to_owned()
    }
}

/// The issues found so far, in the order the sections are checked.
#[derive(Default)]
struct Issues(Vec<Issue>);

impl Issues {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Issue { path: path.into(), message: message.into() });
    }
}

/// Longest model or shadow call allowed.
const MAX_TIMEOUT_MS: u64 = 600_000;

/// Names that travel in headers and metric labels: short and plain.
fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Checks `raw` and returns the plan, or every issue found. Sections are checked in a fixed order
/// (the order of the issues is part of what operators and tests see).
pub fn validate(raw: &RawConfig) -> Result<Plan, Vec<Issue>> {
    let mut issues = Issues::default();
    let (listen, admin_listen) = server::validate(&mut issues, &raw.server);
    let trusted_proxies = server::trusted_proxies(&mut issues, &raw.server);
    let keys = auth::validate_keys(&mut issues, &raw.auth);
    let throttle = raw.throttle.as_ref().and_then(|t| auth::validate_throttle(&mut issues, t));
    let models = models::validate(&mut issues, &raw.models);
    let model_index: HashMap<&str, usize> = models.iter().enumerate().map(|(i, m)| (m.name.as_str(), i)).collect();
    let split = split::validate(&mut issues, raw.split.as_ref(), &model_index);
    let shadows = shadow::validate(&mut issues, &raw.shadow, &split.salt, &model_index);
    aws::validate(&mut issues, raw);
    let admin_tokens = admin::validate(&mut issues, &raw.admin);
    let guard = raw.guard.as_ref().map(|g| guard::validate(&mut issues, g));
    if let Some(f) = &raw.fleet {
        fleet::validate(&mut issues, f);
    }
    let experiment = raw.experiment.clone().unwrap_or_default();
    experiment::validate(&mut issues, &experiment);

    match (listen, admin_listen, split.user_id_header, split.champion, split.layout) {
        (Some(listen), Some(admin_listen), Some(user_id_header), Some(champion), Some(layout))
            if issues.0.is_empty() =>
        {
            Ok(Plan {
                version: raw.version,
                listen,
                admin_listen,
                server: raw.server.clone(),
                keys,
                throttle,
                models,
                salt: split.salt,
                user_id_field: split.user_id_field,
                user_id_header,
                fallback_to_champion: split.fallback_to_champion,
                variants: split.variants,
                champion,
                layout,
                shadows,
                source: raw.source.clone(),
                registry: raw.registry.clone(),
                cloudwatch: raw.cloudwatch.clone(),
                admin_tokens,
                audit_log: raw.admin.audit_log.as_ref().map(Into::into),
                audit_table: raw.admin.audit_table.clone(),
                // With no issues, every present `[guard]` produced a plan.
                guard: guard.flatten(),
                fleet: raw.fleet.clone(),
                experiment,
                trusted_proxies,
            })
        }
        _ => {
            if issues.0.is_empty() {
                issues.add("config", "invalid");
            }
            Err(issues.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::support_tests::{issues, GOOD};
    use super::*;

    #[test]
    fn shipped_default_is_valid() {
        let plan = validate(&parse(GOOD).unwrap()).unwrap();
        assert_eq!(plan.variants.len(), 2);
        assert_eq!(plan.champion, 0);
        assert_eq!(plan.variants[1].buckets, 1_000);
        assert_eq!(plan.keys.len(), 1);
        assert!(plan.throttle.is_some());
        assert_eq!(plan.layout.counts(2), vec![9_000, 1_000]);
    }

    #[test]
    fn unknown_fields_are_errors() {
        let text = GOOD.replace("max_body_bytes", "max_body_byte");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("max_body_byte"), "{err}");
        let text = GOOD.replace("champion = true", "champion = true\nwieght = 3");
        assert!(parse(&text).is_err());
    }

    #[test]
    fn reports_every_problem_with_its_path() {
        let text = GOOD
            .replace("weight = 90", "weight = 80.123")
            .replace("model = \"rec-v2-3\"", "model = \"nope\"")
            .replace("5b1f89fd", "zz1f89fd")
            .replace("127.0.0.1:9901", "not-an-address")
            .replace("burst = 5000", "burst = 0");
        let p = support_tests::paths(&text);
        for want in [
            "split.variants[0].weight",
            "split.variants[1].model",
            "auth.keys[0].sha256",
            "server.admin_listen",
            "throttle.burst",
        ] {
            assert!(p.iter().any(|x| x == want), "missing {want} in {p:?}");
        }
    }

    #[test]
    fn shipped_aws_example_is_valid_once_combined() {
        let file = parse(include_str!("../../config/aws.toml")).unwrap();
        let alone = validate(&file).unwrap_err();
        assert_eq!(alone.iter().map(|i| i.path.as_str()).collect::<Vec<_>>(), ["auth.keys", "split", "split.variants"]);
        let combined = crate::reload::combine(&file, 7, include_str!("../../config/aws-document.toml")).unwrap();
        let plan = validate(&combined).unwrap();
        assert_eq!(plan.version, Some(7));
        assert_eq!(plan.models[0].sagemaker.as_ref().unwrap().endpoint, "rec-prod");
        assert!(plan.cloudwatch.is_some() && plan.source.is_some());
        assert_eq!(plan.fleet.as_ref().map(|f| f.table.as_str()), Some("splitgate-prod-fleet"));
    }

    #[test]
    fn guard_is_hot_config_in_the_dynamodb_document() {
        let file = parse(include_str!("../../config/aws.toml")).unwrap();
        let doc = format!(
            "{}\n[guard]\nerror_rate = 0.02\nmin_requests = 50\n[guard.ramp]\nsteps = [10, 50, 100]\nhold = \"10m\"\n",
            include_str!("../../config/aws-document.toml")
        );
        let plan = validate(&crate::reload::combine(&file, 3, &doc).unwrap()).unwrap();
        let guard = plan.guard.unwrap();
        assert_eq!((guard.error_rate, guard.min_requests), (0.02, 50));
        assert_eq!(guard.ramp.unwrap().steps, vec![10.0, 50.0, 100.0]);
        // A document without [guard] keeps the file's; a bad [guard] in the document is an issue.
        let with_file_guard = format!("{}\n[guard]\nmin_requests = 7\n", include_str!("../../config/aws.toml"));
        let file2 = parse(&with_file_guard).unwrap();
        let plan =
            validate(&crate::reload::combine(&file2, 4, include_str!("../../config/aws-document.toml")).unwrap())
                .unwrap();
        assert_eq!(plan.guard.map(|g| g.min_requests), Some(7));
        let bad = format!("{}\n[guard]\nerror_rate = 7.0\n", include_str!("../../config/aws-document.toml"));
        let issues = validate(&crate::reload::combine(&file, 5, &bad).unwrap()).unwrap_err();
        assert!(issues.iter().any(|i| i.path.starts_with("guard.")), "{issues:?}");
    }

    #[test]
    fn issues_name_the_field_but_never_echo_secrets() {
        let secret = "zz-secret-value-zz";
        let text = GOOD.replace("5b1f89fd1eaf4f5a25821da4a9d3f8a6881fdd0d8ec50232ed0bf787f4f9a0ad", secret).replacen(
            "[server]",
            &format!("[[admin.tokens]]\nname = \"ops\"\nsha256 = \"{secret}\"\n\n[server]"),
            1,
        );
        let found = issues(&text);
        let paths: Vec<_> = found.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["auth.keys[0].sha256", "admin.tokens[0].sha256"]);
        assert!(!Issue::render(&found).contains(secret), "{}", Issue::render(&found));
    }
}
