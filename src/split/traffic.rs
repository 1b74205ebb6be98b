//! Requests per bucket over roughly the last hour (two rotating half-hour halves), recorded on
//! the request path with relaxed atomics and read by the admin API's dry runs ("x% of last
//! hour's traffic would move"). No I/O.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use super::BUCKETS;

/// Requests per bucket in the current and previous half hour: "the last hour's users", cheaply.
pub struct Traffic {
    halves: [Box<[AtomicU32]>; 2],
    current: AtomicUsize,
}

impl Default for Traffic {
    fn default() -> Self {
        let half = || (0..BUCKETS).map(|_| AtomicU32::new(0)).collect::<Vec<_>>().into_boxed_slice();
        Traffic { halves: [half(), half()], current: AtomicUsize::new(0) }
    }
}

impl Traffic {
    #[inline]
    pub fn record(&self, bucket: u32) {
        let half = &self.halves[self.current.load(Ordering::Relaxed) & 1];
        if let Some(c) = half.get(bucket as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Starts a new half hour: the older half is cleared and becomes current.
    pub fn rotate(&self) {
        let next = (self.current.load(Ordering::Relaxed) + 1) & 1;
        for c in self.halves[next].iter() {
            c.store(0, Ordering::Relaxed);
        }
        self.current.store(next, Ordering::Relaxed);
    }

    /// Requests per bucket over the last hour.
    pub fn counts(&self) -> Vec<u64> {
        (0..BUCKETS as usize)
            .map(|i| {
                u64::from(self.halves[0][i].load(Ordering::Relaxed))
                    + u64::from(self.halves[1][i].load(Ordering::Relaxed))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_rotates_by_halves() {
        let t = Traffic::default();
        t.record(5);
        t.record(5);
        t.rotate();
        t.record(5);
        assert_eq!(t.counts()[5], 3, "the last hour spans both halves");
        t.rotate();
        assert_eq!(t.counts()[5], 1, "the oldest half is forgotten");
        t.record(BUCKETS + 7);
        assert_eq!(t.counts().iter().sum::<u64>(), 1, "out-of-range buckets are ignored");
    }
}
