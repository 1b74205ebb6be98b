//! Validation: raw config → [`Plan`], collecting every problem with its field path. Pure, no I/O.
//!
//! Nothing stops at the first error: operators fix a file once, not once per problem. The plan
//! holds every value already parsed (addresses, digests, URIs, bucket counts, the layout) so
//! building the runtime snapshot from it cannot fail.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use http::header::HeaderName;

use super::{BackendKind, CloudWatchConfig, RawConfig, RegistryConfig, ServerConfig, SourceConfig};
use crate::auth::{parse_sha256_hex, Caller};
use crate::split::{percent_to_buckets, Layout, LayoutError, Slot};
use crate::throttle::Gcra;

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

/// A validated model.
#[derive(Debug, Clone)]
pub struct ModelPlan {
    pub name: String,
    pub version: String,
    pub kind: BackendKind,
    pub url: Option<http::Uri>,
    pub timeout: Duration,
    pub sagemaker: Option<SageMakerPlan>,
}

/// Where a SageMaker model lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SageMakerPlan {
    pub endpoint: String,
    pub target_variant: Option<String>,
    pub aws: AwsTarget,
}

/// Region and endpoint override of an AWS client; clients are shared per distinct target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AwsTarget {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

/// A validated variant; `model` indexes [`Plan::models`].
#[derive(Debug, Clone)]
pub struct VariantPlan {
    pub name: String,
    pub model: usize,
    pub buckets: u32,
    pub champion: bool,
}

/// A validated shadow; `model` indexes [`Plan::models`].
#[derive(Debug, Clone)]
pub struct ShadowPlan {
    pub model: usize,
    pub sample_buckets: u32,
    pub queue_capacity: usize,
    pub max_in_flight: usize,
    pub timeout: Duration,
    pub salt: String,
    pub items_pointer: String,
    pub id_field: String,
    pub k: usize,
    pub capture: Option<CapturePlan>,
}

/// Where and how often shadow disagreements are written.
#[derive(Debug, Clone, PartialEq)]
pub struct CapturePlan {
    pub path: std::path::PathBuf,
    pub below_overlap: f64,
    pub per_second: f64,
    pub max_bytes: u64,
    pub files: u32,
    pub raw_user_id: bool,
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
    pub guard: Option<super::GuardConfig>,
}

impl Plan {
    /// The variant serving `user_id`: the one definition of "assign a user to a variant" (the
    /// proxy, feedback attribution and `splitgate route` all call it).
    #[inline]
    pub fn assign(&self, user_id: &[u8]) -> usize {
        self.layout.variant_of(crate::split::bucket(&self.salt, user_id))
    }
}

#[derive(Default)]
struct Issues(Vec<Issue>);

impl Issues {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Issue { path: path.into(), message: message.into() });
    }
}

const MAX_TIMEOUT_MS: u64 = 600_000;

/// Names that travel in headers and metric labels: short and plain.
fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Checks `raw` and returns the plan, or every issue found.
pub fn validate(raw: &RawConfig) -> Result<Plan, Vec<Issue>> {
    let mut issues = Issues::default();

    let listen = parse_addr(&mut issues, "server.listen", &raw.server.listen);
    let admin_listen = parse_addr(&mut issues, "server.admin_listen", &raw.server.admin_listen);
    if let (Some(a), Some(b)) = (listen, admin_listen) {
        if a == b && a.port() != 0 {
            issues.add("server.admin_listen", "must differ from server.listen");
        }
    }
    if !(1..=64 << 20).contains(&raw.server.max_body_bytes) {
        issues.add("server.max_body_bytes", "must be between 1 and 67108864");
    }
    if !(1..=256 << 20).contains(&raw.server.max_response_bytes) {
        issues.add("server.max_response_bytes", "must be between 1 and 268435456");
    }
    if raw.server.max_in_flight == 0 {
        issues.add("server.max_in_flight", "must be at least 1");
    }
    if !(8_192..=1 << 20).contains(&raw.server.max_header_bytes) {
        issues.add("server.max_header_bytes", "must be between 8192 and 1048576");
    }
    if !(1_000..=3_600_000).contains(&raw.server.idle_timeout_ms) {
        issues.add("server.idle_timeout_ms", "must be between 1000 and 3600000");
    }
    if !(100..=600_000).contains(&raw.server.body_timeout_ms) {
        issues.add("server.body_timeout_ms", "must be between 100 and 600000");
    }
    if !(1_000..=3_600_000).contains(&raw.server.h2_keepalive_interval_ms) {
        issues.add("server.h2_keepalive_interval_ms", "must be between 1000 and 3600000");
    }
    if !(100..=600_000).contains(&raw.server.h2_keepalive_timeout_ms) {
        issues.add("server.h2_keepalive_timeout_ms", "must be between 100 and 600000");
    }
    if !(1 << 10..=super::STARTUP_MAX_CONFIG_BYTES).contains(&raw.server.max_config_bytes) {
        issues.add("server.max_config_bytes", "must be between 1024 and 67108864");
    }
    if raw.server.tls.as_ref().is_some_and(|t| t.cert_path.is_empty() || t.key_path.is_empty()) {
        issues.add("server.tls", "cert_path and key_path are both required");
    }
    if raw.server.max_connections == 0 {
        issues.add("server.max_connections", "must be at least 1");
    }
    if raw.server.workers > 1024 {
        issues.add("server.workers", "must be at most 1024 (0 = one per core)");
    }

    let keys = validate_keys(&mut issues, raw);

    let throttle = raw.throttle.as_ref().and_then(|t| {
        let mut ok = true;
        if !(t.rate_per_second.is_finite() && t.rate_per_second > 0.0 && t.rate_per_second <= 1e9) {
            issues.add("throttle.rate_per_second", "must be a number above 0 and at most 1e9");
            ok = false;
        }
        if t.burst == 0 {
            issues.add("throttle.burst", "must be at least 1");
            ok = false;
        }
        ok.then(|| Gcra::new(t.rate_per_second, t.burst))
    });

    let models = validate_models(&mut issues, raw);
    let model_index: HashMap<&str, usize> = models.iter().enumerate().map(|(i, m)| (m.name.as_str(), i)).collect();

    let default_split;
    let split = match &raw.split {
        Some(s) => s,
        None => {
            issues.add("split", "required (in this file, or in the DynamoDB item when [source] kind = \"dynamodb\")");
            default_split = super::SplitConfig {
                salt: "-".into(),
                user_id_field: "user_id".into(),
                user_id_header: "x-user-id".into(),
                variants: Vec::new(),
                fallback_to_champion: false,
            };
            &default_split
        }
    };
    if split.salt.is_empty() {
        issues.add("split.salt", "must not be empty (changing it reshuffles every user)");
    }
    if split.user_id_field.is_empty() {
        issues.add("split.user_id_field", "must not be empty");
    }
    let user_id_header = match HeaderName::from_bytes(split.user_id_header.as_bytes()) {
        Ok(h) => Some(h),
        Err(_) => {
            issues.add("split.user_id_header", format!("`{}` is not a valid header name", split.user_id_header));
            None
        }
    };

    let (variants, champion, layout) = validate_variants(&mut issues, split, &model_index);
    let shadows = validate_shadows(&mut issues, raw, &split.salt, &model_index);
    validate_aws_sections(&mut issues, raw);
    validate_admin(&raw.admin, &mut issues);
    if let Some(g) = &raw.guard {
        validate_guard(&mut issues, g);
    }

    match (listen, admin_listen, user_id_header, champion, layout) {
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
                salt: split.salt.clone(),
                user_id_field: split.user_id_field.clone(),
                user_id_header,
                fallback_to_champion: split.fallback_to_champion,
                variants,
                champion,
                layout,
                shadows,
                source: raw.source.clone(),
                registry: raw.registry.clone(),
                cloudwatch: raw.cloudwatch.clone(),
                admin_tokens: validate_admin(&raw.admin, &mut Issues::default()),
                audit_log: raw.admin.audit_log.as_ref().map(Into::into),
                audit_table: raw.admin.audit_table.clone(),
                guard: raw.guard.clone(),
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

fn parse_addr(issues: &mut Issues, path: &str, value: &str) -> Option<SocketAddr> {
    match value.parse() {
        Ok(a) => Some(a),
        Err(_) => {
            issues.add(path, format!("`{value}` is not an IP:port address"));
            None
        }
    }
}

fn validate_keys(issues: &mut Issues, raw: &RawConfig) -> Vec<([u8; 32], Caller)> {
    let mut keys = Vec::new();
    let mut names = HashMap::new();
    let mut digests = HashMap::new();
    if raw.auth.keys.is_empty() {
        issues.add("auth.keys", "at least one key is required (`splitgate keys new --name NAME` makes one)");
    }
    for (i, k) in raw.auth.keys.iter().enumerate() {
        let path = format!("auth.keys[{i}]");
        if !valid_name(&k.name) {
            issues.add(format!("{path}.name"), "must be 1-64 characters of A-Z a-z 0-9 - _ .");
        } else if let Some(first) = names.insert(k.name.as_str(), i) {
            issues.add(format!("{path}.name"), format!("duplicate of auth.keys[{first}].name"));
        }
        match parse_sha256_hex(&k.sha256) {
            Some(d) => {
                if let Some(first) = digests.insert(d, i) {
                    issues.add(format!("{path}.sha256"), format!("same key as auth.keys[{first}]"));
                }
                let throttle = match (k.rate_per_second, k.burst) {
                    (None, None) => None,
                    (Some(rate), burst) if rate.is_finite() && rate > 0.0 && rate <= 1e9 && burst != Some(0) => {
                        Some(Gcra::new(rate, burst.unwrap_or_else(|| rate.ceil().max(1.0) as u32)))
                    }
                    _ => {
                        issues.add(
                            format!("{path}.rate_per_second"),
                            "must be above 0 (with burst ≥ 1, default: one second of rate)",
                        );
                        None
                    }
                };
                keys.push((
                    d,
                    Caller { name: k.name.as_str().into(), allow_override: k.allow_override, throttle, bucket: None },
                ));
            }
            None => issues.add(format!("{path}.sha256"), "must be the 64 hex digits of the key's SHA-256"),
        }
    }
    keys
}

fn validate_models(issues: &mut Issues, raw: &RawConfig) -> Vec<ModelPlan> {
    let mut models = Vec::new();
    for (name, m) in &raw.models {
        let path = format!("models.{name}");
        if !valid_name(name) {
            issues.add(&path, "model names must be 1-64 characters of A-Z a-z 0-9 - _ .");
        }
        if m.version.is_empty() || m.version.len() > 128 || http::HeaderValue::from_str(&m.version).is_err() {
            issues.add(format!("{path}.version"), "must be 1-128 visible ASCII characters");
        }
        if !(1..=MAX_TIMEOUT_MS).contains(&m.timeout_ms) {
            issues.add(format!("{path}.timeout_ms"), format!("must be between 1 and {MAX_TIMEOUT_MS}"));
        }
        let aws_fields = [
            ("endpoint", m.endpoint.is_some()),
            ("target_variant", m.target_variant.is_some()),
            ("region", m.region.is_some()),
            ("endpoint_url", m.endpoint_url.is_some()),
        ];
        if m.backend != BackendKind::Sagemaker {
            for (field, set) in aws_fields {
                if set {
                    issues.add(format!("{path}.{field}"), "only for backend = \"sagemaker\"");
                }
            }
        }
        let sagemaker = (m.backend == BackendKind::Sagemaker).then(|| {
            if m.url.is_some() {
                issues.add(
                    format!("{path}.url"),
                    "sagemaker models take `endpoint` (and optional `endpoint_url`), not `url`",
                );
            }
            let endpoint = m.endpoint.clone().unwrap_or_default();
            if endpoint.is_empty()
                || endpoint.len() > 63
                || !endpoint.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                issues.add(format!("{path}.endpoint"), "required: the SageMaker endpoint name (1-63 of A-Z a-z 0-9 -)");
            }
            let aws = aws_target(issues, &path, &m.region, &m.endpoint_url);
            SageMakerPlan { endpoint, target_variant: m.target_variant.clone(), aws }
        });
        let url = match (m.backend, &m.url) {
            (BackendKind::Sagemaker, _) => None,
            (BackendKind::Builtin, None) => None,
            (BackendKind::Builtin, Some(_)) => {
                issues.add(format!("{path}.url"), "builtin models take no url");
                None
            }
            (BackendKind::Http, None) => {
                issues.add(format!("{path}.url"), "required for backend = \"http\"");
                None
            }
            (BackendKind::Http, Some(u)) => match u.parse::<http::Uri>() {
                Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => Some(uri),
                _ => {
                    issues.add(format!("{path}.url"), format!("`{u}` is not an absolute http(s):// URL"));
                    None
                }
            },
        };
        models.push(ModelPlan {
            name: name.clone(),
            version: m.version.clone(),
            kind: m.backend,
            url,
            timeout: Duration::from_millis(m.timeout_ms),
            sagemaker,
        });
    }
    models
}

fn validate_variants(
    issues: &mut Issues,
    split: &super::SplitConfig,
    model_index: &HashMap<&str, usize>,
) -> (Vec<VariantPlan>, Option<usize>, Option<Layout>) {
    let vs = &split.variants;
    let mut variants = Vec::new();
    let mut names = HashMap::new();
    let mut slots = Vec::new();
    let mut weights_ok = true;
    if vs.is_empty() {
        issues.add("split.variants", "at least one variant is required");
    }
    for (i, v) in vs.iter().enumerate() {
        let path = format!("split.variants[{i}]");
        if !valid_name(&v.name) {
            issues.add(format!("{path}.name"), "must be 1-64 characters of A-Z a-z 0-9 - _ .");
        } else if let Some(first) = names.insert(v.name.as_str(), i) {
            issues.add(format!("{path}.name"), format!("duplicate of split.variants[{first}].name"));
        }
        let model = model_index.get(v.model.as_str()).copied();
        if model.is_none() {
            issues.add(format!("{path}.model"), format!("no model named `{}` in [models]", v.model));
        }
        let buckets = percent_to_buckets(v.weight);
        if buckets.is_none() {
            weights_ok = false;
            issues.add(format!("{path}.weight"), "must be a percentage from 0 to 100 with at most two decimals");
        }
        let slot = v.slot.and_then(|[from, to]| match (percent_to_buckets(from), percent_to_buckets(to)) {
            (Some(start), Some(end)) if start < end => Some(Slot { start, end }),
            _ => {
                issues.add(format!("{path}.slot"), "must be [from, to] percentages with from < to");
                None
            }
        });
        if v.champion && v.slot.is_some() {
            issues.add(format!("{path}.slot"), "the champion has no slot: it owns what the others leave");
        }
        slots.push(slot);
        variants.push(VariantPlan {
            name: v.name.clone(),
            model: model.unwrap_or(0),
            buckets: buckets.unwrap_or(0),
            champion: v.champion,
        });
    }
    let champions: Vec<usize> = vs.iter().enumerate().filter(|(_, v)| v.champion).map(|(i, _)| i).collect();
    let champion = match champions.as_slice() {
        [one] => Some(*one),
        [] => {
            if !vs.is_empty() {
                issues.add("split.variants", "exactly one variant must have champion = true; none has");
            }
            None
        }
        many => {
            issues.add("split.variants", format!("exactly one variant must have champion = true; {} have", many.len()));
            None
        }
    };
    let layout = match champion {
        Some(c) if weights_ok => {
            let weights: Vec<u32> = variants.iter().map(|v| v.buckets).collect();
            match Layout::new(&weights, c, &slots) {
                Ok(l) => Some(l),
                Err(e) => {
                    let (path, msg) = match &e {
                        LayoutError::Sum(s) => (
                            "split.variants".to_owned(),
                            format!("weights add up to {}, they must add up to 100", f64::from(*s) / 100.0),
                        ),
                        LayoutError::SlotTooSmall { variant, weight, capacity } => (
                            format!("split.variants[{variant}].weight"),
                            format!(
                                "{} exceeds this variant's slot of {} (set `slot` or reorder variants)",
                                f64::from(*weight) / 100.0,
                                f64::from(*capacity) / 100.0
                            ),
                        ),
                        LayoutError::BadSlot { variant, .. } => {
                            (format!("split.variants[{variant}].slot"), e.to_string())
                        }
                        LayoutError::Overlap { b, .. } => (format!("split.variants[{b}].slot"), e.to_string()),
                        LayoutError::TooMany(_) => ("split.variants".to_owned(), e.to_string()),
                    };
                    issues.add(path, msg);
                    None
                }
            }
        }
        _ => None,
    };
    (variants, champion, layout)
}

mod sections;
use sections::{aws_target, validate_admin, validate_aws_sections, validate_guard, validate_shadows};

#[cfg(test)]
mod tests;
