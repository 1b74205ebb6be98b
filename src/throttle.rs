//! The listener-wide token bucket, as a lock-free GCRA. The decision logic is pure.
//!
//! GCRA (generic cell rate algorithm) is the token bucket expressed as one number, the
//! *theoretical arrival time* (TAT): a request is admitted when admitting it would not push the TAT
//! more than `burst` emission intervals past now. One `u64` of state means one compare-and-swap per
//! request, with no mutex on the hot path and no background refill task.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Rate and burst, in nanoseconds. `burst` tokens are available at once; they refill at `rate`/s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    interval_ns: u64,
    tolerance_ns: u64,
}

impl Gcra {
    /// `rate_per_second` > 0 and `burst` ≥ 1 (validated by config).
    pub fn new(rate_per_second: f64, burst: u32) -> Gcra {
        let interval_ns = (1e9 / rate_per_second).max(1.0) as u64;
        Gcra { interval_ns, tolerance_ns: interval_ns.saturating_mul(u64::from(burst.max(1))) }
    }

    /// Pure decision: given the stored TAT and the current time, the new TAT if admitted, or how
    /// long to wait. A clock that appears to go backwards only makes the check stricter, never
    /// admits extra requests.
    pub fn decide(&self, tat: u64, now: u64) -> Result<u64, Duration> {
        let new_tat = tat.max(now).saturating_add(self.interval_ns);
        let ahead = new_tat - now;
        if ahead <= self.tolerance_ns {
            Ok(new_tat)
        } else {
            Err(Duration::from_nanos(ahead - self.tolerance_ns))
        }
    }
}

/// A shared bucket: the GCRA parameters plus the atomic TAT.
#[derive(Debug)]
pub struct TokenBucket {
    gcra: Gcra,
    tat: AtomicU64,
}

impl TokenBucket {
    pub fn new(gcra: Gcra) -> TokenBucket {
        TokenBucket { gcra, tat: AtomicU64::new(0) }
    }

    /// A bucket with new parameters that keeps `previous`'s state, so a config reload neither
    /// grants a fresh burst nor forgets the debt.
    pub fn carry_over(gcra: Gcra, previous: &TokenBucket) -> TokenBucket {
        TokenBucket { gcra, tat: AtomicU64::new(previous.tat.load(Ordering::Relaxed)) }
    }

    pub fn gcra(&self) -> Gcra {
        self.gcra
    }

    /// Takes one token at monotonic time `now_ns`, or says how long until one is free.
    pub fn try_acquire(&self, now_ns: u64) -> Result<(), Duration> {
        let mut current = self.tat.load(Ordering::Relaxed);
        loop {
            let new_tat = self.gcra.decide(current, now_ns)?;
            match self.tat.compare_exchange_weak(current, new_tat, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Ok(()),
                Err(actual) => current = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn burst_then_rate() {
        let b = TokenBucket::new(Gcra::new(10.0, 5));
        let t0 = 100 * SEC;
        for _ in 0..5 {
            assert!(b.try_acquire(t0).is_ok());
        }
        let wait = b.try_acquire(t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        assert!(b.try_acquire(t0 + SEC / 10).is_ok());
        assert!(b.try_acquire(t0 + SEC / 10).is_err());
        // After a full second idle the whole burst is back, and no more.
        let t1 = t0 + 2 * SEC;
        assert_eq!((0..20).filter(|_| b.try_acquire(t1).is_ok()).count(), 5);
    }

    #[test]
    fn sustained_rate_matches_configuration() {
        let b = TokenBucket::new(Gcra::new(1_000.0, 1));
        let mut admitted = 0;
        // 10 requests per ms for one simulated second at 10× the allowed rate.
        for step in 0..10_000u64 {
            if b.try_acquire(SEC + step * 100_000).is_ok() {
                admitted += 1;
            }
        }
        assert!((999..=1_001).contains(&admitted), "admitted {admitted}");
    }

    #[test]
    fn clock_going_backwards_admits_nothing_extra() {
        let g = Gcra::new(1.0, 1);
        let tat = g.decide(0, 10 * SEC).unwrap();
        assert!(g.decide(tat, 5 * SEC).is_err());
    }

    #[test]
    fn carry_over_keeps_debt() {
        let old = TokenBucket::new(Gcra::new(1.0, 1));
        assert!(old.try_acquire(SEC).is_ok());
        let new = TokenBucket::carry_over(Gcra::new(1.0, 1), &old);
        assert!(new.try_acquire(SEC).is_err());
    }

    #[test]
    fn concurrent_acquires_never_exceed_burst() {
        let b = std::sync::Arc::new(TokenBucket::new(Gcra::new(1.0, 1_000)));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || (0..1_000).filter(|_| b.try_acquire(SEC).is_ok()).count())
            })
            .collect();
        let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 1_000);
    }

    #[test]
    fn extreme_parameters_do_not_overflow() {
        let g = Gcra::new(1e12, u32::MAX);
        assert!(g.decide(u64::MAX - 1, u64::MAX - 1).is_ok() || g.decide(u64::MAX - 1, 0).is_err());
        let slow = Gcra::new(1e-9, 1);
        assert!(slow.decide(0, 0).is_ok());
    }

    /// The bucket on tokio's paused clock: `advance` stands in for waiting, so the refill is
    /// checked at exact instants (the bucket itself takes the time as a number, as the proxy
    /// passes it from its monotonic clock).
    #[tokio::test(start_paused = true)]
    async fn the_bucket_refills_at_its_rate_as_the_clock_advances() {
        let start = tokio::time::Instant::now();
        let now = || SEC + start.elapsed().as_nanos() as u64;
        let b = TokenBucket::new(Gcra::new(10.0, 5));
        assert_eq!((0..20).filter(|_| b.try_acquire(now()).is_ok()).count(), 5, "the burst");
        let wait = b.try_acquire(now()).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        // 1 ns short of the promised wait: still refused; at it: one token, and only one.
        tokio::time::advance(wait - Duration::from_nanos(1)).await;
        assert!(b.try_acquire(now()).is_err());
        tokio::time::advance(Duration::from_nanos(1)).await;
        assert!(b.try_acquire(now()).is_ok());
        assert!(b.try_acquire(now()).is_err());
        // An idle minute refills the burst and no more.
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!((0..20).filter(|_| b.try_acquire(now()).is_ok()).count(), 5);
        // One request every 10 ms (10x the rate) for 1,000 requests, the last at 9.99 s: the burst
        // plus 10/s over 9.99 s, rounded down.
        let mut admitted = 0;
        tokio::time::advance(Duration::from_secs(60)).await;
        for _ in 0..1_000 {
            admitted += usize::from(b.try_acquire(now()).is_ok());
            tokio::time::advance(Duration::from_millis(10)).await;
        }
        assert_eq!(admitted, 5 + 99, "burst plus 9.99 s at 10/s");
    }
}
