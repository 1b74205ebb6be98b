//! The `interleaving` section of `GET /admin/experiment`: per interleaving arm, what it served,
//! the clicks credited to each of its models, the per-request outcomes and the preference for B
//! with its interval and sign test (`interleave::stats`). This process's counts, since the arm
//! began comparing its current pair of models.

use serde_json::{json, Map, Value};

use crate::interleave::counters::UNCREDITED;
use crate::interleave::stats::{anytime_valid, preference};
use crate::interleave::{Missing, Team};
use crate::metrics::FEEDBACK_EVENTS;
use crate::snapshot::Snapshot;

/// One entry per interleaving arm, in config order.
pub fn section(snap: &Snapshot) -> Value {
    snap.variants
        .iter()
        .filter_map(|v| v.interleave.as_deref().map(|arm| (v, arm)))
        .map(|(v, arm)| {
            let t = arm.counters.snapshot();
            let model = |team: Team| {
                let m = arm.model(team);
                json!({"name": &*m.name, "version": &*m.version})
            };
            let missing = |team: Team| -> Map<String, Value> {
                Missing::ALL
                    .iter()
                    .enumerate()
                    .map(|(i, m)| (m.as_str().to_owned(), json!(t.degraded[team.index()][i])))
                    .collect()
            };
            let events = |team: Team| -> Map<String, Value> {
                FEEDBACK_EVENTS
                    .iter()
                    .enumerate()
                    .map(|(i, e)| ((*e).to_owned(), json!(t.credited[team.index()][i])))
                    .collect()
            };
            let click = FEEDBACK_EVENTS.iter().position(|e| *e == "click").unwrap_or(0);
            let uncredited: Map<String, Value> =
                UNCREDITED.iter().zip(t.uncredited).map(|(r, n)| ((*r).to_owned(), json!(n))).collect();
            let p = preference(t.outcomes);
            let settings = snap.plan.experiment.settings();
            let sequential = anytime_valid(t.outcomes, settings.msprt_tau, settings.sequential_alpha);
            json!({
                "variant": &*v.name,
                "weight": v.weight_percent,
                "models": {"a": model(Team::A), "b": model(Team::B)},
                "interleave_wait_ms": arm.plan.wait.as_millis() as u64,
                "k": arm.plan.k,
                "impressions": t.merged,
                "degraded": {
                    "total": t.degraded.iter().flatten().sum::<u64>(),
                    "a_missing": missing(Team::A),
                    "b_missing": missing(Team::B),
                },
                "failed": t.failed,
                "positions_shown": {"a": t.shown[0], "b": t.shown[1]},
                "clicks": {"a": t.credited[0][click], "b": t.credited[1][click], "repeat": t.repeat_clicks},
                "events": {"a": events(Team::A), "b": events(Team::B)},
                "uncredited": uncredited,
                "outcomes": {
                    "requests_with_clicks": t.outcomes.total(),
                    "wins_a": t.outcomes.wins_a,
                    "wins_b": t.outcomes.wins_b,
                    "ties": t.outcomes.ties,
                },
                "preference": {
                    "delta": p.delta,
                    "ci_low": p.ci_low,
                    "ci_high": p.ci_high,
                    "confidence": 0.95,
                    "favours": p.favours,
                },
                "sign_test": {
                    "decisive": t.outcomes.wins_a + t.outcomes.wins_b,
                    "p_value": p.p_value,
                    "method": p.method,
                },
                // Valid however often it is read (mSPRT); null below its minimum of requests.
                "anytime_valid": sequential.map(|s| json!({
                    "p_value": s.p_value,
                    "ci_low": s.low,
                    "ci_high": s.high,
                    "alpha": settings.sequential_alpha,
                    "tau": settings.msprt_tau,
                })),
            })
        })
        .collect::<Vec<_>>()
        .into()
}
