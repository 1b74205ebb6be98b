//! Fleet arithmetic over the replicas' flushed tallies. Pure: records and clocks are arguments.
//!
//! Each replica's item holds its *cumulative* counters since it started (not deltas), so a lost
//! or repeated write never loses or double-counts anything: the next write carries everything.
//! Two views are built from the same records:
//! - [`view`]: the sum over replicas that flushed within the last two intervals — what the admin
//!   API answers with `"scope": "fleet"`;
//! - [`Accumulator`]: a fleet-wide cumulative sample per variant that only ever grows, which the
//!   guard's sliding windows run on exactly as on one process's counters. It adds each replica's
//!   growth since its previous record, so a replica that stops or dies keeps what it contributed
//!   instead of making the fleet's totals drop (which would hide a window's errors).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::guard::Sample;
use crate::tally::Tallies;

/// One replica's item as read back from the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaRecord {
    pub id: String,
    /// Wall-clock ms of the flush.
    pub flushed_at_ms: u64,
    pub tallies: Tallies,
}

/// A replica counted in a fleet view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplicaInfo {
    pub id: String,
    pub last_flush_ms: u64,
}

/// The fleet's merged counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetView {
    pub replicas: Vec<ReplicaInfo>,
    pub merged: Tallies,
}

/// Whether a replica that flushed at `flushed_at_ms` counts as live at `now_ms`.
pub fn live(flushed_at_ms: u64, now_ms: u64, interval_ms: u64) -> bool {
    now_ms.saturating_sub(flushed_at_ms) <= 2 * interval_ms
}

/// The sum over the replicas that flushed within the last two intervals.
pub fn view(records: &[ReplicaRecord], now_ms: u64, interval_ms: u64) -> FleetView {
    let mut v = FleetView::default();
    for r in records.iter().filter(|r| live(r.flushed_at_ms, now_ms, interval_ms)) {
        v.merged.merge(&r.tallies);
        v.replicas.push(ReplicaInfo { id: r.id.clone(), last_flush_ms: r.flushed_at_ms });
    }
    v.replicas.sort_by(|a, b| a.id.cmp(&b.id));
    v
}

/// A fleet-wide cumulative sample per variant that never decreases.
#[derive(Debug, Default, Clone)]
pub struct Accumulator {
    /// Each replica's last outcomes per variant.
    seen: HashMap<String, BTreeMap<String, Sample>>,
    total: BTreeMap<String, Sample>,
    primed: bool,
}

impl Accumulator {
    /// Folds in a fresh read of the table. On the first read every replica's history is taken
    /// as the baseline (it happened before this replica watched, so no window may count it at
    /// once); a replica first seen later has started since, and all it counted is new.
    pub fn update(&mut self, records: &[ReplicaRecord]) {
        for r in records {
            let prev = self.seen.entry(r.id.clone()).or_default();
            for (variant, t) in &r.tallies.variants {
                let now = t.outcomes;
                let before = prev.get(variant).copied();
                let delta = match before {
                    // A replica restarted under the same id counts from zero again.
                    Some(b) if now.requests < b.requests => now,
                    Some(b) => now.minus(&b),
                    None if !self.primed => Sample::default(),
                    // A replica (or a variant) that appeared since counts in full.
                    None => now,
                };
                let total = self.total.entry(variant.clone()).or_default();
                *total = total.plus(&Sample { at_ms: 0, ..delta });
                prev.insert(variant.clone(), now);
            }
        }
        // Forget replicas whose items are gone (expired), so the map stays bounded.
        self.seen.retain(|id, _| records.iter().any(|r| &r.id == id));
        self.primed = true;
    }

    /// The fleet's cumulative outcomes for `variant`, stamped `at_ms` for the guard's tracker.
    pub fn sample(&self, variant: &str, at_ms: u64) -> Sample {
        Sample { at_ms, ..self.total.get(variant).copied().unwrap_or_default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tally::VariantTally;

    fn record(id: &str, at: u64, variant: &str, requests: u64, errors: u64) -> ReplicaRecord {
        let mut tallies = Tallies::default();
        let mut t = VariantTally::default();
        t.outcomes.requests = requests;
        t.outcomes.errors = errors;
        t.outcomes.latency_us = requests * 1_000;
        tallies.variants.insert(variant.into(), t);
        ReplicaRecord { id: id.into(), flushed_at_ms: at, tallies }
    }

    #[test]
    fn view_sums_live_replicas_only() {
        let recs = [record("a", 10_000, "c", 5, 1), record("b", 9_000, "c", 7, 2), record("dead", 0, "c", 100, 100)];
        let v = view(&recs, 11_000, 1_000);
        assert_eq!(v.merged.variant("c").outcomes.requests, 12);
        assert_eq!(v.merged.variant("c").outcomes.errors, 3);
        let ids: Vec<_> = v.replicas.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"], "b flushed two intervals ago: still live; `dead` is not");
        assert!(live(9_000, 11_000, 1_000) && !live(8_999, 11_000, 1_000));
    }

    #[test]
    fn accumulator_grows_by_each_replicas_growth() {
        let mut acc = Accumulator::default();
        // First read: history before we watched is the baseline, not a burst in the window.
        acc.update(&[record("a", 0, "c", 1_000, 900), record("b", 0, "c", 50, 0)]);
        assert_eq!(acc.sample("c", 7).requests, 0);
        assert_eq!(acc.sample("c", 7).at_ms, 7);
        acc.update(&[record("a", 1, "c", 1_010, 903), record("b", 1, "c", 60, 1)]);
        let s = acc.sample("c", 0);
        assert_eq!((s.requests, s.errors), (20, 4));
        // A new replica (started since) counts in full; a vanished one keeps what it gave.
        acc.update(&[record("a", 2, "c", 1_010, 903), record("new", 2, "c", 5, 5)]);
        let s = acc.sample("c", 0);
        assert_eq!((s.requests, s.errors), (25, 9));
        // An item reappearing after it was gone counts as a new replica. (Items are only deleted
        // once their replica has been silent for ten intervals, so a live one never does this.)
        acc.update(&[record("a", 3, "c", 1_010, 903), record("b", 3, "c", 61, 1), record("new", 3, "c", 5, 5)]);
        assert_eq!(acc.sample("c", 0).requests, 86);
        // A restart under the same id (counters reset) never subtracts.
        acc.update(&[record("a", 4, "c", 3, 3)]);
        let s = acc.sample("c", 0);
        assert_eq!((s.requests, s.errors), (89, 13));
        assert_eq!(acc.sample("other", 0).requests, 0);
    }
}
