//! The difference of two conversion rates, stratified by weight epoch.
//!
//! A ramp 10 → 50 → 100 changes who is in each arm and when: pooling every user of the
//! challenger against every user of the champion compares users from different periods in
//! different proportions (Simpson's paradox: each epoch can favour the challenger while the
//! pooled numbers favour the champion). The stratified estimate compares the arms *within* each
//! epoch and averages those differences with the epoch's share of users as its weight
//! (post-stratification): `Δ = Σ w_e (p̂_T,e − p̂_C,e)`, `Var Δ = Σ w_e² (v_T,e + v_C,e)`.
//! Epochs where either arm has no user say nothing about the difference and are left out.

/// Users and converted users of one arm in one stratum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Arm {
    pub converted: u64,
    pub users: u64,
}

impl Arm {
    pub fn rate(&self) -> f64 {
        if self.users == 0 {
            0.0
        } else {
            self.converted.min(self.users) as f64 / self.users as f64
        }
    }

    /// Variance of the rate, with the rate shrunk toward ½ by one pseudo-success and one
    /// pseudo-failure (so 0/n and n/n do not claim zero variance).
    pub fn variance(&self) -> f64 {
        if self.users == 0 {
            return 0.0;
        }
        let n = self.users as f64;
        let p = (self.converted.min(self.users) as f64 + 1.0) / (n + 2.0);
        p * (1.0 - p) / n
    }
}

/// One epoch: the challenger (`treatment`) and the champion (`control`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stratum {
    pub treatment: Arm,
    pub control: Arm,
}

/// A difference of rates (treatment − control) with its variance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub difference: f64,
    pub variance: f64,
    /// Users in the strata used, both arms.
    pub users: u64,
    /// The smaller arm's users over the strata used.
    pub smaller_arm: u64,
    /// How many strata had users in both arms.
    pub strata: usize,
}

/// The stratified difference; `None` when no stratum has users in both arms.
pub fn stratified(strata: &[Stratum]) -> Option<Estimate> {
    let used: Vec<&Stratum> = strata.iter().filter(|s| s.treatment.users > 0 && s.control.users > 0).collect();
    let total: u64 = used.iter().map(|s| s.treatment.users + s.control.users).sum();
    if used.is_empty() || total == 0 {
        return None;
    }
    let (mut difference, mut variance) = (0.0, 0.0);
    for s in &used {
        let w = (s.treatment.users + s.control.users) as f64 / total as f64;
        difference += w * (s.treatment.rate() - s.control.rate());
        variance += w * w * (s.treatment.variance() + s.control.variance());
    }
    let (t, c): (u64, u64) = used.iter().fold((0, 0), |(t, c), s| (t + s.treatment.users, c + s.control.users));
    Some(Estimate { difference, variance, users: total, smaller_arm: t.min(c), strata: used.len() })
}

/// The same two arms pooled over every stratum (what the fixed-horizon numbers show).
pub fn pooled(strata: &[Stratum]) -> Stratum {
    strata.iter().fold(Stratum::default(), |acc, s| Stratum {
        treatment: Arm {
            converted: acc.treatment.converted + s.treatment.converted,
            users: acc.treatment.users + s.treatment.users,
        },
        control: Arm {
            converted: acc.control.converted + s.control.converted,
            users: acc.control.users + s.control.users,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm(converted: u64, users: u64) -> Arm {
        Arm { converted, users }
    }

    #[test]
    fn one_stratum_is_the_plain_difference() {
        let s = [Stratum { treatment: arm(130, 1_000), control: arm(100, 1_000) }];
        let e = stratified(&s).unwrap();
        assert!((e.difference - 0.03).abs() < 1e-12);
        // (131/1002)(871/1002)/1000 + (101/1002)(901/1002)/1000, by hand.
        let want = (131.0 / 1002.0) * (871.0 / 1002.0) / 1000.0 + (101.0 / 1002.0) * (901.0 / 1002.0) / 1000.0;
        assert!((e.variance - want).abs() < 1e-15);
        assert_eq!((e.users, e.smaller_arm, e.strata), (2_000, 1_000, 1));
    }

    /// Simpson's paradox, by construction: the challenger converts better in both epochs, yet
    /// pooled it looks worse, because most of its users came in the low-converting epoch 2.
    #[test]
    fn stratification_undoes_simpsons_paradox() {
        let s = [
            // Epoch 1 (10% challenger): a high-converting period.
            Stratum { treatment: arm(110, 200), control: arm(900, 1_800) }, // 55% vs 50%
            // Epoch 2 (50%): a low-converting period with many more challenger users.
            Stratum { treatment: arm(120, 2_000), control: arm(100, 2_000) }, // 6% vs 5%
        ];
        let p = pooled(&s);
        assert!(p.treatment.rate() < p.control.rate(), "pooled: {} vs {}", p.treatment.rate(), p.control.rate());
        let e = stratified(&s).unwrap();
        // w1 = 2000/6000, w2 = 4000/6000: Δ = (1/3)(0.05) + (2/3)(0.01) = 0.023333.
        assert!((e.difference - 0.023_333_333_333_333_33).abs() < 1e-12, "{e:?}");
        assert_eq!(e.strata, 2);
    }

    #[test]
    fn strata_without_both_arms_are_left_out() {
        let s = [
            Stratum { treatment: arm(0, 0), control: arm(50, 500) },
            Stratum { treatment: arm(30, 300), control: arm(20, 300) },
        ];
        let e = stratified(&s).unwrap();
        assert_eq!(e.strata, 1);
        assert!((e.difference - (0.1 - 0.2 / 3.0)).abs() < 1e-12);
        assert_eq!(stratified(&s[..1]), None);
        assert_eq!(stratified(&[]), None);
        assert_eq!(arm(0, 0).rate(), 0.0);
        assert_eq!(arm(0, 0).variance(), 0.0);
        assert!(arm(0, 10).variance() > 0.0);
    }
}
