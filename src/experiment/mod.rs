//! Experiment statistics per variant: users (HyperLogLog), events, conversion rate with a 95%
//! Wilson interval, and a two-proportion z-test of each challenger against the champion.
//! The statistics are pure; the counters are relaxed atomics bumped on the request path.
//!
//! Weight epochs, the exact user sample behind the SRM check and per-user conversion, and their
//! process-side counters live in `epoch`, `cohort` and `sampler`.

pub mod cohort;
pub mod epoch;
pub mod report;
pub mod sampler;

pub use cohort::Cohorts;
pub use sampler::{EpochView, Sampler};

/// Wall-clock Unix milliseconds (epochs are labelled with the time a replica first served them).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use serde::{Deserialize, Serialize};

use crate::metrics::FEEDBACK_EVENTS;

/// 2^12 registers: ~1.6% standard error on the distinct-user estimate, 4 KiB per variant.
const HLL_BITS: u32 = 12;
const HLL_REGISTERS: usize = 1 << HLL_BITS;

/// Per-variant counters; they live across reloads (keyed by variant name).
pub struct Counters {
    registers: Box<[AtomicU8]>,
    events: [AtomicU64; FEEDBACK_EVENTS.len()],
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            registers: (0..HLL_REGISTERS).map(|_| AtomicU8::new(0)).collect(),
            events: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Counters {
    /// Counts the user (by its stable 64-bit hash) toward the distinct-user estimate.
    #[inline]
    pub fn saw_user(&self, user_hash: u64) {
        let (index, rank) = register_of(user_hash);
        if let Some(r) = self.registers.get(index) {
            r.fetch_max(rank, Ordering::Relaxed);
        }
    }

    pub fn event(&self, index: usize) {
        if let Some(e) = self.events.get(index) {
            e.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn events(&self, index: usize) -> u64 {
        self.events.get(index).map_or(0, |e| e.load(Ordering::Relaxed))
    }

    /// HyperLogLog estimate of the distinct users seen.
    pub fn users(&self) -> u64 {
        self.tally().users.estimate()
    }

    /// The counters as a plain, mergeable value.
    pub fn tally(&self) -> Tally {
        let registers: Vec<u8> = self.registers.iter().map(|r| r.load(Ordering::Relaxed)).collect();
        let users = if registers.iter().all(|r| *r == 0) { Sketch::default() } else { Sketch { registers } };
        Tally { users, events: self.events.iter().map(|e| e.load(Ordering::Relaxed)).collect() }
    }
}

/// Register index (the hash's top bits) and rank (position of the first set bit after them).
#[inline]
fn register_of(user_hash: u64) -> (usize, u8) {
    let index = (user_hash >> (64 - HLL_BITS)) as usize;
    let rank = ((user_hash << HLL_BITS) | (1 << (HLL_BITS - 1))).leading_zeros() as u8 + 1;
    (index, rank)
}

/// A HyperLogLog sketch of distinct users as plain registers (empty = no user seen). Two
/// sketches merge exactly by register maximum: the result is the sketch of the union.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sketch {
    registers: Vec<u8>,
}

impl Sketch {
    pub fn add(&mut self, user_hash: u64) {
        if self.registers.is_empty() {
            self.registers = vec![0; HLL_REGISTERS];
        }
        let (index, rank) = register_of(user_hash);
        if let Some(r) = self.registers.get_mut(index) {
            *r = (*r).max(rank);
        }
    }

    pub fn merge(&mut self, other: &Sketch) {
        if other.registers.is_empty() {
            return;
        }
        if self.registers.is_empty() {
            self.registers = other.registers.clone();
            return;
        }
        for (a, b) in self.registers.iter_mut().zip(&other.registers) {
            *a = (*a).max(*b);
        }
    }

    /// HyperLogLog estimate with the small-range (linear counting) correction.
    pub fn estimate(&self) -> u64 {
        if self.registers.is_empty() {
            return 0;
        }
        let m = HLL_REGISTERS as f64;
        let (mut sum, mut zeros) = (0.0, 0u32);
        for v in &self.registers {
            sum += 2f64.powi(-i32::from(*v));
            zeros += u32::from(*v == 0);
        }
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let raw = alpha * m * m / sum;
        let estimate = if raw <= 2.5 * m && zeros > 0 { m * (m / f64::from(zeros)).ln() } else { raw };
        estimate.round() as u64
    }
}

/// Registers travel as one character each (ranks are at most 53 < 64): 4 KiB per sketch in a
/// fleet item instead of a JSON number array three times the size.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `ALPHABET` inverted (255 = not a register character): decoding is one table load per register.
const DECODE: [u8; 256] = {
    let mut t = [255u8; 256];
    let mut i = 0;
    while i < 64 {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
};

impl Serialize for Sketch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text: String = self.registers.iter().map(|r| char::from(ALPHABET[usize::from(*r & 63)])).collect();
        s.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for Sketch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(Sketch::default());
        }
        if text.len() != HLL_REGISTERS {
            return Err(serde::de::Error::invalid_length(text.len(), &"4096 sketch registers"));
        }
        let registers = text
            .bytes()
            .map(|c| Some(DECODE[usize::from(c)]).filter(|v| *v != 255))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| serde::de::Error::custom("a sketch register outside the alphabet"))?;
        Ok(Sketch { registers })
    }
}

/// One variant's experiment counters as a plain value: the users sketch and the feedback events
/// by kind (indexed like `FEEDBACK_EVENTS`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub users: Sketch,
    pub events: Vec<u64>,
}

impl Tally {
    pub fn merge(&mut self, o: &Tally) {
        self.users.merge(&o.users);
        if self.events.len() < o.events.len() {
            self.events.resize(o.events.len(), 0);
        }
        for (a, b) in self.events.iter_mut().zip(&o.events) {
            *a = a.saturating_add(*b);
        }
    }

    pub fn events(&self, index: usize) -> u64 {
        self.events.get(index).copied().unwrap_or(0)
    }
}

/// A proportion with its 95% Wilson score interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    pub rate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// `successes / trials` with a 95% Wilson interval (well-behaved at 0, 1 and small n).
pub fn wilson(successes: u64, trials: u64) -> Rate {
    if trials == 0 {
        return Rate { rate: 0.0, ci_low: 0.0, ci_high: 0.0 };
    }
    let (x, n, z) = (successes.min(trials) as f64, trials as f64, 1.959_963_984_540_054);
    let p = x / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    Rate { rate: p, ci_low: (centre - half).max(0.0), ci_high: (centre + half).min(1.0) }
}

/// Two-sided p-value of the pooled two-proportion z-test (`None` when undefined).
pub fn two_proportion_p(x1: u64, n1: u64, x2: u64, n2: u64) -> Option<f64> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (x1, n1, x2, n2) = (x1.min(n1) as f64, n1 as f64, x2.min(n2) as f64, n2 as f64);
    let pooled = (x1 + x2) / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se == 0.0 {
        return None;
    }
    let z = (x1 / n1 - x2 / n2) / se;
    Some(erfc(z.abs() / std::f64::consts::SQRT_2))
}

/// Complementary error function (Numerical Recipes `erfcc`, |error| < 1.2e-7).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erfc_known_values() {
        for (x, want) in
            [(0.0, 1.0), (0.5, 0.479_500_122), (1.0, 0.157_299_207), (2.0, 0.004_677_735), (-1.0, 1.842_700_793)]
        {
            assert!((erfc(x) - want).abs() < 2e-7, "erfc({x}) = {}", erfc(x));
        }
    }

    #[test]
    fn z_test_on_known_numbers() {
        // 120/1000 vs 100/1000: pooled 0.11, z = 1.4293, two-sided p = 0.15292 (scipy agrees).
        let p = two_proportion_p(120, 1_000, 100, 1_000).unwrap();
        assert!((p - 0.152_92).abs() < 1e-4, "{p}");
        // 200/1000 vs 100/1000: clearly significant.
        assert!(two_proportion_p(200, 1_000, 100, 1_000).unwrap() < 1e-8);
        assert_eq!(two_proportion_p(1, 0, 1, 10), None);
        assert_eq!(two_proportion_p(0, 10, 0, 10), None);
    }

    #[test]
    fn wilson_interval() {
        // 10/100: Wilson 95% interval is [0.0552, 0.1744].
        let r = wilson(10, 100);
        assert!((r.ci_low - 0.0552).abs() < 5e-4 && (r.ci_high - 0.1744).abs() < 5e-4, "{r:?}");
        let zero = wilson(0, 20);
        assert_eq!(zero.ci_low, 0.0);
        assert!(zero.ci_high > 0.1);
        assert_eq!(wilson(0, 0).rate, 0.0);
    }

    #[test]
    fn distinct_users_estimate() {
        let c = Counters::default();
        for i in 0..20_000u64 {
            let h = crate::split::stable_hash("exp", format!("user-{}", i % 5_000).as_bytes());
            c.saw_user(h);
        }
        let est = c.users() as f64;
        assert!((est - 5_000.0).abs() / 5_000.0 < 0.05, "estimate {est}");
        assert_eq!(Counters::default().users(), 0);
    }

    #[test]
    fn sketches_merge_to_the_union_not_the_sum() {
        // Two replicas each see 3,000 users, 1,000 of them on both: the union is 5,000.
        let (a, b) = (Counters::default(), Counters::default());
        for i in 0..3_000u64 {
            a.saw_user(crate::split::stable_hash("exp", format!("user-{i}").as_bytes()));
            b.saw_user(crate::split::stable_hash("exp", format!("user-{}", i + 2_000).as_bytes()));
        }
        let mut t = a.tally();
        t.merge(&b.tally());
        let est = t.users.estimate() as f64;
        assert!((est - 5_000.0).abs() / 5_000.0 < 0.05, "union estimate {est}");
        let mut direct = Sketch::default();
        for i in 0..5_000u64 {
            direct.add(crate::split::stable_hash("exp", format!("user-{i}").as_bytes()));
        }
        assert_eq!(t.users, direct, "the merged sketch is exactly the sketch of the union");
        // It survives the trip through JSON, compactly.
        let text = serde_json::to_string(&t).unwrap();
        assert!(text.len() < 4_200, "{} bytes", text.len());
        assert_eq!(serde_json::from_str::<Tally>(&text).unwrap(), t);
        assert_eq!(serde_json::from_str::<Tally>(r#"{"users":"","events":[]}"#).unwrap(), Tally::default());
        assert!(serde_json::from_str::<Tally>(r#"{"users":"AB","events":[]}"#).is_err());
        let mut bad = "A".repeat(4_095);
        bad.push('!');
        assert!(serde_json::from_str::<Tally>(&format!(r#"{{"users":"{bad}","events":[]}}"#)).is_err());
    }
}
