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

/// Cumulative per-variant counters, bumped on the request path.
#[derive(Debug, Default)]
pub struct Counters {
    requests: AtomicU64,
    errors: AtomicU64,
    invocation_errors: AtomicU64,
    throttled: AtomicU64,
    latency_us: AtomicU64,
}

impl Counters {
    /// One request's outcome: `failed` = 5xx or model failure, `model_error` = the model call
    /// itself failed, `throttled` = the model refused for capacity.
    #[inline]
    pub fn record(&self, failed: bool, model_error: bool, throttled: bool, latency: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.latency_us.fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    pub at_ms: u64,
    pub requests: u64,
    pub errors: u64,
    pub invocation_errors: u64,
    pub throttled: u64,
    pub latency_us: u64,
}

impl Sample {
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
mod tests {
    use super::*;

    fn cfg() -> GuardPlan {
        GuardPlan { min_requests: 100, ..GuardPlan::default() }
    }

    /// Feeds `per_sec` requests a second for `secs` seconds from `from_s`, with the given
    /// fractions failing/slow, sampling every second like the guard task does.
    fn feed(t: &mut Tracker, c: &Counters, from_s: u64, secs: u64, per_sec: u64, failing: u64, latency_ms: u64) {
        for s in 0..secs {
            for i in 0..per_sec {
                let failed = i < failing;
                c.record(failed, failed, false, Duration::from_millis(latency_ms));
            }
            t.push(c.sample((from_s + s + 1) * 1_000), keep_ms(&cfg()));
        }
    }

    #[test]
    fn a_step_must_be_healthy_over_the_whole_hold() {
        let cfg = GuardPlan { min_requests: 100, ..GuardPlan::default() };
        let hold = Duration::from_secs(15 * 60);
        let at = |requests, errors, invocation_errors, latency_ms: u64, throttled| Sample {
            at_ms: 0,
            requests,
            errors,
            invocation_errors,
            throttled,
            latency_us: requests * latency_ms * 1_000,
        };
        // The README setup: 15 min hold, 5 min windows, min_requests 100, > 10 model errors a
        // minute. 10 requests a minute, all failing: 150 in the hold, ~50 a window, 10 a minute —
        // no window trigger can fire, but the hold as a whole is 100% errors.
        assert!(matches!(hold_breach(&cfg, &at(150, 150, 150, 5, 0), hold), Some(Breach::ErrorRate { .. })));
        assert_eq!(hold_breach(&cfg, &at(150, 0, 0, 5, 0), hold), None, "healthy");
        assert_eq!(hold_breach(&cfg, &at(1_000, 50, 0, 5, 0), hold), None, "5% is the threshold, not a breach");
        assert!(matches!(hold_breach(&cfg, &at(1_000, 51, 0, 5, 0), hold), Some(Breach::ErrorRate { .. })));
        assert!(matches!(hold_breach(&cfg, &at(1_000, 0, 0, 1_500, 0), hold), Some(Breach::Latency { .. })));
        assert!(matches!(hold_breach(&cfg, &at(1_000, 0, 0, 5, 200), hold), Some(Breach::Throttling { .. })));
        // 160 model errors in 15 minutes is 10.7 a minute: over the guide's 10.
        let cfg_errors = GuardPlan { error_rate: 1.0, ..cfg.clone() };
        assert!(matches!(
            hold_breach(&cfg_errors, &at(10_000, 160, 160, 5, 0), hold),
            Some(Breach::InvocationErrors { per_minute: 11 })
        ));
        assert_eq!(hold_breach(&cfg_errors, &at(10_000, 150, 150, 5, 0), hold), None, "exactly 10 a minute");
        assert_eq!(hold_breach(&cfg, &Sample::default(), hold), None, "no traffic: step_held refuses it");
    }

    #[test]
    fn a_step_holds_for_time_and_traffic_together() {
        let (s, hold) = (Duration::from_secs, Duration::from_secs(30));
        assert!(step_held(s(30), hold, 100, 100));
        assert!(step_held(s(300), hold, 5_000, 100));
        assert!(!step_held(s(29), hold, 5_000, 100), "traffic without the hold");
        assert!(!step_held(s(3_600), hold, 99, 100), "the hold without the traffic");
        assert!(!step_held(s(3_600), hold, 0, 100), "zero traffic never advances");
        assert!(!step_held(s(3_600), hold, 0, 0), "not even with min_requests = 0");
        assert!(step_held(s(30), hold, 1, 0));
    }

    #[test]
    fn healthy_traffic_never_trips() {
        let (mut t, c) = (Tracker::default(), Counters::default());
        feed(&mut t, &c, 0, 600, 50, 0, 100);
        assert_eq!(evaluate(&cfg(), &t), None);
        // 2% errors is under the 5% trigger (invocation errors judged separately).
        feed(&mut t, &c, 600, 300, 50, 1, 100);
        assert_eq!(evaluate(&GuardPlan { invocation_errors_per_minute: 1_000, ..cfg() }, &t), None);
    }

    #[test]
    fn error_rate_over_five_percent_trips() {
        let (mut t, c) = (Tracker::default(), Counters::default());
        feed(&mut t, &c, 0, 300, 10, 0, 10);
        feed(&mut t, &c, 300, 300, 10, 1, 10); // 10% failing for 5 minutes
        let b = evaluate(&GuardPlan { invocation_errors_per_minute: 1_000, ..cfg() }, &t).unwrap();
        assert!(matches!(b, Breach::ErrorRate { rate, .. } if (rate - 0.1).abs() < 0.01), "{b:?}");
    }

    #[test]
    fn ten_requests_cannot_trigger_a_rollback() {
        let (mut t, c) = (Tracker::default(), Counters::default());
        feed(&mut t, &c, 0, 10, 1, 1, 5_000);
        assert_eq!(evaluate(&GuardPlan { invocation_errors_per_minute: 1_000, ..cfg() }, &t), None);
    }

    #[test]
    fn slow_variant_trips_latency() {
        let (mut t, c) = (Tracker::default(), Counters::default());
        feed(&mut t, &c, 0, 120, 5, 0, 1_500);
        assert!(matches!(evaluate(&cfg(), &t), Some(Breach::Latency { .. })));
    }

    #[test]
    fn old_errors_age_out_of_the_window() {
        let (mut t, c) = (Tracker::default(), Counters::default());
        feed(&mut t, &c, 0, 60, 10, 5, 10); // a bad minute…
        feed(&mut t, &c, 60, 400, 10, 0, 10); // …then healthy for longer than any window
        assert_eq!(evaluate(&cfg(), &t), None);
    }

    #[test]
    fn invocation_errors_per_minute() {
        let (mut t, c) = (Tracker::default(), Counters::default());
        t.push(c.sample(0), keep_ms(&cfg()));
        for s in 0..30 {
            c.record(false, s % 2 == 0, false, Duration::from_millis(1));
            t.push(c.sample((s + 1) * 1_000), keep_ms(&cfg()));
        }
        assert_eq!(evaluate(&cfg(), &t), Some(Breach::InvocationErrors { per_minute: 15 }));
    }

    #[test]
    fn throttling_rate() {
        let (mut t, c) = (Tracker::default(), Counters::default());
        for s in 0..200 {
            c.record(false, false, s % 5 == 0, Duration::from_millis(1));
            t.push(c.sample((s + 1) * 1_000), keep_ms(&cfg()));
        }
        assert!(matches!(evaluate(&cfg(), &t), Some(Breach::Throttling { .. })));
    }

    #[test]
    fn clock_jump_back_resets_history() {
        let (mut t, c) = (Tracker::default(), Counters::default());
        feed(&mut t, &c, 100, 100, 10, 5, 10);
        assert!(evaluate(&cfg(), &t).is_some());
        t.push(c.sample(5_000), keep_ms(&cfg()));
        assert_eq!(evaluate(&cfg(), &t), None, "one sample after a jump has no window yet");
    }

    // The tests above drive the module's own clock (the `at_ms` of each sample, the `held`
    // duration). The ones below run the same logic on tokio's clock, paused: the loop sleeps
    // `evaluate_every_ms` like the guard task does, and the runtime jumps straight to each wake-up,
    // so minutes of guard passes take no wall time and every instant is exact.

    /// One simulated guard pass every `every` on the paused clock, for `passes` passes: `per_pass`
    /// requests (`failing` of them failed) are recorded, then a sample is taken at the clock's time.
    async fn run_passes(
        t: &mut Tracker,
        c: &Counters,
        start: tokio::time::Instant,
        every: Duration,
        passes: u32,
        per_pass: u64,
        failing: u64,
    ) {
        for _ in 0..passes {
            tokio::time::sleep(every).await;
            for i in 0..per_pass {
                c.record(i < failing, false, false, Duration::from_millis(5));
            }
            t.push(c.sample(start.elapsed().as_millis() as u64), keep_ms(&cfg()));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_ramp_step_advances_when_its_hold_has_passed_on_the_clock_and_not_before() {
        let (hold, every) = (Duration::from_secs(30), Duration::from_millis(100));
        let c = Counters::default();
        let since = tokio::time::Instant::now();
        let at_start = c.sample(0).requests;
        let mut advanced_at = None;
        // Ten requests per pass, far over min_requests well before the hold is over.
        for _ in 0..400 {
            tokio::time::sleep(every).await;
            (0..10).for_each(|_| c.record(false, false, false, Duration::from_millis(5)));
            let served = c.sample(0).requests - at_start;
            if step_held(since.elapsed(), hold, served, 100) {
                advanced_at = Some(since.elapsed());
                break;
            }
        }
        assert_eq!(advanced_at, Some(hold), "the first pass at or after the 30 s hold advances");
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_challenger_holds_its_step_for_an_hour_of_passes() {
        let hold = Duration::from_secs(30);
        let c = Counters::default();
        let since = tokio::time::Instant::now();
        for _ in 0..3_600 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert!(!step_held(since.elapsed(), hold, c.sample(0).requests, 0), "at {:?}", since.elapsed());
        }
        assert_eq!(since.elapsed(), Duration::from_secs(3_600));
    }

    /// Ten seconds of 50% errors (20 requests a second), then healthy traffic at the same rate:
    /// how long after the burst the error-rate trigger stops firing, on the paused clock.
    async fn clears_after(error_rate: f64) -> Duration {
        let cfg = GuardPlan { error_rate, invocation_errors_per_minute: 1_000, ..cfg() };
        let (mut t, c) = (Tracker::default(), Counters::default());
        let start = tokio::time::Instant::now();
        t.push(c.sample(0), keep_ms(&cfg));
        run_passes(&mut t, &c, start, Duration::from_secs(1), 10, 20, 10).await;
        assert!(matches!(evaluate(&cfg, &t), Some(Breach::ErrorRate { .. })), "{:?}", t.window(60_000));
        let healthy_from = start.elapsed();
        for _ in 0..600 {
            run_passes(&mut t, &c, start, Duration::from_secs(1), 1, 20, 0).await;
            if evaluate(&cfg, &t).is_none() {
                return start.elapsed() - healthy_from;
            }
        }
        panic!("still breached 600 s after the burst");
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_errors_clears_by_dilution_or_by_leaving_the_window() {
        // 5%: the burst's 100 errors are diluted under the rate once 2,000 requests are in the
        // 300 s window, i.e. after 90 s of healthy traffic — long before the burst ages out.
        assert_eq!(clears_after(0.05).await, Duration::from_secs(90));
        // 1%: dilution would take 490 s, so it clears as the bad seconds leave the window: once
        // the window (300 s of 20 requests) starts past the burst's 4th second, 60 errors remain
        // of 6,000 requests — 294 s after the burst.
        assert_eq!(clears_after(0.01).await, Duration::from_secs(294));
    }
}
