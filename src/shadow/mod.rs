//! Shadow mirroring: sampled copies of primary requests sent to shadow models, off the request
//! path, with online comparison of their answers.
//!
//! The request path only evaluates the sampling hash and `try_send`s a job into the shadow's
//! bounded queue: a full queue drops the copy (counted), it never waits. One worker per shadow
//! drains the queue under a concurrency limit; each copy runs in its own task with its own
//! deadline, so a slow, hanging or dead shadow costs the client nothing.

pub mod capture;
pub mod compare;
pub(crate) mod extract;
pub mod stats;
mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use metrics::{Counter, Gauge, Histogram};
use serde_json::json;
use tokio::sync::{mpsc, Semaphore};

use crate::backend::{Model, ModelResponse};
use crate::config::ShadowPlan;
use crate::error::ProxyError;
use crate::metrics::{self as m, Metrics};
use crate::split::{bucket, BUCKETS};
use crate::trace::TraceContext;
use capture::Capture;
use stats::Window;

/// The primary's side of a comparison.
#[derive(Debug, Clone)]
pub struct Primary {
    /// `None` when the primary failed (502/504).
    pub status: Option<u16>,
    pub body: Bytes,
    pub latency: Duration,
}

/// One mirrored request.
pub(crate) struct Job {
    model: Arc<Model>,
    cfg: Arc<LaneCfg>,
    headers: HeaderMap,
    body: Bytes,
    request_id: HeaderValue,
    /// The primary's trace: the copy is part of the same request.
    trace: TraceContext,
    user_id: Box<str>,
    primary: Primary,
}

/// Per-shadow configuration as of one snapshot.
pub(crate) struct LaneCfg {
    sample_buckets: u32,
    salt: String,
    timeout: Duration,
    items_pointer: String,
    id_field: String,
    k: usize,
    capture: Option<Arc<Capture>>,
    cloudwatch: Option<Arc<crate::aws::cloudwatch::ShadowStats>>,
}

/// Metrics handles and the summary window of one shadow model; survives reloads.
pub(crate) struct LaneState {
    name: Arc<str>,
    window: Mutex<Window>,
    clock: Instant,
    queue_depth: Gauge,
    enqueued: Counter,
    dropped: Counter,
    ok: Counter,
    failed: Counter,
    timeout: Counter,
    duration: Histogram,
    overlap: Histogram,
    rbo: Histogram,
    top1: [Counter; 2],
    slower: Histogram,
    faster: Histogram,
    mismatch_primary_failed: Counter,
    mismatch_shadow_failed: Counter,
    mismatch_primary_unparseable: Counter,
    mismatch_shadow_unparseable: Counter,
}

impl LaneState {
    fn new(name: &str, metrics: &Metrics) -> LaneState {
        let outcome = |o| metrics.counter(m::SHADOW_REQUESTS, &[("shadow", name), ("outcome", o)]);
        let mismatch =
            |side, reason| metrics.counter(m::SHADOW_MISMATCH, &[("shadow", name), ("side", side), ("reason", reason)]);
        LaneState {
            name: name.into(),
            window: Mutex::new(Window::default()),
            clock: Instant::now(),
            queue_depth: metrics.gauge(m::SHADOW_QUEUE, &[("shadow", name)]),
            enqueued: outcome("enqueued"),
            dropped: outcome("dropped"),
            ok: outcome("ok"),
            failed: outcome("failed"),
            timeout: outcome("timeout"),
            duration: metrics.histogram(m::SHADOW_DURATION, &[("shadow", name)]),
            overlap: metrics.histogram(m::SHADOW_OVERLAP, &[("shadow", name)]),
            rbo: metrics.histogram(m::SHADOW_RBO, &[("shadow", name)]),
            top1: [
                metrics.counter(m::SHADOW_TOP1, &[("shadow", name), ("match", "false")]),
                metrics.counter(m::SHADOW_TOP1, &[("shadow", name), ("match", "true")]),
            ],
            slower: metrics.histogram(m::SHADOW_LATENCY_DELTA, &[("shadow", name), ("sign", "slower")]),
            faster: metrics.histogram(m::SHADOW_LATENCY_DELTA, &[("shadow", name), ("sign", "faster")]),
            mismatch_primary_failed: mismatch("primary", "failed"),
            mismatch_shadow_failed: mismatch("shadow", "failed"),
            mismatch_primary_unparseable: mismatch("primary", "unparseable"),
            mismatch_shadow_unparseable: mismatch("shadow", "unparseable"),
        }
    }

    fn record(&self, f: impl Fn(&mut stats::Tally)) {
        let now = self.clock.elapsed().as_secs();
        // A poisoned lock only means a panic elsewhere mid-update; the counts are still usable.
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        w.record(now, f);
    }
}

/// The queue and worker of one shadow; reused across reloads while its sizes stay the same.
pub(crate) struct LaneCore {
    tx: mpsc::Sender<Job>,
    limit: Arc<Semaphore>,
    queue_capacity: usize,
    max_in_flight: usize,
    state: Arc<LaneState>,
}

/// A shadow as seen by one snapshot.
pub struct Lane {
    core: Arc<LaneCore>,
    cfg: Arc<LaneCfg>,
    model: Arc<Model>,
}

/// Keeps shadow state that must outlive snapshots: stats per model, captures per file.
#[derive(Default)]
pub struct ShadowHub {
    states: Mutex<HashMap<String, Arc<LaneState>>>,
    captures: Mutex<HashMap<PathBuf, Arc<Capture>>>,
}

impl ShadowHub {
    /// Builds the lanes for a new snapshot, reusing `previous` lanes whose queue sizes match so
    /// queued copies survive a reload. Must run inside a tokio runtime (it may spawn workers).
    pub fn lanes(
        &self,
        plans: &[ShadowPlan],
        models: &[Arc<Model>],
        metrics: &Metrics,
        previous: &[Lane],
        cloudwatch: Option<&crate::aws::cloudwatch::CloudWatchSink>,
    ) -> Vec<Lane> {
        plans
            .iter()
            .filter_map(|p| {
                let model = models.get(p.model)?.clone();
                let state = {
                    let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
                    states
                        .entry(model.name.to_string())
                        .or_insert_with(|| Arc::new(LaneState::new(&model.name, metrics)))
                        .clone()
                };
                let core = previous
                    .iter()
                    .find(|l| {
                        Arc::ptr_eq(&l.core.state, &state)
                            && l.core.queue_capacity == p.queue_capacity
                            && l.core.max_in_flight == p.max_in_flight
                    })
                    .map(|l| l.core.clone())
                    .unwrap_or_else(|| spawn_core(p, state));
                let capture = p.capture.as_ref().and_then(|c| self.capture(c));
                let cfg = Arc::new(LaneCfg {
                    sample_buckets: p.sample_buckets,
                    salt: p.salt.clone(),
                    timeout: p.timeout,
                    items_pointer: p.items_pointer.clone(),
                    id_field: p.id_field.clone(),
                    k: p.k,
                    capture,
                    cloudwatch: cloudwatch.map(|c| c.shadow(&model.name)),
                });
                Some(Lane { core, cfg, model })
            })
            .collect()
    }

    fn capture(&self, plan: &crate::config::CapturePlan) -> Option<Arc<Capture>> {
        let mut caps = self.captures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = caps.get(&plan.path).filter(|c| c.plan == *plan) {
            return Some(c.clone());
        }
        match Capture::open(plan.clone()) {
            Ok(c) => {
                caps.insert(plan.path.clone(), c.clone());
                Some(c)
            }
            Err(e) => {
                tracing::warn!(path = %plan.path.display(), error = %e, "cannot open shadow capture file; capture disabled");
                None
            }
        }
    }
}

fn spawn_core(p: &ShadowPlan, state: Arc<LaneState>) -> Arc<LaneCore> {
    let (tx, rx) = mpsc::channel(p.queue_capacity);
    let limit = Arc::new(Semaphore::new(p.max_in_flight));
    tokio::spawn(worker::run(rx, limit.clone(), state.clone()));
    Arc::new(LaneCore { tx, limit, queue_capacity: p.queue_capacity, max_in_flight: p.max_in_flight, state })
}

impl Lane {
    /// Whether `user_id` is in this shadow's sample: stable per user, independent of the split.
    #[inline]
    fn sampled(&self, user_id: &str) -> bool {
        match self.cfg.sample_buckets {
            0 => false,
            BUCKETS => true,
            n => bucket(&self.cfg.salt, user_id.as_bytes()) < n,
        }
    }
}

/// The shadow stage of the request path: enqueue a copy for every shadow sampling this user.
/// Never waits: a full queue drops the copy and counts it.
#[allow(clippy::too_many_arguments)]
pub fn mirror(
    lanes: &[Lane],
    headers: &HeaderMap,
    body: &Bytes,
    request_id: &HeaderValue,
    trace: &TraceContext,
    user_id: &str,
    answer: &Result<ModelResponse, ProxyError>,
    latency: Duration,
) {
    for lane in lanes {
        if !lane.sampled(user_id) {
            continue;
        }
        let primary = match answer {
            Ok(a) => Primary { status: Some(a.status.as_u16()), body: a.body.clone(), latency },
            Err(_) => Primary { status: None, body: Bytes::new(), latency },
        };
        let job = Job {
            model: lane.model.clone(),
            cfg: lane.cfg.clone(),
            headers: headers.clone(),
            body: body.clone(),
            request_id: request_id.clone(),
            trace: *trace,
            user_id: user_id.into(),
            primary,
        };
        let state = &lane.core.state;
        match lane.core.tx.try_send(job) {
            Ok(()) => {
                state.enqueued.increment(1);
                state.queue_depth.increment(1.0);
            }
            Err(_) => {
                state.dropped.increment(1);
                state.record(|t| t.dropped += 1);
            }
        }
    }
}

/// Copies queued or in flight across `lanes` (for draining at shutdown).
pub fn pending(lanes: &[Lane]) -> usize {
    lanes
        .iter()
        .map(|l| {
            (l.core.queue_capacity - l.core.tx.capacity()) + (l.core.max_in_flight - l.core.limit.available_permits())
        })
        .sum()
}

/// `/admin/shadow`: per shadow, since start and over the last five minutes.
pub fn summary(lanes: &[Lane], tallies: &crate::tally::Tallies) -> serde_json::Value {
    let shadows: Vec<_> = lanes
        .iter()
        .map(|l| {
            let state = &l.core.state;
            let t = tallies.shadows.get(&*l.model.name).copied().unwrap_or_default();
            json!({
                "model": &*state.name,
                "version": &*l.model.version,
                "sample_percent": f64::from(l.cfg.sample_buckets) / 100.0,
                "queue_capacity": l.core.queue_capacity,
                "max_in_flight": l.core.max_in_flight,
                "queue_depth": l.core.queue_capacity - l.core.tx.capacity(),
                "k": l.cfg.k,
                "since_start": t.since_start.summary(),
                "last_5m": t.last_5m.summary(),
            })
        })
        .collect();
    json!({ "shadows": shadows })
}

/// This process's counts for each shadow lane, by model name.
pub fn tallies(lanes: &[Lane]) -> std::collections::BTreeMap<String, crate::tally::ShadowTally> {
    lanes.iter().map(|l| (l.model.name.to_string(), tally(l))).collect()
}

fn tally(l: &Lane) -> crate::tally::ShadowTally {
    let state = &l.core.state;
    let now = state.clock.elapsed().as_secs();
    let (since_start, last_5m) = state.window.lock().unwrap_or_else(|e| e.into_inner()).tallies(now);
    crate::tally::ShadowTally { since_start, last_5m }
}
