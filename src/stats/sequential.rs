//! Anytime-valid inference on a difference of conversion rates: the mixture sequential
//! probability ratio test (mSPRT) with a normal mixture, as in Johari, Pekelis & Walsh,
//! "Always Valid Inference: Continuous Monitoring of A/B Tests" (Operations Research, 2022;
//! the test behind Optimizely's Stats Engine).
//!
//! With an estimate `Δ̂` of the difference whose variance is `V` (asymptotically normal), and a
//! normal mixing distribution `N(0, τ²)` over the true difference, the mixture likelihood ratio
//! against `Δ = 0` is
//!
//! ```text
//! Λ = √(V / (V + τ²)) · exp( τ² Δ̂² / (2 V (V + τ²)) )
//! ```
//!
//! Under `Δ = 0` it is a (super)martingale, so by Ville's inequality `P(∃ n: Λ_n ≥ 1/α) ≤ α`:
//! checking `p = min(1, 1/Λ)` after every batch of users, for as long as one likes, rejects a true
//! null at most α of the time. Its confidence sequence — every `Δ₀` with `Λ(Δ₀) < 1/α` — covers
//! the true difference at all times at once with probability ≥ 1 − α:
//!
//! ```text
//! Δ̂ ± √( V (V + τ²) / τ² · (2 ln(1/α) + ln((V + τ²) / V)) )
//! ```
//!
//! `τ` (config `[experiment] msprt_tau`) is the size of difference the test is tuned to find
//! fastest; it never affects validity. The p-value returned is the one for *this* look: a caller
//! that keeps the running minimum over looks gets the monotone always-valid p-value, and a
//! decision taken the first time `p < α` is valid either way.

use super::strata::Estimate;

/// Before this many users in the smaller arm the normal approximation behind `V` is not trusted
/// and no sequential decision is made.
pub const MIN_ARM_USERS: u64 = 100;

/// The sequential test's answer for one look.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sequential {
    /// Always-valid p-value of this look, `min(1, 1/Λ)`.
    pub p_value: f64,
    /// The 1 − α confidence sequence on the difference (treatment − control).
    pub low: f64,
    pub high: f64,
}

/// `ln Λ` for an estimate `diff` with variance `v` against `null`.
pub fn log_likelihood_ratio(diff: f64, v: f64, tau: f64, null: f64) -> f64 {
    let t2 = tau * tau;
    let d = diff - null;
    0.5 * (v / (v + t2)).ln() + t2 * d * d / (2.0 * v * (v + t2))
}

/// The mSPRT of `est.difference = 0`. `None` when the estimate carries no information yet
/// (no variance, or the smaller arm below [`MIN_ARM_USERS`]), or `tau`/`alpha` are out of range.
pub fn msprt(est: &Estimate, tau: f64, alpha: f64) -> Option<Sequential> {
    let v = est.variance;
    if !(v.is_finite() && v > 0.0 && tau > 0.0 && alpha > 0.0 && alpha < 1.0) || est.smaller_arm < MIN_ARM_USERS {
        return None;
    }
    let ln_lambda = log_likelihood_ratio(est.difference, v, tau, 0.0);
    let p_value = (-ln_lambda).exp().min(1.0);
    let t2 = tau * tau;
    let half = (v * (v + t2) / t2 * (2.0 * (1.0 / alpha).ln() + ((v + t2) / v).ln())).sqrt();
    Some(Sequential { p_value, low: est.difference - half, high: est.difference + half })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est(difference: f64, variance: f64) -> Estimate {
        Estimate { difference, variance, users: 10_000, smaller_arm: 5_000, strata: 1 }
    }

    /// Reference numbers from the formula evaluated independently in Python (float64):
    /// `V = 1e-4, τ = 0.05, Δ̂ = 0.03` →
    /// `Λ = sqrt(V/(V+τ²)) * exp(τ²Δ̂²/(2V(V+τ²)))` = 0.19611613513818404 · e^4.326923076923077
    /// = 14.848143014672088, p = 0.0673484892361191; half-width at α = 0.05 =
    /// sqrt(V(V+τ²)/τ² · (2 ln 20 + ln 26)) = 0.031015388968276124
    #[test]
    fn matches_the_closed_form() {
        let s = msprt(&est(0.03, 1e-4), 0.05, 0.05).unwrap();
        let lambda = (1e-4f64 / 26e-4).sqrt() * (0.0025f64 * 0.0009 / (2.0 * 1e-4 * 26e-4)).exp();
        assert!((s.p_value - 1.0 / lambda).abs() < 1e-12, "{s:?}");
        assert!((lambda - 14.848_143_014_672_088).abs() < 1e-9, "{lambda}");
        assert!((s.p_value - 0.067_348_489_236_119_1).abs() < 1e-12);
        let half = (1e-4f64 * 26e-4 / 0.0025 * (2.0 * 20f64.ln() + 26f64.ln())).sqrt();
        assert!((s.high - s.low - 2.0 * half).abs() < 1e-12);
        assert!((half - 0.031_015_388_968_276_124).abs() < 1e-12, "{half}");
        // p ≥ α exactly when 0 is inside the confidence sequence (they are the same test).
        assert!(s.p_value > 0.05 && s.low < 0.0 && s.high > 0.0);
        let strong = msprt(&est(0.05, 1e-4), 0.05, 0.05).unwrap();
        assert!(strong.p_value < 0.05 && strong.low > 0.0);
    }

    #[test]
    fn the_confidence_sequence_is_the_inverted_test() {
        // At each end of the sequence, Λ(Δ₀) = 1/α exactly.
        let (v, tau, alpha) = (4e-5, 0.02, 0.05);
        let s = msprt(&est(-0.01, v), tau, alpha).unwrap();
        for end in [s.low, s.high] {
            let l = log_likelihood_ratio(-0.01, v, tau, end);
            assert!((l - (1.0f64 / alpha).ln()).abs() < 1e-9, "{l}");
        }
    }

    #[test]
    fn no_decision_without_information() {
        assert_eq!(msprt(&est(0.1, 0.0), 0.05, 0.05), None);
        let mut small = est(0.1, 1e-3);
        small.smaller_arm = MIN_ARM_USERS - 1;
        assert_eq!(msprt(&small, 0.05, 0.05), None);
        assert_eq!(msprt(&est(0.1, 1e-3), 0.0, 0.05), None);
        assert_eq!(msprt(&est(0.0, 1e-3), 0.05, 0.05).unwrap().p_value, 1.0);
    }
}
