//! Fixed-bucket Prometheus histograms kept in atomics.
//!
//! The Prometheus exporter's own histograms buffer every observation until the next upkeep or
//! scrape: at 20k req/s that is megabytes of samples (and a block allocation every 64 of them)
//! between drains. Here an observation is one bucket increment and one add to the sum, nothing is
//! allocated or buffered, and a scrape reads the counters as they are.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// One histogram: per-bucket counts (not cumulative; the last slot is `+Inf`) and the sum.
pub struct FixedHistogram {
    bounds: &'static [f64],
    counts: Box<[AtomicU64]>,
    /// The sum as `f64` bits, updated by compare-and-swap.
    sum: AtomicU64,
}

impl FixedHistogram {
    /// `bounds` are the buckets' upper bounds (`le`), ascending.
    pub fn new(bounds: &'static [f64]) -> FixedHistogram {
        FixedHistogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    /// Counts `value` in the first bucket whose bound is ≥ it; NaN is ignored.
    #[inline]
    pub fn observe(&self, value: f64) {
        if value.is_nan() {
            return;
        }
        let i = self.bounds.partition_point(|b| *b < value);
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        // Uncontended on the request path (one runtime thread per core, and a CAS retry costs
        // nanoseconds); `fetch_update` only fails if the closure returns None, which it never does.
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| Some((f64::from_bits(bits) + value).to_bits()));
    }

    /// Cumulative counts per bound (the last is `+Inf`, the total) and the sum.
    pub fn read(&self) -> (Vec<u64>, f64) {
        let mut total = 0;
        let cumulative = self
            .counts
            .iter()
            .map(|c| {
                total += c.load(Ordering::Relaxed);
                total
            })
            .collect();
        (cumulative, f64::from_bits(self.sum.load(Ordering::Relaxed)))
    }

    /// Appends this histogram's `_bucket`, `_sum` and `_count` lines; `labels` is the rendered
    /// label set (`k="v",…`, may be empty).
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let (cumulative, sum) = self.read();
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, n) in cumulative.iter().enumerate() {
            let _ = match self.bounds.get(i) {
                Some(le) => writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {n}"),
                None => writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {n}"),
            };
        }
        let braces = |s: &str| if s.is_empty() { String::new() } else { format!("{{{s}}}") };
        let _ = writeln!(out, "{name}_sum{} {sum}", braces(labels));
        let _ = writeln!(out, "{name}_count{} {}", braces(labels), cumulative.last().copied().unwrap_or(0));
    }
}

impl metrics::HistogramFn for FixedHistogram {
    fn record(&self, value: f64) {
        self.observe(value);
    }
}

/// Renders a label set the way Prometheus' text format wants it: `k="v"` joined by commas, with
/// `\`, `"` and newlines escaped in values.
pub fn render_labels(labels: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        for ch in v.chars() {
            match ch {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &[f64] = &[0.001, 0.01, 0.1, 1.0];

    #[test]
    fn buckets_are_cumulative_and_inclusive() {
        let h = FixedHistogram::new(B);
        for v in [0.0005, 0.001, 0.002, 0.5, 1.0, 7.0, f64::NAN, -1.0] {
            h.observe(v);
        }
        let (cum, sum) = h.read();
        // ≤0.001: 0.0005, 0.001, -1 · ≤0.01: +0.002 · ≤0.1: – · ≤1: +0.5, 1.0 · +Inf: +7 (NaN ignored)
        assert_eq!(cum, vec![3, 4, 4, 6, 7]);
        assert!((sum - (0.0005 + 0.001 + 0.002 + 0.5 + 1.0 + 7.0 - 1.0)).abs() < 1e-12, "{sum}");
    }

    #[test]
    fn renders_the_exposition_format() {
        let h = FixedHistogram::new(B);
        h.observe(0.05);
        h.observe(2.0);
        let mut out = String::new();
        h.render(&mut out, "x_seconds", &render_labels(&[("route", "recommend"), ("variant", "a\"b")]));
        let want = concat!(
            "x_seconds_bucket{route=\"recommend\",variant=\"a\\\"b\",le=\"0.001\"} 0\n",
            "x_seconds_bucket{route=\"recommend\",variant=\"a\\\"b\",le=\"0.01\"} 0\n",
            "x_seconds_bucket{route=\"recommend\",variant=\"a\\\"b\",le=\"0.1\"} 1\n",
            "x_seconds_bucket{route=\"recommend\",variant=\"a\\\"b\",le=\"1\"} 1\n",
            "x_seconds_bucket{route=\"recommend\",variant=\"a\\\"b\",le=\"+Inf\"} 2\n",
            "x_seconds_sum{route=\"recommend\",variant=\"a\\\"b\"} 2.05\n",
            "x_seconds_count{route=\"recommend\",variant=\"a\\\"b\"} 2\n",
        );
        assert_eq!(out, want);
        let mut bare = String::new();
        FixedHistogram::new(&[1.0]).render(&mut bare, "y", "");
        assert_eq!(bare, "y_bucket{le=\"1\"} 0\ny_bucket{le=\"+Inf\"} 0\ny_sum 0\ny_count 0\n");
    }

    #[test]
    fn labels_escape_backslash_quote_and_newline() {
        assert_eq!(render_labels(&[]), "");
        assert_eq!(render_labels(&[("a", "x\\y\"z\nw")]), r#"a="x\\y\"z\nw""#);
    }
}
