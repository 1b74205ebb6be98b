//! The admin API's read views — `/admin/status`, `/admin/experiment` — as pure functions of the
//! live snapshot (which variants exist, their weights) and a [`Tallies`] (what was counted): this
//! process's own counters, or the fleet's merged ones. The same code answers both scopes.

use serde_json::{json, Value};

use super::error::AdminError;
use crate::snapshot::Snapshot;
use crate::tally::Tallies;

/// Per variant: requests, users, events, conversion (`event` per user) with a 95% interval, and
/// each challenger's two-proportion z-test against the champion.
pub fn experiment(snap: &Snapshot, tallies: &Tallies, event: &str) -> Result<Value, AdminError> {
    use crate::experiment::{two_proportion_p, wilson};
    let kind = crate::metrics::FEEDBACK_EVENTS
        .iter()
        .position(|e| *e == event)
        .ok_or_else(|| AdminError::UnknownEvent { allowed: crate::metrics::FEEDBACK_EVENTS.join(", ") })?;
    let champion = snap.variants.iter().find(|v| v.champion);
    let (cx, cn) = champion.map_or((0, 0), |c| {
        let t = tallies.variant(&c.name);
        (t.experiment.events(kind), t.experiment.users.estimate())
    });
    let variants: Vec<_> = snap
        .variants
        .iter()
        .map(|v| {
            let t = tallies.variant(&v.name);
            let e = &t.experiment;
            let (x, n) = (e.events(kind), e.users.estimate());
            let events: serde_json::Map<_, _> = crate::metrics::FEEDBACK_EVENTS
                .iter()
                .enumerate()
                .map(|(i, name)| (name.to_string(), json!(e.events(i))))
                .collect();
            let conversion = wilson(x, n);
            let p = (!v.champion).then(|| two_proportion_p(x, n, cx, cn)).flatten();
            let champion_rate = if cn == 0 { 0.0 } else { cx as f64 / cn as f64 };
            json!({
                "name": &*v.name,
                "model": &*v.model.name,
                "weight": v.weight_percent,
                "champion": v.champion,
                "requests": t.outcomes.requests,
                "users": n,
                "events": events,
                "conversion": conversion,
                "p_value_vs_champion": p,
                "significantly_worse": p.is_some_and(|p| p < 0.05 && conversion.rate < champion_rate),
            })
        })
        .collect();
    Ok(json!({"conversion_event": event, "version": snap.version, "variants": variants}))
}

pub fn status(snap: &Snapshot, tallies: &Tallies) -> Value {
    let variants: Vec<_> = snap
        .variants
        .iter()
        .map(|v| {
            let t = tallies.variant(&v.name);
            let s = t.outcomes;
            let rate = |n: u64| if s.requests == 0 { 0.0 } else { n as f64 / s.requests as f64 };
            json!({
                "name": &*v.name,
                "model": &*v.model.name,
                "version": &*v.model.version,
                "weight": v.weight_percent,
                "champion": v.champion,
                "requests": s.requests,
                "error_rate": rate(s.errors),
                "model_errors": s.invocation_errors,
                "mean_latency_ms": if s.requests == 0 { 0.0 } else { s.latency_us as f64 / s.requests as f64 / 1_000.0 },
                "p50_latency_ms": t.latency.quantile_ms(0.5),
                "p99_latency_ms": t.latency.quantile_ms(0.99),
            })
        })
        .collect();
    json!({"version": snap.version, "source": snap.source.to_string(), "variants": variants})
}
