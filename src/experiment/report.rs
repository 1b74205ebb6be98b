//! The statistics `/admin/experiment` reports and the guard decides on, as pure functions of the
//! experiment's [`Cohorts`] (this replica's or the fleet's merge) and the settings: the SRM check
//! per epoch and combined, per-user conversion per epoch, the stratified difference of each
//! challenger against the champion with its sequential test, and the re-randomisation mark.
//!
//! Strata are first-exposure cohorts: a user belongs to the epoch in which any variant first
//! served them and to that variant (intent to treat), so strata are disjoint and each epoch's new
//! users were assigned by that epoch's weights alone — exactly what the SRM check needs, and why
//! a ramp's returning users, moved from the champion to the challenger, never look like a broken
//! split. Users moved by a later weight change are counted (`moved`) and stay with their cohort.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::cohort::{Cohorts, Epoch, Exposure};
use crate::stats::sequential::msprt;
use crate::stats::srm::{combine, either, goodness_of_fit, Fit};
use crate::stats::strata::{stratified, Arm, Stratum};
use crate::stats::Settings;

/// Epoch indices in their order (first seen first).
fn ordered(c: &Cohorts) -> Vec<usize> {
    let mut order: Vec<usize> = (0..c.epochs.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&c.epochs[a], &c.epochs[b]);
        (x.since_ms, x.since_version, &x.id).cmp(&(y.since_ms, y.since_version, &y.id))
    });
    order
}

/// Sampled users per (epoch, variant name): exposed, and converted for each kind bit.
#[derive(Debug, Clone, Copy, Default)]
struct Cell {
    users: u64,
    converted: [u64; 7],
    moved: u64,
}

fn cells(c: &Cohorts) -> BTreeMap<(usize, String), Cell> {
    let mut out: BTreeMap<(usize, String), Cell> = BTreeMap::new();
    for u in &c.users {
        let Exposure::At { epoch, variant } = u.exposure else { continue };
        let Some(name) = c.variants.get(usize::from(variant)) else { continue };
        let cell = out.entry((usize::from(epoch), name.clone())).or_default();
        cell.users += 1;
        cell.moved += u64::from(u.moved);
        for (k, n) in cell.converted.iter_mut().enumerate() {
            *n += u64::from(u.kinds >> k & 1);
        }
    }
    out
}

/// Requests per sampled user's variance-to-mean ratio (`Σ R² / Σ R`, at least 1): how much
/// more a request count varies than a count of independent units.
fn dispersion(c: &Cohorts) -> f64 {
    let (mut sum, mut squares) = (0.0, 0.0);
    for u in c.users.iter().filter(|u| matches!(u.exposure, Exposure::At { .. })) {
        let r = f64::from(u.requests.max(1));
        sum += r;
        squares += r * r;
    }
    if sum == 0.0 {
        1.0
    } else {
        (squares / sum).max(1.0)
    }
}

fn fit_json(f: &Result<Fit, crate::stats::srm::NotTested>, names: &[&String], observed: &[f64]) -> Value {
    match f {
        Ok(f) => json!({
            "p_value": f.p_value,
            "statistic": if f.statistic.is_finite() { json!(f.statistic) } else { json!(null) },
            "df": f.df,
            "expected": names.iter().zip(&f.expected).map(|(n, e)| ((*n).clone(), json!(e))).collect::<serde_json::Map<_, _>>(),
            "observed": names.iter().zip(observed).map(|(n, o)| ((*n).clone(), json!(*o as u64))).collect::<serde_json::Map<_, _>>(),
        }),
        Err(crate::stats::srm::NotTested::TooFew) => json!({"p_value": null, "not_tested": "too few users yet"}),
        Err(crate::stats::srm::NotTested::OneCell) => json!({"p_value": null, "not_tested": "one variant only"}),
    }
}

/// The SRM check: per epoch and combined, on sampled distinct users and on all requests.
#[derive(Debug, Clone)]
pub struct Srm {
    /// Bonferroni of the users and requests tests; `None` until either can be made.
    pub p_value: Option<f64>,
    pub flagged: bool,
    /// Distinct (sampled) users per variant over the tested epochs, and what the weights expect.
    pub expected: BTreeMap<String, f64>,
    pub observed: BTreeMap<String, u64>,
    pub users: Option<Fit>,
    pub requests: Option<Fit>,
    /// Per epoch id: its users test and requests test as JSON.
    pub epochs: BTreeMap<String, Value>,
}

impl Srm {
    pub fn to_json(&self, s: &Settings, sample_rate: f64) -> Value {
        let fit =
            |f: &Option<Fit>| f.as_ref().map(|f| json!({"p_value": f.p_value, "statistic": f.statistic, "df": f.df}));
        json!({
            "p_value": self.p_value,
            "flagged": self.flagged,
            "alpha": s.srm_alpha,
            "expected": self.expected,
            "observed": self.observed,
            "unit": "distinct users (sample)",
            "sample_rate": sample_rate,
            "users": fit(&self.users),
            "requests": fit(&self.requests),
        })
    }
}

/// Runs the SRM check over every kept epoch.
pub fn srm(c: &Cohorts, s: &Settings) -> Srm {
    let cells = cells(c);
    let phi = dispersion(c);
    let (mut user_fits, mut request_fits) = (Vec::new(), Vec::new());
    let mut expected: BTreeMap<String, f64> = BTreeMap::new();
    let mut observed: BTreeMap<String, u64> = BTreeMap::new();
    let mut epochs = BTreeMap::new();
    for i in ordered(c) {
        let e = &c.epochs[i];
        // Every variant with a weight or with users in this epoch (the latter only if broken).
        let mut names: Vec<&String> = e.weights.keys().collect();
        for ((ei, name), _) in cells.range((i, String::new())..) {
            if *ei != i {
                break;
            }
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let weights: Vec<f64> = names.iter().map(|n| e.weights.get(*n).copied().unwrap_or(0.0)).collect();
        let users: Vec<f64> =
            names.iter().map(|n| cells.get(&(i, (*n).clone())).map_or(0.0, |c| c.users as f64)).collect();
        let requests: Vec<f64> = names.iter().map(|n| e.counts.get(*n).map_or(0.0, |c| c.requests as f64)).collect();
        let uf = goodness_of_fit(&users, &weights, 1.0);
        let rf = goodness_of_fit(&requests, &weights, phi);
        epochs.insert(
            e.id.clone(),
            json!({"users": fit_json(&uf, &names, &users), "requests": fit_json(&rf, &names, &requests)}),
        );
        if let Ok(f) = &uf {
            for ((n, o), x) in names.iter().zip(&users).zip(&f.expected) {
                *observed.entry((*n).clone()).or_default() += *o as u64;
                *expected.entry((*n).clone()).or_default() += x;
            }
            user_fits.push(f.clone());
        }
        if let Ok(f) = rf {
            request_fits.push(f);
        }
    }
    let (users, requests) = (combine(&user_fits), combine(&request_fits));
    let p_value = either(users.as_ref().map(|f| f.p_value), requests.as_ref().map(|f| f.p_value));
    Srm { flagged: p_value.is_some_and(|p| p < s.srm_alpha), p_value, expected, observed, users, requests, epochs }
}

/// Whether a non-champion's weight went down from one epoch to the next (its users were
/// re-randomised: some moved back to the champion).
fn lowered(prev: &Epoch, next: &Epoch) -> Vec<String> {
    next.weights
        .iter()
        .filter(|(name, w)| **name != next.champion && prev.weights.get(*name).is_some_and(|p| **w < *p))
        .map(|(name, _)| name.clone())
        .collect()
}

/// Per epoch, per variant: users, converted (kind `kind`), moved, requests and events (exact).
pub fn epochs_json(c: &Cohorts, kind: usize, srm: &Srm) -> (Vec<Value>, Option<String>) {
    let cells = cells(c);
    let order = ordered(c);
    let mut out = Vec::new();
    let mut from = None;
    for (pos, &i) in order.iter().enumerate() {
        let e = &c.epochs[i];
        let lowered = pos.checked_sub(1).map(|p| lowered(&c.epochs[order[p]], e)).unwrap_or_default();
        if !lowered.is_empty() && from.is_none() {
            from = Some(e.id.clone());
        }
        let variants: serde_json::Map<String, Value> = e
            .weights
            .keys()
            .map(|name| {
                let cell = cells.get(&(i, name.clone())).copied().unwrap_or_default();
                let counts = e.counts.get(name).cloned().unwrap_or_default();
                let converted = cell.converted.get(kind).copied().unwrap_or(0);
                let v = json!({
                    "users": cell.users,
                    "converted_users": converted,
                    "conversion": super::wilson(converted, cell.users),
                    "moved_later": cell.moved,
                    "requests": counts.requests,
                    "events": counts.events.get(kind).copied().unwrap_or(0),
                });
                (name.clone(), v)
            })
            .collect();
        out.push(json!({
            "id": e.id,
            "since_version": e.since_version,
            "since_ms": e.since_ms,
            "champion": e.champion,
            "weights": e.weights,
            "re_randomised": !lowered.is_empty(),
            "lowered": lowered,
            "srm": srm.epochs.get(&e.id).cloned().unwrap_or(Value::Null),
            "variants": variants,
        }));
    }
    (out, from)
}

/// A challenger against the champion on conversion of `kind`, stratified by cohort epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    pub treatment: Arm,
    pub control: Arm,
    pub estimate: Option<crate::stats::strata::Estimate>,
    pub sequential: Option<crate::stats::sequential::Sequential>,
}

impl Comparison {
    /// The sequential test says the challenger converts worse (its confidence sequence is
    /// entirely below 0).
    pub fn significantly_worse(&self, s: &Settings) -> bool {
        self.sequential.is_some_and(|q| q.p_value < s.sequential_alpha && q.high < 0.0)
    }

    pub fn significantly_better(&self, s: &Settings) -> bool {
        self.sequential.is_some_and(|q| q.p_value < s.sequential_alpha && q.low > 0.0)
    }

    pub fn to_json(&self, s: &Settings) -> Value {
        json!({
            "metric": "difference in conversion (users with >= 1 event / exposed users), challenger - champion, stratified by epoch",
            "difference": self.estimate.map(|e| e.difference),
            "std_error": self.estimate.map(|e| e.variance.sqrt()),
            "strata": self.estimate.map_or(0, |e| e.strata),
            "p_value": self.sequential.map(|q| q.p_value),
            "confidence_sequence": self.sequential.map(|q| [q.low, q.high]),
            "alpha": s.sequential_alpha,
            "tau": s.msprt_tau,
            "significantly_worse": self.significantly_worse(s),
            "significantly_better": self.significantly_better(s),
        })
    }
}

/// The comparison of `challenger` with `champion` on `kind`.
pub fn compare(c: &Cohorts, champion: &str, challenger: &str, kind: usize, s: &Settings) -> Comparison {
    let cells = cells(c);
    let arm = |i: usize, name: &str| {
        let cell = cells.get(&(i, name.to_owned())).copied().unwrap_or_default();
        Arm { converted: cell.converted.get(kind).copied().unwrap_or(0), users: cell.users }
    };
    let strata: Vec<Stratum> =
        (0..c.epochs.len()).map(|i| Stratum { treatment: arm(i, challenger), control: arm(i, champion) }).collect();
    let pooled = crate::stats::strata::pooled(&strata);
    let estimate = stratified(&strata);
    let sequential = estimate.and_then(|e| msprt(&e, s.msprt_tau, s.sequential_alpha));
    Comparison { treatment: pooled.treatment, control: pooled.control, estimate, sequential }
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
