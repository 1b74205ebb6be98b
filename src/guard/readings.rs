//! What the guard sees now, trigger by trigger, for the dashboard: each trigger's current value
//! over its own window beside its threshold, and whether it is armed (enough requests in the
//! window) and breached. Pure, and computed exactly as [`super::evaluate`] decides, so the
//! page never shows a trigger as fine that the guard is about to act on (a test holds the two
//! together).

use serde::Serialize;

use super::{ms, Tracker};
use crate::config::GuardPlan;

/// One trigger's reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reading {
    /// The label of `splitgate_guard_rollbacks_total{trigger}`.
    pub trigger: &'static str,
    /// The observed value in `unit`; `None` with no requests in the window.
    pub value: Option<f64>,
    pub threshold: f64,
    pub unit: &'static str,
    pub window_secs: u64,
    pub requests: u64,
    /// Rate triggers need `min_requests` in their window before they can fire.
    pub armed: bool,
    pub breached: bool,
}

/// The four triggers, in the order [`super::evaluate`] checks them.
pub fn readings(cfg: &GuardPlan, t: &Tracker) -> [Reading; 4] {
    let rate = |n: u64, of: u64| (of > 0).then(|| n as f64 / of as f64);
    let e = t.window(ms(cfg.error_window));
    let l = t.window(ms(cfg.latency_window));
    let m = t.window(60_000);
    let th = t.window(ms(cfg.throttle_window));
    let reading = |trigger, value: Option<f64>, threshold, unit, window: u64, requests, armed: bool| Reading {
        trigger,
        value,
        threshold,
        unit,
        window_secs: window / 1_000,
        requests,
        armed,
        breached: armed && value.is_some_and(|v| v > threshold),
    };
    let armed = |requests| requests >= cfg.min_requests;
    [
        reading(
            "error_rate",
            rate(e.errors, e.requests),
            cfg.error_rate,
            "ratio",
            ms(cfg.error_window),
            e.requests,
            armed(e.requests),
        ),
        reading(
            "latency",
            rate(l.latency_us, l.requests).map(|us| us / 1_000.0),
            cfg.latency_ms,
            "ms",
            ms(cfg.latency_window),
            l.requests,
            armed(l.requests),
        ),
        // Counted, not a rate: armed whatever the traffic, as `evaluate` does.
        reading(
            "invocation_errors",
            Some(m.invocation_errors as f64),
            cfg.invocation_errors_per_minute as f64,
            "per_minute",
            60_000,
            m.requests,
            true,
        ),
        reading(
            "throttling",
            rate(th.throttled, th.requests),
            cfg.throttle_rate,
            "ratio",
            ms(cfg.throttle_window),
            th.requests,
            armed(th.requests),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{evaluate, keep_ms, Counters};
    use super::*;

    #[test]
    fn readings_agree_with_evaluate_on_every_mix() {
        let cfg = GuardPlan { min_requests: 20, ..GuardPlan::default() };
        // Every mix of traffic volume, error share, latency, model errors and throttling.
        for per_sec in [0u64, 1, 5] {
            for failing in [0u64, 1, 3] {
                for latency_ms in [5u64, 2_000] {
                    for throttled in [false, true] {
                        let (c, mut t) = (Counters::default(), Tracker::default());
                        for s in 1..=90u64 {
                            for i in 0..per_sec {
                                let failed = i < failing;
                                c.record(failed, failed, throttled && i == 0, Duration::from_millis(latency_ms));
                            }
                            t.push(c.sample(s * 1_000), keep_ms(&cfg));
                        }
                        let r = readings(&cfg, &t);
                        let first = r.iter().find(|x| x.breached).map(|x| x.trigger);
                        let decided = evaluate(&cfg, &t).map(|b| b.trigger());
                        assert_eq!(
                            first, decided,
                            "{per_sec}/s, {failing} failing, {latency_ms} ms, {throttled}: {r:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn values_and_thresholds_are_in_their_units() {
        let cfg = GuardPlan { min_requests: 10, ..GuardPlan::default() };
        let (c, mut t) = (Counters::default(), Tracker::default());
        t.push(c.sample(0), keep_ms(&cfg));
        for i in 0..40 {
            c.record(i < 4, i < 2, i < 8, Duration::from_millis(250));
        }
        t.push(c.sample(30_000), keep_ms(&cfg));
        let [e, l, m, th] = readings(&cfg, &t);
        assert_eq!((e.value, e.threshold, e.unit, e.requests), (Some(0.1), cfg.error_rate, "ratio", 40));
        assert!(e.armed && e.breached, "10% > 5%: {e:?}");
        assert_eq!((l.value, l.unit, l.breached), (Some(250.0), "ms", false));
        assert_eq!((m.value, m.window_secs, m.breached), (Some(2.0), 60, false));
        assert_eq!((th.value, th.breached), (Some(0.2), true));
        assert_eq!(e.window_secs, cfg.error_window.as_secs());

        let quiet = readings(&cfg, &Tracker::default());
        assert_eq!(quiet[0].value, None, "no requests: no rate");
        assert!(!quiet[0].armed && !quiet.iter().any(|r| r.breached));
    }
}
