use super::*;
use crate::experiment::Sampler;
use crate::split::{bucket_of_hash, stable_hash, Layout};

const CLICK: usize = 0;

/// Runs `users` through the sampler under `weights` (champion first), each user converting with
/// probability `rate[variant]` (decided by their hash, so it is deterministic), plus `returning`
/// earlier users coming back.
struct Sim {
    s: Sampler,
    version: u64,
}

impl Sim {
    fn new() -> Sim {
        let s = Sampler::default();
        s.set_capacity(16_384);
        Sim { s, version: 0 }
    }

    fn epoch(
        &mut self,
        challenger: u32,
        users: std::ops::Range<u32>,
        rate: [f64; 2],
        returning: std::ops::Range<u32>,
    ) -> Cohorts {
        self.version += 1;
        let layout = Layout::new(&[10_000 - challenger, challenger], 0, &[None, None]).unwrap();
        let sig = crate::experiment::epoch::signature("sim", &["champion", "challenger"], &layout);
        let w = f64::from(challenger) / 100.0;
        let view = self.s.enter(
            sig,
            self.version,
            self.version * 1_000,
            "champion",
            &[("champion", 100.0 - w), ("challenger", w)],
        );
        for i in users.chain(returning) {
            let h = stable_hash("sim", format!("u{i}").as_bytes());
            let vi = layout.variant_of(bucket_of_hash(h));
            self.s.expose(&view, vi, h);
            // A second, independent hash decides conversion.
            let coin = (stable_hash("coin", format!("u{i}-{}", self.version).as_bytes()) % 10_000) as f64 / 10_000.0;
            if coin < rate[vi] {
                self.s.event(&view, vi, CLICK, h);
            }
        }
        self.s.read(&view, self.version * 1_000 + 500)
    }
}

#[test]
fn a_broken_split_is_flagged_and_a_good_one_is_not() {
    let s = Settings::default();
    let mut sim = Sim::new();
    let good = sim.epoch(5_000, 0..4_000, [0.1, 0.1], 0..0);
    let r = srm(&good, &s);
    assert!(!r.flagged, "{r:?}");
    assert!(r.p_value.unwrap() > 0.001);
    assert_eq!(r.observed.values().sum::<u64>(), 4_000);
    assert!((r.expected["challenger"] - 2_000.0).abs() < 1e-9);
    // A bot: 600 extra users, all in the challenger (picked by their bucket).
    let view = sim.s.enter(
        crate::experiment::epoch::signature(
            "sim",
            &["champion", "challenger"],
            &Layout::new(&[5_000, 5_000], 0, &[None, None]).unwrap(),
        ),
        9,
        9_000,
        "champion",
        &[("champion", 50.0), ("challenger", 50.0)],
    );
    let mut added = 0;
    for i in 100_000.. {
        let h = stable_hash("sim", format!("bot{i}").as_bytes());
        if bucket_of_hash(h) < 5_000 {
            sim.s.expose(&view, 1, h);
            added += 1;
            if added == 600 {
                break;
            }
        }
    }
    let c = sim.s.read(&view, 9_500);
    assert_eq!(c.epochs.len(), 1, "the same assignment, the same epoch");
    let r = srm(&c, &s);
    assert!(r.flagged, "{r:?}");
    assert!(r.p_value.unwrap() < 1e-6);
    let json = r.to_json(&s, c.rate());
    assert_eq!(json["flagged"], true);
    assert!(json["requests"]["p_value"].as_f64().unwrap() < 0.001);
}

/// A ramp 10 → 50 with returning users: the challenger's share of users seen in epoch 2 is far
/// above 50% (returning champion users moved), yet by first-exposure cohort nothing is broken;
/// the per-epoch conversions differ and the stratified estimate recovers the true +3 points
/// while the pooled numbers, mixing the periods, do not.
#[test]
fn a_ramp_is_stratified_and_not_an_srm() {
    let s = Settings::default();
    let mut sim = Sim::new();
    sim.epoch(1_000, 0..3_000, [0.30, 0.33], 0..0);
    let c = sim.epoch(5_000, 3_000..6_000, [0.10, 0.13], 0..3_000);
    let r = srm(&c, &s);
    assert!(!r.flagged, "{r:?}");
    assert_eq!(r.users.as_ref().unwrap().df, 2);
    let (epochs, from) = epochs_json(&c, CLICK, &r);
    assert_eq!(epochs.len(), 2);
    assert_eq!(from, None, "the challenger's weight only went up");
    assert_eq!(epochs[1]["weights"]["challenger"], 50.0);
    let e1 = &epochs[0]["variants"];
    assert!(e1["champion"]["moved_later"].as_u64().unwrap() > 800, "{e1}");
    let cmp = compare(&c, "champion", "challenger", CLICK, &s);
    let est = cmp.estimate.unwrap();
    assert_eq!(est.strata, 2);
    // The true lift is +3 points in both epochs; noise of one sample is about ±1.3 points.
    assert!((est.difference - 0.03).abs() < 0.03, "{est:?}");
    assert!(cmp.sequential.is_some());
    let json = cmp.to_json(&s);
    assert!(json["confidence_sequence"][0].as_f64().unwrap() < json["confidence_sequence"][1].as_f64().unwrap());
    // Lowering the challenger back to 10% re-randomises from that epoch on (and reuses the
    // 10% epoch: the same assignment).
    let c = sim.epoch(1_000, 6_000..6_100, [0.1, 0.1], 0..0);
    assert_eq!(c.epochs.len(), 2);
    let mut c = c;
    let mut lowered_epoch = c.epochs[0].clone();
    lowered_epoch.id = "lowered".into();
    lowered_epoch.since_ms = 99_000;
    c.epochs.push(lowered_epoch);
    let (epochs, from) = epochs_json(&c, CLICK, &srm(&c, &s));
    assert_eq!(from.as_deref(), Some("lowered"));
    assert_eq!(epochs[2]["re_randomised"], true);
    assert_eq!(epochs[2]["lowered"], json!(["challenger"]));
}

#[test]
fn nothing_to_say_without_users() {
    let s = Settings::default();
    let r = srm(&Cohorts::default(), &s);
    assert_eq!((r.p_value, r.flagged), (None, false));
    let cmp = compare(&Cohorts::default(), "champion", "challenger", CLICK, &s);
    assert_eq!((cmp.estimate, cmp.sequential), (None, None));
    assert!(!cmp.significantly_worse(&s) && !cmp.significantly_better(&s));
}
