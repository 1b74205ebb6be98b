//! What one replica has counted, as plain values that merge exactly. Per variant: the guard's
//! outcome counters, a latency histogram and the experiment's user sketch and events; per shadow:
//! its since-start and last-five-minute tallies. The admin views (`/admin/status`,
//! `/admin/experiment`, `/admin/shadow`) and the guard's decisions are pure functions of a
//! [`Tallies`], so the same code answers for this process (read from its atomics) and for the
//! fleet (the merge of every live replica's flushed tallies, see `fleet`).
//!
//! Merging is exact: counts and sums add, histograms add bucket by bucket, and the distinct-user
//! sketches merge by register maximum — the fleet's user count is the estimate of the union, not
//! a sum of replica estimates (which would count a user seen by two replicas twice).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::experiment;
use crate::guard::Sample;
use crate::shadow::stats::Tally as ShadowCounts;
use crate::snapshot::Snapshot;

/// Everything one replica (or, merged, the fleet) counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tallies {
    pub variants: BTreeMap<String, VariantTally>,
    pub shadows: BTreeMap<String, ShadowTally>,
    /// Weight epochs and the exact user sample (SRM, per-user conversion, strata): experiment-wide,
    /// because a user's first exposure is across variants.
    #[serde(default)]
    pub cohorts: experiment::Cohorts,
}

/// One variant's counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VariantTally {
    /// Requests, errors, model errors, throttles and the latency sum (`at_ms` unused: 0).
    pub outcomes: Sample,
    /// Recommend latency, end to end.
    pub latency: LatencyHist,
    pub experiment: experiment::Tally,
}

/// One shadow model's comparison counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ShadowTally {
    pub since_start: ShadowCounts,
    pub last_5m: ShadowCounts,
}

impl Tallies {
    /// This process's counters for the variants and shadows of `snap`.
    pub fn local(snap: &Snapshot) -> Tallies {
        let variants = snap
            .variants
            .iter()
            .map(|v| {
                let t = VariantTally {
                    outcomes: v.state.guard.sample(0),
                    latency: v.state.guard.latency(),
                    experiment: v.state.experiment.tally(),
                };
                (v.name.to_string(), t)
            })
            .collect();
        Tallies {
            variants,
            shadows: crate::shadow::tallies(&snap.shadows),
            cohorts: snap.sampler.read(&snap.epoch, experiment::now_ms()),
        }
    }

    /// Adds `other` into `self`, variant by variant and shadow by shadow.
    pub fn merge(&mut self, other: &Tallies) {
        for (name, t) in &other.variants {
            self.variants.entry(name.clone()).or_default().merge(t);
        }
        for (name, t) in &other.shadows {
            let s = self.shadows.entry(name.clone()).or_default();
            s.since_start.merge(&t.since_start);
            s.last_5m.merge(&t.last_5m);
        }
        self.cohorts.merge(&other.cohorts);
    }

    /// The variant's counters, zero when nobody counted it.
    pub fn variant(&self, name: &str) -> VariantTally {
        self.variants.get(name).cloned().unwrap_or_default()
    }
}

impl VariantTally {
    pub fn merge(&mut self, o: &VariantTally) {
        self.outcomes = self.outcomes.plus(&o.outcomes);
        self.latency.merge(&o.latency);
        self.experiment.merge(&o.experiment);
    }
}

/// Buckets of a log-scale latency histogram: bucket i covers up to 50 µs × 1.25^i (50 µs … ~2 min).
pub const LAT_BUCKETS: usize = 64;
const LAT_BASE_US: f64 = 50.0;
const LAT_GROWTH: f64 = 1.25;

fn bucket_of(micros: f64) -> usize {
    let i = if micros <= LAT_BASE_US { 0 } else { ((micros / LAT_BASE_US).ln() / LAT_GROWTH.ln()).ceil() as usize };
    i.min(LAT_BUCKETS - 1)
}

/// A log-scale latency histogram as plain counts (serialised without its trailing empty buckets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyHist {
    counts: [u64; LAT_BUCKETS],
    total: u64,
}

impl Default for LatencyHist {
    fn default() -> Self {
        LatencyHist { counts: [0; LAT_BUCKETS], total: 0 }
    }
}

impl LatencyHist {
    pub fn record(&mut self, micros: f64) {
        self.counts[bucket_of(micros)] += 1;
        self.total += 1;
    }

    pub fn merge(&mut self, other: &LatencyHist) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a = a.saturating_add(*b);
        }
        self.total = self.total.saturating_add(other.total);
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Upper bound (ms) of the bucket holding quantile `q`; `None` when empty. Accurate to 25%.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            seen += *c;
            if seen >= rank {
                return Some(LAT_BASE_US * LAT_GROWTH.powi(i as i32) / 1_000.0);
            }
        }
        None
    }
}

impl Serialize for LatencyHist {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let used = self.counts.iter().rposition(|c| *c > 0).map_or(0, |i| i + 1);
        self.counts[..used].serialize(s)
    }
}

impl<'de> Deserialize<'de> for LatencyHist {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v: Vec<u64> = Vec::deserialize(d)?;
        if v.len() > LAT_BUCKETS {
            return Err(serde::de::Error::invalid_length(v.len(), &"at most 64 latency buckets"));
        }
        let mut h = LatencyHist::default();
        for (slot, c) in h.counts.iter_mut().zip(v) {
            *slot = c;
            h.total = h.total.saturating_add(c);
        }
        Ok(h)
    }
}

/// The same histogram in relaxed atomics, for the request path (one increment per request).
pub struct AtomicLatency {
    counts: [AtomicU64; LAT_BUCKETS],
}

impl Default for AtomicLatency {
    fn default() -> Self {
        AtomicLatency { counts: std::array::from_fn(|_| AtomicU64::new(0)) }
    }
}

impl std::fmt::Debug for AtomicLatency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AtomicLatency")
    }
}

impl AtomicLatency {
    #[inline]
    pub fn record(&self, micros: u64) {
        self.counts[bucket_of(micros as f64)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn read(&self) -> LatencyHist {
        let mut h = LatencyHist::default();
        for (slot, c) in h.counts.iter_mut().zip(&self.counts) {
            *slot = c.load(Ordering::Relaxed);
            h.total += *slot;
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_within_bucket_precision() {
        let mut h = LatencyHist::default();
        for ms in 1..=100 {
            h.record(ms as f64 * 1_000.0);
        }
        let p50 = h.quantile_ms(0.5).unwrap();
        let p99 = h.quantile_ms(0.99).unwrap();
        assert!((50.0..=62.5).contains(&p50), "{p50}");
        assert!((99.0..=124.0).contains(&p99), "{p99}");
        assert_eq!(LatencyHist::default().quantile_ms(0.5), None);
        h.record(1e12);
        h.record(0.0);
        assert_eq!(h.total(), 102);
    }

    #[test]
    fn histogram_round_trips_and_merges_exactly() {
        let (mut a, mut b) = (LatencyHist::default(), LatencyHist::default());
        for us in [10.0, 60.0, 1_000.0, 250_000.0] {
            a.record(us);
        }
        b.record(60.0);
        let text = serde_json::to_string(&a).unwrap();
        assert!(text.starts_with('[') && text.len() < 200, "{text}");
        let back: LatencyHist = serde_json::from_str(&text).unwrap();
        assert_eq!(back, a);
        a.merge(&b);
        assert_eq!(a.total(), 5);
        assert_eq!(a.counts[bucket_of(60.0)], 2);
        assert!(serde_json::from_str::<LatencyHist>(&format!("{:?}", vec![1u64; 65])).is_err());
        let atomic = AtomicLatency::default();
        atomic.record(60);
        atomic.record(60);
        assert_eq!(atomic.read().counts[bucket_of(60.0)], 2);
    }

    #[test]
    fn tallies_merge_by_name() {
        let mut a = Tallies::default();
        let mut v = VariantTally::default();
        v.outcomes.requests = 3;
        v.outcomes.errors = 1;
        a.variants.insert("champion".into(), v.clone());
        let mut b = Tallies::default();
        v.outcomes.requests = 4;
        b.variants.insert("champion".into(), v.clone());
        b.variants.insert("challenger".into(), v);
        a.merge(&b);
        assert_eq!(a.variant("champion").outcomes.requests, 7);
        assert_eq!(a.variant("champion").outcomes.errors, 2);
        assert_eq!(a.variant("challenger").outcomes.requests, 4);
        assert_eq!(a.variant("nobody").outcomes.requests, 0);
    }
}
