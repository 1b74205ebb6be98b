//! The admin API's read views — `/admin/status`, `/admin/experiment` — as pure functions of the
//! live snapshot (which variants exist, their weights) and a [`Tallies`] (what was counted): this
//! process's own counters, or the fleet's merged ones. The same code answers both scopes. The
//! statistics themselves are in `experiment::report` and `stats`.

use serde_json::{json, Value};

use super::error::AdminError;
use crate::snapshot::Snapshot;
use crate::tally::Tallies;

/// Per variant: requests, users, events, conversion (`event` per user) with a 95% interval, and
/// each challenger's two-proportion z-test against the champion (fixed-horizon: shown, never
/// decided on); then the SRM check, the weight epochs with their per-epoch numbers, and per
/// challenger the stratified difference with its sequential (always-valid) test.
pub fn experiment(snap: &Snapshot, tallies: &Tallies, event: &str) -> Result<Value, AdminError> {
    use crate::experiment::{report, two_proportion_p, wilson};
    let kind = crate::metrics::FEEDBACK_EVENTS
        .iter()
        .position(|e| *e == event)
        .ok_or_else(|| AdminError::UnknownEvent { allowed: crate::metrics::FEEDBACK_EVENTS.join(", ") })?;
    let settings = snap.plan.experiment.settings();
    let cohorts = &tallies.cohorts;
    let champion = snap.variants.iter().find(|v| v.champion);
    let champion_name = champion.map_or("", |c| &*c.name);
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
            let cmp = report::compare(cohorts, champion_name, &v.name, kind, &settings);
            let per_user = if v.champion { cmp.control } else { cmp.treatment };
            let mut out = json!({
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
                "metrics": {
                    "conversion": {
                        "definition": format!("users with >= 1 {event} event / exposed users"),
                        "basis": "user sample, first-exposure cohorts",
                        "converted_users": per_user.converted,
                        "exposed_users": per_user.users,
                        "rate": wilson(per_user.converted, per_user.users),
                    },
                    "events_per_exposed_user": {
                        "definition": format!("{event} events / exposed users"),
                        "basis": "all events / distinct users (HyperLogLog estimate)",
                        "events": x,
                        "exposed_users": n,
                        "value": if n == 0 { 0.0 } else { x as f64 / n as f64 },
                    },
                    "fixed_horizon": {
                        "definition": "conversion and p_value_vs_champion above: events / users, pooled two-proportion z-test; not valid under repeated looks, never used for decisions",
                    },
                },
            });
            if !v.champion {
                out["sequential"] = cmp.to_json(&settings);
            }
            out
        })
        .collect();
    let srm = report::srm(cohorts, &settings);
    let (epochs, re_randomised_from) = report::epochs_json(cohorts, kind, &srm);
    Ok(json!({
        "conversion_event": event,
        "version": snap.version,
        "epoch": &**snap.epoch.id(),
        "variants": variants,
        "srm": srm.to_json(&settings, cohorts.rate()),
        "epochs": epochs,
        "re_randomised": re_randomised_from.is_some(),
        "re_randomised_from": re_randomised_from,
        "sample": {"rate": cohorts.rate(), "users": cohorts.users.len(), "capacity": snap.plan.experiment.sample_users},
        // This replica's interleaving arms, whatever the scope (they are not in the fleet's tallies).
        "interleaving": super::interleaving::section(snap),
    }))
}

/// The SRM check alone (the gauge, the ramp and promote ask it).
pub fn srm(snap: &Snapshot, tallies: &Tallies) -> crate::experiment::report::Srm {
    crate::experiment::report::srm(&tallies.cohorts, &snap.plan.experiment.settings())
}

/// Whether the sequential test finds `challenger` significantly worse than the champion on
/// `event` (the ramp's `require_not_worse`).
pub fn sequentially_worse(snap: &Snapshot, tallies: &Tallies, challenger: &str, kind: usize) -> bool {
    let settings = snap.plan.experiment.settings();
    let champion = snap.variants.iter().find(|v| v.champion).map_or("", |c| &*c.name);
    crate::experiment::report::compare(&tallies.cohorts, champion, challenger, kind, &settings)
        .significantly_worse(&settings)
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
