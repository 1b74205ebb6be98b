//! Every Prometheus metric: names and help text in one place, handles resolved ahead of time.
//!
//! The proxy owns its recorder instead of installing a global one, so several proxies can live in
//! one process (tests, benchmarks) and every handle is registered once — when a config snapshot is
//! built — never looked up by label on the request path.

mod hist;
pub mod live;
pub mod process;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use hist::{render_labels, FixedHistogram};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::error::CODES;

pub const REQUESTS: &str = "splitgate_requests_total";
pub const REQUEST_DURATION: &str = "splitgate_request_duration_seconds";
pub const UPSTREAM_DURATION: &str = "splitgate_upstream_duration_seconds";
pub const UPSTREAM_ERRORS: &str = "splitgate_upstream_errors_total";
pub const ERRORS: &str = "splitgate_errors_total";
pub const AUTH_FAILURES: &str = "splitgate_auth_failures_total";
pub const THROTTLED: &str = "splitgate_throttled_total";
pub const CONFIG_VERSION: &str = "splitgate_config_version";
pub const CONFIG_RELOADS: &str = "splitgate_config_reloads_total";
pub const ACCESS_LOG_DROPPED: &str = "splitgate_access_log_dropped_total";
pub const IN_FLIGHT: &str = "splitgate_in_flight_requests";
pub const FEEDBACK: &str = "splitgate_feedback_events_total";
pub const SHADOW_REQUESTS: &str = "splitgate_shadow_requests_total";
pub const SHADOW_DURATION: &str = "splitgate_shadow_duration_seconds";
pub const SHADOW_OVERLAP: &str = "splitgate_shadow_overlap_at_k";
pub const SHADOW_RBO: &str = "splitgate_shadow_rank_biased_overlap";
pub const SHADOW_TOP1: &str = "splitgate_shadow_top1_match_total";
pub const SHADOW_LATENCY_DELTA: &str = "splitgate_shadow_latency_delta_seconds";
pub const SHADOW_MISMATCH: &str = "splitgate_shadow_status_mismatch_total";
pub const SHADOW_QUEUE: &str = "splitgate_shadow_queue_depth";
pub const SOURCE_UP: &str = "splitgate_config_source_up";
pub const SOURCE_ERRORS: &str = "splitgate_config_source_errors_total";
pub const CLOUDWATCH_DATA: &str = "splitgate_cloudwatch_data_total";
pub const GUARD_ROLLBACKS: &str = "splitgate_guard_rollbacks_total";
pub const FLEET_LEADER: &str = "splitgate_fleet_leader";
pub const FLEET_UP: &str = "splitgate_fleet_up";
pub const FLEET_REPLICAS: &str = "splitgate_fleet_replicas";
pub const FLEET_CALLS: &str = "splitgate_fleet_dynamodb_calls_total";
pub const OPEN_CONNECTIONS: &str = "splitgate_open_connections";
/// Rendered at scrape time from the live snapshot (see `live`).
pub const BUILD_INFO: &str = "splitgate_build_info";
pub const VARIANT_WEIGHT: &str = "splitgate_variant_weight";
pub const SRM_FLAGGED: &str = "splitgate_experiment_srm_flagged";
pub const INTERLEAVE_REQUESTS: &str = "splitgate_interleave_requests_total";
pub const INTERLEAVE_CREDITS: &str = "splitgate_interleave_credits_total";

/// Name, help text and unit of every metric; `/metrics` prints the help beside each.
const DESCRIPTIONS: &[(&str, &str, Unit)] = &[
    (REQUESTS, "Requests answered, by route, variant and status class.", Unit::Count),
    (REQUEST_DURATION, "Time from request arrival to response, by route and variant.", Unit::Seconds),
    (UPSTREAM_DURATION, "Time spent waiting for the model, by variant and model.", Unit::Seconds),
    (UPSTREAM_ERRORS, "Model calls that failed, by model and error kind.", Unit::Count),
    (ERRORS, "Requests that ended in an error, by error code.", Unit::Count),
    (AUTH_FAILURES, "Requests rejected for a missing or unknown API key.", Unit::Count),
    (THROTTLED, "Requests rejected by the token bucket.", Unit::Count),
    (CONFIG_VERSION, "Version of the config snapshot now serving.", Unit::Count),
    (CONFIG_RELOADS, "Config reload attempts, by result (applied or rejected).", Unit::Count),
    (ACCESS_LOG_DROPPED, "Access-log lines dropped because the writer fell behind.", Unit::Count),
    (IN_FLIGHT, "Requests being processed now.", Unit::Count),
    (FEEDBACK, "Feedback events, by the variant that served the user and event type.", Unit::Count),
    (SHADOW_REQUESTS, "Shadow copies by shadow model and outcome.", Unit::Count),
    (SHADOW_DURATION, "Shadow model latency.", Unit::Seconds),
    (SHADOW_OVERLAP, "Overlap@k between shadow and primary recommendation lists.", Unit::Count),
    (SHADOW_RBO, "Rank-biased overlap between shadow and primary lists.", Unit::Count),
    (SHADOW_TOP1, "Compared shadow answers, by whether the top-1 item matched.", Unit::Count),
    (SHADOW_LATENCY_DELTA, "Shadow latency minus primary latency (absolute), by sign.", Unit::Seconds),
    (SHADOW_MISMATCH, "Shadow copies where exactly one side failed or was unparseable.", Unit::Count),
    (SHADOW_QUEUE, "Shadow copies queued, not yet sent.", Unit::Count),
    (SOURCE_UP, "1 while the config source (file or DynamoDB) answers, 0 while it fails.", Unit::Count),
    (SOURCE_ERRORS, "Failed reads of the config source.", Unit::Count),
    (GUARD_ROLLBACKS, "Automatic rollbacks by the guard, by variant and trigger.", Unit::Count),
    (CLOUDWATCH_DATA, "CloudWatch metric data, by result (sent or dropped after retries).", Unit::Count),
    (FLEET_LEADER, "1 while this replica holds the fleet guard lease, else 0.", Unit::Count),
    (FLEET_UP, "1 while the fleet table answers, 0 while the fleet is degraded (local guard).", Unit::Count),
    (FLEET_REPLICAS, "Replicas that flushed counters within the last two intervals.", Unit::Count),
    (FLEET_CALLS, "DynamoDB calls the fleet made, by operation and result.", Unit::Count),
    (OPEN_CONNECTIONS, "Client connections open now, by listener (main or admin).", Unit::Count),
    (BUILD_INFO, "Always 1; the labels say which build is running.", Unit::Count),
    (VARIANT_WEIGHT, "Live share of traffic per variant, in percent (0-100).", Unit::Count),
    (
        SRM_FLAGGED,
        "1 while the experiment's split shows a sample ratio mismatch (SRM check p below srm_alpha), else 0.",
        Unit::Count,
    ),
    (
        INTERLEAVE_REQUESTS,
        "Interleaving arms' answers, by variant and outcome (merged, degraded, failed).",
        Unit::Count,
    ),
    (
        INTERLEAVE_CREDITS,
        "Feedback events for interleaved answers, by variant and credited team (a, b, none).",
        Unit::Count,
    ),
];

/// The guard's trigger labels on [`GUARD_ROLLBACKS`] (`guard::Breach::trigger`).
pub const GUARD_TRIGGERS: [&str; 4] = ["error_rate", "latency", "invocation_errors", "throttling"];

/// The listeners labelled on [`OPEN_CONNECTIONS`].
pub const LISTENERS: [&str; 2] = ["main", "admin"];

pub const LATENCY_BUCKETS: &[f64] =
    &[0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
pub const RATIO_BUCKETS: &[f64] = &[0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.999, 1.0];

/// The routes we label; anything else is `other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Recommend,
    Feedback,
    Health,
    Metrics,
    Admin,
    Other,
}

impl Route {
    pub const ALL: [Route; 6] =
        [Route::Recommend, Route::Feedback, Route::Health, Route::Metrics, Route::Admin, Route::Other];
    pub fn label(self) -> &'static str {
        match self {
            Route::Recommend => "recommend",
            Route::Feedback => "feedback",
            Route::Health => "health",
            Route::Metrics => "metrics",
            Route::Admin => "admin",
            Route::Other => "other",
        }
    }
}

/// Feedback event types counted by name; anything else is `other` (keeps labels bounded).
/// The names live in [`crate::events`], shared with config validation.
pub const FEEDBACK_EVENTS: [&str; 7] = crate::events::FeedbackEvent::NAMES;

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Counters by status class plus a latency histogram, for one (route, variant).
#[derive(Clone)]
pub struct RouteMetrics {
    by_class: [Counter; 5],
    duration: Histogram,
}

impl RouteMetrics {
    #[inline]
    pub fn record(&self, status: u16, seconds: f64) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[class].increment(1);
        self.duration.record(seconds);
    }
}

/// Handles for one variant, rebuilt with each snapshot.
#[derive(Clone)]
pub struct VariantMetrics {
    pub recommend: RouteMetrics,
    pub upstream: Histogram,
    /// Indexed like [`FEEDBACK_EVENTS`].
    pub feedback: Vec<Counter>,
}

/// Handles for one model.
#[derive(Clone)]
pub struct ModelMetrics {
    /// Indexed like [`CODES`].
    pub errors: Arc<[Counter]>,
}

/// The registry plus process-wide handles.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Per route, for requests that never reached a variant.
    pub routes: Vec<RouteMetrics>,
    /// Indexed like [`CODES`].
    pub errors: Vec<Counter>,
    pub auth_failures: Counter,
    pub throttled: Counter,
    pub config_version: Gauge,
    pub reloads_applied: Counter,
    pub reloads_rejected: Counter,
    pub access_log_dropped: Counter,
    pub in_flight: Gauge,
    /// Indexed like [`LISTENERS`].
    pub open_connections: [Gauge; 2],
    pub source_up: Gauge,
    pub source_errors: Counter,
    /// `splitgate_experiment_srm_flagged`, set by the admin's SRM watch.
    pub srm_flagged: Gauge,
    pub cloudwatch: crate::aws::cloudwatch::PublishMetrics,
    /// When the registry was made: the process start time where `/proc` cannot say.
    started: std::time::SystemTime,
    /// By (name, rendered labels): sorted, so each family renders as one block.
    histograms: Mutex<BTreeMap<(&'static str, String), Arc<FixedHistogram>>>,
}

fn meta() -> Metadata<'static> {
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()))
}

impl Metrics {
    pub fn new() -> Metrics {
        // The exporter keeps counters and gauges; histograms are our own (see `hist`).
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        for (name, help, unit) in DESCRIPTIONS {
            let (n, h) = (KeyName::from_const_str(name), SharedString::const_str(help));
            if name.ends_with("_total") {
                recorder.describe_counter(n, Some(*unit), h);
            } else if [
                CONFIG_VERSION,
                IN_FLIGHT,
                SHADOW_QUEUE,
                SOURCE_UP,
                FLEET_LEADER,
                FLEET_UP,
                FLEET_REPLICAS,
                SRM_FLAGGED,
            ]
            .contains(name)
                || *name == OPEN_CONNECTIONS
            {
                recorder.describe_gauge(n, Some(*unit), h);
            }
        }
        let mut m = Metrics {
            routes: Vec::new(),
            errors: Vec::new(),
            auth_failures: recorder.register_counter(&Key::from_static_name(AUTH_FAILURES), &meta()),
            throttled: recorder.register_counter(&Key::from_static_name(THROTTLED), &meta()),
            config_version: recorder.register_gauge(&Key::from_static_name(CONFIG_VERSION), &meta()),
            reloads_applied: recorder.register_counter(&key(CONFIG_RELOADS, &[("result", "applied")]), &meta()),
            reloads_rejected: recorder.register_counter(&key(CONFIG_RELOADS, &[("result", "rejected")]), &meta()),
            access_log_dropped: recorder.register_counter(&Key::from_static_name(ACCESS_LOG_DROPPED), &meta()),
            in_flight: recorder.register_gauge(&Key::from_static_name(IN_FLIGHT), &meta()),
            open_connections: LISTENERS
                .map(|l| recorder.register_gauge(&key(OPEN_CONNECTIONS, &[("listener", l)]), &meta())),
            source_up: recorder.register_gauge(&Key::from_static_name(SOURCE_UP), &meta()),
            source_errors: recorder.register_counter(&Key::from_static_name(SOURCE_ERRORS), &meta()),
            srm_flagged: recorder.register_gauge(&Key::from_static_name(SRM_FLAGGED), &meta()),
            cloudwatch: crate::aws::cloudwatch::PublishMetrics {
                sent: recorder.register_counter(&key(CLOUDWATCH_DATA, &[("result", "sent")]), &meta()),
                dropped: recorder.register_counter(&key(CLOUDWATCH_DATA, &[("result", "dropped")]), &meta()),
            },
            recorder,
            handle,
            started: std::time::SystemTime::now(),
            histograms: Mutex::default(),
        };
        m.source_up.set(1.0);
        for g in &m.open_connections {
            g.set(0.0);
        }
        m.srm_flagged.set(0.0);
        m.routes = Route::ALL.iter().map(|r| m.route(*r, "")).collect();
        m.errors = CODES.iter().map(|c| m.counter(ERRORS, &[("code", c)])).collect();
        m
    }

    /// Handles for `route` served by `variant` ("" when no variant was chosen). Only series that
    /// can occur are registered (see [`can_occur`]); the others are no-op handles, so `/metrics`
    /// never lists a label combination that stays 0 forever.
    pub fn route(&self, route: Route, variant: &str) -> RouteMetrics {
        let by_class = CLASSES.map(|class| {
            if can_occur(route, !variant.is_empty(), class) {
                self.counter(REQUESTS, &[("route", route.label()), ("variant", variant), ("class", class)])
            } else {
                Counter::noop()
            }
        });
        let duration = if route == Route::Admin {
            Histogram::noop()
        } else {
            self.histogram(REQUEST_DURATION, &[("route", route.label()), ("variant", variant)])
        };
        RouteMetrics { by_class, duration }
    }

    pub fn variant(&self, variant: &str, model: &str) -> VariantMetrics {
        // Present at 0 from the start, so alerts on `increase(...)` see the first rollback.
        for trigger in GUARD_TRIGGERS {
            let _ = self.counter(GUARD_ROLLBACKS, &[("variant", variant), ("trigger", trigger)]);
        }
        VariantMetrics {
            recommend: self.route(Route::Recommend, variant),
            upstream: self.histogram(UPSTREAM_DURATION, &[("variant", variant), ("model", model)]),
            feedback: FEEDBACK_EVENTS
                .iter()
                .map(|e| self.counter(FEEDBACK, &[("variant", variant), ("event", e)]))
                .collect(),
        }
    }

    /// Only the model-call kinds (`upstream_*`) are registered: a model call never fails with
    /// `missing_user_id` or `unauthorized`, so those series would stay 0 forever.
    pub fn model(&self, model: &str) -> ModelMetrics {
        ModelMetrics {
            errors: CODES
                .iter()
                .map(|c| {
                    if is_model_error(c) {
                        self.counter(UPSTREAM_ERRORS, &[("model", model), ("kind", c)])
                    } else {
                        Counter::noop()
                    }
                })
                .collect(),
        }
    }

    pub fn route_metrics(&self, route: Route) -> &RouteMetrics {
        // `routes` is built from Route::ALL in order, so the index always exists.
        &self.routes[Route::ALL.iter().position(|r| *r == route).unwrap_or(Route::ALL.len() - 1)]
    }

    pub fn counter(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Counter {
        self.recorder.register_counter(&key(name, labels), &meta())
    }

    pub fn gauge(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Gauge {
        self.recorder.register_gauge(&key(name, labels), &meta())
    }

    /// The histogram `name{labels}`; registering the same one again (a new snapshot) returns a
    /// handle to the same counts.
    pub fn histogram(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Histogram {
        let bounds = if [SHADOW_OVERLAP, SHADOW_RBO].contains(&name) { RATIO_BUCKETS } else { LATENCY_BUCKETS };
        // A poisoned lock only means a panic elsewhere mid-insert; the map is still usable.
        let mut all = self.histograms.lock().unwrap_or_else(|p| p.into_inner());
        let h = all.entry((name, render_labels(labels))).or_insert_with(|| Arc::new(FixedHistogram::new(bounds)));
        Histogram::from_arc(h.clone())
    }

    /// Cumulative bucket counts (`+Inf` last) of the histogram `name{labels}`, if registered.
    /// For the admin service's samplers, never the request path (it takes the registry lock).
    pub fn read_histogram(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Option<Vec<u64>> {
        let all = self.histograms.lock().unwrap_or_else(|p| p.into_inner());
        all.get(&(name, render_labels(labels))).map(|h| h.read().0)
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = self.handle.render();
        let all = self.histograms.lock().unwrap_or_else(|p| p.into_inner());
        let mut family = "";
        for ((name, labels), h) in all.iter() {
            if *name != family {
                family = name;
                let help = DESCRIPTIONS.iter().find(|d| d.0 == *name).map_or("", |d| d.1);
                if !out.is_empty() && !out.ends_with("\n\n") {
                    out.push('\n');
                }
                out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} histogram\n"));
            }
            h.render(&mut out, name, labels);
        }
        live::build_info(&mut out);
        process::render(&mut out, &process::read(self.started));
        out
    }

    /// Lets the exporter do its periodic housekeeping (cheap: it holds no histograms).
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Whether `requests_total{route, variant, class}` can ever count a request: nothing answers
/// 1xx as a final status; 3xx only comes from a model's own answer (passed through); 2xx and 3xx
/// need a variant on `/recommend` (a request that never reached one failed); only `/recommend`
/// is recorded per variant; the admin listener is not recorded here at all.
pub fn can_occur(route: Route, has_variant: bool, class: &str) -> bool {
    match (route, class) {
        (Route::Admin, _) | (_, "1xx") => false,
        (Route::Recommend, "2xx" | "3xx") => has_variant,
        (Route::Recommend, _) => true,
        (_, "3xx") => false,
        (_, _) => !has_variant,
    }
}

/// The error kinds a model call can end in (`ProxyError::is_upstream`): the `upstream_*` codes.
pub fn is_model_error(code: &str) -> bool {
    code.starts_with("upstream_")
}

fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
    let labels: Vec<Label> = labels.iter().map(|(k, v)| Label::new(*k, (*v).to_owned())).collect();
    Key::from_parts(name, labels)
}

#[cfg(test)]
mod tests;
