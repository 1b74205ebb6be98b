//! Recording, in one place. The request path's stages only write facts into [`Facts`] (variant,
//! model failure, fallback, timings, exposure, feedback event); once the answer is known, the
//! proxy's one `finish` step builds an [`Outcome`] and hands it to every [`Sink`] exactly once,
//! then writes the access log. The pipeline never knows which sinks it has: Prometheus,
//! CloudWatch, the guard's counters and the experiment's counters all implement [`Sink`], and a
//! new one (fleet counters) is one more entry in the list the proxy assembles.
//!
//! The sinks' own handles stay where they are resolved ahead of time (per-variant handles on the
//! snapshot's variants, per-model error counters on its models), so recording is a few relaxed
//! atomic increments and never a label lookup.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::aws::cloudwatch::CloudWatchSink;
use crate::error::ProxyError;
use crate::metrics::{Metrics, Route};
use crate::snapshot::Snapshot;
use crate::split::traffic::Traffic;

/// What the pipeline learned about one request, written by its stages as they go.
#[derive(Default)]
pub struct Facts {
    /// The variant the request was assigned to (by the split or a trusted override).
    pub variant: Option<usize>,
    /// How long the assigned variant's model took (its first call, when there was a fallback).
    pub upstream_latency: Option<Duration>,
    /// The authenticated caller's key name, for the access log.
    pub caller: Option<Arc<str>>,
    /// The assigned variant's model failed: a 5xx answer, or no usable answer at all.
    pub model_failed: bool,
    /// …and the call itself failed (no answer): why, for the model's error counters.
    pub model_error: Option<ModelError>,
    /// The assigned variant failed and the champion answered.
    pub fallback: bool,
    /// The champion's call during a fallback failed too: why.
    pub fallback_error: Option<ModelError>,
    /// The request body was read to its end: the connection can carry another request.
    pub body_read: bool,
    /// The user was exposed to the variant (hash of the user id, and the bucket when the split,
    /// not an override, chose).
    pub exposure: Option<Exposure>,
    /// A feedback event, by its index in `FEEDBACK_EVENTS`.
    pub feedback_event: Option<usize>,
    /// The user a feedback event came from (hash, and bucket under the live split).
    pub feedback_user: Option<Exposure>,
    /// The raw user id, only when `[experiment] log_raw_user_id` asks for it in the access log.
    pub raw_user_id: Option<Box<str>>,
    /// An interleaving arm's answer, or feedback for one (`proxy::interleave`).
    pub interleave: Option<crate::interleave::Fact>,
}

/// A failed model call: the error's index in `CODES`, and whether the model refused for capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelError {
    pub code: usize,
    pub throttled: bool,
}

impl ModelError {
    pub fn of(e: &ProxyError) -> ModelError {
        ModelError { code: e.code_index(), throttled: matches!(e, ProxyError::UpstreamThrottled { .. }) }
    }
}

/// A user's exposure to the variant they were assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exposure {
    pub user_hash: u64,
    pub bucket: Option<u32>,
}

/// One finished request, as every sink sees it.
pub struct Outcome<'a> {
    pub route: Route,
    pub status: u16,
    pub latency: Duration,
    pub error: Option<&'a ProxyError>,
    pub facts: &'a Facts,
}

/// Somewhere a finished request is counted.
pub trait Sink {
    fn record(&self, snap: &Snapshot, o: &Outcome<'_>);
}

impl Sink for Metrics {
    fn record(&self, snap: &Snapshot, o: &Outcome<'_>) {
        let f = o.facts;
        let variant = f.variant.and_then(|i| snap.variants.get(i));
        match (o.route, variant) {
            (Route::Recommend, Some(v)) => {
                v.metrics.recommend.record(o.status, o.latency.as_secs_f64());
                if let Some(up) = f.upstream_latency {
                    v.metrics.upstream.record(up.as_secs_f64());
                }
            }
            _ => self.route_metrics(o.route).record(o.status, o.latency.as_secs_f64()),
        }
        if let (Some(v), Some(kind)) = (variant, f.feedback_event) {
            if let Some(c) = v.metrics.feedback.get(kind) {
                c.increment(1);
            }
        }
        if let Some(v) = variant {
            let champion = snap.variants.get(snap.plan.champion).map(|c| &c.model);
            for (model, failure) in [(Some(&v.model), f.model_error), (champion, f.fallback_error)] {
                if let (Some(m), Some(e)) = (model, failure) {
                    if let Some(c) = m.metrics.errors.get(e.code) {
                        c.increment(1);
                    }
                }
            }
        }
        if let Some(e) = o.error {
            if let Some(c) = self.errors.get(e.code_index()) {
                c.increment(1);
            }
            match e {
                ProxyError::Unauthorized => self.auth_failures.increment(1),
                ProxyError::Throttled { .. } => self.throttled.increment(1),
                _ => {}
            }
        }
    }
}

impl Sink for CloudWatchSink {
    fn record(&self, snap: &Snapshot, o: &Outcome<'_>) {
        if snap.plan.cloudwatch.is_none() {
            return;
        }
        if let (Route::Recommend, Some(v)) = (o.route, o.facts.variant.and_then(|i| snap.variants.get(i))) {
            if let Some(cw) = &v.cloudwatch {
                cw.record(o.status, o.latency);
            }
        }
        if matches!(o.error, Some(ProxyError::Throttled { .. })) {
            self.throttled.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The guard's per-variant outcome counters (they outlive reloads, on `VariantState`).
pub struct GuardSink;

impl Sink for GuardSink {
    fn record(&self, snap: &Snapshot, o: &Outcome<'_>) {
        let f = o.facts;
        let Some(v) = f.variant.and_then(|i| snap.variants.get(i)).filter(|_| o.route == Route::Recommend) else {
            return;
        };
        let throttled = f.model_error.is_some_and(|e| e.throttled);
        if f.fallback {
            // The caller got the champion's answer; the assigned variant is judged by its own call.
            v.state.guard.record(true, true, throttled, f.upstream_latency.unwrap_or(o.latency));
        } else {
            // A model's own 5xx answer is a model failure like a refused connection: it counts
            // toward the error-rate and the invocation-error triggers alike.
            v.state.guard.record(o.status >= 500 || f.model_failed, f.model_failed, throttled, o.latency);
        }
    }
}

/// Exposures and feedback events per variant, and the bucket traffic map for dry runs.
pub struct ExperimentSink<'a>(pub &'a Traffic);

impl Sink for ExperimentSink<'_> {
    fn record(&self, snap: &Snapshot, o: &Outcome<'_>) {
        let f = o.facts;
        let Some(v) = f.variant.and_then(|i| snap.variants.get(i)) else { return };
        let vi = f.variant.unwrap_or(0);
        if let Some(x) = f.exposure {
            if let Some(bucket) = x.bucket {
                self.0.record(bucket);
                // Only the split's own assignments are randomised: overrides stay out of the
                // epochs' counts and the user sample (the SRM check and conversion tests).
                snap.sampler.expose(&snap.epoch, vi, x.user_hash);
            }
            v.state.experiment.saw_user(x.user_hash);
        }
        if let Some(kind) = f.feedback_event {
            v.state.experiment.event(kind);
            if let Some(u) = f.feedback_user {
                snap.sampler.event(&snap.epoch, vi, kind, u.user_hash);
            }
        }
    }
}

/// Interleaving arms: what each answered (merged, degraded, failed), its team B model's call
/// errors, and the feedback credited to each team (`proxy::interleave::Arm::record`).
pub struct InterleaveSink;

impl Sink for InterleaveSink {
    fn record(&self, snap: &Snapshot, o: &Outcome<'_>) {
        let f = o.facts;
        let arm = f.variant.and_then(|i| snap.variants.get(i)).and_then(|v| v.interleave.as_deref());
        if let (Some(arm), Some(fact)) = (arm, &f.interleave) {
            arm.record(fact);
        }
    }
}
