//! The preference statistics of an interleaving arm, from its per-request outcomes. Pure.
//!
//! Each request with at least one credited click is a win for B (more clicks on B's positions), a
//! win for A, or a tie. The preference for B is
//! `Δ = (wins_B − wins_A) / (wins_A + wins_B + ties)`: +1 when every such request preferred B,
//! −1 when every one preferred A, 0 for no preference.
//!
//! * **Interval.** Given the share of decisive requests `d = (wins_A + wins_B) / n`,
//!   `Δ = d · (2q − 1)` with `q = wins_B / (wins_A + wins_B)`. The 95% interval maps Wilson's
//!   interval of `q` through that line (the ties' share taken as known): it stays inside [−1, 1]
//!   and behaves at 0 and at small counts, where a normal interval around Δ does not.
//! * **Sign test.** Under "no preference" each decisive request is a fair coin: the two-sided
//!   p-value of `wins_B` among `wins_A + wins_B` trials of Binomial(·, ½). Exact (summed in log
//!   space) up to [`EXACT_UP_TO`] trials; above, the normal approximation with continuity
//!   correction, whose error there is far below any threshold anyone acts on.
//! * **Anytime-valid.** Reading that p-value again and again while the data grows inflates its
//!   error rate. [`anytime_valid`] is the statistics issue's (#17) mixture SPRT
//!   (`stats::sequential::msprt`) applied to the mean per-request score `Δ̂` (each request with
//!   clicks scores +1, −1 or 0; the variance of the mean is `(decisive / n − Δ̂²) / n`): its
//!   p-value and confidence sequence stay valid however often they are read. It needs at least
//!   `stats::sequential::MIN_ARM_USERS` requests with clicks.

use serde::Serialize;

use crate::experiment::{erfc, wilson};
use crate::stats::sequential::{msprt, Sequential};
use crate::stats::strata::Estimate;

/// Largest number of decisive requests the sign test sums exactly.
pub const EXACT_UP_TO: u64 = 1_000;

/// Per-request outcomes of an arm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Outcomes {
    pub wins_a: u64,
    pub wins_b: u64,
    pub ties: u64,
}

impl Outcomes {
    /// Requests with at least one credited click.
    pub fn total(&self) -> u64 {
        self.wins_a + self.wins_b + self.ties
    }
}

/// The preference for B, its interval and the sign test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Preference {
    pub delta: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// `"b"` or `"a"` when the interval excludes 0, else `None`.
    pub favours: Option<&'static str>,
    /// Two-sided sign-test p-value; `None` without a decisive request.
    pub p_value: Option<f64>,
    /// `"exact"` or `"normal"`: how `p_value` was computed.
    pub method: &'static str,
}

/// The anytime-valid test of "no preference" (see the module doc) with mixing sd `tau` on Δ and
/// error rate `alpha`; `None` below the test's minimum of requests with clicks.
pub fn anytime_valid(o: Outcomes, tau: f64, alpha: f64) -> Option<Sequential> {
    let n = o.total();
    if n == 0 {
        return None;
    }
    let nf = n as f64;
    let delta = (o.wins_b as f64 - o.wins_a as f64) / nf;
    let variance = ((o.wins_a + o.wins_b) as f64 / nf - delta * delta) / nf;
    msprt(&Estimate { difference: delta, variance, users: n, smaller_arm: n, strata: 1 }, tau, alpha)
}

/// The preference statistics of `o`.
pub fn preference(o: Outcomes) -> Preference {
    let n = o.total();
    let decisive = o.wins_a + o.wins_b;
    let (delta, ci_low, ci_high) = if n == 0 {
        (0.0, 0.0, 0.0)
    } else {
        let d = decisive as f64 / n as f64;
        let q = wilson(o.wins_b, decisive);
        let delta = (o.wins_b as f64 - o.wins_a as f64) / n as f64;
        if decisive == 0 {
            (0.0, 0.0, 0.0)
        } else {
            (delta, d * (2.0 * q.ci_low - 1.0), d * (2.0 * q.ci_high - 1.0))
        }
    };
    let favours = if ci_low > 0.0 {
        Some("b")
    } else if ci_high < 0.0 {
        Some("a")
    } else {
        None
    };
    Preference {
        delta,
        ci_low,
        ci_high,
        favours,
        p_value: sign_test(o.wins_b, decisive),
        method: if decisive <= EXACT_UP_TO { "exact" } else { "normal" },
    }
}

/// Two-sided sign-test p-value of `successes` in `trials` fair coin flips: `None` for no trials.
pub fn sign_test(successes: u64, trials: u64) -> Option<f64> {
    if trials == 0 {
        return None;
    }
    let x = successes.min(trials);
    let tail = x.min(trials - x);
    if 2 * tail + 1 >= trials {
        // The tail reaches the middle: the two tails cover everything.
        return Some(1.0);
    }
    if trials <= EXACT_UP_TO {
        // P(X ≤ tail) for X ~ Binomial(trials, ½), doubled (the distribution is symmetric).
        let ln_half_n = trials as f64 * std::f64::consts::LN_2;
        let mut ln_choose = 0.0f64; // ln C(trials, 0)
        let mut sum = 0.0f64;
        for i in 0..=tail {
            if i > 0 {
                ln_choose += ((trials - i + 1) as f64).ln() - (i as f64).ln();
            }
            sum += (ln_choose - ln_half_n).exp();
        }
        Some((2.0 * sum).min(1.0))
    } else {
        let n = trials as f64;
        let z = ((x as f64 - n / 2.0).abs() - 0.5).max(0.0) / (n.sqrt() / 2.0);
        Some(erfc(z / std::f64::consts::SQRT_2).min(1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64, tol: f64) {
        assert!((got - want).abs() < tol, "got {got}, want {want}");
    }

    #[test]
    fn sign_test_small_n_is_the_exact_binomial() {
        // 1 of 10: P(X ≤ 1) = 11/1024, two-sided 22/1024.
        close(sign_test(1, 10).unwrap(), 22.0 / 1024.0, 1e-12);
        close(sign_test(9, 10).unwrap(), 22.0 / 1024.0, 1e-12);
        // 5 of 20: (1+20+190+1140+4845+15504)/2^20 = 21700/1048576, doubled.
        close(sign_test(5, 20).unwrap(), 2.0 * 21_700.0 / 1_048_576.0, 1e-12);
        // 0 of 5: 2/32.
        close(sign_test(0, 5).unwrap(), 0.0625, 1e-12);
        // The middle and beyond it: capped at 1.
        assert_eq!(sign_test(5, 10), Some(1.0));
        assert_eq!(sign_test(4, 10).map(|p| p < 1.0), Some(true)); // 2·386/1024
        assert_eq!(sign_test(3, 7), Some(1.0)); // 2·P(X ≤ 3) = 2·64/128, capped
        assert_eq!(sign_test(0, 0), None);
        // Successes past trials are clamped: 2·P(X ≤ 0) = 2/8.
        close(sign_test(7, 3).unwrap(), 0.25, 1e-12);
    }

    #[test]
    fn sign_test_large_n_is_normal_and_continuous_with_exact() {
        // 550 of 1000 (exact): scipy.stats.binomtest(550, 1000).pvalue = 0.0017305
        close(sign_test(550, 1_000).unwrap(), 0.001_730_5, 2e-6);
        // 551 of 1002, just past the exact range: normal with continuity correction gives
        // 0.0017628 where the exact sum is 0.0017491 (python3, math.comb).
        close(sign_test(551, 1_002).unwrap(), 0.001_762_8, 2e-6);
        // 5,100 of 10,000: z = (100 - 0.5)/50 = 1.99, p = erfc(1.99/√2) = 0.046591 (exact: 0.046586)
        close(sign_test(5_100, 10_000).unwrap(), 0.046_587, 1e-4);
        assert_eq!(sign_test(5_000, 10_000), Some(1.0));
    }

    #[test]
    fn preference_by_hand() {
        // 30 B wins, 10 A wins, 10 ties: Δ = 20/50 = 0.4.
        let p = preference(Outcomes { wins_a: 10, wins_b: 30, ties: 10 });
        close(p.delta, 0.4, 1e-12);
        // Wilson 95% of 30/40: [0.5980, 0.8581]; d = 0.8 → [0.1568, 0.5730].
        close(p.ci_low, 0.8 * (2.0 * 0.598_0 - 1.0), 2e-3);
        close(p.ci_high, 0.8 * (2.0 * 0.858_1 - 1.0), 2e-3);
        assert!(p.ci_low < p.delta && p.delta < p.ci_high);
        assert_eq!(p.favours, Some("b"));
        assert_eq!(p.method, "exact");
        // 2·P(X ≤ 10), X ~ Bin(40, ½) = 0.0022
        close(p.p_value.unwrap(), 0.002_221, 2e-5);
    }

    #[test]
    fn anytime_valid_by_the_closed_form() {
        // n = 1000: 300 B wins, 250 A wins, 450 ties. Δ̂ = 0.05, V = (0.55 − 0.0025)/1000; with
        // τ = 0.05: Λ = √(V/(V+τ²))·exp(τ²Δ̂²/(2V(V+τ²))) = 2.758192 (python3), p = 0.362556,
        // confidence sequence at α = 0.05: [−0.021725, 0.121725].
        let s = anytime_valid(Outcomes { wins_a: 250, wins_b: 300, ties: 450 }, 0.05, 0.05).unwrap();
        close(s.p_value, 0.362_556_284, 1e-8);
        close(s.low, -0.021_724_876, 1e-8);
        close(s.high, 0.121_724_876, 1e-8);
        // n = 400: 150 / 90 / 160 → Λ = 84.5336, p = 0.0118296: a clear preference for B.
        let s = anytime_valid(Outcomes { wins_a: 90, wins_b: 150, ties: 160 }, 0.05, 0.05).unwrap();
        close(s.p_value, 0.011_829_619, 1e-8);
        assert!(s.low > 0.0);
        // Below the test's minimum of requests, no decision.
        assert_eq!(anytime_valid(Outcomes { wins_a: 10, wins_b: 80, ties: 0 }, 0.05, 0.05), None);
        assert_eq!(anytime_valid(Outcomes::default(), 0.05, 0.05), None);
    }

    #[test]
    fn preference_edges() {
        let none = preference(Outcomes::default());
        assert_eq!((none.delta, none.ci_low, none.ci_high, none.favours, none.p_value), (0.0, 0.0, 0.0, None, None));
        let ties = preference(Outcomes { wins_a: 0, wins_b: 0, ties: 9 });
        assert_eq!((ties.delta, ties.favours, ties.p_value), (0.0, None, None));
        let a = preference(Outcomes { wins_a: 12, wins_b: 0, ties: 0 });
        assert_eq!(a.delta, -1.0);
        assert_eq!(a.favours, Some("a"));
        assert!(a.ci_low >= -1.0 && a.ci_high < 0.0, "{a:?}");
        let even = preference(Outcomes { wins_a: 20, wins_b: 20, ties: 0 });
        assert_eq!((even.delta, even.favours), (0.0, None));
        close(even.ci_low, -even.ci_high, 1e-12);
        assert_eq!(even.p_value, Some(1.0));
    }
}
