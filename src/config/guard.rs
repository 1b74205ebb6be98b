//! `[guard]` and `[guard.ramp]`: the automatic rollback triggers and the progressive rollout,
//! validated into a [`GuardPlan`] whose windows and hold are [`Duration`]s and whose conversion
//! event is a [`FeedbackEvent`], so the guard loop never parses config text.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Issues;
use crate::events::FeedbackEvent;
use crate::split::percent_to_buckets;

/// `[guard]`: the deployment guide's rollback triggers, each window and threshold configurable.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GuardConfig {
    /// Roll back when the error rate (5xx and upstream failures) exceeds this fraction…
    #[serde(default = "default_error_rate")]
    pub error_rate: f64,
    /// …over this window.
    #[serde(default = "default_window_secs")]
    pub error_window_secs: u64,
    /// Roll back when mean latency exceeds this…
    #[serde(default = "default_latency_ms")]
    pub latency_ms: f64,
    #[serde(default = "default_window_secs")]
    pub latency_window_secs: u64,
    /// Roll back when model invocation errors exceed this count per minute.
    #[serde(default = "default_invocation_errors_per_minute")]
    pub invocation_errors_per_minute: u64,
    /// Roll back when more than this fraction of the variant's requests were throttled.
    #[serde(default = "default_throttle_rate")]
    pub throttle_rate: f64,
    #[serde(default = "default_window_secs")]
    pub throttle_window_secs: u64,
    /// No trigger fires on fewer requests than this in its window.
    #[serde(default = "default_min_requests")]
    pub min_requests: u64,
    /// How often the windows are evaluated.
    #[serde(default = "default_evaluate_every_ms")]
    pub evaluate_every_ms: u64,
    /// POSTed a JSON body on every rollback (retried, never blocking requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Progressive rollout: advance a healthy challenger one step per `hold`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp: Option<RampConfig>,
}

/// `[guard.ramp]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RampConfig {
    /// Weights (percent) to step through, ascending, e.g. `[10, 50, 100]`.
    pub steps: Vec<f64>,
    /// How long a step must hold healthy before the next: `"500ms"`, `"30s"`, `"15m"`, `"1h"`.
    pub hold: String,
    /// Also require the challenger's conversion not to be significantly worse (p < 0.05).
    #[serde(default)]
    pub require_not_worse: bool,
    #[serde(default = "default_conversion_event")]
    pub conversion_event: String,
}

fn default_error_rate() -> f64 {
    0.05
}
fn default_window_secs() -> u64 {
    300
}
fn default_latency_ms() -> f64 {
    1_000.0
}
fn default_invocation_errors_per_minute() -> u64 {
    10
}
fn default_throttle_rate() -> f64 {
    0.10
}
fn default_min_requests() -> u64 {
    100
}
fn default_evaluate_every_ms() -> u64 {
    1_000
}
fn default_conversion_event() -> String {
    FeedbackEvent::Click.as_str().into()
}

/// A bare `[guard]`: the same values as every field left out.
impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            error_rate: default_error_rate(),
            error_window_secs: default_window_secs(),
            latency_ms: default_latency_ms(),
            latency_window_secs: default_window_secs(),
            invocation_errors_per_minute: default_invocation_errors_per_minute(),
            throttle_rate: default_throttle_rate(),
            throttle_window_secs: default_window_secs(),
            min_requests: default_min_requests(),
            evaluate_every_ms: default_evaluate_every_ms(),
            webhook_url: None,
            ramp: None,
        }
    }
}

/// Parses `"500ms"`, `"90s"`, `"15m"`, `"1h"` (or plain seconds).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit()).map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: u64 = num.parse().ok()?;
    let secs = match unit {
        "ms" => return Some(Duration::from_millis(n)),
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3_600)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

/// A validated `[guard]`. Serializes as the `[guard]` it came from (`/admin/config` shows it).
#[derive(Debug, Clone, PartialEq)]
pub struct GuardPlan {
    pub error_rate: f64,
    pub error_window: Duration,
    /// Mean latency threshold, compared with a mean in milliseconds.
    pub latency_ms: f64,
    pub latency_window: Duration,
    pub invocation_errors_per_minute: u64,
    pub throttle_rate: f64,
    pub throttle_window: Duration,
    pub min_requests: u64,
    pub evaluate_every: Duration,
    pub webhook_url: Option<String>,
    pub ramp: Option<RampPlan>,
}

/// A validated `[guard.ramp]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RampPlan {
    /// Ascending percentages above 0.
    pub steps: Vec<f64>,
    pub hold: Duration,
    /// `hold` as the operator wrote it, for audit reasons and `/admin/config`; never parsed again.
    pub hold_as_written: String,
    pub require_not_worse: bool,
    pub conversion_event: FeedbackEvent,
}

impl GuardPlan {
    /// The plan of a `[guard]` whose thresholds are already checked; `ramp` comes separately.
    fn new(g: &GuardConfig, ramp: Option<RampPlan>) -> GuardPlan {
        GuardPlan {
            error_rate: g.error_rate,
            error_window: Duration::from_secs(g.error_window_secs),
            latency_ms: g.latency_ms,
            latency_window: Duration::from_secs(g.latency_window_secs),
            invocation_errors_per_minute: g.invocation_errors_per_minute,
            throttle_rate: g.throttle_rate,
            throttle_window: Duration::from_secs(g.throttle_window_secs),
            min_requests: g.min_requests,
            evaluate_every: Duration::from_millis(g.evaluate_every_ms),
            webhook_url: g.webhook_url.clone(),
            ramp,
        }
    }

    /// The `[guard]` this plan came from (windows are whole seconds, the period whole ms).
    pub fn to_raw(&self) -> GuardConfig {
        GuardConfig {
            error_rate: self.error_rate,
            error_window_secs: self.error_window.as_secs(),
            latency_ms: self.latency_ms,
            latency_window_secs: self.latency_window.as_secs(),
            invocation_errors_per_minute: self.invocation_errors_per_minute,
            throttle_rate: self.throttle_rate,
            throttle_window_secs: self.throttle_window.as_secs(),
            min_requests: self.min_requests,
            evaluate_every_ms: self.evaluate_every.as_millis() as u64,
            webhook_url: self.webhook_url.clone(),
            ramp: self.ramp.as_ref().map(|r| RampConfig {
                steps: r.steps.clone(),
                hold: r.hold_as_written.clone(),
                require_not_worse: r.require_not_worse,
                conversion_event: r.conversion_event.as_str().into(),
            }),
        }
    }
}

/// A bare `[guard]` without a ramp.
impl Default for GuardPlan {
    fn default() -> Self {
        GuardPlan::new(&GuardConfig::default(), None)
    }
}

impl Serialize for GuardPlan {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_raw().serialize(serializer)
    }
}

/// Checks `[guard]`; returns its plan when the section has no issue.
pub(super) fn validate(issues: &mut Issues, g: &GuardConfig) -> Option<GuardPlan> {
    let before = issues.0.len();
    for (field, v) in [("error_rate", g.error_rate), ("throttle_rate", g.throttle_rate)] {
        if !(v.is_finite() && v > 0.0 && v <= 1.0) {
            issues.add(format!("guard.{field}"), "must be a fraction above 0 and at most 1 (0.05 = 5%)");
        }
    }
    if !(g.latency_ms.is_finite() && g.latency_ms > 0.0) {
        issues.add("guard.latency_ms", "must be above 0");
    }
    for (field, v) in [
        ("error_window_secs", g.error_window_secs),
        ("latency_window_secs", g.latency_window_secs),
        ("throttle_window_secs", g.throttle_window_secs),
    ] {
        if !(1..=86_400).contains(&v) {
            issues.add(format!("guard.{field}"), "must be between 1 and 86400");
        }
    }
    if g.min_requests == 0 {
        issues.add("guard.min_requests", "must be at least 1 (a handful of requests must not roll back a model)");
    }
    if !(100..=60_000).contains(&g.evaluate_every_ms) {
        issues.add("guard.evaluate_every_ms", "must be between 100 and 60000");
    }
    let ramp = g.ramp.as_ref().map(|r| validate_ramp(issues, r));
    if let Some(u) = &g.webhook_url {
        if !matches!(u.parse::<http::Uri>(), Ok(uri) if uri.scheme_str() == Some("http") && uri.host().is_some()) {
            issues.add("guard.webhook_url", "must be an absolute http:// URL");
        }
    }
    // Without an issue in this section, a present ramp produced its plan too.
    (issues.0.len() == before).then(|| GuardPlan::new(g, ramp.flatten()))
}

fn validate_ramp(issues: &mut Issues, r: &RampConfig) -> Option<RampPlan> {
    let ok = !r.steps.is_empty()
        && r.steps.iter().all(|w| percent_to_buckets(*w).is_some_and(|b| b > 0))
        && r.steps.windows(2).all(|w| w[0] < w[1]);
    if !ok {
        issues.add("guard.ramp.steps", "must be ascending percentages above 0, e.g. [10, 50, 100]");
    }
    let hold = parse_duration(&r.hold).filter(|d| !d.is_zero());
    if hold.is_none() {
        issues.add("guard.ramp.hold", "must be a duration like \"30s\", \"15m\" or \"1h\"");
    }
    let conversion_event = FeedbackEvent::from_name(&r.conversion_event);
    if conversion_event.is_none() {
        issues.add("guard.ramp.conversion_event", format!("must be one of {:?}", FeedbackEvent::NAMES));
    }
    let (true, Some(hold), Some(conversion_event)) = (ok, hold, conversion_event) else { return None };
    Some(RampPlan {
        steps: r.steps.clone(),
        hold,
        hold_as_written: r.hold.clone(),
        require_not_worse: r.require_not_worse,
        conversion_event,
    })
}

#[cfg(test)]
mod tests {
    use super::super::support_tests::{paths, GOOD};
    use super::super::{parse, validate};
    use super::*;

    fn plan(guard: &str) -> GuardPlan {
        validate(&parse(&format!("{GOOD}\n{guard}")).unwrap()).unwrap().guard.unwrap()
    }

    #[test]
    fn a_bare_guard_gets_the_documented_defaults() {
        assert_eq!(plan("[guard]\n"), GuardPlan::default());
        assert_eq!(GuardPlan::default().error_window, Duration::from_secs(300));
        assert_eq!(GuardPlan::default().evaluate_every, Duration::from_secs(1));
    }

    #[test]
    fn the_ramp_is_typed_and_serializes_as_written() {
        let g = plan("[guard]\nevaluate_every_ms = 150\n[guard.ramp]\nsteps = [10, 50]\nhold = \"90s\"\nconversion_event = \"add_to_cart\"\n");
        let ramp = g.ramp.as_ref().unwrap();
        assert_eq!((ramp.hold, ramp.conversion_event), (Duration::from_secs(90), FeedbackEvent::AddToCart));
        assert_eq!(g.evaluate_every, Duration::from_millis(150));
        let json = serde_json::to_value(&g).unwrap();
        assert_eq!(json["ramp"]["hold"], "90s");
        assert_eq!(json["ramp"]["conversion_event"], "add_to_cart");
        assert_eq!(json["evaluate_every_ms"], 150);
        assert_eq!(
            plan("[guard]\n[guard.ramp]\nsteps = [10]\nhold = \"1h\"\n").ramp.unwrap().conversion_event,
            FeedbackEvent::Click
        );
    }

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration(" 30 "), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3_600)));
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn bad_ramps_are_named_field_by_field() {
        let text =
            format!("{GOOD}\n[guard]\n[guard.ramp]\nsteps = [50, 10]\nhold = \"0s\"\nconversion_event = \"nope\"\n");
        assert_eq!(paths(&text), ["guard.ramp.steps", "guard.ramp.hold", "guard.ramp.conversion_event"]);
    }
}
