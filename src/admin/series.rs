//! The sampler behind the dashboard's sparklines and `GET /admin/series`: every
//! [`STEP_SECS`](crate::series::STEP_SECS) it reads each live variant's cumulative counters (the
//! guard's request and error counts, the `/recommend` latency histogram) into the pure
//! [`Series`](crate::series::Series) rings. Off the request path: a few atomic loads per variant
//! every ten seconds.

use std::sync::Weak;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::Admin;
use crate::metrics::{LATENCY_BUCKETS, RATIO_BUCKETS, REQUEST_DURATION, SHADOW_OVERLAP, SHADOW_RBO};
use crate::series::{Reading, POINTS, STEP_SECS};

/// Runs while the admin service lives. The baseline is read here, before the listeners start
/// (`app` spawns this first): read from the task instead, requests served before its first
/// poll — a loaded machine's first milliseconds — were in the baseline and never in a point.
pub fn spawn(admin: Weak<Admin>) {
    let start = Instant::now();
    if let Some(a) = admin.upgrade() {
        sample(&a, 0);
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::from_std(start) + Duration::from_secs(STEP_SECS),
            Duration::from_secs(STEP_SECS),
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(a) = admin.upgrade() else { return };
            sample(&a, start.elapsed().as_millis() as u64);
        }
    });
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn sample(a: &Admin, at_ms: u64) {
    let snap = a.proxy.runtime.snapshot.load();
    let metrics = &a.proxy.shared.metrics;
    let readings: Vec<(&str, Reading)> = snap
        .variants
        .iter()
        .map(|v| {
            let s = v.state.guard.sample(0);
            let latency = metrics
                .read_histogram(REQUEST_DURATION, &[("route", "recommend"), ("variant", &v.name)])
                .unwrap_or_else(|| vec![0; LATENCY_BUCKETS.len() + 1]);
            (&*v.name, Reading { requests: s.requests, errors: s.errors, latency })
        })
        .collect();
    a.series.lock().unwrap_or_else(|e| e.into_inner()).sample(unix_now(), at_ms, readings, LATENCY_BUCKETS);
}

/// `GET /admin/series`: per live variant, its points oldest first; and per shadow, the
/// overlap@k and RBO distributions since start (bucket upper bound → count in that bucket).
pub(super) fn view(a: &Admin) -> Value {
    let snap = a.proxy.runtime.snapshot.load();
    let series = a.series.lock().unwrap_or_else(|e| e.into_inner());
    let variants: Vec<Value> = snap
        .variants
        .iter()
        .map(|v| {
            let points: Vec<Value> = series
                .ring(&v.name)
                .into_iter()
                .flat_map(|r| r.points())
                .map(|p| {
                    json!({
                        "t": p.t,
                        "secs": p.secs,
                        "requests": p.requests,
                        "errors": p.errors,
                        "rps": p.rps(),
                        "error_rate": p.error_rate(),
                        "p50_ms": p.p50_ms,
                        "p99_ms": p.p99_ms,
                    })
                })
                .collect();
            json!({"name": &*v.name, "model": &*v.model.name, "champion": v.champion, "points": points})
        })
        .collect();
    drop(series);
    let metrics = &a.proxy.shared.metrics;
    let distribution = |name, shadow: &str| {
        let cum = metrics.read_histogram(name, &[("shadow", shadow)]).unwrap_or_default();
        let mut prev = 0;
        cum.iter()
            .zip(RATIO_BUCKETS.iter().map(|b| json!(b)).chain([json!("+Inf")]))
            .map(|(c, le)| {
                let n = c - prev;
                prev = *c;
                json!({"le": le, "count": n})
            })
            .collect::<Vec<_>>()
    };
    let shadows: Vec<Value> = snap
        .plan
        .shadows
        .iter()
        .filter_map(|s| snap.models.get(s.model))
        .map(|m| {
            let name = &*m.name;
            json!({"model": name, "overlap_at_k": distribution(SHADOW_OVERLAP, name), "rbo": distribution(SHADOW_RBO, name)})
        })
        .collect();
    json!({
        "step_seconds": STEP_SECS,
        "capacity": POINTS,
        "window_seconds": STEP_SECS * POINTS as u64,
        "variants": variants,
        "shadows": shadows,
    })
}
