//! The guard from outside: a real proxy process with two HTTP mock models, 50/50 with fallback to
//! the champion. A challenger that starts failing (500) or answering slowly (150 ms against a
//! 100 ms limit) is rolled back to weight 0 by the guard itself, exactly once, with a metric, an
//! audit record and a webhook note; with fallback on, every client request still gets a 200.

mod support;

use std::time::Duration;

use http::Method;
use support::conf::Section;
use support::*;

/// Two HTTP models, 50/50 with fallback to the champion, and a guard that judges after 20
/// requests every 100 ms and posts its notes to `webhook`; `guard` adds the trigger under test.
fn guarded(challenger_url: &str, champion_url: &str, webhook: &str, guard: impl FnOnce(Section) -> Section) -> Conf {
    Conf::base()
        .model_http("champ", "c1", champion_url)
        .model_http("chall", "n1", challenger_url)
        .model("chall", "timeout_ms", 2000)
        .split("g")
        .set("split.fallback_to_champion", true)
        .champion("champion", "champ", 50.0)
        .variant("challenger", "chall", 50.0)
        .guard(|g| guard(g.min_requests(20).evaluate_every_ms(100).webhook_url(webhook)))
}

async fn drive(p: &Proxy, n: usize) -> Vec<(u16, String)> {
    let c = client();
    let mut out = Vec::new();
    for i in 0..n {
        let (status, h, _) = recommend_with(&c, &p.url("/recommend"), &format!("guard-{i}")).await;
        out.push((status.as_u16(), header(&h, "x-splitgate-fallback").to_owned()));
    }
    out
}

async fn wait_rollback(p: &Proxy) -> serde_json::Value {
    eventually(Duration::from_secs(10), "guard did not roll back", || async {
        let h = p.health().await;
        if h["variants"][1]["weight"] == 0.0 {
            Ok(h)
        } else {
            Err(h.to_string())
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_rolls_back_a_failing_challenger_once_and_requests_keep_succeeding() {
    let champion = Upstream::builder().answer(&["a"]).start().await;
    let challenger = Upstream::builder().answer(&["b"]).start().await;
    let hook = Upstream::builder().start().await;
    let p = Proxy::start(guarded(&challenger.url(), &champion.url(), &hook.url(), |g| {
        g.error_rate(0.05).error_window_secs(5)
    }));
    assert!(drive(&p, 40).await.iter().all(|(s, _)| *s == 200));
    challenger.set(Upstream::builder().fail_with(500));
    let results = drive(&p, 120).await;
    assert!(results.iter().all(|(s, _)| *s == 200), "fallback keeps every request succeeding");
    assert!(results.iter().any(|(_, f)| f == "1"), "some requests fell back to the champion");
    wait_rollback(&p).await;
    // More failing traffic after the rollback, then five guard passes (100 ms each) with nothing
    // to wait for: the sleep gives a second rollback the chance to happen, the count proves it did not.
    drive(&p, 40).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let m = p.metrics().await;
    assert_eq!(
        metric(&m, r#"splitgate_guard_rollbacks_total{variant="challenger",trigger="error_rate"}"#),
        Some(1.0),
        "{m}"
    );
    let audit = json(&admin(&p, Method::GET, "/admin/audit", None, &[]).await.2);
    let records = audit["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "exactly one rollback: {audit}");
    assert_eq!(records[0]["who"], "guard");
    assert!(records[0]["reason"].as_str().unwrap().contains("error_rate"));
    wait_until(Duration::from_secs(5), "the webhook got no note", || async { hook.requests() > 0 }).await;
    let seen = hook.seen.lock().unwrap()[0].clone();
    let note: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!((note["event"].as_str(), note["variant"].as_str()), (Some("rollback"), Some("challenger")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_rolls_back_a_slow_challenger() {
    let champion = Upstream::builder().answer(&["a"]).start().await;
    let challenger = Upstream::builder().latency(Duration::from_millis(150)).answer(&["b"]).start().await;
    let hook = Upstream::builder().start().await;
    let p = Proxy::start(guarded(&challenger.url(), &champion.url(), &hook.url(), |g| {
        g.latency_ms(100).latency_window_secs(10)
    }));
    drive(&p, 80).await;
    wait_rollback(&p).await;
    let m = p.metrics().await;
    assert_eq!(
        metric(&m, r#"splitgate_guard_rollbacks_total{variant="challenger",trigger="latency"}"#),
        Some(1.0),
        "{m}"
    );
}
