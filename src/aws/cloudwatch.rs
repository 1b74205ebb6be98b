//! CloudWatch: per-variant request counts, 4xx/5xx, latency statistics, shadow overlap and
//! throttles, batched and sent with `PutMetricData` every `interval_secs`.
//!
//! The request path only bumps relaxed atomics (and only when `[cloudwatch]` is configured); a
//! background task swaps them out each interval, so publishing never blocks or slows a request.
//! `aws-sdk-cloudwatch` is pinned to 1.99.0 on purpose: later versions speak only Smithy RPC v2
//! CBOR, which the emulator our tests use (moto) does not; 1.99 speaks the query protocol that
//! both real CloudWatch and moto accept.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit, StatisticSet};
use metrics::Counter;

use super::AwsClients;
use crate::config::{AwsTarget, CloudWatchConfig};

/// Counters of one (variant, model) between two publishes.
#[derive(Debug, Default)]
pub struct VariantStats {
    requests: AtomicU64,
    client_errors: AtomicU64,
    server_errors: AtomicU64,
    latency_sum_us: AtomicU64,
    latency_min_us: AtomicU64,
    latency_max_us: AtomicU64,
}

impl VariantStats {
    #[inline]
    pub fn record(&self, status: u16, latency: Duration) {
        let us = latency.as_micros() as u64;
        if self.requests.fetch_add(1, Ordering::Relaxed) == 0 {
            self.latency_min_us.store(us, Ordering::Relaxed);
        }
        match status {
            400..=499 => {
                self.client_errors.fetch_add(1, Ordering::Relaxed);
            }
            500..=599 => {
                self.server_errors.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
        self.latency_min_us.fetch_min(us, Ordering::Relaxed);
        self.latency_max_us.fetch_max(us, Ordering::Relaxed);
    }
}

/// Overlap@k sum of one shadow between two publishes (micro-units keep it an integer).
#[derive(Debug, Default)]
pub struct ShadowStats {
    compared: AtomicU64,
    overlap_sum_micro: AtomicU64,
}

impl ShadowStats {
    pub fn record(&self, overlap: f64) {
        self.compared.fetch_add(1, Ordering::Relaxed);
        self.overlap_sum_micro.fetch_add((overlap.clamp(0.0, 1.0) * 1e6) as u64, Ordering::Relaxed);
    }
}

/// Where the request path records; survives reloads (keyed by names).
#[derive(Default)]
pub struct CloudWatchSink {
    variants: Mutex<HashMap<(String, String), Arc<VariantStats>>>,
    shadows: Mutex<HashMap<String, Arc<ShadowStats>>>,
    pub throttled: AtomicU64,
}

impl CloudWatchSink {
    pub fn variant(&self, variant: &str, model: &str) -> Arc<VariantStats> {
        let mut m = self.variants.lock().unwrap_or_else(|e| e.into_inner());
        m.entry((variant.to_owned(), model.to_owned())).or_default().clone()
    }

    pub fn shadow(&self, model: &str) -> Arc<ShadowStats> {
        let mut m = self.shadows.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(model.to_owned()).or_default().clone()
    }

    /// Takes everything recorded since the last call as metric data (zeroing the counters).
    pub fn drain(&self, environment: &str) -> Vec<MetricDatum> {
        let dim = |n: &str, v: &str| Dimension::builder().name(n).value(v).build();
        let env = dim("Environment", environment);
        let mut data = Vec::new();
        let variants: Vec<_> = self
            .variants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for ((variant, model), s) in variants {
            let n = s.requests.swap(0, Ordering::Relaxed);
            if n == 0 {
                continue;
            }
            let dims = vec![env.clone(), dim("Variant", &variant), dim("Model", &model)];
            let count = |name: &str, v: u64| {
                MetricDatum::builder()
                    .metric_name(name)
                    .set_dimensions(Some(dims.clone()))
                    .value(v as f64)
                    .unit(StandardUnit::Count)
                    .build()
            };
            data.push(count("Requests", n));
            data.push(count("4XXError", s.client_errors.swap(0, Ordering::Relaxed)));
            data.push(count("5XXError", s.server_errors.swap(0, Ordering::Relaxed)));
            let ms = |us: u64| us as f64 / 1_000.0;
            let stats = StatisticSet::builder()
                .sample_count(n as f64)
                .sum(ms(s.latency_sum_us.swap(0, Ordering::Relaxed)))
                .minimum(ms(s.latency_min_us.swap(u64::MAX, Ordering::Relaxed)))
                .maximum(ms(s.latency_max_us.swap(0, Ordering::Relaxed)))
                .build();
            data.push(
                MetricDatum::builder()
                    .metric_name("Latency")
                    .set_dimensions(Some(dims.clone()))
                    .statistic_values(stats)
                    .unit(StandardUnit::Milliseconds)
                    .build(),
            );
        }
        let shadows: Vec<_> = self
            .shadows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (model, s) in shadows {
            let n = s.compared.swap(0, Ordering::Relaxed);
            if n == 0 {
                continue;
            }
            let sum = s.overlap_sum_micro.swap(0, Ordering::Relaxed) as f64 / 1e6;
            data.push(
                MetricDatum::builder()
                    .metric_name("ShadowOverlapAtK")
                    .dimensions(env.clone())
                    .dimensions(dim("Model", &model))
                    .statistic_values(
                        StatisticSet::builder().sample_count(n as f64).sum(sum).minimum(0.0).maximum(1.0).build(),
                    )
                    .unit(StandardUnit::None)
                    .build(),
            );
        }
        let throttled = self.throttled.swap(0, Ordering::Relaxed);
        if throttled > 0 {
            data.push(
                MetricDatum::builder()
                    .metric_name("Throttles")
                    .dimensions(env)
                    .value(throttled as f64)
                    .unit(StandardUnit::Count)
                    .build(),
            );
        }
        data
    }
}

/// Publisher outcome counters.
pub struct PublishMetrics {
    pub sent: Counter,
    pub dropped: Counter,
}

/// CloudWatch accepts up to 1,000 data per call; smaller batches keep each request well under
/// the 1 MB payload limit.
const BATCH: usize = 150;

/// Sends everything drained from `sink` now. Failed batches are retried by the SDK (standard
/// retry mode), then dropped and counted.
pub async fn publish_once(aws: &AwsClients, cfg: &CloudWatchConfig, sink: &CloudWatchSink, m: &PublishMetrics) {
    let data = sink.drain(&cfg.environment);
    if data.is_empty() {
        return;
    }
    let target = AwsTarget { region: cfg.region.clone(), endpoint_url: cfg.endpoint_url.clone() };
    let client = aws_sdk_cloudwatch::Client::new(&aws.config(&target).await);
    for batch in data.chunks(BATCH) {
        let sent =
            client.put_metric_data().namespace(&cfg.namespace).set_metric_data(Some(batch.to_vec())).send().await;
        match sent {
            Ok(_) => m.sent.increment(batch.len() as u64),
            Err(e) => {
                m.dropped.increment(batch.len() as u64);
                tracing::warn!(error = %aws_sdk_cloudwatch::error::DisplayErrorContext(&e), "CloudWatch PutMetricData failed; batch dropped");
            }
        }
    }
}

/// Runs the publisher while `owner` lives: every tick, reads the live `[cloudwatch]` settings
/// (so enabling or retuning it needs no restart) and publishes.
pub fn spawn<T: Send + Sync + 'static>(
    owner: Weak<T>,
    settings: impl Fn(&T) -> Option<CloudWatchConfig> + Send + 'static,
    parts: impl Fn(&T) -> (&AwsClients, &CloudWatchSink, &PublishMetrics) + Send + 'static,
) {
    tokio::spawn(async move {
        loop {
            let interval = match owner.upgrade() {
                Some(o) => settings(&o).map_or(5, |c| c.interval_secs),
                None => return,
            };
            tokio::time::sleep(Duration::from_secs(interval)).await;
            let Some(o) = owner.upgrade() else { return };
            if let Some(cfg) = settings(&o) {
                let (aws, sink, m) = parts(&o);
                publish_once(aws, &cfg, sink, m).await;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_builds_statistic_sets_and_resets() {
        let sink = CloudWatchSink::default();
        let v = sink.variant("challenger", "rec-v2-3");
        v.record(200, Duration::from_millis(10));
        v.record(503, Duration::from_millis(30));
        v.record(404, Duration::from_millis(20));
        sink.shadow("rec-v2-4").record(0.5);
        sink.throttled.fetch_add(3, Ordering::Relaxed);
        let data = sink.drain("prod");
        let find = |n: &str| data.iter().find(|d| d.metric_name() == Some(n)).unwrap_or_else(|| panic!("{n} missing"));
        assert_eq!(find("Requests").value(), Some(3.0));
        assert_eq!(find("4XXError").value(), Some(1.0));
        assert_eq!(find("5XXError").value(), Some(1.0));
        let lat = find("Latency").statistic_values().unwrap();
        assert_eq!(
            (lat.sample_count(), lat.sum(), lat.minimum(), lat.maximum()),
            (Some(3.0), Some(60.0), Some(10.0), Some(30.0))
        );
        let dims: Vec<_> =
            find("Requests").dimensions().iter().map(|d| (d.name().unwrap(), d.value().unwrap())).collect();
        assert_eq!(dims, vec![("Environment", "prod"), ("Variant", "challenger"), ("Model", "rec-v2-3")]);
        assert_eq!(find("ShadowOverlapAtK").statistic_values().unwrap().sum(), Some(0.5));
        assert_eq!(find("Throttles").value(), Some(3.0));
        assert!(sink.drain("prod").is_empty(), "a second drain has nothing new");
        v.record(200, Duration::from_millis(7));
        let again = sink.drain("prod");
        let lat = again.iter().find(|d| d.metric_name() == Some("Latency")).unwrap().statistic_values().unwrap();
        assert_eq!((lat.minimum(), lat.maximum()), (Some(7.0), Some(7.0)), "min/max restart each interval");
    }
}
