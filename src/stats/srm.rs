//! Sample ratio mismatch: a χ² goodness-of-fit test of the users (or requests) each variant
//! received against the weights it was configured with. An SRM means the split itself is broken
//! — a bot, a crashing variant, a cache — and no conversion number of the experiment can be
//! trusted, so it is checked before anything else is read.
//!
//! Each weight epoch is its own multinomial trial (its users were assigned under its weights), so
//! the experiment-wide test adds the epochs' χ² statistics and their degrees of freedom: the sum of
//! independent χ² variables is χ² with the summed df. Requests are not independent draws — one
//! user sends many — so their χ² is divided by a dispersion factor (quasi-likelihood χ²; see
//! [`goodness_of_fit`]'s `dispersion`).

use super::gamma::chi_square_sf;

/// A cell's expected count must be at least this for the χ² approximation to hold (Cochran's rule).
pub const MIN_EXPECTED: f64 = 5.0;

/// One χ² goodness-of-fit test.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub statistic: f64,
    /// Degrees of freedom: the cells with a positive expected count, minus one.
    pub df: u32,
    pub p_value: f64,
    /// Expected count per cell, in the order of `observed`.
    pub expected: Vec<f64>,
}

/// Why no test was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotTested {
    /// Fewer than two cells have a positive weight: there is nothing to compare.
    OneCell,
    /// Some positive cell expects fewer than [`MIN_EXPECTED`]: too early to tell.
    TooFew,
}

/// χ² goodness of fit of `observed` counts against `weights` (any positive scale; a cell with
/// weight 0 must observe 0). `dispersion` ≥ 1 divides the statistic: 1 for independent units
/// (distinct users), the variance-to-mean ratio of units per user for requests.
///
/// A count in a zero-weight cell cannot happen under the configured split at all: the p-value
/// is 0 (the split is broken, however few such counts there are).
pub fn goodness_of_fit(observed: &[f64], weights: &[f64], dispersion: f64) -> Result<Fit, NotTested> {
    let total: f64 = observed.iter().sum();
    let weight_sum: f64 = weights.iter().filter(|w| **w > 0.0).sum();
    let cells = weights.iter().filter(|w| **w > 0.0).count();
    if cells < 2 || weight_sum <= 0.0 {
        return Err(NotTested::OneCell);
    }
    let expected: Vec<f64> = weights.iter().map(|w| if *w > 0.0 { total * w / weight_sum } else { 0.0 }).collect();
    let impossible = observed.iter().zip(weights).any(|(o, w)| *w <= 0.0 && *o > 0.0);
    if !impossible && expected.iter().zip(weights).any(|(e, w)| *w > 0.0 && *e < MIN_EXPECTED) {
        return Err(NotTested::TooFew);
    }
    let mut statistic: f64 =
        observed.iter().zip(&expected).filter(|(_, e)| **e > 0.0).map(|(o, e)| (o - e) * (o - e) / e).sum();
    statistic /= dispersion.max(1.0);
    let df = cells as u32 - 1;
    let p_value = if impossible { 0.0 } else { chi_square_sf(statistic, f64::from(df)) };
    Ok(Fit { statistic: if impossible { f64::INFINITY } else { statistic }, df, p_value, expected })
}

/// Independent tests (one per epoch) as one: statistics and degrees of freedom add.
pub fn combine(fits: &[Fit]) -> Option<Fit> {
    if fits.is_empty() {
        return None;
    }
    let statistic: f64 = fits.iter().map(|f| f.statistic).sum();
    let df: u32 = fits.iter().map(|f| f.df).sum();
    let p_value = if fits.iter().any(|f| f.p_value == 0.0) { 0.0 } else { chi_square_sf(statistic, f64::from(df)) };
    Some(Fit { statistic, df, p_value, expected: Vec::new() })
}

/// Two p-values for one question (users and requests) as one, by Bonferroni: valid whatever
/// their dependence.
pub fn either(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some((2.0 * a.min(b)).min(1.0)),
        (one, other) => one.or(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_statistics_and_p_values() {
        // 10,400 / 9,600 on 50/50: χ² = 2·400²/10,000 = 32, p = erfc(4) = 1.5417e-8.
        let f = goodness_of_fit(&[10_400.0, 9_600.0], &[50.0, 50.0], 1.0).unwrap();
        assert!((f.statistic - 32.0).abs() < 1e-9, "{f:?}");
        assert_eq!(f.df, 1);
        assert!((f.p_value - 1.541_725_790_028_002e-8).abs() < 1e-15, "{}", f.p_value);
        assert_eq!(f.expected, vec![10_000.0, 10_000.0]);
        // 90/10 with three cells (one zero weight, zero observed): df = 1, weights rescale.
        let f = goodness_of_fit(&[905.0, 95.0, 0.0], &[0.9, 0.1, 0.0], 1.0).unwrap();
        assert_eq!(f.df, 1);
        assert!((f.statistic - (25.0 / 900.0 + 25.0 / 100.0)).abs() < 1e-12);
        // Three live cells, 20/30/50 of 1,000 observed 210/280/510:
        // χ² = 100/200 + 400/300 + 100/500 = 2.0333, df 2, p = e^(−χ²/2) = 0.36175.
        let f = goodness_of_fit(&[210.0, 280.0, 510.0], &[20.0, 30.0, 50.0], 1.0).unwrap();
        assert!((f.p_value - (-f.statistic / 2.0).exp()).abs() < 1e-12);
        assert!((f.statistic - 2.033_333_333_333_333).abs() < 1e-12);
    }

    #[test]
    fn dispersion_impossible_cells_and_too_early() {
        let plain = goodness_of_fit(&[600.0, 400.0], &[1.0, 1.0], 1.0).unwrap();
        let clustered = goodness_of_fit(&[600.0, 400.0], &[1.0, 1.0], 4.0).unwrap();
        assert!((clustered.statistic * 4.0 - plain.statistic).abs() < 1e-9);
        assert!(clustered.p_value > plain.p_value);
        // A dispersion below 1 is never used to sharpen the test.
        assert_eq!(goodness_of_fit(&[600.0, 400.0], &[1.0, 1.0], 0.2).unwrap(), plain);
        // Users in a variant with weight 0: broken, however few.
        let f = goodness_of_fit(&[100.0, 2.0, 100.0], &[50.0, 0.0, 50.0], 1.0).unwrap();
        assert_eq!(f.p_value, 0.0);
        assert_eq!(goodness_of_fit(&[8.0, 1.0], &[50.0, 50.0], 1.0), Err(NotTested::TooFew));
        assert_eq!(goodness_of_fit(&[8.0, 0.0], &[100.0, 0.0], 1.0), Err(NotTested::OneCell));
        assert_eq!(goodness_of_fit(&[0.0, 0.0], &[50.0, 50.0], 1.0), Err(NotTested::TooFew));
    }

    #[test]
    fn epochs_combine_by_adding_statistics() {
        let a = goodness_of_fit(&[530.0, 470.0], &[1.0, 1.0], 1.0).unwrap(); // χ² 3.6
        let b = goodness_of_fit(&[120.0, 880.0], &[1.0, 9.0], 1.0).unwrap(); // χ² = 400/100 + 400/900
        let c = combine(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(c.df, 2);
        assert!((c.statistic - (3.6 + 4.0 + 400.0 / 900.0)).abs() < 1e-9);
        assert!((c.p_value - (-c.statistic / 2.0).exp()).abs() < 1e-12);
        assert_eq!(combine(&[]), None);
        assert_eq!(either(Some(0.01), Some(0.2)), Some(0.02));
        assert_eq!(either(Some(0.7), Some(0.9)), Some(1.0));
        assert_eq!(either(None, Some(0.2)), Some(0.2));
        assert_eq!(either(None, None), None);
    }
}
