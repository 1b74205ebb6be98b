//! `[[shadow]]`: models that get a sampled copy of primary traffic, how their answers are
//! compared, and where disagreements are captured.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::models::default_timeout_ms;
use super::{Issues, MAX_TIMEOUT_MS};
use crate::split::percent_to_buckets;

/// `[[shadow]]`: a model that gets a sampled copy of primary traffic.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowConfig {
    pub model: String,
    pub sample_percent: f64,
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Salt for the sampling hash; independent of the split so sampling is not tied to variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    #[serde(default = "default_items_pointer")]
    pub items_pointer: String,
    #[serde(default = "default_id_field")]
    pub id_field: String,
    #[serde(default = "default_k")]
    pub k: usize,
    /// JSON-lines file receiving a rate-limited sample of disagreements; off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_path: Option<String>,
    /// Capture when overlap@k is below this (1.0 = any difference).
    #[serde(default = "default_capture_below")]
    pub capture_below_overlap: f64,
    #[serde(default = "default_capture_per_second")]
    pub capture_per_second: f64,
    /// Rotate the capture file past this size; `capture_files` rotated files are kept.
    #[serde(default = "default_capture_max_bytes")]
    pub capture_max_bytes: u64,
    #[serde(default = "default_capture_files")]
    pub capture_files: u32,
    /// Write the raw user id instead of its salted hash (off: captures are pseudonymous).
    #[serde(default)]
    pub capture_raw_user_id: bool,
}

fn default_queue_capacity() -> usize {
    1_024
}
fn default_max_in_flight() -> usize {
    64
}
fn default_items_pointer() -> String {
    "/items".into()
}
fn default_id_field() -> String {
    "item_id".into()
}
fn default_k() -> usize {
    10
}
fn default_capture_below() -> f64 {
    1.0
}
fn default_capture_per_second() -> f64 {
    10.0
}
fn default_capture_max_bytes() -> u64 {
    10 << 20
}
fn default_capture_files() -> u32 {
    3
}

/// A validated shadow; `model` indexes [`Plan::models`](super::Plan::models).
#[derive(Debug, Clone)]
pub struct ShadowPlan {
    pub model: usize,
    pub sample_buckets: u32,
    pub queue_capacity: usize,
    pub max_in_flight: usize,
    pub timeout: Duration,
    pub salt: String,
    pub items_pointer: String,
    pub id_field: String,
    pub k: usize,
    pub capture: Option<CapturePlan>,
}

/// Where and how often shadow disagreements are written.
#[derive(Debug, Clone, PartialEq)]
pub struct CapturePlan {
    pub path: std::path::PathBuf,
    pub below_overlap: f64,
    pub per_second: f64,
    pub max_bytes: u64,
    pub files: u32,
    pub raw_user_id: bool,
}

/// Checks every `[[shadow]]`; the sampling salt defaults to the split's salt + `:shadow`.
pub(super) fn validate(
    issues: &mut Issues,
    shadows: &[ShadowConfig],
    split_salt: &str,
    model_index: &HashMap<&str, usize>,
) -> Vec<ShadowPlan> {
    let mut out = Vec::new();
    for (i, s) in shadows.iter().enumerate() {
        let path = format!("shadow[{i}]");
        let model = model_index.get(s.model.as_str()).copied();
        if model.is_none() {
            issues.add(format!("{path}.model"), format!("no model named `{}` in [models]", s.model));
        }
        let sample = percent_to_buckets(s.sample_percent);
        if sample.is_none() {
            issues
                .add(format!("{path}.sample_percent"), "must be a percentage from 0 to 100 with at most two decimals");
        }
        if !(1..=1_000_000).contains(&s.queue_capacity) {
            issues.add(format!("{path}.queue_capacity"), "must be between 1 and 1000000");
        }
        if !(1..=100_000).contains(&s.max_in_flight) {
            issues.add(format!("{path}.max_in_flight"), "must be between 1 and 100000");
        }
        if !(1..=MAX_TIMEOUT_MS).contains(&s.timeout_ms) {
            issues.add(format!("{path}.timeout_ms"), format!("must be between 1 and {MAX_TIMEOUT_MS}"));
        }
        if !(s.items_pointer.is_empty() || s.items_pointer.starts_with('/')) {
            issues.add(format!("{path}.items_pointer"), "must be a JSON pointer: empty or starting with `/`");
        }
        if s.id_field.is_empty() {
            issues.add(format!("{path}.id_field"), "must not be empty");
        }
        if !(1..=1_000).contains(&s.k) {
            issues.add(format!("{path}.k"), "must be between 1 and 1000");
        }
        if !(0.0..=1.0).contains(&s.capture_below_overlap) {
            issues.add(format!("{path}.capture_below_overlap"), "must be between 0 and 1");
        }
        if !(s.capture_per_second.is_finite() && s.capture_per_second > 0.0 && s.capture_per_second <= 100_000.0) {
            issues.add(format!("{path}.capture_per_second"), "must be above 0 and at most 100000");
        }
        if s.capture_max_bytes < 4_096 {
            issues.add(format!("{path}.capture_max_bytes"), "must be at least 4096");
        }
        if !(1..=100).contains(&s.capture_files) {
            issues.add(format!("{path}.capture_files"), "must be between 1 and 100");
        }
        if s.capture_path.as_deref() == Some("") {
            issues.add(format!("{path}.capture_path"), "must not be empty (omit it to disable capture)");
        }
        let capture = s.capture_path.as_ref().map(|p| CapturePlan {
            path: p.into(),
            below_overlap: s.capture_below_overlap,
            per_second: s.capture_per_second,
            max_bytes: s.capture_max_bytes,
            files: s.capture_files,
            raw_user_id: s.capture_raw_user_id,
        });
        if let (Some(model), Some(sample_buckets)) = (model, sample) {
            out.push(ShadowPlan {
                model,
                sample_buckets,
                queue_capacity: s.queue_capacity,
                max_in_flight: s.max_in_flight,
                timeout: Duration::from_millis(s.timeout_ms),
                salt: s.salt.clone().unwrap_or_else(|| format!("{split_salt}:shadow")),
                items_pointer: s.items_pointer.clone(),
                id_field: s.id_field.clone(),
                k: s.k,
                capture,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::support_tests::{paths, GOOD};
    use super::super::{parse, validate};

    #[test]
    fn shadow_validation() {
        let text = format!("{GOOD}\n[[shadow]]\nmodel = \"ghost\"\nsample_percent = 101\nk = 0\n");
        let p = paths(&text);
        for want in ["shadow[0].model", "shadow[0].sample_percent", "shadow[0].k"] {
            assert!(p.contains(&want.to_owned()), "{p:?}");
        }
        let ok = format!("{GOOD}\n[[shadow]]\nmodel = \"rec-v2-3\"\nsample_percent = 12.5\n");
        let plan = validate(&parse(&ok).unwrap()).unwrap();
        assert_eq!(plan.shadows[0].sample_buckets, 1_250);
        assert_eq!(plan.shadows[0].salt, "rec-2026-11:shadow");
    }
}
