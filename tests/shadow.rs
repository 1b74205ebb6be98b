//! Shadow mirroring from outside (a real proxy, HTTP mock models): a slow, hanging, dead or
//! garbage shadow changes neither the client's answer nor its latency (within wide noise); a full
//! queue drops and counts instead of buffering; copies carry the body and headers minus the key,
//! and rejected requests are not mirrored; sampling is sticky per user; answers are compared
//! online (overlap@k, top-1) and disagreements captured to a file without raw user ids.

mod support;

use std::time::{Duration, Instant};

use support::upstream::dead_addr;
use support::*;

/// An HTTP `primary` (2 s timeout) taking all traffic, and one HTTP model (5 s timeout) per
/// `(name, url)` for shadows to mirror to; add the `[[shadow]]` entries with [`Conf::shadow`].
fn with_shadows(primary: &str, shadows: &[(&str, &str)]) -> Conf {
    let mut c = Conf::base().model_http("primary", "p1", primary).model("primary", "timeout_ms", 2000);
    for (name, url) in shadows {
        c = c.model_http(name, &format!("{name}-v"), url).model(name, "timeout_ms", 5000);
    }
    c.split("s").champion("champion", "primary", 100.0)
}

async fn latencies(p: &Proxy, n: usize, tag: &str) -> (Vec<Duration>, Vec<bytes::Bytes>) {
    let c = client();
    let mut lat = Vec::with_capacity(n);
    let mut bodies = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let (status, h, body) = recommend_with(&c, &p.url("/recommend"), &format!("{tag}-{i}")).await;
        lat.push(t.elapsed());
        assert_eq!(status, 200);
        assert_eq!(header(&h, "x-splitgate-variant"), "champion");
        bodies.push(body);
    }
    lat.sort();
    (lat, bodies)
}

fn p99(l: &[Duration]) -> Duration {
    l[(l.len() * 99 / 100).min(l.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_shadows_change_nothing_the_client_sees() {
    let primary = Upstream::builder().answer(&["a", "b", "c"]).start().await;
    let slow = Upstream::builder().latency(Duration::from_secs(2)).answer(&["a"]).start().await;
    let hang = Upstream::builder().hang().start().await;
    let garbage = Upstream::builder().garbage().start().await;
    let dead = format!("http://{}/invocations", dead_addr().await);
    let baseline = Proxy::start(with_shadows(&primary.url(), &[]));
    let all = [("slow", slow.url()), ("hang", hang.url()), ("garbage", garbage.url()), ("dead", dead)];
    let models: Vec<(&str, &str)> = all.iter().map(|(n, u)| (*n, u.as_str())).collect();
    let shadowed = Proxy::start(
        with_shadows(&primary.url(), &models)
            .shadow("slow", |s| s.sample_percent(100.0))
            .shadow("hang", |s| s.sample_percent(100.0).timeout_ms(60_000))
            .shadow("garbage", |s| s.sample_percent(100.0))
            .shadow("dead", |s| s.sample_percent(100.0)),
    );
    let (base_lat, base_bodies) = latencies(&baseline, 100, "u").await;
    let (lat, bodies) = latencies(&shadowed, 100, "u").await;
    assert_eq!(bodies, base_bodies, "shadows must not change the client's answer");
    // Not a benchmark: a primary that waited for the 2 s shadow would be >2 s; allow wide noise.
    assert!(p99(&lat) < p99(&base_lat) + Duration::from_millis(250), "p99 {:?} vs {:?}", p99(&lat), p99(&base_lat));
    assert!(lat.iter().all(|l| *l < Duration::from_secs(1)));
    // Every shadow does receive its copies (the dead one never can).
    wait_until(Duration::from_secs(5), "a shadow got no copy", || async {
        slow.requests() > 0 && hang.requests() > 0 && garbage.requests() > 0
    })
    .await;
    let m = shadowed.metrics().await;
    assert!(
        metric(&m, r#"splitgate_shadow_status_mismatch_total{shadow="garbage",side="shadow",reason="unparseable"}"#)
            .unwrap_or(0.0)
            > 0.0,
        "{m}"
    );
    assert!(
        metric(&m, r#"splitgate_shadow_requests_total{shadow="dead",outcome="failed"}"#).unwrap_or(0.0) > 0.0,
        "{m}"
    );
    assert!(
        metric(&m, r#"splitgate_shadow_status_mismatch_total{shadow="dead",side="shadow",reason="failed"}"#)
            .unwrap_or(0.0)
            > 0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queues_drop_and_count_never_buffer() {
    let primary = Upstream::builder().answer(&["a"]).start().await;
    let hang = Upstream::builder().hang().start().await;
    let p = Proxy::start(with_shadows(&primary.url(), &[("hang", &hang.url())]).shadow("hang", |s| {
        s.sample_percent(100.0).set("queue_capacity", 4).set("max_in_flight", 2).timeout_ms(60_000)
    }));
    let n = 50;
    let (lat, _) = latencies(&p, n, "drop").await;
    assert!(p99(&lat) < Duration::from_secs(1));
    let series = |outcome: &str| format!(r#"splitgate_shadow_requests_total{{shadow="hang",outcome="{outcome}"}}"#);
    let m = eventually(Duration::from_secs(5), "not every request was enqueued or dropped", || async {
        let m = p.metrics().await;
        let seen = metric(&m, &series("dropped")).unwrap_or(0.0) + metric(&m, &series("enqueued")).unwrap_or(0.0);
        if seen == n as f64 {
            Ok(m)
        } else {
            Err(m)
        }
    })
    .await;
    let dropped = metric(&m, r#"splitgate_shadow_requests_total{shadow="hang",outcome="dropped"}"#).unwrap();
    let enqueued = metric(&m, r#"splitgate_shadow_requests_total{shadow="hang",outcome="enqueued"}"#).unwrap();
    assert_eq!(dropped + enqueued, n as f64);
    // At most 2 in flight + 4 queued (+1 held by the worker waiting for a permit) ever accepted.
    assert!(enqueued <= 7.0, "enqueued {enqueued}: the queue is not bounded");
    assert!(hang.requests() <= 2, "max_in_flight exceeded: {}", hang.requests());
    let depth = metric(&m, r#"splitgate_shadow_queue_depth{shadow="hang"}"#).unwrap();
    assert!(depth <= 4.0, "queue depth {depth}");
    let s = json(&admin(&p, http::Method::GET, "/admin/shadow", None, &[]).await.2);
    assert_eq!(s["shadows"][0]["since_start"]["dropped"], dropped as u64);
    assert_eq!(s["shadows"][0]["last_5m"]["dropped"], dropped as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_carry_the_same_body_and_headers_minus_the_key() {
    let primary = Upstream::builder().answer(&["a"]).start().await;
    let shadow = Upstream::builder().answer(&["a"]).start().await;
    let p =
        Proxy::start(with_shadows(&primary.url(), &[("sh", &shadow.url())]).shadow("sh", |s| s.sample_percent(100.0)));
    let body = r#"{"user_id":"copy-me","ctx":[1,2]}"#;
    let (status, _, _) =
        post(&p.url("/recommend"), Some(KEY), body, &[("x-request-id", "rid-7"), ("x-custom", "yes")]).await;
    assert_eq!(status, 200);
    // Rejected requests are never mirrored.
    post(&p.url("/recommend"), Some("bad-key"), body, &[]).await;
    post(&p.url("/recommend"), Some(KEY), "{broken", &[]).await;
    wait_until(Duration::from_secs(5), "the shadow got no copy", || async { shadow.requests() >= 1 }).await;
    // An absence: 200 ms more for a copy of a rejected request to arrive, and none does.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(shadow.requests(), 1);
    let seen = shadow.seen.lock().unwrap()[0].clone();
    assert_eq!(seen.body, body.as_bytes());
    assert_eq!(header(&seen.headers, "x-splitgate-shadow"), "1");
    assert_eq!(header(&seen.headers, "x-request-id"), "rid-7");
    assert_eq!(header(&seen.headers, "x-custom"), "yes");
    assert!(seen.headers.get("x-api-key").is_none());
    assert_eq!(header(&primary.seen.lock().unwrap()[0].headers, "x-splitgate-shadow"), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_is_sticky_per_user() {
    let primary = Upstream::builder().answer(&["a"]).start().await;
    let shadow = Upstream::builder().answer(&["a"]).start().await;
    let p =
        Proxy::start(with_shadows(&primary.url(), &[("sh", &shadow.url())]).shadow("sh", |s| s.sample_percent(30.0)));
    let ids: Vec<String> = (0..300).map(|i| format!("sample-{i}")).collect();
    variants_of(&p.url("/recommend"), &ids, 2).await;
    variants_of(&p.url("/recommend"), &ids, 2).await;
    // Every copy the proxy enqueued has reached the shadow.
    let enqueued = r#"splitgate_shadow_requests_total{shadow="sh",outcome="enqueued"}"#;
    eventually(Duration::from_secs(5), "enqueued copies did not all arrive", || async {
        let want = metric(&p.metrics().await, enqueued).unwrap_or(0.0);
        let got = shadow.requests() as f64;
        if want > 0.0 && got == want {
            Ok(())
        } else {
            Err(format!("{got} of {want}"))
        }
    })
    .await;
    let mut counts = std::collections::HashMap::<String, u32>::new();
    for s in shadow.seen.lock().unwrap().iter() {
        let v: serde_json::Value = serde_json::from_slice(&s.body).unwrap();
        *counts.entry(v["user_id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    assert!(counts.values().all(|c| *c == 2), "a sampled user must be sampled every time");
    let share = counts.len() as f64 / ids.len() as f64;
    assert!((0.2..0.4).contains(&share), "sampled share {share}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_compared_and_disagreements_captured() {
    let primary = Upstream::builder().answer(&["a", "b", "c", "d"]).start().await;
    let same = Upstream::builder().answer(&["a", "b", "c", "d"]).start().await;
    let half = Upstream::builder().answer(&["a", "x", "c", "y"]).start().await;
    let cap_dir = std::env::temp_dir().join(format!("sg-cap-{}", std::process::id()));
    let capture = format!("{}/half.jsonl", cap_dir.display());
    let p = Proxy::start(
        with_shadows(&primary.url(), &[("same", &same.url()), ("half", &half.url())])
            .shadow("same", |s| s.sample_percent(100.0).set("k", 4))
            .shadow("half", |s| s.sample_percent(100.0).set("k", 4).set("capture_path", capture.as_str())),
    );
    latencies(&p, 20, "cmp").await;
    let summary = eventually(Duration::from_secs(5), "comparisons not done", || async {
        let s = json(&admin(&p, http::Method::GET, "/admin/shadow", None, &[]).await.2);
        if s["shadows"].as_array().unwrap().iter().all(|x| x["since_start"]["compared"] == 20) {
            Ok(s)
        } else {
            Err(s.to_string())
        }
    })
    .await;
    let by = |name: &str| summary["shadows"].as_array().unwrap().iter().find(|x| x["model"] == name).unwrap().clone();
    assert_eq!(by("same")["since_start"]["mean_overlap_at_k"], 1.0);
    assert_eq!(by("same")["since_start"]["top1_match_rate"], 1.0);
    assert_eq!(by("half")["since_start"]["mean_overlap_at_k"], 0.5);
    assert_eq!(by("half")["last_5m"]["mirrored"], 20);
    assert!(by("half")["since_start"]["shadow_latency_ms"]["p50"].as_f64().unwrap() > 0.0);
    let m = p.metrics().await;
    assert_eq!(metric(&m, r#"splitgate_shadow_top1_match_total{shadow="half",match="true"}"#), Some(20.0));
    assert!(m.contains(r#"splitgate_shadow_overlap_at_k_bucket{shadow="same",le="1"} 20"#), "{m}");
    let text = std::fs::read_to_string(cap_dir.join("half.jsonl")).unwrap_or_default();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().expect("no capture written")).unwrap();
    assert_eq!(first["overlap_at_k"], 0.5);
    assert_eq!(first["user_is_hash"], true);
    assert!(!text.contains("cmp-"), "raw user ids must not be captured by default");
    let _ = std::fs::remove_dir_all(cap_dir);
}
