//! `[experiment]`: how experiment statistics are judged — the SRM threshold, the sequential
//! test's mixing parameter and error rate, the size of the exact user sample — and whether the
//! access log may carry raw user ids. Hot: it lives in the DynamoDB document beside `[split]`.

use serde::{Deserialize, Serialize};

use super::Issues;
use crate::stats::Settings;

/// `[experiment]`; every field optional.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// A sample ratio mismatch is flagged at a χ² p-value below this.
    #[serde(default = "default_srm_alpha")]
    pub srm_alpha: f64,
    /// Standard deviation τ of the mSPRT's normal mixture on the difference of conversion rates
    /// (absolute, 0.05 = 5 points): the effect size the sequential test finds fastest.
    #[serde(default = "default_msprt_tau")]
    pub msprt_tau: f64,
    /// The sequential test's error rate (always-valid p-value threshold).
    #[serde(default = "default_sequential_alpha")]
    pub sequential_alpha: f64,
    /// Capacity of the exact user sample behind the SRM check and per-user conversion.
    #[serde(default = "default_sample_users")]
    pub sample_users: usize,
    /// Also write the raw user id (`userId`) in the access log. Off: only `userHash`.
    #[serde(default)]
    pub log_raw_user_id: bool,
}

fn default_srm_alpha() -> f64 {
    Settings::default().srm_alpha
}
fn default_msprt_tau() -> f64 {
    Settings::default().msprt_tau
}
fn default_sequential_alpha() -> f64 {
    Settings::default().sequential_alpha
}
fn default_sample_users() -> usize {
    crate::experiment::sampler::DEFAULT_CAPACITY
}

impl Default for ExperimentConfig {
    fn default() -> Self {
        ExperimentConfig {
            srm_alpha: default_srm_alpha(),
            msprt_tau: default_msprt_tau(),
            sequential_alpha: default_sequential_alpha(),
            sample_users: default_sample_users(),
            log_raw_user_id: false,
        }
    }
}

impl ExperimentConfig {
    pub fn settings(&self) -> Settings {
        Settings { srm_alpha: self.srm_alpha, msprt_tau: self.msprt_tau, sequential_alpha: self.sequential_alpha }
    }
}

/// The sample's bounds: below 256 users no test has power. A sampled user costs about 8.5 bytes
/// of a replica's fleet item: the default 4,096 keeps a worst-case item (8 variants, 16 epochs)
/// under 100 KB, and 16,384 keeps it well under DynamoDB's 400 KB item limit.
pub const SAMPLE_USERS: std::ops::RangeInclusive<usize> = 256..=16_384;

/// Checks `[experiment]` (absent = the defaults).
pub(super) fn validate(issues: &mut Issues, e: &ExperimentConfig) {
    for (field, v) in [("srm_alpha", e.srm_alpha), ("sequential_alpha", e.sequential_alpha)] {
        if !(v.is_finite() && v > 0.0 && v <= 0.5) {
            issues.add(format!("experiment.{field}"), "must be a probability above 0 and at most 0.5 (e.g. 0.001)");
        }
    }
    if !(e.msprt_tau.is_finite() && e.msprt_tau > 0.0 && e.msprt_tau <= 1.0) {
        issues.add("experiment.msprt_tau", "must be above 0 and at most 1 (a difference of rates, 0.05 = 5 points)");
    }
    if !SAMPLE_USERS.contains(&e.sample_users) {
        issues.add(
            "experiment.sample_users",
            format!("must be between {} and {}", SAMPLE_USERS.start(), SAMPLE_USERS.end()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::support_tests::{paths, GOOD};
    use super::super::{parse, validate};
    use super::*;

    #[test]
    fn defaults_and_values_reach_the_plan() {
        let plan = validate(&parse(GOOD).unwrap()).unwrap();
        assert_eq!(plan.experiment, ExperimentConfig::default());
        assert_eq!(plan.experiment.srm_alpha, 0.001);
        let text = format!("{GOOD}\n[experiment]\nsrm_alpha = 0.01\nmsprt_tau = 0.02\nlog_raw_user_id = true\n");
        let plan = validate(&parse(&text).unwrap()).unwrap();
        assert_eq!(plan.experiment.settings().msprt_tau, 0.02);
        assert_eq!(plan.experiment.srm_alpha, 0.01);
        assert!(plan.experiment.log_raw_user_id);
        assert_eq!(plan.experiment.sample_users, 4_096);
    }

    #[test]
    fn bad_values_are_named() {
        let text =
            format!("{GOOD}\n[experiment]\nsrm_alpha = 0\nsequential_alpha = 0.9\nmsprt_tau = -1\nsample_users = 10\n");
        assert_eq!(
            paths(&text),
            ["experiment.srm_alpha", "experiment.sequential_alpha", "experiment.msprt_tau", "experiment.sample_users"]
        );
        assert!(parse(&format!("{GOOD}\n[experiment]\nsrm_alfa = 0.01\n")).is_err());
    }
}
