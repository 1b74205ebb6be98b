//! Unit tests of the guard's windows, triggers and ramp holds, on simulated and paused time.
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
