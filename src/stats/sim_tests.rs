//! Seeded simulations of the statistics under continuous monitoring. Each asserts the property
//! *and* the contrast that makes it meaningful (the peeked z-test fails where the sequential test
//! holds), so a broken test statistic fails here. Deterministic: a fixed-seed SplitMix64.

use super::gamma::normal_two_sided;
use super::sequential::msprt;
use super::srm::goodness_of_fit;
use super::strata::{stratified, Arm, Stratum};
use super::Settings;

use crate::testing::SplitMix as Rng;

/// Successes in `n` Bernoulli(p) draws.
fn binomial(rng: &mut Rng, n: u64, p: f64) -> u64 {
    (0..n).filter(|_| rng.hit(p)).count() as u64
}

/// The pooled two-proportion z-test's two-sided p-value (what the fixed-horizon report shows).
fn z_test(t: Arm, c: Arm) -> f64 {
    let (n1, n2) = (t.users as f64, c.users as f64);
    let pooled = (t.converted + c.converted) as f64 / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se == 0.0 {
        return 1.0;
    }
    normal_two_sided((t.rate() - c.rate()) / se)
}

/// One experiment monitored after every batch: (first look at which the sequential test
/// rejected, first look at which the peeked z-test rejected).
fn monitor(
    rng: &mut Rng,
    p_control: f64,
    p_treatment: f64,
    batch: u64,
    looks: usize,
) -> (Option<usize>, Option<usize>) {
    let s = Settings::default();
    let (mut t, mut c) = (Arm::default(), Arm::default());
    let (mut sequential, mut peeked) = (None, None);
    for look in 1..=looks {
        t.users += batch;
        t.converted += binomial(rng, batch, p_treatment);
        c.users += batch;
        c.converted += binomial(rng, batch, p_control);
        let est = stratified(&[Stratum { treatment: t, control: c }]);
        if sequential.is_none()
            && est
                .and_then(|e| msprt(&e, s.msprt_tau, s.sequential_alpha))
                .is_some_and(|m| m.p_value < s.sequential_alpha)
        {
            sequential = Some(look);
        }
        if peeked.is_none() && z_test(t, c) < 0.05 {
            peeked = Some(look);
        }
        if sequential.is_some() && peeked.is_some() {
            break;
        }
    }
    (sequential, peeked)
}

/// (a) A/A, 2,000 experiments of 100 users per arm per look, 30 looks (3,000 per arm), 10%
/// conversion, checked at every look. The sequential test's false-positive rate must stay within
/// 5% + 3σ (σ = √(0.05·0.95/2000) = 0.49%), while the fixed-horizon z-test checked the same way
/// exceeds that bound (peeking inflates it to roughly a quarter).
#[test]
fn aa_continuous_monitoring_holds_the_error_rate_where_peeking_does_not() {
    let mut rng = Rng(0x5eed_0001);
    let runs = 2_000;
    let (mut seq_fp, mut peek_fp) = (0, 0);
    for _ in 0..runs {
        let (s, p) = monitor(&mut rng, 0.10, 0.10, 100, 30);
        seq_fp += usize::from(s.is_some());
        peek_fp += usize::from(p.is_some());
    }
    let bound = 0.05 + 3.0 * (0.05f64 * 0.95 / runs as f64).sqrt();
    let (seq_rate, peek_rate) = (seq_fp as f64 / runs as f64, peek_fp as f64 / runs as f64);
    eprintln!("A/A: sequential {seq_rate}, peeked z-test {peek_rate}, bound {bound}");
    assert!(seq_rate <= bound, "sequential false-positive rate {seq_rate} > {bound}");
    assert!(peek_rate > bound, "peeked z-test false-positive rate {peek_rate} should exceed {bound}");
}

/// (b) A true 3-point lift (10% → 13%) is found by the sequential test in most runs by 4,000
/// users per arm (40 looks of 100), and never in the wrong direction.
#[test]
fn a_three_point_lift_is_detected() {
    let mut rng = Rng(0x5eed_0002);
    let runs = 300;
    let mut found = 0;
    let mut looks = Vec::new();
    for _ in 0..runs {
        if let (Some(at), _) = monitor(&mut rng, 0.10, 0.13, 100, 40) {
            found += 1;
            looks.push(at);
        }
    }
    looks.sort_unstable();
    let share = found as f64 / runs as f64;
    eprintln!("lift: detected in {share} of runs, median look {}", looks.get(looks.len() / 2).copied().unwrap_or(0));
    assert!(share >= 0.8, "detected in {share} of runs");
    // Typically well before the end: the median detection is under 2,500 users per arm.
    assert!(looks[looks.len() / 2] <= 25, "median detection at look {}", looks[looks.len() / 2]);
}

/// (c) SRM at 20,000 users on a 50/50 config: an injected 52/48 split is flagged at
/// `srm_alpha` = 0.001 in (nearly) every seed — χ² ≈ 32 against a critical 10.83, power ≈ 99% —
/// and a correct split is left alone in at least 99% of seeds (0.1% expected).
#[test]
fn srm_flags_a_52_48_split_and_spares_a_correct_one() {
    let alpha = Settings::default().srm_alpha;
    let seeds = 400;
    let (mut broken_flagged, mut fine_flagged) = (0, 0);
    for seed in 0..seeds {
        let mut rng = Rng(0x5eed_1000 + seed);
        for (share, flagged) in [(0.52, &mut broken_flagged), (0.50, &mut fine_flagged)] {
            let challenger = binomial(&mut rng, 20_000, share) as f64;
            let fit = goodness_of_fit(&[20_000.0 - challenger, challenger], &[50.0, 50.0], 1.0).unwrap();
            *flagged += usize::from(fit.p_value < alpha);
        }
    }
    let broken = broken_flagged as f64 / seeds as f64;
    let fine = fine_flagged as f64 / seeds as f64;
    eprintln!("SRM: 52/48 flagged in {broken}, 50/50 flagged in {fine}");
    assert!(broken >= 0.97, "52/48 flagged in only {broken} of seeds");
    assert!(fine <= 0.01, "a correct split was flagged in {fine} of seeds");
}
