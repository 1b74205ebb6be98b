//! The request path end to end against the real binary and HTTP mock models: the body forwarded
//! byte for byte and the answer tagged, request ids, a JSON error with a code for each error
//! status, throttling (429), user id and override rules, model errors passed through, pooled
//! connections to a model, `/health` and `/metrics` access, the access log, feedback attribution,
//! and h2c.

mod support;

use std::time::Duration;

use support::upstream::dead_addr;
use support::*;

/// Two HTTP models `champ` (100%) and `chall` (0%), both with `timeout_ms`.
fn http_models(champion_url: &str, challenger_url: &str, timeout_ms: u64) -> Conf {
    Conf::base()
        .model_http("champ", "v1.0.0", champion_url)
        .model("champ", "timeout_ms", timeout_ms)
        .model_http("chall", "v2.0.0", challenger_url)
        .model("chall", "timeout_ms", timeout_ms)
        .split("s")
        .champion("champion", "champ", 100.0)
        .variant("challenger", "chall", 0.0)
}

#[tokio::test]
async fn forwards_body_unchanged_and_tags_the_answer() {
    let model = Upstream::builder().answer(&["a", "b"]).start().await;
    let p = Proxy::start(http_models(&model.url(), &model.url(), 800));
    let body = r#"{ "user_id" : "u-1", "context": {"page": "home", "n": [1, 2.50, true]} }"#;
    let (status, h, answer) = post(
        &p.url("/recommend"),
        Some(KEY),
        body,
        &[
            ("x-request-id", "req-123"),
            ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            ("accept", "application/json"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-splitgate-variant"), "champion");
    assert_eq!(header(&h, "x-splitgate-model"), "v1.0.0");
    assert_eq!(header(&h, "x-request-id"), "req-123");
    assert_eq!(json(&answer)["items"][1]["item_id"], "b");

    let seen = model.seen.lock().unwrap()[0].clone();
    assert_eq!(seen.body, body.as_bytes(), "body must reach the model byte for byte");
    assert_eq!(header(&seen.headers, "content-type"), "application/json");
    assert_eq!(header(&seen.headers, "x-request-id"), "req-123");
    assert_eq!(header(&seen.headers, "traceparent"), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    assert!(seen.headers.get("x-api-key").is_none(), "the API key must not reach the model");
}

/// The proxy pools its connections to a model: ten requests in a row, each from a new client
/// connection, reach the model over one connection (the mock counts the sockets it accepts).
#[tokio::test]
async fn sequential_requests_share_one_model_connection() {
    let model = Upstream::builder().answer(&["a"]).start().await;
    let p = Proxy::start(Conf::http_champion(&model.url(), 1_000));
    for i in 0..10 {
        assert_eq!(recommend(&p.url("/recommend"), &format!("pool-{i}")).await.0, 200);
    }
    assert_eq!(model.requests(), 10);
    assert_eq!(model.connections(), 1, "one pooled connection for ten sequential requests");
}

#[tokio::test]
async fn generates_a_request_id_when_none_or_a_bad_one_is_given() {
    let p = Proxy::start(Conf::builtin(90.0, 10.0));
    let (_, h1, _) = recommend(&p.url("/recommend"), "u1").await;
    let (_, h2, _) = post(&p.url("/recommend"), Some(KEY), r#"{"user_id":"u1"}"#, &[("x-request-id", "bad id!")]).await;
    let (a, b) = (header(&h1, "x-request-id"), header(&h2, "x-request-id"));
    assert_eq!(a.len(), 32);
    assert_eq!(b.len(), 32);
    assert_ne!(a, b);
}

#[tokio::test]
async fn every_error_status_is_json_with_a_code() {
    let slow = Upstream::builder().latency(Duration::from_secs(3)).answer(&["x"]).start().await;
    let dead = format!("http://{}/invocations", dead_addr().await);
    // Both HTTP models dead (500 ms), a builtin placeholder, and a third variant on a model slower
    // than its 200 ms deadline; a throttle high enough never to fire.
    let conf = http_models(&dead, &dead, 500)
        .model_builtin("placeholder", "p")
        .model_http("slow", "s", &slow.url())
        .model("slow", "timeout_ms", 200)
        .variant("slowpoke", "slow", 0.0)
        .throttle(1000.0, 1000);
    let p = Proxy::start(conf);
    let url = p.url("/recommend");
    let cases: Vec<(Response, u16, &str)> = vec![
        (post(&url, None, r#"{"user_id":"u"}"#, &[]).await, 401, "unauthorized"),
        (post(&url, Some("wrong"), r#"{"user_id":"u"}"#, &[]).await, 401, "unauthorized"),
        (
            post(&url, Some(KEY), &format!(r#"{{"user_id":"u","pad":"{}"}}"#, "x".repeat(5000)), &[]).await,
            413,
            "payload_too_large",
        ),
        (post(&url, Some(KEY), r#"{"user_id":"u""#, &[]).await, 400, "invalid_json"),
        (post(&url, Some(KEY), r#"{"user_id":7}"#, &[]).await, 400, "invalid_json"),
        (post(&url, Some(KEY), r#"{"other":"u"}"#, &[]).await, 400, "missing_user_id"),
        (post(&url, Some(KEY), r#"{"user_id":"u"}"#, &[("x-splitgate-variant", "nope")]).await, 400, "unknown_variant"),
        (post(&url, Some(KEY), r#"{"user_id":"u"}"#, &[]).await, 502, "upstream_unavailable"),
        (
            post(&url, Some(KEY), r#"{"user_id":"u"}"#, &[("x-splitgate-variant", "slowpoke")]).await,
            504,
            "upstream_timeout",
        ),
        (post(&p.url("/nope"), Some(KEY), "{}", &[]).await, 404, "not_found"),
        (get(&p.url("/recommend")).await, 405, "method_not_allowed"),
        (post(&p.url("/health"), None, "", &[]).await, 405, "method_not_allowed"),
    ];
    for (i, ((status, headers, body), want_status, want_code)) in cases.into_iter().enumerate() {
        assert_eq!(status.as_u16(), want_status, "case {i}: {}", String::from_utf8_lossy(&body));
        assert_eq!(header(&headers, "content-type"), "application/json", "case {i}");
        let v = json(&body);
        assert_eq!(v["error"]["code"], want_code, "case {i}: {v}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "case {i}");
        assert_eq!(v["error"]["request_id"].as_str().unwrap(), header(&headers, "x-request-id"), "case {i}");
    }
    let (_, h, _) = get(&p.url("/recommend")).await;
    assert_eq!(header(&h, "allow"), "POST");
}

#[tokio::test]
async fn throttled_requests_get_429_with_retry_after() {
    let p = Proxy::start(Conf::builtin(90.0, 10.0).throttle(0.5, 3));
    let url = p.url("/recommend");
    for i in 0..3 {
        assert_eq!(recommend(&url, &format!("u{i}")).await.0, 200);
    }
    let (status, h, body) = recommend(&url, "u9").await;
    assert_eq!(status, 429);
    assert_eq!(json(&body)["error"]["code"], "throttled");
    let retry: u64 = header(&h, "retry-after").parse().unwrap();
    assert!((1..=2).contains(&retry), "retry-after {retry}");
    let m = p.metrics().await;
    assert_eq!(metric(&m, "splitgate_throttled_total"), Some(1.0), "{m}");
}

#[tokio::test]
async fn user_id_falls_back_to_the_header() {
    let p = Proxy::start(Conf::builtin(90.0, 10.0));
    let (status, _, body) =
        post(&p.url("/recommend"), Some(KEY), r#"{"items":3}"#, &[("x-user-id", "from-header")]).await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)["user_id"], "from-header");
    // The body's field wins over the header.
    let (_, _, body) = post(&p.url("/recommend"), Some(KEY), r#"{"user_id":"body"}"#, &[("x-user-id", "hdr")]).await;
    assert_eq!(json(&body)["user_id"], "body");
}

#[tokio::test]
async fn override_header_only_for_keys_that_allow_it() {
    let p = Proxy::start(Conf::builtin(100.0, 0.0));
    let url = p.url("/recommend");
    let force = [("x-splitgate-variant", "challenger")];
    let (_, h, _) = post(&url, Some(KEY), r#"{"user_id":"u1"}"#, &force).await;
    assert_eq!(header(&h, "x-splitgate-variant"), "challenger");
    assert_eq!(header(&h, "x-splitgate-model"), "v2.3.0");
    let (status, h, _) = post(&url, Some(PLAIN_KEY), r#"{"user_id":"u1"}"#, &force).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-splitgate-variant"), "champion", "plain keys cannot force a variant");
}

#[tokio::test]
async fn upstream_errors_pass_through_with_variant_headers() {
    let model = Upstream::builder().fail_with(503).start().await;
    let p = Proxy::start(http_models(&model.url(), &model.url(), 800));
    let (status, h, body) = recommend(&p.url("/recommend"), "u").await;
    assert_eq!(status, 503, "the model's own status is the caller's answer");
    assert_eq!(&body[..], b"{\"error\":\"model failed\"}");
    assert_eq!(header(&h, "x-splitgate-variant"), "champion");
}

#[tokio::test]
async fn health_needs_no_key_and_metrics_needs_one_on_the_main_port() {
    let p = Proxy::start(Conf::builtin(90.0, 10.0));
    // The main listener answers anyone: status only, nothing about models, weights or config.
    let (status, _, body) = get(&p.url("/health")).await;
    assert_eq!(status, 200);
    assert_eq!(json(&body), serde_json::json!({"status": "ok", "ready": true}));
    // The admin listener has the details.
    let h = p.health().await;
    assert_eq!(h["status"], "ok");
    assert_eq!(h["config"]["version"], 1);
    assert!(h["uptime_seconds"].is_u64());
    assert_eq!(h["models"].as_array().unwrap().len(), 2);
    assert_eq!(h["variants"][0]["weight"], 90.0);
    assert_eq!(get(&p.url("/metrics")).await.0, 401);
    let (status, _, body) =
        send(http::Request::get(p.url("/metrics")).header("x-api-key", KEY).body(Default::default()).unwrap()).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("splitgate_config_version"));
    assert_eq!(get(&p.admin_url("/metrics")).await.0, 200);
    assert_eq!(get(&p.admin_url("/health?ready")).await.0, 200);
    assert_eq!(get(&p.admin_url("/nope")).await.0, 404);
}

#[tokio::test]
async fn metrics_cover_requests_latency_auth_and_config() {
    let model = Upstream::builder().answer(&["a"]).start().await;
    let p = Proxy::start(http_models(&model.url(), &model.url(), 800));
    let url = p.url("/recommend");
    for i in 0..5 {
        assert_eq!(recommend(&url, &format!("u{i}")).await.0, 200);
    }
    post(&url, Some("bad"), "{}", &[]).await;
    post(&url, Some(KEY), "not json", &[]).await;
    let m = p.metrics().await;
    let has = |s: &str| assert!(m.contains(s), "missing {s} in\n{m}");
    assert_eq!(metric(&m, r#"splitgate_requests_total{route="recommend",variant="champion",class="2xx"}"#), Some(5.0));
    assert_eq!(metric(&m, r#"splitgate_requests_total{route="recommend",variant="",class="4xx"}"#), Some(2.0));
    assert_eq!(metric(&m, "splitgate_auth_failures_total"), Some(1.0));
    assert_eq!(metric(&m, r#"splitgate_errors_total{code="invalid_json"}"#), Some(1.0));
    assert_eq!(metric(&m, "splitgate_config_version"), Some(1.0));
    has(r#"splitgate_request_duration_seconds_bucket{route="recommend",variant="champion""#);
    has(r#"splitgate_upstream_duration_seconds_count{variant="champion",model="champ"} 5"#);
    has("# HELP splitgate_requests_total");
    has(r#"splitgate_config_reloads_total{result="rejected"} 0"#);
    // Ours are all `splitgate_`; the process metrics keep the names every client library uses.
    for line in m.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        assert!(line.starts_with("splitgate_") || line.starts_with("process_"), "unprefixed metric: {line}");
    }
}

#[tokio::test]
async fn access_log_has_gateway_fields_and_never_the_key() {
    let p = Proxy::start(Conf::builtin(90.0, 10.0));
    let secret = "wrong-key-do-not-log-me";
    post(&p.url("/recommend"), Some(secret), r#"{"user_id":"u"}"#, &[]).await;
    let (_, _, body) = post(&p.url("/recommend"), Some(secret), r#"{"user_id":"u"}"#, &[]).await;
    assert!(!String::from_utf8_lossy(&body).contains(secret));
    recommend(&p.url("/recommend"), "logged-user").await;
    wait_until(Duration::from_secs(5), "3 access-log lines", || async { p.stdout_lines().len() >= 3 }).await;
    let lines = p.stdout_lines();
    assert_eq!(lines.len(), 3, "{lines:?}");
    let all = lines.join("\n");
    assert!(!all.contains(secret) && !all.contains(KEY), "a key reached the access log");
    assert!(!all.contains("logged-user"), "bodies (and user ids) are not logged");
    let ok: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
    for f in [
        "requestId",
        "ip",
        "requestTime",
        "httpMethod",
        "routeKey",
        "status",
        "protocol",
        "responseLength",
        "variant",
        "model",
        "upstreamLatencyMs",
    ] {
        assert!(ok.get(f).is_some(), "missing {f}: {ok}");
    }
    assert_eq!(ok["routeKey"], "POST /recommend");
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["ip"], "127.0.0.1");
    assert!(ok["responseLength"].as_u64().unwrap() > 100);
    let denied: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(denied["status"], 401);
    assert_eq!(denied["error"], "unauthorized");
}

#[tokio::test]
async fn feedback_is_attributed_to_the_serving_variant() {
    let p = Proxy::start(Conf::builtin(50.0, 50.0));
    let (_, h, _) = recommend(&p.url("/recommend"), "fb-user").await;
    let served = header(&h, "x-splitgate-variant").to_owned();
    let (status, fh, body) =
        post(&p.url("/feedback"), Some(KEY), r#"{"user_id":"fb-user","item_id":"item-1","event":"click"}"#, &[]).await;
    assert_eq!(status, 202);
    assert_eq!(json(&body)["variant"], served.as_str());
    assert_eq!(header(&fh, "x-splitgate-variant"), served);
    assert_eq!(post(&p.url("/feedback"), None, "{}", &[]).await.0, 401);
    let m = p.metrics().await;
    let series = format!(r#"splitgate_feedback_events_total{{variant="{served}",event="click"}}"#);
    assert_eq!(metric(&m, &series), Some(1.0), "{m}");
}

#[tokio::test]
async fn h2c_prior_knowledge_is_served() {
    let p = Proxy::start(Conf::builtin(90.0, 10.0));
    let c: hyper_util::client::legacy::Client<_, http_body_util::Full<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).http2_only(true).build_http();
    let req = http::Request::post(p.url("/recommend"))
        .header("x-api-key", KEY)
        .body(http_body_util::Full::new(bytes::Bytes::from_static(br#"{"user_id":"h2"}"#)))
        .unwrap();
    let resp = c.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), http::Version::HTTP_2);
}
