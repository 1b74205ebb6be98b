use super::*;
use crate::split::stable_hash;

fn view(s: &Sampler, sig: u64, version: u64, weights: &[(&str, f64)]) -> Arc<EpochView> {
    s.enter(sig, version, 1_000 * version, "champion", weights)
}

#[test]
fn counts_exposures_events_and_first_exposures() {
    let s = Sampler::default();
    let e1 = view(&s, 1, 1, &[("champion", 90.0), ("challenger", 10.0)]);
    let h = |i: u32| stable_hash("t", format!("u{i}").as_bytes());
    for i in 0..100 {
        s.expose(&e1, (i % 2) as usize, h(i));
    }
    s.expose(&e1, 0, h(0));
    s.event(&e1, 0, 3, h(0));
    s.event(&e1, 1, 0, h(1_000)); // feedback from a user never exposed
    let e2 = view(&s, 2, 2, &[("champion", 50.0), ("challenger", 50.0)]);
    s.expose(&e2, 1, h(0)); // user 0 moved from champion to challenger
    s.expose(&e2, 1, h(500)); // a new user in epoch 2
    let c = s.read(&e2, 9_000);
    assert_eq!(c.epochs.len(), 2);
    assert_eq!(c.epochs[0].counts["champion"].requests, 51);
    assert_eq!(c.epochs[0].counts["champion"].events[3], 1);
    assert_eq!(c.epochs[0].counts["challenger"].events[0], 1);
    assert_eq!(c.epochs[1].counts["challenger"].requests, 2);
    assert_eq!((c.epochs[0].since_version, c.epochs[1].last_ms), (1, 9_000));
    assert_eq!(c.epochs[0].weights["challenger"], 10.0);
    assert_eq!(c.users.len(), 102);
    let u0 = c.users.iter().find(|u| u.key == key_of(h(0))).unwrap();
    assert_eq!(u0.exposure, Exposure::At { epoch: 0, variant: 0 });
    assert!(u0.moved);
    assert_eq!((u0.requests, u0.kinds), (3, 1 << 3));
    let lone = c.users.iter().find(|u| u.key == key_of(h(1_000))).unwrap();
    assert_eq!(lone.exposure, Exposure::None);
    let new = c.users.iter().find(|u| u.key == key_of(h(500))).unwrap();
    assert_eq!(new.exposure, Exposure::At { epoch: 1, variant: 1 });
    // Re-entering a known assignment reuses its epoch and counters.
    let again = view(&s, 1, 3, &[("champion", 90.0), ("challenger", 10.0)]);
    s.expose(&again, 0, h(7));
    let c = s.read(&again, 10_000);
    assert_eq!(c.epochs.len(), 2);
    assert_eq!(c.epochs[0].counts["champion"].requests, 52);
    assert_eq!(c.epochs[0].since_version, 1);
    assert!(serde_json::from_str::<Cohorts>(&serde_json::to_string(&c).unwrap()).unwrap() == c);
}

#[test]
fn the_sample_stays_within_capacity_and_unbiased_across_variants() {
    let s = Sampler::default();
    s.set_capacity(2_000);
    let e = view(&s, 1, 1, &[("champion", 50.0), ("challenger", 50.0)]);
    let layout = crate::split::Layout::new(&[5_000, 5_000], 0, &[None, None]).unwrap();
    let mut per_variant = [0u64; 2];
    for i in 0..40_000u32 {
        let h = stable_hash("salt", format!("user-{i}").as_bytes());
        let vi = layout.variant_of(crate::split::bucket_of_hash(h));
        per_variant[vi] += 1;
        s.expose(&e, vi, h);
    }
    let c = s.read(&e, 2);
    assert!(c.users.len() <= 2_000 && c.users.len() > 1_000, "{}", c.users.len());
    assert!(c.rate() < 0.06, "{}", c.rate());
    // Every user below the threshold is in, and the sample splits like the population.
    let sampled: Vec<u64> = (0..2u16)
        .map(|v| {
            c.users.iter().filter(|u| matches!(u.exposure, Exposure::At { variant, .. } if variant == v)).count() as u64
        })
        .collect();
    let fit = crate::stats::srm::goodness_of_fit(&[sampled[0] as f64, sampled[1] as f64], &[50.0, 50.0], 1.0).unwrap();
    assert!(fit.p_value > 0.001, "{sampled:?} of {per_variant:?}: {fit:?}");
    assert_eq!(c.epochs[0].counts["champion"].requests + c.epochs[0].counts["challenger"].requests, 40_000);
}

#[test]
fn at_most_max_epochs_are_kept() {
    let s = Sampler::default();
    let mut last = None;
    for sig in 0..(MAX_EPOCHS as u64 + 3) {
        let v = s.enter(sig, sig, sig, "champion", &[("champion", 100.0)]);
        s.expose(&v, 0, stable_hash("x", format!("{sig}").as_bytes()));
        last = Some(v);
    }
    let c = s.read(last.as_ref().unwrap(), 100);
    assert_eq!(c.epochs.len(), MAX_EPOCHS);
    assert_eq!(c.users.iter().filter(|u| u.exposure == Exposure::Dropped).count(), 3);
}
