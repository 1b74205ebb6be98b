//! The immutable, hot-swappable view of the config that a request uses from start to end.
//!
//! A reload builds a whole new [`Snapshot`] from a validated plan and swaps it in one atomic store;
//! requests already running keep the snapshot they started with. Building cannot fail: every value
//! was checked by `config::validate`.

use std::sync::Arc;
use std::time::SystemTime;

use http::HeaderValue;

use crate::auth::KeyStore;
use crate::backend::sagemaker::SageMakerBackend;
use crate::backend::{Backend, Builtin, HttpBackend, HttpClient, Model};
use crate::config::{BackendKind, Plan, SageMakerClient};
use crate::metrics::{Metrics, VariantMetrics};
use crate::shadow::{Lane, ShadowHub};
use crate::throttle::TokenBucket;

/// Where the config came from, for `/health` and the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(String),
    /// `table/key` of the DynamoDB config item.
    Dynamodb(String),
    Inline,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(p) => write!(f, "file:{p}"),
            Source::Dynamodb(t) => write!(f, "dynamodb:{t}"),
            Source::Inline => f.write_str("inline"),
        }
    }
}

/// Identity of a config: its version, content digest and source.
#[derive(Debug, Clone)]
pub struct Origin {
    pub version: u64,
    pub digest: String,
    pub source: Source,
}

/// The long-lived parts a snapshot is built against (they outlive every snapshot).
#[derive(Clone, Copy)]
pub struct Deps<'a> {
    pub metrics: &'a Metrics,
    pub client: &'a HttpClient,
    pub hub: &'a ShadowHub,
    /// Must have been `prepare`d for the plan.
    pub aws: &'a crate::aws::AwsClients,
    pub cloudwatch: &'a crate::aws::cloudwatch::CloudWatchSink,
    /// Guard counters by variant name, so a reload does not reset the windows.
    pub states: &'a std::sync::Mutex<std::collections::HashMap<String, Arc<VariantState>>>,
    /// The epochs and user sample; the snapshot enters its assignment's epoch.
    pub sampler: &'a Arc<crate::experiment::Sampler>,
}

/// One variant, with everything the hot path needs ready-made.
pub struct Variant {
    pub name: Arc<str>,
    /// `name` as a ready header value for `x-splitgate-variant`.
    pub name_header: HeaderValue,
    pub model: Arc<Model>,
    pub weight_percent: f64,
    pub champion: bool,
    pub metrics: VariantMetrics,
    /// CloudWatch counters, only when `[cloudwatch]` is configured.
    pub cloudwatch: Option<Arc<crate::aws::cloudwatch::VariantStats>>,
    /// Counters that outlive reloads: guard outcomes and experiment statistics.
    pub state: Arc<VariantState>,
    /// An interleaving arm's two models and counters; `model` is then its team A.
    pub interleave: Option<Box<crate::proxy::interleave::Arm>>,
}

/// Per-variant state kept across config versions (keyed by variant name).
#[derive(Default)]
pub struct VariantState {
    /// Outcomes the guard judges this variant by.
    pub guard: crate::guard::Counters,
    /// Users and feedback events for `/admin/experiment`.
    pub experiment: crate::experiment::Counters,
    /// An interleaving arm's counters (bound to its pair of models).
    pub interleave: crate::interleave::Slot,
}

/// The epoch of `plan`'s assignment (see `experiment::epoch`), entered at `version` and now.
fn enter_epoch(sampler: &crate::experiment::Sampler, plan: &Plan, version: u64) -> Arc<crate::experiment::EpochView> {
    sampler.set_capacity(plan.experiment.sample_users);
    let names: Vec<&str> = plan.variants.iter().map(|v| v.name.as_str()).collect();
    let signature = crate::experiment::epoch::signature(&plan.salt, &names, &plan.layout);
    let weights: Vec<(&str, f64)> =
        plan.variants.iter().map(|v| (v.name.as_str(), f64::from(v.buckets) / 100.0)).collect();
    let champion = plan.variants.get(plan.champion).map_or("", |v| v.name.as_str());
    sampler.enter(signature, version, crate::experiment::now_ms(), champion, &weights)
}

/// Everything hot-reloadable, as of one config version.
pub struct Snapshot {
    /// Operator version from the file, or the proxy's own count of applied configs.
    pub version: u64,
    /// `version` as a ready `x-splitgate-config-version` value.
    pub version_header: HeaderValue,
    /// First 16 hex digits of the config text's SHA-256.
    pub digest: String,
    pub source: Source,
    pub loaded_at: SystemTime,
    pub plan: Plan,
    pub keys: KeyStore,
    pub throttle: Option<Arc<TokenBucket>>,
    pub models: Vec<Arc<Model>>,
    pub variants: Vec<Variant>,
    pub shadows: Vec<Lane>,
    /// The user sample and epoch book (shared by every snapshot).
    pub sampler: Arc<crate::experiment::Sampler>,
    /// This snapshot's weight epoch, with its per-variant counters.
    pub epoch: Arc<crate::experiment::EpochView>,
}

impl Snapshot {
    /// Builds the runtime view. `previous` lends its throttle state so a reload grants no burst.
    pub fn build(plan: Plan, origin: Origin, deps: Deps<'_>, previous: Option<&Snapshot>) -> Snapshot {
        let Deps { metrics, client, hub, aws, cloudwatch, states, sampler } = deps;
        let Origin { version, digest, source } = origin;
        let keys = KeyStore::new(plan.keys.iter().cloned().map(|(digest, mut caller)| {
            caller.bucket = caller.throttle.map(|gcra| {
                let old = previous.and_then(|p| p.keys.by_name(&caller.name)).and_then(|c| c.bucket.as_deref());
                Arc::new(match old {
                    Some(old) => TokenBucket::carry_over(gcra, old),
                    None => TokenBucket::new(gcra),
                })
            });
            (digest, caller)
        }));
        let throttle = plan.throttle.map(|gcra| {
            Arc::new(match previous.and_then(|p| p.throttle.as_deref()) {
                Some(old) => TokenBucket::carry_over(gcra, old),
                None => TokenBucket::new(gcra),
            })
        });
        let models: Vec<Arc<Model>> = plan
            .models
            .iter()
            .map(|m| {
                let backend = match (m.kind, &m.url, &m.sagemaker) {
                    (BackendKind::Http, Some(url), _) => Backend::Http(Box::new(HttpBackend::new(
                        url.clone(),
                        client.clone(),
                        plan.server.max_response_bytes,
                    ))),
                    (BackendKind::Sagemaker, _, Some(sm)) => {
                        let shared = aws.sagemaker(&sm.aws);
                        Backend::SageMaker(Box::new(SageMakerBackend::new(
                            shared.as_ref().map(|s| s.sdk.clone()),
                            shared.and_then(|s| s.direct).filter(|_| sm.client == SageMakerClient::Direct),
                            sm.endpoint.clone(),
                            sm.target_variant.clone(),
                            plan.server.max_response_bytes,
                        )))
                    }
                    // Validation guarantees the fields each kind needs; builtin needs none.
                    _ => Backend::Builtin(Builtin::new(&m.version)),
                };
                Arc::new(Model {
                    name: m.name.as_str().into(),
                    version: m.version.as_str().into(),
                    version_header: HeaderValue::from_str(&m.version)
                        .unwrap_or_else(|_| HeaderValue::from_static("invalid")),
                    backend,
                    timeout: m.timeout,
                    metrics: metrics.model(&m.name),
                })
            })
            .collect();
        let variants = plan
            .variants
            .iter()
            .map(|v| {
                let model = models[v.model].clone();
                let state: Arc<VariantState> =
                    states.lock().unwrap_or_else(|e| e.into_inner()).entry(v.name.clone()).or_default().clone();
                let interleave = v.interleave.as_ref().and_then(|p| {
                    crate::proxy::interleave::Arm::new(&v.name, p, &models, metrics, &state.interleave).map(Box::new)
                });
                // An arm's series are labelled with both of its models.
                let label = interleave.as_ref().map_or_else(|| model.name.to_string(), |a| a.label());
                Variant {
                    name: v.name.as_str().into(),
                    name_header: HeaderValue::from_str(&v.name).unwrap_or_else(|_| HeaderValue::from_static("invalid")),
                    metrics: metrics.variant(&v.name, &label),
                    cloudwatch: plan.cloudwatch.as_ref().map(|_| cloudwatch.variant(&v.name, &label)),
                    state,
                    interleave,
                    model,
                    weight_percent: f64::from(v.buckets) / 100.0,
                    champion: v.champion,
                }
            })
            .collect();
        let shadows = hub.lanes(
            &plan.shadows,
            &models,
            metrics,
            previous.map(|p| &p.shadows[..]).unwrap_or(&[]),
            plan.cloudwatch.as_ref().map(|_| cloudwatch),
        );
        let epoch = enter_epoch(sampler, &plan, version);
        Snapshot {
            version,
            version_header: HeaderValue::from(version),
            digest,
            source,
            loaded_at: SystemTime::now(),
            keys,
            throttle,
            models,
            variants,
            shadows,
            plan,
            sampler: sampler.clone(),
            epoch,
        }
    }

    /// The variant serving `user_id` under this snapshot's split.
    #[inline]
    pub fn assign(&self, user_id: &str) -> usize {
        self.plan.assign(user_id.as_bytes())
    }

    /// Index of the variant named `name`.
    pub fn variant_index(&self, name: &[u8]) -> Option<usize> {
        self.variants.iter().position(|v| v.name.as_bytes() == name)
    }
}
