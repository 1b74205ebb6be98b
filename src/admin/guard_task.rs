//! The guard loop: samples every non-champion variant's counters, evaluates the triggers, and
//! on a breach rolls the variant back to 0% through the same audited path as the admin API,
//! marks its model `rolled_back` in the registry, and notifies a webhook (retried, off-path).
//!
//! With `[fleet]` the windows run on the fleet's counters (every replica keeps them, so a new
//! lease holder has the history at once) and only the lease holder acts: a breach rolls back
//! once for the fleet, the ramp advances one step per hold for the fleet. While the fleet table
//! is unreachable the guard evaluates this replica's own counters (as without `[fleet]`) and the
//! ramp holds: no step is taken on a fraction of the traffic.

use std::collections::HashMap;
use std::sync::Weak;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use serde_json::json;

use super::Admin;
use super::{change, edit};
use crate::guard::{evaluate, keep_ms, Breach, Tracker};

/// How often the loop wakes when no `[guard]` is configured (it may appear on reload).
const IDLE: Duration = Duration::from_secs(1);
/// The bucket traffic estimate rotates every half hour.
const HALF_HOUR: Duration = Duration::from_secs(1_800);

/// Runs while the admin service lives.
pub fn spawn(admin: Weak<Admin>) {
    tokio::spawn(async move {
        let start = Instant::now();
        let mut last_rotation = Instant::now();
        let mut trackers: HashMap<String, Tracker> = HashMap::new();
        // The fleet's windows, kept alongside (they are fed only while the fleet is healthy).
        let mut fleet_trackers: HashMap<String, Tracker> = HashMap::new();
        // Each variant's current step: when it started and its request count then, for holds.
        let mut holding: HashMap<String, Hold> = HashMap::new();
        loop {
            let Some(a) = admin.upgrade() else { return };
            let p = &a.proxy;
            if last_rotation.elapsed() >= HALF_HOUR {
                p.traffic.rotate();
                last_rotation = Instant::now();
            }
            let snap = p.runtime.snapshot.load_full();
            let Some(cfg) = snap.plan.guard.clone() else {
                super::guard_view::publish_disabled(&a);
                trackers.clear();
                fleet_trackers.clear();
                drop(a);
                tokio::time::sleep(IDLE).await;
                continue;
            };
            let now_ms = start.elapsed().as_millis() as u64;
            let keep = keep_ms(&cfg);
            let fleet = a.fleet.get().filter(|f| f.healthy()).cloned();
            // Who decides: the lease holder on fleet counters; without a fleet (or while it is
            // unreachable) this replica on its own.
            let acts = fleet.as_ref().is_none_or(|f| f.is_leader());
            let mut breached = Vec::new();
            for v in snap.variants.iter().filter(|v| !v.champion) {
                if v.weight_percent == 0.0 {
                    trackers.remove(&*v.name);
                    fleet_trackers.remove(&*v.name);
                    continue;
                }
                let local = trackers.entry(v.name.to_string()).or_default();
                local.push(v.state.guard.sample(now_ms), keep);
                let judged = match &fleet {
                    Some(f) => {
                        let t = fleet_trackers.entry(v.name.to_string()).or_default();
                        t.push(f.sample(&v.name, now_ms), keep);
                        &*t
                    }
                    None => &*local,
                };
                if let Some(b) = evaluate(&cfg, judged).filter(|_| acts) {
                    breached.push((v.name.to_string(), v.model.name.to_string(), b));
                }
            }
            for (variant, model, breach) in &breached {
                trackers.remove(variant);
                fleet_trackers.remove(variant);
                holding.remove(variant);
                roll_back(&a, variant, model, breach, cfg.webhook_url.clone()).await;
            }
            let ramp_source = match (&fleet, a.fleet.get()) {
                (Some(f), _) => Some(Source::Fleet(f.clone())),
                (None, Some(_)) => None, // fleet configured but unreachable: the ramp holds
                (None, None) => Some(Source::Local),
            };
            if let (Some(ramp), Some(source)) = (cfg.ramp.as_ref().filter(|_| breached.is_empty()), ramp_source) {
                advance(&a, &snap, &cfg, ramp, &mut holding, &source, acts).await;
            }
            let judged = if fleet.is_some() { &fleet_trackers } else { &trackers };
            super::guard_view::publish(&a, &snap, &cfg, judged, &holding, fleet.as_deref());
            drop(a);
            tokio::time::sleep(cfg.evaluate_every).await;
        }
    });
}

/// Whose counters the ramp judges.
enum Source {
    Local,
    Fleet(std::sync::Arc<crate::fleet::Fleet>),
}

impl Source {
    fn sample(&self, v: &crate::snapshot::Variant) -> crate::guard::Sample {
        match self {
            Source::Local => v.state.guard.sample(0),
            Source::Fleet(f) => f.sample(&v.name, 0),
        }
    }

    fn tallies(&self, snap: &crate::snapshot::Snapshot) -> crate::tally::Tallies {
        match self {
            Source::Local => crate::tally::Tallies::local(snap),
            Source::Fleet(f) => f.merged(),
        }
    }

    fn is_fleet(&self) -> bool {
        matches!(self, Source::Fleet(_))
    }
}

/// One ramp step being held: the weight, since when, and the variant's request count then.
pub(super) struct Hold {
    pub(super) weight: f64,
    /// Whether `start` is a fleet sample (a switch of source restarts the hold).
    pub(super) fleet: bool,
    pub(super) since: Instant,
    /// The variant's counters when the step began: the hold is judged on what came after.
    pub(super) start: crate::guard::Sample,
}

/// Moves each challenger that has held its step for `hold`, with at least `min_requests`
/// requests in that time, no trigger breached now and none breached over the hold as a whole,
/// to the next step. "No trigger fired" alone is not health: below `min_requests` in a window no
/// trigger can fire, so zero or thin traffic, or a failing record spread thin, never advances.
async fn advance(
    a: &Admin,
    snap: &crate::snapshot::Snapshot,
    cfg: &crate::config::GuardPlan,
    ramp: &crate::config::RampPlan,
    holding: &mut HashMap<String, Hold>,
    source: &Source,
    acts: bool,
) {
    let tallies = source.tallies(snap);
    // A sample ratio mismatch means the split is broken: no step is taken on its numbers.
    let srm_flagged = super::views::srm(snap, &tallies).flagged;
    for v in snap.variants.iter().filter(|v| !v.champion && v.weight_percent > 0.0) {
        let now = source.sample(v);
        let fresh = || Hold { weight: v.weight_percent, fleet: source.is_fleet(), since: Instant::now(), start: now };
        let entry = holding.entry(v.name.to_string()).or_insert_with(fresh);
        if entry.weight != v.weight_percent || entry.fleet != source.is_fleet() {
            *entry = fresh();
        }
        // Every replica follows the holds (so a new lease holder knows them); one steps.
        if !acts {
            continue;
        }
        let Some(next) = ramp.steps.iter().copied().find(|s| *s > v.weight_percent) else { continue };
        let (held, in_hold) = (entry.since.elapsed(), now.minus(&entry.start));
        if !crate::guard::step_held(held, ramp.hold, in_hold.requests, cfg.min_requests) {
            continue;
        }
        if let Some(breach) = crate::guard::hold_breach(cfg, &in_hold, held) {
            tracing::warn!(variant = %v.name, %breach, "ramp holds: unhealthy over the step's hold");
            continue;
        }
        if srm_flagged {
            tracing::debug!(variant = %v.name, "ramp holds: sample ratio mismatch");
            continue;
        }
        // The sequential test only: a fixed-horizon test re-checked at every hold would find a
        // "significant" difference by chance far more often than its 5%.
        if ramp.require_not_worse
            && super::views::sequentially_worse(snap, &tallies, &v.name, ramp.conversion_event.index())
        {
            tracing::warn!(variant = %v.name, "ramp holds: conversion is significantly worse than the champion's (sequential test)");
            continue;
        }
        let weights = [(v.name.to_string(), next)].into_iter().collect();
        let reason = format!("ramp: {} held healthy for {} at {}%", v.name, ramp.hold_as_written, v.weight_percent);
        let detail = json!({"variant": &*v.name, "from": v.weight_percent, "to": next});
        match change(a, "ramp", "ramp", Some(reason), None, detail, |t| edit::set_weights(t, &weights)).await {
            Ok(_) => {
                tracing::info!(variant = %v.name, from = v.weight_percent, to = next, "ramp advanced");
                *entry = Hold { weight: next, fleet: source.is_fleet(), since: Instant::now(), start: now };
            }
            Err(e) => tracing::warn!(error = %e, variant = %v.name, "ramp step could not be written"),
        }
    }
}

async fn roll_back(a: &Admin, variant: &str, model: &str, breach: &Breach, webhook: Option<String>) {
    let p = &a.proxy;
    let reason = format!("guard: {variant} breached {}: {breach}", breach.trigger());
    tracing::error!(variant, model, trigger = breach.trigger(), "{reason}; rolling back");
    p.shared
        .metrics
        .counter(crate::metrics::GUARD_ROLLBACKS, &[("variant", variant), ("trigger", breach.trigger())])
        .increment(1);
    let weights = [(variant.to_owned(), 0.0)].into_iter().collect();
    let detail =
        json!({"variant": variant, "model": model, "trigger": breach.trigger(), "observed": breach.to_string()});
    let outcome =
        change(a, "guard", "rollback", Some(reason.clone()), None, detail.clone(), |t| edit::set_weights(t, &weights))
            .await;
    let (old, new) = match outcome {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, variant, "guard rollback could not be written; will retry on the next breach");
            return;
        }
    };
    if let Some(reg) = p.runtime.snapshot.load().plan.registry.clone() {
        let registry = crate::aws::dynamo::Registry::connect(&p.shared.aws, &reg).await;
        if let Err(e) = registry.set_status(model, "rolled_back").await {
            tracing::warn!(error = %e, model, "could not mark the model rolled_back in the registry");
        }
    }
    if let Some(url) = webhook {
        let body = json!({
            "event": "rollback",
            "variant": variant,
            "model": model,
            "reason": reason,
            "old_version": old,
            "new_version": new,
            "time": crate::aws::dynamo::now_rfc3339(),
        });
        let client = p.shared.client.clone();
        tokio::spawn(notify(client, url, body.to_string()));
    }
}

/// POSTs the notification, retrying with backoff; never on the request path.
async fn notify(client: crate::backend::HttpClient, url: String, body: String) {
    let mut delay = Duration::from_millis(500);
    for attempt in 1..=4 {
        let req = http::Request::post(&url)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.clone())));
        let Ok(req) = req else { return };
        match tokio::time::timeout(Duration::from_secs(5), client.request(req)).await {
            Ok(Ok(r)) if r.status().is_success() => return,
            other => {
                // The host only: webhook URLs often carry their secret in the path or query.
                let host = url.parse::<http::Uri>().ok().and_then(|u| u.host().map(str::to_owned)).unwrap_or_default();
                tracing::warn!(attempt, host, outcome = ?other.map(|r| r.map(|r| r.status())), "rollback webhook failed")
            }
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
}
