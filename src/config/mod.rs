//! The configuration file: its TOML shape (this module) and its validation (`validate`).
//!
//! These structs mirror the documented TOML exactly and reject unknown fields, so a typo is an
//! error instead of a silently ignored setting. Reading and parsing the text is `load`'s.

mod input;
mod load;
mod validate;

pub use input::{ConfigInput, NoConfig, CONFIG_ENV, DEFAULT_CONFIG};

pub use load::{load, parse, parse_as, read, read_limited, ConfigError, SyntaxError, STARTUP_MAX_CONFIG_BYTES};
pub use validate::{validate, AwsTarget, CapturePlan, Issue, ModelPlan, Plan, SageMakerPlan, ShadowPlan, VariantPlan};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
}

/// `[admin]`. A token may also come from `SPLITGATE_ADMIN_TOKEN` (named `env`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// JSON-lines audit file; changes are still kept in memory for `GET /admin/audit` without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_log: Option<String>,
    /// With a DynamoDB source: also write each change to this table (`pk` = the config key,
    /// `sk` = time#new-version), in the same region/endpoint as `[source]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_table: Option<String>,
}

/// `[[admin.tokens]]`: an operator, by the SHA-256 hex of its bearer token.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    pub sha256: String,
}

/// `[guard]`: the deployment guide's rollback triggers, each window and threshold configurable.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuardConfig {
    /// Roll back when the error rate (5xx and upstream failures) exceeds this fraction…
    pub error_rate: f64,
    /// …over this window.
    pub error_window_secs: u64,
    /// Roll back when mean latency exceeds this…
    pub latency_ms: f64,
    pub latency_window_secs: u64,
    /// Roll back when model invocation errors exceed this count per minute.
    pub invocation_errors_per_minute: u64,
    /// Roll back when more than this fraction of the variant's requests were throttled.
    pub throttle_rate: f64,
    pub throttle_window_secs: u64,
    /// No trigger fires on fewer requests than this in its window.
    pub min_requests: u64,
    /// How often the windows are evaluated.
    pub evaluate_every_ms: u64,
    /// POSTed a JSON body on every rollback (retried, never blocking requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Progressive rollout: advance a healthy challenger one step per `hold`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ramp: Option<RampConfig>,
}

/// `[guard.ramp]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RampConfig {
    /// Weights (percent) to step through, ascending, e.g. `[10, 50, 100]`.
    pub steps: Vec<f64>,
    /// How long a step must hold healthy before the next: `"500ms"`, `"30s"`, `"15m"`, `"1h"`.
    pub hold: String,
    /// Also require the challenger's conversion not to be significantly worse (p < 0.05).
    #[serde(default)]
    pub require_not_worse: bool,
    #[serde(default = "default_conversion_event")]
    pub conversion_event: String,
}

fn default_conversion_event() -> String {
    "click".into()
}

/// Parses `"500ms"`, `"90s"`, `"15m"`, `"1h"` (or plain seconds).
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit()).map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: u64 = num.parse().ok()?;
    let secs = match unit {
        "ms" => return Some(std::time::Duration::from_millis(n)),
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3_600)?,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(secs))
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            error_rate: 0.05,
            error_window_secs: 300,
            latency_ms: 1_000.0,
            latency_window_secs: 300,
            invocation_errors_per_minute: 10,
            throttle_rate: 0.10,
            throttle_window_secs: 300,
            min_requests: 100,
            evaluate_every_ms: 1_000,
            webhook_url: None,
            ramp: None,
        }
    }
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
            ..self.clone()
        }
    }
}

/// `[source]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub kind: SourceKind,
    /// DynamoDB table holding config items (partition key `pk`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The item's `pk` value, e.g. `splitgate/prod`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
}

fn default_poll_ms() -> u64 {
    1_000
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    File,
    Dynamodb,
}

/// `[registry]`: the model registry table (partition key `model_id`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    pub table: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
}

/// `[cloudwatch]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CloudWatchConfig {
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The `Environment` dimension (dev, staging, prod).
    pub environment: String,
    #[serde(default = "default_interval_secs")]
    pub interval_secs: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
}

fn default_namespace() -> String {
    "Splitgate".into()
}

fn default_interval_secs() -> u64 {
    60
}

/// `[server]`: listeners and request limits. Listener changes need a restart.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: String,
    pub admin_listen: String,
    pub max_body_bytes: usize,
    /// Largest model answer the proxy will buffer.
    pub max_response_bytes: usize,
    /// Requests being processed at once before new ones are shed with 503.
    pub max_in_flight: usize,
    /// Open client connections on the main listener; more are closed at once.
    pub max_connections: usize,
    /// Tokio worker threads; 0 = one per core. 1 runs a current-thread runtime (no work-stealing
    /// queues, no cross-thread wake-ups): the choice for one pinned core or a 1-vCPU task.
    pub workers: usize,
    /// One JSON line per request on stdout.
    pub access_log: bool,
    /// Largest request head (request line + headers) accepted.
    pub max_header_bytes: usize,
    /// How long an HTTP/1 client connection may wait for its next request head, idle keep-alive
    /// time included (hyper times both with one timer). Keep it above the idle timeout of the load
    /// balancer in front (ALB: 60 s by default), or it reuses connections we just closed (502s).
    pub idle_timeout_ms: u64,
    /// How long a request body may take to arrive once its head has (NGINX's
    /// `client_body_timeout`); past it the caller gets 408 and the connection is closed.
    pub body_timeout_ms: u64,
    /// HTTP/2: a PING is sent on a connection this long after its last frame…
    pub h2_keepalive_interval_ms: u64,
    /// …and the connection is closed if the PING is not acknowledged within this.
    pub h2_keepalive_timeout_ms: u64,
    /// Largest config file (or DynamoDB document) accepted; a larger one is rejected unread.
    /// Default 1 MiB, at least 1 KiB, at most 64 MiB.
    pub max_config_bytes: usize,
    /// TLS on the main listener; plain HTTP (and h2c) when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Extra CA bundle (PEM) trusted for https:// model URLs, besides the system roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_ca_path: Option<String>,
}

/// `[server.tls]`: PEM files, re-read when they change.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_path: String,
    pub key_path: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            admin_listen: "127.0.0.1:9901".into(),
            max_body_bytes: 1 << 20,
            max_response_bytes: 8 << 20,
            max_in_flight: 8_192,
            max_connections: 16_384,
            workers: 0,
            access_log: true,
            max_header_bytes: 16 * 1024,
            idle_timeout_ms: 75_000,
            body_timeout_ms: 10_000,
            h2_keepalive_interval_ms: 20_000,
            h2_keepalive_timeout_ms: 10_000,
            max_config_bytes: 1 << 20,
            tls: None,
            upstream_ca_path: None,
        }
    }
}

/// `[auth]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
}

/// `[[auth.keys]]`: a caller, identified by the SHA-256 hex of its `X-API-Key`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    pub name: String,
    pub sha256: String,
    #[serde(default)]
    pub allow_override: bool,
    /// This key's own token bucket, on top of the listener's (a noisy key cannot starve others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_second: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

/// `[throttle]`: the listener-wide token bucket.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleConfig {
    pub rate_per_second: f64,
    pub burst: u32,
}

/// `[models.NAME]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub version: String,
    pub backend: BackendKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// SageMaker endpoint name (`backend = "sagemaker"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// SageMaker production variant to pin (`TargetVariant`); SageMaker's own weights otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_variant: Option<String>,
    /// AWS region; the standard chain (AWS_REGION, profile) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Override the AWS endpoint (emulators, VPC endpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
}

fn default_timeout_ms() -> u64 {
    1_000
}

/// How a model is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The deterministic demo recommender compiled into the binary.
    Builtin,
    /// A model server speaking HTTP (POST the body, get JSON back).
    Http,
    /// A SageMaker endpoint, called with `InvokeEndpoint`.
    Sagemaker,
}

/// `[split]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SplitConfig {
    pub salt: String,
    #[serde(default = "default_user_id_field")]
    pub user_id_field: String,
    #[serde(default = "default_user_id_header")]
    pub user_id_header: String,
    #[serde(default)]
    pub variants: Vec<VariantConfig>,
    /// Retry a failed non-champion request (connect error, 5xx, timeout) once on the champion.
    #[serde(default)]
    pub fallback_to_champion: bool,
}

fn default_user_id_field() -> String {
    "user_id".into()
}

fn default_user_id_header() -> String {
    "x-user-id".into()
}

/// `[[split.variants]]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VariantConfig {
    pub name: String,
    pub model: String,
    /// Percent of users, up to two decimals; all variants add up to 100.
    pub weight: f64,
    #[serde(default)]
    pub champion: bool,
    /// Optional fixed `[from, to)` range of the bucket space in percent for a non-champion
    /// variant. By default the space is divided equally among non-champions in config order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<[f64; 2]>,
}

/// `[[shadow]]`: a model that gets a sampled copy of primary traffic.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowConfig {
    pub model: String,
    pub sample_percent: f64,
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Salt for the sampling hash; independent of the split so sampling is not tied to variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    #[serde(default = "default_items_pointer")]
    pub items_pointer: String,
    #[serde(default = "default_id_field")]
    pub id_field: String,
    #[serde(default = "default_k")]
    pub k: usize,
    /// JSON-lines file receiving a rate-limited sample of disagreements; off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_path: Option<String>,
    /// Capture when overlap@k is below this (1.0 = any difference).
    #[serde(default = "default_capture_below")]
    pub capture_below_overlap: f64,
    #[serde(default = "default_capture_per_second")]
    pub capture_per_second: f64,
    /// Rotate the capture file past this size; `capture_files` rotated files are kept.
    #[serde(default = "default_capture_max_bytes")]
    pub capture_max_bytes: u64,
    #[serde(default = "default_capture_files")]
    pub capture_files: u32,
    /// Write the raw user id instead of its salted hash (off: captures are pseudonymous).
    #[serde(default)]
    pub capture_raw_user_id: bool,
}

fn default_capture_below() -> f64 {
    1.0
}
fn default_capture_per_second() -> f64 {
    10.0
}
fn default_capture_max_bytes() -> u64 {
    10 << 20
}
fn default_capture_files() -> u32 {
    3
}

fn default_queue_capacity() -> usize {
    1_024
}
fn default_max_in_flight() -> usize {
    64
}
fn default_items_pointer() -> String {
    "/items".into()
}
fn default_id_field() -> String {
    "item_id".into()
}
fn default_k() -> usize {
    10
}
