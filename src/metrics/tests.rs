//! Unit tests of the registry: names, rendering, and which series exist.
use super::*;

#[test]
fn names_follow_conventions() {
    for (name, help, unit) in DESCRIPTIONS {
        assert!(name.starts_with("splitgate_"), "{name}");
        assert!(!help.is_empty());
        if *unit == Unit::Seconds {
            assert!(name.ends_with("_seconds"), "{name}");
        }
    }
}

#[test]
fn renders_registered_handles() {
    let m = Metrics::new();
    m.variant("champion", "rec").recommend.record(200, 0.01);
    m.throttled.increment(2);
    let text = m.render();
    assert!(text.contains(r#"splitgate_requests_total{route="recommend",variant="champion",class="2xx"} 1"#), "{text}");
    assert!(text.contains("splitgate_throttled_total 2"));
    assert!(text.contains("# HELP splitgate_throttled_total Requests rejected by the token bucket."));
    assert!(text.contains("splitgate_request_duration_seconds_bucket"));
    assert!(text.contains("# TYPE splitgate_request_duration_seconds histogram"));
    assert!(text
        .contains(r#"splitgate_request_duration_seconds_bucket{route="recommend",variant="champion",le="0.025"} 1"#));
    assert_eq!(text.matches("# TYPE splitgate_request_duration_seconds histogram").count(), 1, "{text}");
}

#[test]
fn only_series_that_can_occur_are_listed() {
    let m = Metrics::new();
    let _ = m.variant("challenger", "rec");
    let _ = m.model("rec");
    let text = m.render();
    for trigger in GUARD_TRIGGERS {
        let series = format!(r#"splitgate_guard_rollbacks_total{{variant="challenger",trigger="{trigger}"}} 0"#);
        assert!(text.contains(&series), "{series} present at 0 from the start:\n{text}");
    }
    assert!(text.contains(r#"splitgate_upstream_errors_total{model="rec",kind="upstream_timeout"} 0"#), "{text}");
    assert!(!text.contains(r#"kind="missing_user_id""#), "a model call never fails for a missing user id");
    assert!(!text.contains(r#"kind="unauthorized""#));
    assert!(!text.contains(r#"class="1xx""#), "no final 1xx answers");
    assert!(!text.contains(r#"route="admin""#), "the admin listener is not recorded here");
    assert!(text.contains(r#"splitgate_requests_total{route="recommend",variant="challenger",class="3xx"} 0"#));
    assert!(!text.contains(r#"splitgate_requests_total{route="recommend",variant="",class="2xx"}"#));
    assert!(text.contains(r#"splitgate_requests_total{route="recommend",variant="",class="4xx"} 0"#));
    assert!(!text.contains(r#"splitgate_requests_total{route="health",variant="",class="3xx"}"#));
    assert!(text.contains(r#"splitgate_open_connections{listener="main"} 0"#), "{text}");
    assert!(text.contains(r#"splitgate_open_connections{listener="admin"} 0"#));
    let info = format!(r#"splitgate_build_info{{version="{}",commit="{}"}} 1"#, live::VERSION, live::COMMIT);
    assert!(text.contains(&info), "{text}");
    assert!(!live::COMMIT.is_empty());
    assert!(text.contains("process_start_time_seconds "));
}

#[test]
fn model_error_kinds_are_exactly_the_upstream_errors() {
    use crate::error::ProxyError as E;
    let m = || "m".to_owned();
    let upstream = [
        E::UpstreamTimeout { model: m(), timeout_ms: 1 },
        E::UpstreamFailed { model: m(), message: m() },
        E::UpstreamTooLarge { model: m(), limit: 1 },
        E::UpstreamThrottled { model: m() },
        E::UpstreamModelError { model: m(), message: m() },
        E::UpstreamRejected { model: m(), message: m() },
    ];
    for e in &upstream {
        assert!(e.is_upstream() && is_model_error(e.code()), "{e}");
    }
    assert_eq!(CODES.iter().filter(|c| is_model_error(c)).count(), 7, "six above plus upstream_unavailable");
    for e in [E::Unauthorized, E::NotFound, E::Overloaded, E::ClientClosed] {
        assert!(!e.is_upstream() && !is_model_error(e.code()), "{e}");
    }
}

#[test]
fn every_guard_trigger_is_labelled() {
    use crate::guard::Breach;
    let breaches = [
        Breach::ErrorRate { rate: 0.1, requests: 1 },
        Breach::Latency { mean_ms: 1.0, requests: 1 },
        Breach::InvocationErrors { per_minute: 1 },
        Breach::Throttling { rate: 0.1, requests: 1 },
    ];
    let labels: Vec<_> = breaches.iter().map(Breach::trigger).collect();
    assert_eq!(labels, GUARD_TRIGGERS);
}

#[test]
fn histograms_survive_re_registration_and_use_their_buckets() {
    let m = Metrics::new();
    m.histogram(UPSTREAM_DURATION, &[("variant", "a"), ("model", "m")]).record(0.002);
    // A reload builds new handles for the same series: they must add to the same counts.
    m.histogram(UPSTREAM_DURATION, &[("variant", "a"), ("model", "m")]).record(0.004);
    m.histogram(SHADOW_OVERLAP, &[("shadow", "s")]).record(0.95);
    let text = m.render();
    assert!(text.contains(r#"splitgate_upstream_duration_seconds_count{variant="a",model="m"} 2"#), "{text}");
    assert!(text.contains(r#"splitgate_upstream_duration_seconds_bucket{variant="a",model="m",le="0.0025"} 1"#));
    assert!(text.contains(r#"splitgate_shadow_overlap_at_k_bucket{shadow="s",le="0.9"} 0"#), "{text}");
    assert!(text.contains(r#"splitgate_shadow_overlap_at_k_bucket{shadow="s",le="0.999"} 1"#));
    assert!(text.contains("# HELP splitgate_shadow_overlap_at_k Overlap@k"));
}
