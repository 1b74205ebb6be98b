//! Shadow summaries since start and over a sliding five-minute window. Pure: time is an argument.

use serde::{Deserialize, Serialize};

pub use crate::tally::LatencyHist;

/// Counts and sums for one period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub mirrored: u64,
    pub dropped: u64,
    pub failed: u64,
    pub compared: u64,
    pub overlap_sum: f64,
    pub rbo_sum: f64,
    pub top1_matches: u64,
    pub primary: LatencyHist,
    pub shadow: LatencyHist,
}

impl Tally {
    pub fn merge(&mut self, o: &Tally) {
        self.mirrored += o.mirrored;
        self.dropped += o.dropped;
        self.failed += o.failed;
        self.compared += o.compared;
        self.overlap_sum += o.overlap_sum;
        self.rbo_sum += o.rbo_sum;
        self.top1_matches += o.top1_matches;
        self.primary.merge(&o.primary);
        self.shadow.merge(&o.shadow);
    }

    pub fn summary(&self) -> Summary {
        let mean = |sum: f64| (self.compared > 0).then(|| sum / self.compared as f64);
        Summary {
            mirrored: self.mirrored,
            dropped: self.dropped,
            failed: self.failed,
            compared: self.compared,
            mean_overlap_at_k: mean(self.overlap_sum),
            mean_rbo: mean(self.rbo_sum),
            top1_match_rate: mean(self.top1_matches as f64),
            primary_latency_ms: Percentiles { p50: self.primary.quantile_ms(0.5), p99: self.primary.quantile_ms(0.99) },
            shadow_latency_ms: Percentiles { p50: self.shadow.quantile_ms(0.5), p99: self.shadow.quantile_ms(0.99) },
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

/// The JSON shape of one period in `/admin/shadow`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub mirrored: u64,
    pub dropped: u64,
    pub failed: u64,
    pub compared: u64,
    pub mean_overlap_at_k: Option<f64>,
    pub mean_rbo: Option<f64>,
    pub top1_match_rate: Option<f64>,
    pub primary_latency_ms: Percentiles,
    pub shadow_latency_ms: Percentiles,
}

/// 30 slots of 10 s: the last five minutes, give or take the current slot.
const SLOTS: usize = 30;
const SLOT_SECS: u64 = 10;

/// Since-start totals plus a ring of recent slots.
#[derive(Debug, Clone)]
pub struct Window {
    total: Tally,
    slots: Vec<(u64, Tally)>,
}

impl Default for Window {
    fn default() -> Self {
        Window { total: Tally::default(), slots: vec![(u64::MAX, Tally::default()); SLOTS] }
    }
}

impl Window {
    /// Applies `f` to the totals and to the slot for `now_secs`.
    pub fn record(&mut self, now_secs: u64, f: impl Fn(&mut Tally)) {
        f(&mut self.total);
        let epoch = now_secs / SLOT_SECS;
        let slot = &mut self.slots[(epoch % SLOTS as u64) as usize];
        if slot.0 != epoch {
            *slot = (epoch, Tally::default());
        }
        f(&mut slot.1);
    }

    pub fn since_start(&self) -> Summary {
        self.total.summary()
    }

    /// The since-start totals and the last five minutes' merged slots, as plain counts.
    pub fn tallies(&self, now_secs: u64) -> (Tally, Tally) {
        (self.total, self.recent(now_secs))
    }

    /// The slots whose epoch lies within the last five minutes of `now_secs`.
    pub fn last_5m(&self, now_secs: u64) -> Summary {
        self.recent(now_secs).summary()
    }

    fn recent(&self, now_secs: u64) -> Tally {
        let now = now_secs / SLOT_SECS;
        let mut t = Tally::default();
        for (epoch, tally) in &self.slots {
            if *epoch != u64::MAX && *epoch <= now && now - *epoch < SLOTS as u64 {
                t.merge(tally);
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_forgets_old_slots() {
        let mut w = Window::default();
        w.record(0, |t| t.mirrored += 1);
        w.record(100, |t| t.dropped += 2);
        assert_eq!(w.last_5m(100).mirrored, 1);
        assert_eq!(w.last_5m(299).mirrored, 1);
        assert_eq!(w.last_5m(300).mirrored, 0);
        assert_eq!(w.last_5m(300).dropped, 2);
        assert_eq!(w.since_start().mirrored, 1);
        // A slot reused after a full turn starts from zero.
        w.record(300, |t| t.failed += 1);
        assert_eq!(w.last_5m(300).failed, 1);
        assert_eq!(w.last_5m(300).mirrored, 0);
        assert_eq!(w.since_start().failed, 1);
        // A clock that jumps back never counts future slots.
        assert_eq!(w.last_5m(50).failed, 0);
    }

    #[test]
    fn means() {
        let mut w = Window::default();
        w.record(5, |t| {
            t.compared += 2;
            t.overlap_sum += 1.5;
            t.top1_matches += 1;
        });
        let s = w.since_start();
        assert_eq!(s.mean_overlap_at_k, Some(0.75));
        assert_eq!(s.top1_match_rate, Some(0.5));
        assert_eq!(Window::default().since_start().mean_overlap_at_k, None);
    }
}
