use super::*;

const B: &[f64] = &[0.001, 0.01, 0.1, 1.0];

fn reading(requests: u64, errors: u64, latency: &[u64]) -> Reading {
    Reading { requests, errors, latency: latency.to_vec() }
}

#[test]
fn quantiles_match_hand_computed_values() {
    // 10 samples: 4 ≤ 1 ms, 4 in (1, 10] ms, 2 in (10, 100] ms.
    let cum = [4, 8, 10, 10, 10];
    // rank 5 of 10: the 1st of 4 in (0.001, 0.01] → 0.001 + 0.009 × 1/4.
    assert!((quantile(B, &cum, 0.5).unwrap() - 0.003_25).abs() < 1e-12);
    // rank 9.9: 1.9 of 2 in (0.01, 0.1] → 0.01 + 0.09 × 0.95.
    assert!((quantile(B, &cum, 0.99).unwrap() - 0.0955).abs() < 1e-12);
    // rank 2 in the first bucket: from 0 → 0.001 × 2/4.
    assert!((quantile(B, &cum, 0.2).unwrap() - 0.000_5).abs() < 1e-12);
    assert_eq!(quantile(B, &[0, 0, 0, 0, 0], 0.5), None, "empty");
    assert_eq!(quantile(B, &cum, 1.5), None);
    assert_eq!(quantile(B, &[1, 2], 0.5), None, "counts do not fit the bounds");
    // Everything beyond the last bound: the highest finite bound, as Prometheus answers.
    assert_eq!(quantile(B, &[0, 0, 0, 0, 3], 0.5), Some(1.0));
}

/// xorshift64*: deterministic, no dependency.
fn rng(seed: u64) -> impl FnMut() -> f64 {
    let mut x = seed.max(1);
    move || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn quantile_estimates_fall_in_the_bucket_of_the_true_quantile() {
    let bounds = &[0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];
    for seed in 1..200 {
        let mut r = rng(seed);
        let n = 1 + (r() * 500.0) as usize;
        // Log-uniform latencies from 0.1 ms to 2 s.
        let mut xs: Vec<f64> = (0..n).map(|_| 1e-4 * (2e4f64).powf(r())).collect();
        let mut cum = vec![0u64; bounds.len() + 1];
        for x in &xs {
            let i = bounds.partition_point(|b| b < x);
            for c in &mut cum[i..] {
                *c += 1;
            }
        }
        xs.sort_by(f64::total_cmp);
        for q in [0.5, 0.9, 0.99] {
            // The true q-quantile: the ceil(q·n)-th smallest sample.
            let truth = xs[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
            let est = quantile(bounds, &cum, q).unwrap();
            let i = bounds.partition_point(|b| *b < truth);
            let lo = if i == 0 { 0.0 } else { bounds[i - 1] };
            let hi = bounds.get(i).copied().unwrap_or(f64::INFINITY);
            let est_in = (lo..=hi).contains(&est) || (i == bounds.len() && est == bounds[bounds.len() - 1]);
            assert!(est_in, "seed {seed} q {q}: estimate {est} outside ({lo}, {hi}] holding {truth}");
        }
    }
}

#[test]
fn points_are_deltas_between_samples() {
    let mut ring = Ring::default();
    ring.push(1_000, 0, reading(0, 0, &[0, 0, 0, 0, 0]), B);
    assert_eq!(ring.points().count(), 0, "the first sample is the baseline");
    ring.push(1_010, 10_000, reading(100, 5, &[50, 90, 100, 100, 100]), B);
    ring.push(1_020, 20_000, reading(100, 5, &[50, 90, 100, 100, 100]), B);
    let p: Vec<_> = ring.points().copied().collect();
    assert_eq!(p.len(), 2);
    assert_eq!((p[0].t, p[0].requests, p[0].errors), (1_010, 100, 5));
    assert!((p[0].rps() - 10.0).abs() < 1e-9);
    assert_eq!(p[0].error_rate(), Some(0.05));
    // rank 50 of 100 is the last of the 50 ≤ 1 ms: exactly 1 ms.
    assert!((p[0].p50_ms.unwrap() - 1.0).abs() < 1e-4, "{:?}", p[0]);
    // rank 99: 9 of 10 in (10, 100] ms → 10 + 90 × 0.9 = 91 ms.
    assert!((p[0].p99_ms.unwrap() - 91.0).abs() < 1e-3, "{:?}", p[0]);
    assert_eq!((p[1].requests, p[1].p50_ms, p[1].error_rate()), (0, None, None), "an idle interval");
    assert_eq!(p[1].rps(), 0.0);
}

#[test]
fn counters_going_back_or_a_stalled_clock_reset_the_baseline() {
    let mut ring = Ring::default();
    ring.push(0, 0, reading(100, 1, &[100, 100, 100, 100, 100]), B);
    ring.push(10, 10_000, reading(50, 1, &[50, 50, 50, 50, 50]), B);
    assert_eq!(ring.points().count(), 0, "counters went backwards: no negative point");
    ring.push(20, 10_000, reading(60, 1, &[60, 60, 60, 60, 60]), B);
    assert_eq!(ring.points().count(), 0, "no time passed");
    ring.push(30, 20_000, reading(70, 2, &[70, 70, 70, 70, 70]), B);
    let p: Vec<_> = ring.points().copied().collect();
    assert_eq!((p.len(), p[0].requests, p[0].errors), (1, 10, 1));
}

#[test]
fn the_ring_keeps_fifteen_minutes() {
    let mut ring = Ring::default();
    for i in 0..=200u64 {
        ring.push(i * 10, i * 10_000, reading(i, 0, &[i, i, i, i, i]), B);
    }
    let p: Vec<_> = ring.points().collect();
    assert_eq!(p.len(), POINTS);
    assert_eq!(p[0].t, (200 - POINTS as u64 + 1) * 10, "oldest points go first");
    assert_eq!(p[POINTS - 1].t, 2_000);
    assert!(std::mem::size_of::<Point>() <= 48, "the module doc's memory figure");
}

#[test]
fn series_follow_the_live_variants_and_stay_bounded() {
    let mut s = Series::default();
    let r = || reading(0, 0, &[0, 0, 0, 0, 0]);
    s.sample(0, 0, [("champion", r()), ("challenger", r())], B);
    s.sample(10, 10_000, [("champion", r())], B);
    assert!(s.ring("champion").is_some());
    assert!(s.ring("challenger").is_none(), "removed by a reload: dropped");
    let names: Vec<String> = (0..100).map(|i| format!("v{i}")).collect();
    s.sample(20, 20_000, names.iter().map(|n| (n.as_str(), r())), B);
    assert_eq!(s.rings.len(), MAX_VARIANTS);
}
