//! Experiment statistics, pure (no I/O, no clock): the numbers `/admin/experiment` reports and
//! the ramp decides on are functions of counts only, so one replica's counters and the fleet's
//! merged ones go through the same code.
//!
//! - [`gamma`]: `ln Γ`, the regularized incomplete gamma, χ² and normal tails;
//! - [`srm`]: the sample-ratio-mismatch χ² goodness-of-fit test, per epoch and combined;
//! - [`strata`]: the difference of conversion rates stratified by weight epoch;
//! - [`sequential`]: the mSPRT (normal mixture) always-valid p-value and confidence sequence.
//!
//! `sim_tests` runs seeded simulations that show the properties the guard relies on: the
//! sequential test holds its error rate under continuous monitoring while a peeked fixed-horizon
//! test does not, it finds a real lift, and the SRM check flags a broken split but not a good one.

pub mod gamma;
pub mod sequential;
pub mod srm;
pub mod strata;

#[cfg(test)]
mod sim_tests;

/// The experiment's statistical settings (`[experiment]`), as the views use them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// An SRM is flagged at p below this.
    pub srm_alpha: f64,
    /// The normal mixture's standard deviation on the difference of conversion rates.
    pub msprt_tau: f64,
    /// The sequential test's error rate: a challenger is significantly worse (or better) when its
    /// always-valid p-value is below this.
    pub sequential_alpha: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { srm_alpha: 0.001, msprt_tau: 0.05, sequential_alpha: 0.05 }
    }
}
