//! `GET /admin/guard`: what the guard sees, as the guard loop last saw it (the fleet's windows
//! when `[fleet]` is healthy, `"scope": "fleet"`, else this replica's) — per challenger, each
//! trigger's value against its threshold (`guard::readings`), the ramp's step and the time to
//! the next one — plus the last rollback from the audit trail. The loop publishes after every
//! evaluation; reading it costs the admin request nothing but a clone.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::guard_task::Hold;
use super::Admin;
use crate::config::GuardPlan;
use crate::guard::readings::readings;
use crate::guard::Tracker;
use crate::snapshot::Snapshot;

/// Called by the guard loop after each evaluation.
pub(super) fn publish(
    admin: &Admin,
    snap: &Snapshot,
    cfg: &GuardPlan,
    trackers: &HashMap<String, Tracker>,
    holding: &HashMap<String, Hold>,
    fleet: Option<&crate::fleet::Fleet>,
) {
    let empty = Tracker::default();
    let variants: Vec<Value> = snap
        .variants
        .iter()
        .filter(|v| !v.champion)
        .map(|v| {
            let tracker = trackers.get(&*v.name).unwrap_or(&empty);
            let ramp = cfg.ramp.as_ref().map(|ramp| {
                let next = ramp.steps.iter().copied().find(|s| *s > v.weight_percent);
                let hold = holding.get(&*v.name).filter(|h| h.weight == v.weight_percent && v.weight_percent > 0.0);
                let held = hold.map(|h| h.since.elapsed());
                // The hold is measured on the counters it started from: the fleet's or ours.
                let in_hold = hold.map(|h| {
                    let now = match fleet.filter(|_| h.fleet) {
                        Some(f) => f.sample(&v.name, 0),
                        None => v.state.guard.sample(0),
                    };
                    now.minus(&h.start).requests
                });
                let waiting = match (next, held, in_hold) {
                    (None, ..) => "top step",
                    (_, None, _) => "not ramping (weight 0)",
                    (_, Some(h), _) if h < ramp.hold => "hold",
                    (_, _, Some(n)) if n < cfg.min_requests.max(1) => "traffic",
                    _ => "healthy hold, stepping",
                };
                json!({
                    "steps": ramp.steps,
                    "weight": v.weight_percent,
                    "next_step": next,
                    "hold_secs": ramp.hold.as_secs_f64(),
                    "held_secs": held.map(|h| h.as_secs_f64()),
                    "time_to_next_secs": next.and(held).map(|h| ramp.hold.saturating_sub(h).as_secs_f64()),
                    "requests_in_hold": in_hold,
                    "min_requests": cfg.min_requests,
                    "waiting_for": waiting,
                })
            });
            json!({
                "name": &*v.name,
                "model": &*v.model.name,
                "weight": v.weight_percent,
                "watched": v.weight_percent > 0.0,
                "triggers": readings(cfg, tracker),
                "ramp": ramp,
            })
        })
        .collect();
    let view = json!({
        "enabled": true,
        "scope": if fleet.is_some() { "fleet" } else { "local" },
        "version": snap.version,
        "min_requests": cfg.min_requests,
        "variants": variants,
    });
    *admin.guard_view.lock().unwrap_or_else(|e| e.into_inner()) = view;
}

/// Called by the guard loop while no `[guard]` is configured.
pub(super) fn publish_disabled(admin: &Admin) {
    *admin.guard_view.lock().unwrap_or_else(|e| e.into_inner()) = json!({"enabled": false, "variants": []});
}

/// The published view plus the latest rollback in the audit trail (operator or guard).
pub(super) fn view(admin: &Admin) -> Value {
    let mut v = admin.guard_view.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if v.is_null() {
        v = json!({"enabled": false, "variants": []});
    }
    let last = admin.audit.recent(usize::MAX).into_iter().rev().find(|r| r.action == "rollback");
    v["last_rollback"] = last.map_or(Value::Null, |r| serde_json::to_value(r).unwrap_or(Value::Null));
    v
}
