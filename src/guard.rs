//! Guarded rollout: sliding-window triggers per non-champion variant. Pure: the caller samples
//! cumulative counters on its own clock and asks whether any trigger is breached.
//!
//! Keeping cumulative samples (not per-event records) means the request path only bumps a few
//! relaxed atomics, and a window's totals are one subtraction: last sample minus the sample at
//! the window's start.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::config::GuardPlan;

pub mod readings;

/// Cumulative per-variant counters, bumped on the request path.
#[derive(Debug, Default)]
pub struct Counters {
    requests: AtomicU64,
    errors: AtomicU64,
    invocation_errors: AtomicU64,
    throttled: AtomicU64,
    latency_us: AtomicU64,
    latency: crate::tally::AtomicLatency,
}

impl Counters {
    /// One request's outcome: `failed` = 5xx or model failure, `model_error` = the model call
    /// itself failed, `throttled` = the model refused for capacity.
    #[inline]
    pub fn record(&self, failed: bool, model_error: bool, throttled: bool, latency: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let micros = latency.as_micros() as u64;
        self.latency_us.fetch_add(micros, Ordering::Relaxed);
        self.latency.record(micros);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        if model_error {
            self.invocation_errors.fetch_add(1, Ordering::Relaxed);
        }
        if throttled {
            self.throttled.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The latency histogram of every recorded request.
    pub fn latency(&self) -> crate::tally::LatencyHist {
        self.latency.read()
    }

    pub fn sample(&self, at_ms: u64) -> Sample {
        Sample {
            at_ms,
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            invocation_errors: self.invocation_errors.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            latency_us: self.latency_us.load(Ordering::Relaxed),
        }
    }
}

/// Counter values at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sample {
    pub at_ms: u64,
    pub requests: u64,
    pub errors: u64,
    pub invocation_errors: u64,
    pub throttled: u64,
    pub latency_us: u64,
}

impl Sample {
    /// Both samples' counts added (`at_ms` is the later of the two).
    pub fn plus(&self, o: &Sample) -> Sample {
        Sample {
            at_ms: self.at_ms.max(o.at_ms),
            requests: self.requests.saturating_add(o.requests),
            errors: self.errors.saturating_add(o.errors),
            invocation_errors: self.invocation_errors.saturating_add(o.invocation_errors),
            throttled: self.throttled.saturating_add(o.throttled),
            latency_us: self.latency_us.saturating_add(o.latency_us),
        }
    }

    /// The counts between `earlier` and this sample.
    pub fn minus(&self, earlier: &Sample) -> Sample {
        Sample {
            at_ms: self.at_ms.saturating_sub(earlier.at_ms),
            requests: self.requests.saturating_sub(earlier.requests),
            errors: self.errors.saturating_sub(earlier.errors),
            invocation_errors: self.invocation_errors.saturating_sub(earlier.invocation_errors),
            throttled: self.throttled.saturating_sub(earlier.throttled),
            latency_us: self.latency_us.saturating_sub(earlier.latency_us),
        }
    }
}

/// Which trigger fired, with the observed value.
#[derive(Debug, Clone, PartialEq)]
pub enum Breach {
    ErrorRate { rate: f64, requests: u64 },
    Latency { mean_ms: f64, requests: u64 },
    InvocationErrors { per_minute: u64 },
    Throttling { rate: f64, requests: u64 },
}

impl Breach {
    /// Stable metric label.
    pub fn trigger(&self) -> &'static str {
        match self {
            Breach::ErrorRate { .. } => "error_rate",
            Breach::Latency { .. } => "latency",
            Breach::InvocationErrors { .. } => "invocation_errors",
            Breach::Throttling { .. } => "throttling",
        }
    }
}

impl std::fmt::Display for Breach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Breach::ErrorRate { rate, requests } => {
                write!(f, "error rate {:.1}% over {requests} requests", rate * 100.0)
            }
            Breach::Latency { mean_ms, requests } => write!(f, "mean latency {mean_ms:.0} ms over {requests} requests"),
            Breach::InvocationErrors { per_minute } => write!(f, "{per_minute} model invocation errors in a minute"),
            Breach::Throttling { rate, requests } => write!(f, "{:.1}% of {requests} requests throttled", rate * 100.0),
        }
    }
}

/// Samples of one variant, kept as long as the longest window needs.
#[derive(Debug, Default, Clone)]
pub struct Tracker {
    samples: VecDeque<Sample>,
}

impl Tracker {
    /// Adds a sample; a clock that goes backwards resets the history instead of inventing rates.
    pub fn push(&mut self, s: Sample, keep_ms: u64) {
        if self.samples.back().is_some_and(|last| s.at_ms < last.at_ms) {
            self.samples.clear();
        }
        self.samples.push_back(s);
        while self.samples.len() > 1 && self.samples.front().is_some_and(|f| s.at_ms - f.at_ms > keep_ms) {
            self.samples.pop_front();
        }
    }

    /// Totals over the last `window_ms` (or all history, if shorter).
    pub fn window(&self, window_ms: u64) -> Sample {
        let Some(last) = self.samples.back() else { return Sample::default() };
        let start = self.samples.iter().find(|s| last.at_ms - s.at_ms <= window_ms).unwrap_or(last);
        last.minus(start)
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// How much history `evaluate` needs.
pub fn keep_ms(cfg: &GuardPlan) -> u64 {
    [cfg.error_window, cfg.latency_window, cfg.throttle_window, Duration::from_secs(60)].into_iter().max().map_or(0, ms)
}

/// Whether a ramp step has held long enough to advance: the whole `hold` has passed *and* the
/// variant served at least `min_requests` in it (and at least one: `min_requests = 0` must not
/// let an idle challenger climb). The caller has already checked that no trigger is breached.
pub fn step_held(held: Duration, hold: Duration, requests_in_hold: u64, min_requests: u64) -> bool {
    held >= hold && requests_in_hold >= min_requests.max(1)
}

/// The trigger a ramp step breached over its whole hold (`in_hold`: the counts since the step
/// began, `held`: how long ago that was), if any. The guard's windows alone are not enough:
/// with a hold longer than a window, a challenger can fail every request yet have too few in
/// each window for any rate trigger to fire — over the hold it must be healthy as a whole.
pub fn hold_breach(cfg: &GuardPlan, in_hold: &Sample, held: Duration) -> Option<Breach> {
    let n = in_hold.requests;
    if n == 0 {
        return None;
    }
    let rate = in_hold.errors as f64 / n as f64;
    if rate > cfg.error_rate {
        return Some(Breach::ErrorRate { rate, requests: n });
    }
    let mean_ms = in_hold.latency_us as f64 / n as f64 / 1_000.0;
    if mean_ms > cfg.latency_ms {
        return Some(Breach::Latency { mean_ms, requests: n });
    }
    let minutes = held.as_secs_f64() / 60.0;
    if minutes > 0.0 && in_hold.invocation_errors as f64 / minutes > cfg.invocation_errors_per_minute as f64 {
        let per_minute = (in_hold.invocation_errors as f64 / minutes).round() as u64;
        return Some(Breach::InvocationErrors { per_minute });
    }
    let throttled = in_hold.throttled as f64 / n as f64;
    if throttled > cfg.throttle_rate {
        return Some(Breach::Throttling { rate: throttled, requests: n });
    }
    None
}

/// The first breached trigger, if any. No rate trigger fires below `min_requests` in its window.
pub fn evaluate(cfg: &GuardPlan, t: &Tracker) -> Option<Breach> {
    let e = t.window(ms(cfg.error_window));
    if e.requests >= cfg.min_requests {
        let rate = e.errors as f64 / e.requests as f64;
        if rate > cfg.error_rate {
            return Some(Breach::ErrorRate { rate, requests: e.requests });
        }
    }
    let l = t.window(ms(cfg.latency_window));
    if l.requests >= cfg.min_requests {
        let mean_ms = l.latency_us as f64 / l.requests as f64 / 1_000.0;
        if mean_ms > cfg.latency_ms {
            return Some(Breach::Latency { mean_ms, requests: l.requests });
        }
    }
    let m = t.window(60_000);
    if m.invocation_errors > cfg.invocation_errors_per_minute {
        return Some(Breach::InvocationErrors { per_minute: m.invocation_errors });
    }
    let th = t.window(ms(cfg.throttle_window));
    if th.requests >= cfg.min_requests {
        let rate = th.throttled as f64 / th.requests as f64;
        if rate > cfg.throttle_rate {
            return Some(Breach::Throttling { rate, requests: th.requests });
        }
    }
    None
}

#[cfg(test)]
mod tests;
