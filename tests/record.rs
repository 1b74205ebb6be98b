//! One recorder: every request is counted exactly once in every sink — Prometheus (route,
//! variant, error and model-error series), the guard's counters (`/admin/status`) and the
//! experiment's (`/admin/experiment`) — including a fallback, where two model calls serve one
//! request. A real proxy process, a dead challenger (connection refused) and a live champion.

mod support;

use http::Method;
use support::upstream::dead_addr;
use support::*;

/// Two HTTP models 50/50 with fallback to the champion.
fn fallback_config(champion_url: &str, challenger_url: &str) -> Conf {
    Conf::base()
        .model_http("champ", "c1", champion_url)
        .model_http("chall", "n1", challenger_url)
        .split("record")
        .set("split.fallback_to_champion", true)
        .champion("champion", "champ", 50.0)
        .variant("challenger", "chall", 50.0)
}

async fn pinned(p: &Proxy, variant: &str, user: &str) -> u16 {
    let body = format!(r#"{{"user_id":"{user}"}}"#);
    post(&p.url("/recommend"), Some(KEY), &body, &[("x-splitgate-variant", variant)]).await.0.as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_counted_once_in_every_sink() {
    let champion = Upstream::builder().answer(&["a", "b"]).start().await;
    let dead = dead_addr().await;
    let p = Proxy::start(fallback_config(&champion.url(), &format!("http://{dead}/invocations")));
    for i in 0..7 {
        assert_eq!(pinned(&p, "champion", &format!("c{i}")).await, 200);
    }
    for i in 0..11 {
        assert_eq!(pinned(&p, "challenger", &format!("x{i}")).await, 200, "the champion answers for it");
    }
    for _ in 0..3 {
        assert_eq!(post(&p.url("/recommend"), Some("wrong-key"), r#"{"user_id":"u"}"#, &[]).await.0, 401);
    }
    for i in 0..5 {
        let body = format!(r#"{{"user_id":"x{i}","event":"click"}}"#);
        let (s, _, _) = post(&p.url("/feedback"), Some(KEY), &body, &[("x-splitgate-variant", "challenger")]).await;
        assert_eq!(s, 202);
    }

    let m = p.metrics().await;
    let count = |series: &str| metric(&m, series).unwrap_or(0.0);
    let requests = |variant: &str| {
        count(&format!(r#"splitgate_requests_total{{route="recommend",variant="{variant}",class="2xx"}}"#))
    };
    assert_eq!((requests("champion"), requests("challenger")), (7.0, 11.0), "{m}");
    assert_eq!(count(r#"splitgate_upstream_errors_total{model="chall",kind="upstream_unavailable"}"#), 11.0, "{m}");
    assert_eq!(count(r#"splitgate_upstream_errors_total{model="champ",kind="upstream_unavailable"}"#), 0.0);
    assert_eq!(count("splitgate_auth_failures_total"), 3.0, "{m}");
    assert_eq!(count(r#"splitgate_errors_total{code="unauthorized"}"#), 3.0, "{m}");
    // Feedback is attributed by the split (the override header does not apply to it): however
    // the five users divide, each event is counted once.
    let clicks = |v: &str| count(&format!(r#"splitgate_feedback_events_total{{variant="{v}",event="click"}}"#));
    assert_eq!(clicks("champion") + clicks("challenger"), 5.0, "{m}");

    let status = json(&admin(&p, Method::GET, "/admin/status", None, &[]).await.2);
    let by_name =
        |name: &str| status["variants"].as_array().unwrap().iter().find(|v| v["name"] == name).unwrap().clone();
    let (champ, chall) = (by_name("champion"), by_name("challenger"));
    assert_eq!(champ["requests"], 7, "{status}");
    assert_eq!(chall["requests"], 11, "the guard judges the challenger by its own 11 calls: {status}");
    assert_eq!(chall["model_errors"], 11, "{status}");
    assert_eq!(chall["error_rate"], 1.0, "{status}");

    let exp = json(&admin(&p, Method::GET, "/admin/experiment?event=click", None, &[]).await.2);
    let variants = exp["variants"].as_array().unwrap();
    let events: u64 = variants.iter().map(|v| v["events"]["click"].as_u64().unwrap()).sum();
    assert_eq!(events, 5, "{exp}");
    assert_eq!(
        variants.iter().find(|v| v["name"] == "challenger").unwrap()["events"]["click"].as_f64(),
        Some(clicks("challenger")),
        "the experiment and Prometheus agree"
    );
    let chall = variants.iter().find(|v| v["name"] == "challenger").unwrap().clone();
    let users = chall["users"].as_u64().unwrap();
    assert!((10..=12).contains(&users), "11 distinct users exposed (HLL estimate {users}): {exp}");
}

/// A client that gives up before the model answers (closes its connection) is still recorded,
/// once: 499 `client_closed_request` in Prometheus and the access log, and a request with its
/// latency in the guard's counters, so a model slower than its callers' patience is not invisible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_the_client_abandons_is_recorded_once() {
    let champion = Upstream::builder().answer(&["a"]).start().await;
    let hanging = Upstream::builder().hang().start().await;
    let p = Proxy::start(fallback_config(&champion.url(), &hanging.url()).set("split.fallback_to_champion", false));
    for i in 0..3 {
        let body = format!(r#"{{"user_id":"gone-{i}"}}"#);
        let req = http::Request::post(p.url("/recommend"))
            .header("x-api-key", KEY)
            .header("x-splitgate-variant", "challenger")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap();
        // A fresh client per request, dropped with its connection when we stop waiting.
        let gave_up = tokio::time::timeout(std::time::Duration::from_millis(300), client().request(req)).await;
        assert!(gave_up.is_err(), "the model hangs: no answer within 300 ms");
    }
    eventually(std::time::Duration::from_secs(5), "three abandoned requests recorded", || async {
        let m = p.metrics().await;
        match metric(&m, r#"splitgate_errors_total{code="client_closed_request"}"#) {
            Some(3.0) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let status = json(&admin(&p, Method::GET, "/admin/status", None, &[]).await.2);
    let chall = status["variants"].as_array().unwrap().iter().find(|v| v["name"] == "challenger").unwrap().clone();
    assert_eq!(chall["requests"], 3, "the guard saw each abandoned request once: {status}");
    assert!(chall["mean_latency_ms"].as_f64().unwrap() >= 250.0, "with the time it had taken: {status}");
    // The access log is written off the request path: wait for its lines, then check the count.
    eventually(std::time::Duration::from_secs(5), "one access-log line each", || async {
        let lines = p.stdout_lines();
        match lines.iter().filter(|l| l.contains("\"status\":499")).count() {
            3 => Ok(()),
            _ => Err(format!("{lines:?}")),
        }
    })
    .await;
}
