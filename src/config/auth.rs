//! `[auth]` (the callers' API keys, each with an optional token bucket) and `[throttle]` (the
//! listener-wide token bucket).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{valid_name, Issues};
use crate::auth::{parse_sha256_hex, Caller};
use crate::throttle::Gcra;

/// `[auth]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
}

/// `[[auth.keys]]`: a caller, identified by the SHA-256 hex of its `X-API-Key`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    pub name: String,
    pub sha256: String,
    #[serde(default)]
    pub allow_override: bool,
    /// This key's own token bucket, on top of the listener's (a noisy key cannot starve others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_second: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

/// `[throttle]`: the listener-wide token bucket.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleConfig {
    pub rate_per_second: f64,
    pub burst: u32,
}

/// Checks `[[auth.keys]]`; returns every key whose digest parses, with its caller.
pub(super) fn validate_keys(issues: &mut Issues, auth: &AuthConfig) -> Vec<([u8; 32], Caller)> {
    let mut keys = Vec::new();
    let mut names = HashMap::new();
    let mut digests = HashMap::new();
    if auth.keys.is_empty() {
        issues.add("auth.keys", "at least one key is required (`splitgate keys new --name NAME` makes one)");
    }
    for (i, k) in auth.keys.iter().enumerate() {
        let path = format!("auth.keys[{i}]");
        if !valid_name(&k.name) {
            issues.add(format!("{path}.name"), "must be 1-64 characters of A-Z a-z 0-9 - _ .");
        } else if let Some(first) = names.insert(k.name.as_str(), i) {
            issues.add(format!("{path}.name"), format!("duplicate of auth.keys[{first}].name"));
        }
        match parse_sha256_hex(&k.sha256) {
            Some(d) => {
                if let Some(first) = digests.insert(d, i) {
                    issues.add(format!("{path}.sha256"), format!("same key as auth.keys[{first}]"));
                }
                let throttle = match (k.rate_per_second, k.burst) {
                    (None, None) => None,
                    (Some(rate), burst) if rate.is_finite() && rate > 0.0 && rate <= 1e9 && burst != Some(0) => {
                        Some(Gcra::new(rate, burst.unwrap_or_else(|| rate.ceil().max(1.0) as u32)))
                    }
                    _ => {
                        issues.add(
                            format!("{path}.rate_per_second"),
                            "must be above 0 (with burst ≥ 1, default: one second of rate)",
                        );
                        None
                    }
                };
                keys.push((
                    d,
                    Caller { name: k.name.as_str().into(), allow_override: k.allow_override, throttle, bucket: None },
                ));
            }
            None => issues.add(format!("{path}.sha256"), "must be the 64 hex digits of the key's SHA-256"),
        }
    }
    keys
}

/// Checks `[throttle]`; returns its bucket when both fields are valid.
pub(super) fn validate_throttle(issues: &mut Issues, t: &ThrottleConfig) -> Option<Gcra> {
    let mut ok = true;
    if !(t.rate_per_second.is_finite() && t.rate_per_second > 0.0 && t.rate_per_second <= 1e9) {
        issues.add("throttle.rate_per_second", "must be a number above 0 and at most 1e9");
        ok = false;
    }
    if t.burst == 0 {
        issues.add("throttle.burst", "must be at least 1");
        ok = false;
    }
    ok.then(|| Gcra::new(t.rate_per_second, t.burst))
}

#[cfg(test)]
mod tests {
    use super::super::support_tests::{paths, GOOD};

    #[test]
    fn no_keys_is_an_error() {
        let start = GOOD.find("[[auth.keys]]").unwrap();
        let end = GOOD.find("[throttle]").unwrap();
        let text = format!("{}{}", &GOOD[..start], &GOOD[end..]);
        assert_eq!(paths(&text), vec!["auth.keys".to_owned()]);
    }
}
