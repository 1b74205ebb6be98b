//! AWS for real: the SDK talks HTTP to a moto server on loopback. SageMaker routing and error
//! mapping, the DynamoDB config source on two replicas, conditional writes, outages, the model
//! registry, and CloudWatch metrics read back from the emulator.

mod support;

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use support::moto::Moto;
use support::upstream::dead_addr;
use support::*;

const SEEDED: &str = r#"{"items":[{"item_id":"sm-1","score":0.9},{"item_id":"sm-2","score":0.8}]}"#;

/// A SageMaker challenger `rec-sm` at `endpoint_url` taking all traffic, and a builtin champion
/// at weight 0.
fn sagemaker(endpoint_url: &str, timeout_ms: u64) -> Conf {
    Conf::base()
        .model_sagemaker("rec-sm", "sm-v1", "rec-endpoint", endpoint_url)
        .model("rec-sm", "timeout_ms", timeout_ms)
        .model_builtin("rec-v2-2", "v2.2.0")
        .split("s")
        .champion("champion", "rec-v2-2", 0.0)
        .variant("challenger", "rec-sm", 100.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sagemaker_variant_returns_the_seeded_answer() {
    let moto = Moto::start().await;
    moto.seed_sagemaker(&[SEEDED, SEEDED, SEEDED]).await;
    let p = Proxy::start(sagemaker(&moto.url, 5_000));
    for i in 0..3 {
        let (status, h, body) = recommend(&p.url("/recommend"), &format!("sm-user-{i}")).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(&body[..], SEEDED.as_bytes());
        assert_eq!(header(&h, "x-splitgate-variant"), "challenger");
        assert_eq!(header(&h, "x-splitgate-model"), "sm-v1");
        assert_eq!(header(&h, "content-type"), "application/json");
    }
    assert_eq!(p.health().await["models"][0]["backend"], "sagemaker");
    assert_eq!(p.health().await["models"][0]["sagemaker_client"], "direct");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sagemaker_timeouts_and_outages_map_to_504_and_502() {
    let hang = Upstream::builder().hang().start().await;
    let dead = format!("http://{}", dead_addr().await);
    let slow = Proxy::start(sagemaker(&format!("http://{}", hang.addr), 300));
    let (status, _, body) = recommend(&slow.url("/recommend"), "u").await;
    assert_eq!(status, 504, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["error"]["code"], "upstream_timeout");
    let down = Proxy::start(sagemaker(&dead, 3_000));
    let (status, _, body) = recommend(&down.url("/recommend"), "u").await;
    assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["error"]["code"], "upstream_unavailable");
    let m = down.metrics().await;
    assert_eq!(
        metric(&m, r#"splitgate_upstream_errors_total{model="rec-sm",kind="upstream_unavailable"}"#),
        Some(1.0),
        "{m}"
    );
}

/// What reaches the endpoint is `InvokeEndpoint` as the SDK signed it: the path names the
/// endpoint, the caller's body, content type and accept arrive unchanged, the request id is the
/// `InferenceId`, the caller's trace header and the target variant are there, and the SigV4
/// signature (checked independently) covers exactly those bytes; the answer comes back as is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_endpoint_carries_the_callers_request_as_signed() {
    let model = Upstream::builder().answer(&["wire-1"]).start().await;
    let p = Proxy::start(sagemaker(&format!("http://{}", model.addr), 5_000));
    let body = r#"{"user_id":"wire-user","context":{"page":"home","slot":3}}"#;
    let trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    for (accept, content_type) in [("application/json", "application/json"), ("text/csv", "application/jsonlines")] {
        let headers = [("accept", accept), ("x-amzn-trace-id", trace), ("x-request-id", "req-wire-1")];
        let mut b =
            http::Request::post(p.url("/recommend")).header("x-api-key", KEY).header("content-type", content_type);
        for (n, v) in headers {
            b = b.header(n, v);
        }
        let (status, h, answer) = send(b.body(http_body_util::Full::new(bytes::Bytes::from(body))).unwrap()).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
        assert_eq!(json(&answer)["items"][0]["item_id"], "wire-1");
        assert_eq!(header(&h, "content-type"), "application/json");
        let seen = model.seen.lock().unwrap().pop().expect("the endpoint got the call");
        assert_eq!(seen.method, "POST");
        assert_eq!(seen.uri.path(), "/endpoints/rec-endpoint/invocations");
        assert_eq!(&seen.body[..], body.as_bytes(), "the caller's bytes, unchanged");
        let got = |n: &str| seen.headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        assert_eq!(got("content-type"), content_type);
        assert_eq!(got("accept"), accept);
        assert_eq!(got("x-amzn-sagemaker-inference-id"), "req-wire-1");
        assert_eq!(got("x-amzn-sagemaker-target-variant"), "AllTraffic");
        assert_eq!(got("x-amzn-trace-id"), trace);
        assert_eq!(got("content-length"), body.len().to_string());
        assert_eq!(got("host"), model.addr.to_string());
        let auth = support::sigv4::verify("POST", &seen.uri, &seen.headers, &seen.body, "testing")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (auth.access_key_id.as_str(), auth.region.as_str(), auth.service.as_str()),
            ("testing", "us-east-1", "sagemaker")
        );
        for must in ["host", "content-type", "accept", "x-amz-date", "x-amzn-sagemaker-inference-id"] {
            assert!(auth.signed_headers.iter().any(|h| h == must), "{must} is signed: {:?}", auth.signed_headers);
        }
        // Sent by the direct path (rendered and signed by splitgate with aws-sigv4), not by the
        // SDK's orchestrator, which adds its invocation id and SDK user agent.
        assert!(got("user-agent").starts_with("splitgate/"), "{:?}", seen.headers);
        assert!(seen.headers.get("amz-sdk-invocation-id").is_none(), "{:?}", seen.headers);
    }
    // One kept-alive connection carried both calls.
    assert_eq!(model.connections(), 1);
}

/// SageMaker's error answers (restJson1: `x-amzn-errortype` and a JSON body) map as documented,
/// through the lean client: ModelError 502 with the model's message, throttling 503 with
/// `retry-after`, validation 502 `upstream_rejected`, anything else 502 `upstream_failed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sagemaker_error_answers_map_to_the_documented_codes() {
    use tokio::io::AsyncWriteExt;
    let cases: [(&str, &str, &str, u16, &str); 4] = [
        (
            "424 Failed Dependency",
            "ModelError",
            r#"{"message":"Received server error (500)","OriginalMessage":"model exploded","OriginalStatusCode":500}"#,
            502,
            "upstream_model_error",
        ),
        ("400 Bad Request", "ThrottlingException", r#"{"message":"Rate exceeded"}"#, 503, "upstream_throttled"),
        (
            "400 Bad Request",
            "ValidationError",
            r#"{"message":"Endpoint rec-endpoint not found."}"#,
            502,
            "upstream_rejected",
        ),
        ("500 Internal Server Error", "InternalFailure", r#"{"message":"oops"}"#, 502, "upstream_failed"),
    ];
    for (status_line, kind, body, want_status, want_code) in cases {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = format!(
            "HTTP/1.1 {status_line}\r\nx-amzn-errortype: {kind}:http://internal.amazon.com/coral/\r\ncontent-type: application/json\r\nx-amzn-requestid: r-1\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let server = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let answer = answer.clone();
                tokio::spawn(async move {
                    while support::read_request(&mut s).await.is_some() {
                        if s.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let p = Proxy::start(sagemaker(&format!("http://{addr}"), 5_000));
        let (status, h, got) = recommend(&p.url("/recommend"), "err-user").await;
        assert_eq!(status, want_status, "{kind}: {}", String::from_utf8_lossy(&got));
        assert_eq!(json(&got)["error"]["code"], want_code, "{kind}");
        match kind {
            "ModelError" => {
                assert!(String::from_utf8_lossy(&got).contains("model exploded"), "{}", String::from_utf8_lossy(&got))
            }
            "ThrottlingException" => assert!(h.get("retry-after").is_some()),
            _ => {}
        }
        let m = p.metrics().await;
        let series = format!(r#"splitgate_upstream_errors_total{{model="rec-sm",kind="{want_code}"}}"#);
        assert_eq!(metric(&m, &series), Some(1.0), "{m}");
        server.abort();
    }
}

/// The hot document: both keys, two builtin models, and the given challenger weight (no
/// `[server]`, no admin tokens: those are static settings, not part of the hot document).
fn document(challenger: f64) -> String {
    Conf::builtin(100.0 - challenger, challenger).hot_document()
}

/// The static part: listeners, the DynamoDB source polled every `poll_ms`, and the registry.
fn static_part(moto: &Moto, poll_ms: u64) -> String {
    Conf::default()
        .server("listen", "127.0.0.1:0")
        .server("admin_listen", "127.0.0.1:0")
        .source_dynamodb("splitgate-config", "splitgate/test", poll_ms, &moto.url)
        .set("registry.table", "splitgate-registry")
        .set("registry.region", "us-east-1")
        .set("registry.endpoint_url", moto.url.as_str())
        .to_string()
}

async fn put_item(moto: &Moto, version: u64, doc: &str) {
    moto.dynamodb()
        .put_item()
        .table_name("splitgate-config")
        .item("pk", AttributeValue::S("splitgate/test".into()))
        .item("version", AttributeValue::N(version.to_string()))
        .item("document", AttributeValue::S(doc.into()))
        .send()
        .await
        .unwrap();
}

fn cli(args: &[&str], config: &std::path::Path) -> std::process::Output {
    command(args).arg("--config").arg(config).output().unwrap()
}

async fn all_variants(p: &Proxy) -> Vec<String> {
    let ids: Vec<String> = (0..50).map(|i| format!("dyn-{i}")).collect();
    let mut v = variants_of(&p.url("/recommend"), &ids, 2).await;
    v.dedup();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_item_drives_two_replicas_and_survives_bad_items_and_outages() {
    let mut moto = Moto::start().await;
    moto.create_table("splitgate-config", "pk").await;
    put_item(&moto, 1, &document(0.0)).await;
    let poll_ms = 300;
    let text = static_part(&moto, poll_ms);
    let (a, b) = (Proxy::start(&text), Proxy::start(&text));
    assert_eq!(a.health().await["config"]["source"], "dynamodb:splitgate-config/splitgate/test");
    assert_eq!(all_variants(&a).await, ["champion"]);

    // An operator writes v2 with the CLI, conditional on v1.
    let doc_path = a.dir.path().join("doc.toml");
    std::fs::write(&doc_path, document(100.0)).unwrap();
    let out = cli(&["source", "put", "--document", doc_path.to_str().unwrap(), "--expect-version", "1"], a.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let written = Instant::now();
    a.wait_version(2).await;
    b.wait_version(2).await;
    // One poll interval, plus generous slack for a loaded CI machine.
    assert!(written.elapsed() < Duration::from_millis(poll_ms + 1_500), "took {:?}", written.elapsed());
    assert_eq!(all_variants(&a).await, ["challenger"]);
    assert_eq!(all_variants(&b).await, ["challenger"]);

    // A stale writer is refused (exit 3) and changes nothing.
    let out = cli(&["source", "put", "--document", doc_path.to_str().unwrap(), "--expect-version", "1"], a.path());
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no longer at version 1") && !err.contains("Some("), "{err}");
    let got = cli(&["source", "get"], a.path());
    assert!(String::from_utf8_lossy(&got.stdout).starts_with("# version = 2"));

    // A bad item (weights add up to 150) is rejected; the last good config keeps serving.
    put_item(&moto, 3, &Conf::builtin(100.0, 50.0).hot_document()).await;
    wait_until(Duration::from_secs(5), "bad item not rejected", || async {
        metric(&a.metrics().await, r#"splitgate_config_reloads_total{result="rejected"}"#) == Some(1.0)
    })
    .await;
    assert_eq!(a.health().await["config"]["version"], 2);
    assert_eq!(all_variants(&a).await, ["challenger"]);

    // DynamoDB goes away: still serving, reported degraded.
    moto.stop();
    let h = eventually(Duration::from_secs(10), "never reported degraded", || async {
        let h = a.health().await;
        if h["status"] == "degraded" {
            Ok(h)
        } else {
            Err(h.to_string())
        }
    })
    .await;
    assert!(h["config"]["source_error"].as_str().is_some(), "{h}");
    assert_eq!(recommend(&a.url("/recommend"), "outage-user").await.0, 200);
    assert_eq!(metric(&a.metrics().await, "splitgate_config_source_up"), Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_list_reads_the_registry() {
    let moto = Moto::start().await;
    moto.create_table("splitgate-registry", "model_id").await;
    for (id, status) in [("rec-v2-2", "champion"), ("rec-v2-3", "challenger")] {
        moto.dynamodb()
            .put_item()
            .table_name("splitgate-registry")
            .item("model_id", AttributeValue::S(id.into()))
            .item("status", AttributeValue::S(status.into()))
            .item("artifact", AttributeValue::S(format!("s3://models/{id}.tar.gz")))
            .item("metrics", AttributeValue::S(r#"{"ndcg@10":0.41}"#.into()))
            .item("updated_at", AttributeValue::S("2026-11-26T10:00:00Z".into()))
            .send()
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, static_part(&moto, 1_000)).unwrap();
    let out = cli(&["models", "list"], &path);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[1].starts_with("rec-v2-2\tchampion\ts3://models/rec-v2-2.tar.gz"), "{text}");
    assert!(lines[2].starts_with("rec-v2-3\tchallenger"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_arrive_in_cloudwatch() {
    let moto = Moto::start().await;
    let p = Proxy::start(
        Conf::builtin(50.0, 50.0)
            .set("cloudwatch.namespace", "SplitgateTest")
            .set("cloudwatch.environment", "ci")
            .set("cloudwatch.interval_secs", 1)
            .set("cloudwatch.region", "us-east-1")
            .set("cloudwatch.endpoint_url", moto.url.as_str()),
    );
    for i in 0..40 {
        assert_eq!(recommend(&p.url("/recommend"), &format!("cw-{i}")).await.0, 200);
    }
    let client = moto.cloudwatch();
    let total = eventually(Duration::from_secs(15), "CloudWatch never counted 40 requests", || async {
        let listed = client.list_metrics().namespace("SplitgateTest").metric_name("Requests").send().await.unwrap();
        let mut total = 0.0;
        for m in listed.metrics() {
            let dims: Vec<_> = m.dimensions().iter().map(|d| d.name().unwrap_or("")).collect();
            assert_eq!(dims, ["Environment", "Variant", "Model"]);
            let stats = client
                .get_metric_statistics()
                .namespace("SplitgateTest")
                .metric_name("Requests")
                .set_dimensions(Some(m.dimensions().to_vec()))
                .start_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(0))
                .end_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(4_000_000_000))
                .period(60)
                .statistics(aws_sdk_cloudwatch::types::Statistic::Sum)
                .send()
                .await
                .unwrap();
            total += stats.datapoints().iter().filter_map(|d| d.sum()).sum::<f64>();
        }
        if total >= 40.0 {
            Ok(total)
        } else {
            Err(format!("{total} so far"))
        }
    })
    .await;
    assert_eq!(total, 40.0, "CloudWatch request count");
    let latency = client.list_metrics().namespace("SplitgateTest").metric_name("Latency").send().await.unwrap();
    assert_eq!(latency.metrics().len(), 2, "a Latency statistic set per variant");
    assert!(metric(&p.metrics().await, r#"splitgate_cloudwatch_data_total{result="sent"}"#).unwrap_or(0.0) > 0.0);
}

/// The container path: the static part from `SPLITGATE_CONFIG` (no file at all), the hot part from
/// DynamoDB, hot-reloaded as with a file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splitgate_config_text_with_a_dynamodb_source_serves_and_reloads_the_item() {
    let moto = Moto::start().await;
    moto.create_table("splitgate-config", "pk").await;
    put_item(&moto, 1, &document(0.0)).await;
    let text = static_part(&moto, 200);
    let p = Proxy::start_with(tempfile::tempdir().unwrap(), "unused".into(), &[], &[("SPLITGATE_CONFIG", &text)]);
    assert_eq!(p.health().await["config"]["source"], "dynamodb:splitgate-config/splitgate/test");
    assert_eq!(all_variants(&p).await, ["champion"]);
    put_item(&moto, 2, &document(100.0)).await;
    p.wait_version(2).await;
    assert_eq!(all_variants(&p).await, ["challenger"]);
    assert!(!p.stderr_text().contains("will not hot-reload"), "{}", p.stderr_text());
}
