//! The ramp advances a challenger only on evidence: the hold must pass *and* the challenger must
//! serve at least `min_requests` in it with no trigger breached. A failing HTTP challenger (5xx
//! answers) never ramps and is rolled back by the error-rate trigger; 503 answers alone trip the
//! invocation-error trigger; zero traffic, or traffic under `min_requests`, never ramps.
//! Each test runs a real proxy process (and, where a model must fail, HTTP mock models). The exact
//! timing of holds is covered on paused time in `src/guard.rs`'s unit tests.

mod support;

use std::time::{Duration, Instant};

use http::Method;
use serde_json::json;
use support::*;

/// The challenger's weight, as the proxy reports it.
async fn weight(p: &Proxy) -> f64 {
    p.health().await["variants"][1]["weight"].as_f64().unwrap()
}

/// `n` requests pinned to the challenger by the override header (the demo key may override).
async fn to_challenger(p: &Proxy, n: usize) -> Vec<u16> {
    let mut statuses = Vec::with_capacity(n);
    for i in 0..n {
        let body = format!(r#"{{"user_id":"ramp-{i}"}}"#);
        let (s, _, _) = post(&p.url("/recommend"), Some(KEY), &body, &[("x-splitgate-variant", "challenger")]).await;
        statuses.push(s.as_u16());
    }
    statuses
}

/// (who, action, to) of every audit record.
async fn audit(p: &Proxy) -> Vec<(serde_json::Value, serde_json::Value, serde_json::Value)> {
    let a = json(&admin(p, Method::GET, "/admin/audit", None, &[]).await.2);
    a["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["who"].clone(), r["action"].clone(), r["change"]["to"].clone()))
        .collect()
}

/// Two HTTP models 90/10 under salt `ramp`.
fn http_split(champion_url: &str, challenger_url: &str) -> Conf {
    Conf::base()
        .model_http("champ", "c1", champion_url)
        .model_http("chall", "n1", challenger_url)
        .split("ramp")
        .champion("champion", "champ", 90.0)
        .variant("challenger", "chall", 10.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramp_advances_a_healthy_challenger_step_by_step() {
    let conf = Conf::builtin(90.0, 10.0).guard(|g| g.min_requests(20).evaluate_every_ms(100));
    let p = Proxy::start(conf.ramp(&[10.0, 50.0, 100.0], "1s"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while weight(&p).await < 100.0 {
        assert!(Instant::now() < deadline, "ramp stuck at {}%", weight(&p).await);
        assert!(to_challenger(&p, 10).await.iter().all(|s| *s == 200));
    }
    let steps: Vec<_> = audit(&p).await.into_iter().map(|(who, _, to)| (who, to)).collect();
    assert_eq!(steps, vec![(json!("ramp"), json!(50.0)), (json!("ramp"), json!(100.0))]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_traffic_never_advances_the_ramp() {
    let conf = Conf::builtin(90.0, 10.0).guard(|g| g.min_requests(5).evaluate_every_ms(100));
    let p = Proxy::start(conf.ramp(&[10.0, 50.0, 100.0], "500ms"));
    // Six holds without a request (absence needs a span of time: there is no event to wait on).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(weight(&p).await, 10.0);
    assert!(audit(&p).await.is_empty());
    // Below min_requests the step still holds…
    to_challenger(&p, 4).await;
    // Three holds (an absence again: no event says "the ramp decided not to move").
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(weight(&p).await, 10.0, "4 requests are fewer than min_requests = 5");
    // …and with enough healthy traffic it moves: the same proxy can ramp, so the waits above
    // measured the rule, not a broken ramp.
    let deadline = Instant::now() + Duration::from_secs(10);
    while weight(&p).await == 10.0 {
        assert!(Instant::now() < deadline, "a healthy challenger with traffic never ramped");
        to_challenger(&p, 5).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenger_answering_500_never_ramps_and_is_rolled_back() {
    let champion = Upstream::builder().answer(&["a"]).start().await;
    let challenger = Upstream::builder().fail_with(500).start().await;
    let conf = http_split(&champion.url(), &challenger.url())
        .guard(|g| g.error_rate(0.05).min_requests(20).evaluate_every_ms(100))
        .ramp(&[10.0, 50.0, 100.0], "300ms");
    let p = Proxy::start(conf);
    // Below min_requests nothing can fire, so the ramp must not read silence as health.
    assert!(to_challenger(&p, 10).await.iter().all(|s| *s == 500), "the model's 500 is passed through");
    // Five holds with nothing to wait for (an absence): the weight must still be 10 after them.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(weight(&p).await, 10.0, "5 holds passed with 10 failing requests: no step");
    to_challenger(&p, 30).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while weight(&p).await != 0.0 {
        assert!(Instant::now() < deadline, "the failing challenger was not rolled back");
        to_challenger(&p, 5).await;
    }
    let records = audit(&p).await;
    assert_eq!(records.len(), 1, "one rollback, no ramp step: {records:?}");
    assert_eq!((records[0].0.as_str(), records[0].1.as_str()), (Some("guard"), Some("rollback")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_5xx_answers_count_as_invocation_errors() {
    let champion = Upstream::builder().answer(&["a"]).start().await;
    let challenger = Upstream::builder().fail_with(503).start().await;
    // The error-rate trigger is off (rate 1.0 is never exceeded): only the invocation-error
    // trigger can fire, and only if a 5xx answer counts as a model invocation error.
    let conf = http_split(&champion.url(), &challenger.url())
        .guard(|g| g.error_rate(1.0).invocation_errors_per_minute(5).min_requests(1000).evaluate_every_ms(100));
    let p = Proxy::start(conf);
    to_challenger(&p, 8).await;
    wait_until(Duration::from_secs(10), "8 answers of 503 in a minute did not trip invocation_errors > 5", || async {
        weight(&p).await == 0.0
    })
    .await;
    let m = p.metrics().await;
    assert_eq!(
        metric(&m, r#"splitgate_guard_rollbacks_total{variant="challenger",trigger="invocation_errors"}"#),
        Some(1.0),
        "{m}"
    );
}

/// The red-team case: a challenger failing every request, with traffic too thin for any trigger
/// window to reach `min_requests` (1 s windows, ~2 requests each) but enough over the 3 s hold
/// to pass `min_requests`. Judged over the whole hold it is 100% errors, so it never ramps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_record_spread_thinner_than_every_window_never_ramps() {
    let champion = Upstream::builder().answer(&["a"]).start().await;
    let challenger = Upstream::builder().fail_with(500).start().await;
    let conf = http_split(&champion.url(), &challenger.url()).guard(|g| {
        g.min_requests(5)
            .evaluate_every_ms(100)
            .set("error_window_secs", 1)
            .set("latency_window_secs", 1)
            .set("throttle_window_secs", 1)
            .set("invocation_errors_per_minute", 1_000)
    });
    let p = Proxy::start(conf.ramp(&[10.0, 50.0, 100.0], "3s"));
    // 1 request every 400 ms for 8 s: 20 failing requests, never 5 in one window. This is the
    // pacing being tested, not a wait for an event.
    for _ in 0..20 {
        assert_eq!(to_challenger(&p, 1).await, vec![500]);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert_eq!(weight(&p).await, 10.0, "two holds of 100% errors must not advance the ramp");
    assert!(audit(&p).await.iter().all(|(who, _, _)| who != "ramp"), "{:?}", audit(&p).await);
    assert!(p.stderr_text().contains("unhealthy over the step's hold"), "{}", p.stderr_text());
}
