//! The dashboard's sparklines: per variant, a fixed ring of 10-second points over the last
//! 15 minutes (requests, errors, p50/p99 latency), built from cumulative counters sampled on a
//! clock. Pure: the admin service's sampler reads the counters and calls [`Series::sample`];
//! nothing here touches the request path, which only bumps the counters it always bumps.
//!
//! Memory is bounded: [`POINTS`] points of [`size_of::<Point>()`] (48 bytes) per variant plus
//! one baseline reading (16 buckets), about 4.4 KB a variant, for at most [`MAX_VARIANTS`]
//! variants — under 300 KB in the worst case, ~9 KB for a champion and a challenger.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

/// Seconds between points.
pub const STEP_SECS: u64 = 10;
/// 15 minutes of points.
pub const POINTS: usize = 90;
/// Rings kept at most (a config has a handful of variants; this only bounds a pathological one).
pub const MAX_VARIANTS: usize = 64;

/// One variant's cumulative counters at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reading {
    pub requests: u64,
    pub errors: u64,
    /// Cumulative latency bucket counts, one per bound plus `+Inf` last.
    pub latency: Vec<u64>,
}

/// What happened in one interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// End of the interval, Unix seconds.
    pub t: u64,
    /// Length of the interval in seconds (about [`STEP_SECS`]).
    pub secs: f32,
    pub requests: u64,
    pub errors: u64,
    /// Estimated from the latency buckets (linear within a bucket, as Prometheus'
    /// `histogram_quantile`); `None` without requests.
    pub p50_ms: Option<f32>,
    pub p99_ms: Option<f32>,
}

impl Point {
    pub fn rps(&self) -> f64 {
        if self.secs > 0.0 {
            self.requests as f64 / f64::from(self.secs)
        } else {
            0.0
        }
    }

    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 / self.requests as f64)
    }
}

/// One variant's ring and the reading the next point is measured from.
#[derive(Debug, Clone, Default)]
pub struct Ring {
    points: VecDeque<Point>,
    /// (monotonic ms, reading) of the last sample.
    last: Option<(u64, Reading)>,
}

impl Ring {
    /// Adds the interval since the previous sample. The first sample only sets the baseline;
    /// counters that went backwards, or a clock that did not advance, reset it instead of
    /// inventing a point.
    pub fn push(&mut self, unix_secs: u64, at_ms: u64, now: Reading, bounds: &[f64]) {
        let Some((prev_ms, prev)) = self.last.take() else {
            self.last = Some((at_ms, now));
            return;
        };
        let went_back = now.requests < prev.requests
            || now.errors < prev.errors
            || now.latency.len() != prev.latency.len()
            || now.latency.iter().zip(&prev.latency).any(|(n, p)| n < p);
        if went_back || at_ms <= prev_ms {
            self.last = Some((at_ms, now));
            return;
        }
        let delta: Vec<u64> = now.latency.iter().zip(&prev.latency).map(|(n, p)| n - p).collect();
        let ms = |q| quantile(bounds, &delta, q).map(|s| (s * 1_000.0) as f32);
        let point = Point {
            t: unix_secs,
            secs: (at_ms - prev_ms) as f32 / 1_000.0,
            requests: now.requests - prev.requests,
            errors: now.errors - prev.errors,
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
        };
        if self.points.len() == POINTS {
            self.points.pop_front();
        }
        self.points.push_back(point);
        self.last = Some((at_ms, now));
    }

    /// Oldest first.
    pub fn points(&self) -> impl Iterator<Item = &Point> {
        self.points.iter()
    }
}

/// Every live variant's ring, by name.
#[derive(Debug, Default)]
pub struct Series {
    rings: BTreeMap<String, Ring>,
}

impl Series {
    /// One sample of every live variant; rings of variants no longer in `readings` are dropped
    /// (a variant removed by a reload starts afresh if it comes back).
    pub fn sample<'a>(
        &mut self,
        unix_secs: u64,
        at_ms: u64,
        readings: impl IntoIterator<Item = (&'a str, Reading)>,
        bounds: &[f64],
    ) {
        let readings: Vec<(&str, Reading)> = readings.into_iter().collect();
        self.rings.retain(|name, _| readings.iter().any(|(n, _)| n == name));
        for (name, reading) in readings {
            if !self.rings.contains_key(name) && self.rings.len() >= MAX_VARIANTS {
                continue;
            }
            self.rings.entry(name.to_owned()).or_default().push(unix_secs, at_ms, reading, bounds);
        }
    }

    pub fn ring(&self, name: &str) -> Option<&Ring> {
        self.rings.get(name)
    }
}

/// The `q` quantile of a histogram given as cumulative counts per bound (`+Inf` last), the way
/// Prometheus' `histogram_quantile` estimates it: linear within the bucket holding the rank,
/// from 0 for the first bucket, and the highest finite bound when the rank lands in `+Inf`.
/// `None` for an empty histogram or a `q` outside [0, 1].
pub fn quantile(bounds: &[f64], cumulative: &[u64], q: f64) -> Option<f64> {
    let total = *cumulative.last()?;
    if total == 0 || !(0.0..=1.0).contains(&q) || cumulative.len() != bounds.len() + 1 {
        return None;
    }
    let rank = q * total as f64;
    let i = cumulative.iter().position(|c| *c as f64 >= rank)?;
    let Some(upper) = bounds.get(i) else {
        return bounds.last().copied();
    };
    let lower = if i == 0 { 0.0 } else { bounds[i - 1] };
    let below = if i == 0 { 0 } else { cumulative[i - 1] };
    let in_bucket = cumulative[i] - below;
    if in_bucket == 0 {
        return Some(*upper);
    }
    Some(lower + (upper - lower) * (rank - below as f64) / in_bucket as f64)
}

#[cfg(test)]
mod tests;
