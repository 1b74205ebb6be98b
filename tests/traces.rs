//! What operators correlate from outside, against the real binary: trace headers reach every
//! model and shadow (http and SageMaker backends) — the caller's kept, a broken one replaced, a
//! missing one minted — and the access log's `traceId` names the same trace; the access log's
//! `ip` is the client behind a trusted proxy and the peer otherwise; `SPLITGATE_LOG_FORMAT=json`
//! makes the diagnostic log one JSON object per line.

mod support;

use std::time::Duration;

use support::*;

const W3C: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const XRAY: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

fn list(items: &[&str]) -> toml_edit::Array {
    items.iter().copied().collect()
}

fn one_http_model(url: &str) -> Conf {
    Conf::base().model_http("m", "v1", url).split("s").champion("champion", "m", 100.0)
}

/// The access-log line of the request with id `request_id` (the log is written off-thread).
async fn log_line(p: &Proxy, request_id: &str) -> serde_json::Value {
    eventually(Duration::from_secs(5), &format!("no access-log line for {request_id}"), || async {
        p.stdout_lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["requestId"] == request_id)
            .ok_or_else(|| format!("{} lines so far", p.stdout_lines().len()))
    })
    .await
}

fn valid_traceparent(v: &str) -> bool {
    let parts: Vec<&str> = v.split('-').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    parts.len() == 4
        && parts[0] == "00"
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && hex(parts[3], 2)
        && parts[1] != "0".repeat(32)
        && parts[2] != "0".repeat(16)
}

/// What the model saw of request number `i`: (traceparent, tracestate lines, x-amzn-trace-id lines).
fn seen_trace(model: &Upstream, i: usize) -> (String, Vec<String>, Vec<String>) {
    let seen = model.seen.lock().unwrap()[i].clone();
    let all = |name: &str| -> Vec<String> {
        seen.headers.get_all(name).iter().map(|v| v.to_str().unwrap().to_owned()).collect()
    };
    let parent = all("traceparent");
    assert_eq!(parent.len(), 1, "exactly one traceparent: {parent:?}");
    (parent[0].clone(), all("tracestate"), all("x-amzn-trace-id"))
}

#[tokio::test]
async fn the_callers_trace_reaches_the_model_unchanged_and_is_logged() {
    let model = Upstream::builder().answer(&["a"]).start().await;
    let p = Proxy::start(one_http_model(&model.url()));
    let headers = [
        ("x-request-id", "t-1"),
        ("traceparent", W3C),
        ("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
        ("x-amzn-trace-id", "Self=1-67891234-12456789abcdef012345678;Root=1-67891233-abcdef012345678912345678"),
    ];
    assert_eq!(post(&p.url("/recommend"), Some(KEY), r#"{"user_id":"u1"}"#, &headers).await.0, 200);
    let (parent, state, xray) = seen_trace(&model, 0);
    assert_eq!(parent, W3C);
    assert_eq!(state, ["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"]);
    assert_eq!(xray, [headers[3].1], "the ALB's header travels as it came");
    assert_eq!(log_line(&p, "t-1").await["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
}

#[tokio::test]
async fn a_missing_trace_is_minted_in_both_formats_and_logged() {
    let model = Upstream::builder().answer(&["a"]).start().await;
    let p = Proxy::start(one_http_model(&model.url()));
    for i in 0..2 {
        let id = format!("mint-{i}");
        let (status, ..) = post(&p.url("/recommend"), Some(KEY), r#"{"user_id":"u1"}"#, &[("x-request-id", &id)]).await;
        assert_eq!(status, 200);
    }
    let (first, state, xray) = seen_trace(&model, 0);
    let (second, ..) = seen_trace(&model, 1);
    assert!(valid_traceparent(&first), "{first}");
    assert!(first.ends_with("-01"), "minted traces are sampled: {first}");
    assert_ne!(first[3..35], second[3..35], "each request starts its own trace");
    assert!(state.is_empty());
    let trace_id = &first[3..35];
    let span = &first[36..52];
    // The X-Ray header carries the same trace: root = the trace id split after 8 digits.
    assert_eq!(xray, [format!("Root=1-{}-{};Parent={span};Sampled=1", &trace_id[..8], &trace_id[8..])]);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let epoch = u64::from_str_radix(&trace_id[..8], 16).unwrap();
    assert!(now.abs_diff(epoch) < 300, "a minted id leads with the epoch second, as X-Ray requires: {epoch} vs {now}");
    assert_eq!(log_line(&p, "mint-0").await["traceId"], trace_id);
    // Requests that never reach a model are logged with a trace id too.
    let (status, ..) = post(&p.url("/recommend"), None, "{}", &[("x-request-id", "nokey")]).await;
    assert_eq!(status, 401);
    let id = log_line(&p, "nokey").await["traceId"].as_str().unwrap().to_owned();
    assert!(id.len() == 32 && id != trace_id, "{id}");
}

#[tokio::test]
async fn a_broken_traceparent_is_replaced_and_its_tracestate_dropped() {
    let model = Upstream::builder().answer(&["a"]).start().await;
    let p = Proxy::start(one_http_model(&model.url()));
    let headers = [("x-request-id", "bad-1"), ("traceparent", "00-abc-def-01"), ("tracestate", "rojo=1")];
    assert_eq!(post(&p.url("/recommend"), Some(KEY), r#"{"user_id":"u1"}"#, &headers).await.0, 200);
    let (parent, state, _) = seen_trace(&model, 0);
    assert!(valid_traceparent(&parent), "{parent}");
    assert!(state.is_empty(), "a tracestate without a valid traceparent cannot be trusted: {state:?}");
    assert_eq!(log_line(&p, "bad-1").await["traceId"], &parent[3..35]);
}

#[tokio::test]
async fn an_xray_root_without_traceparent_becomes_the_w3c_trace() {
    let model = Upstream::builder().answer(&["a"]).start().await;
    let p = Proxy::start(one_http_model(&model.url()));
    let headers = [("x-request-id", "xr-1"), ("x-amzn-trace-id", XRAY)];
    assert_eq!(post(&p.url("/recommend"), Some(KEY), r#"{"user_id":"u1"}"#, &headers).await.0, 200);
    let (parent, _, xray) = seen_trace(&model, 0);
    assert_eq!(parent, "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01");
    assert_eq!(xray, [XRAY]);
    assert_eq!(log_line(&p, "xr-1").await["traceId"], "5759e988bd862e3fe1be46a994272793");
}

#[tokio::test]
async fn shadows_get_the_primarys_trace() {
    let primary = Upstream::builder().answer(&["a"]).start().await;
    let shadow = Upstream::builder().answer(&["a"]).start().await;
    let p = Proxy::start(
        one_http_model(&primary.url()).model_http("sh", "s1", &shadow.url()).shadow("sh", |s| s.sample_percent(100.0)),
    );
    assert_eq!(post(&p.url("/recommend"), Some(KEY), r#"{"user_id":"u1"}"#, &[("x-request-id", "sh-1")]).await.0, 200);
    wait_until(Duration::from_secs(5), "the shadow got no copy", || async { shadow.requests() == 1 }).await;
    let (to_primary, _, xray_primary) = seen_trace(&primary, 0);
    let (to_shadow, _, xray_shadow) = seen_trace(&shadow, 0);
    assert!(valid_traceparent(&to_primary), "{to_primary}");
    assert_eq!(to_shadow, to_primary);
    assert_eq!(xray_shadow, xray_primary);
    assert_eq!(header(&shadow.seen.lock().unwrap()[0].headers, "x-splitgate-shadow"), "1");
}

/// The SageMaker backend, pointed (`endpoint_url`) at a loopback model server: the real SDK
/// signs and sends `InvokeEndpoint`, and the trace headers are on it.
#[tokio::test]
async fn sagemaker_calls_carry_the_trace_headers() {
    let model = Upstream::builder().answer(&["a"]).start().await;
    let endpoint = format!("http://{}", model.addr);
    let p = Proxy::start(
        Conf::base().model_sagemaker("sm", "v1", "rec", &endpoint).split("s").champion("champion", "sm", 100.0),
    );
    let headers = [("x-request-id", "sm-1"), ("traceparent", W3C), ("tracestate", "rojo=1")];
    let (status, _, body) = post(&p.url("/recommend"), Some(KEY), r#"{"user_id":"u1"}"#, &headers).await;
    assert_eq!(status, 200, "{body:?}");
    let (parent, state, xray) = seen_trace(&model, 0);
    assert_eq!(parent, W3C);
    assert_eq!(state, ["rojo=1"]);
    assert_eq!(xray, ["Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"]);
    // Without any trace header the call still carries a minted one, the same the log names.
    let (status, ..) = post(&p.url("/recommend"), Some(KEY), r#"{"user_id":"u2"}"#, &[("x-request-id", "sm-2")]).await;
    assert_eq!(status, 200);
    let (parent, _, xray) = seen_trace(&model, 1);
    let trace_id = log_line(&p, "sm-2").await["traceId"].as_str().unwrap().to_owned();
    assert_eq!(&parent[3..35], trace_id);
    assert!(xray[0].starts_with(&format!("Root=1-{}-{};", &trace_id[..8], &trace_id[8..])), "{xray:?}");
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_log_names_the_forwarded_client() {
    let model = Upstream::builder().answer(&["a"]).start().await;
    let untrusting = Proxy::start(one_http_model(&model.url()));
    let xff = [("x-request-id", "ip-1"), ("x-forwarded-for", "198.51.100.1, 203.0.113.7")];
    assert_eq!(post(&untrusting.url("/recommend"), Some(KEY), r#"{"user_id":"u"}"#, &xff).await.0, 200);
    assert_eq!(log_line(&untrusting, "ip-1").await["ip"], "127.0.0.1", "an untrusted peer's header is ignored");

    // The test client connects from loopback, so loopback plays the ALB.
    let conf = one_http_model(&model.url()).server("trusted_proxies", list(&["127.0.0.0/8"]));
    let p = Proxy::start(conf.clone());
    assert_eq!(post(&p.url("/recommend"), Some(KEY), r#"{"user_id":"u"}"#, &xff).await.0, 200);
    assert_eq!(log_line(&p, "ip-1").await["ip"], "203.0.113.7", "the rightmost hop the ALB appended");
    let chain = [("x-request-id", "ip-2"), ("x-forwarded-for", "203.0.113.7, 127.0.0.9")];
    assert_eq!(post(&p.url("/recommend"), Some(KEY), r#"{"user_id":"u"}"#, &chain).await.0, 200);
    assert_eq!(log_line(&p, "ip-2").await["ip"], "203.0.113.7", "trusted hops are skipped");
    let none = [("x-request-id", "ip-3")];
    assert_eq!(post(&p.url("/recommend"), Some(KEY), r#"{"user_id":"u"}"#, &none).await.0, 200);
    assert_eq!(log_line(&p, "ip-3").await["ip"], "127.0.0.1", "no header: the peer");

    // The list applies live: trusting nobody again takes effect on reload.
    p.write_config(conf.server("trusted_proxies", list(&[])).version(2));
    p.wait_version(2).await;
    let again = [("x-request-id", "ip-4"), ("x-forwarded-for", "203.0.113.7")];
    assert_eq!(post(&p.url("/recommend"), Some(KEY), r#"{"user_id":"u"}"#, &again).await.0, 200);
    assert_eq!(log_line(&p, "ip-4").await["ip"], "127.0.0.1");
}

#[test]
fn check_names_each_bad_trusted_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    let conf = Conf::builtin(90.0, 10.0).server("trusted_proxies", list(&["10.0.0.0/16", "10.0.0.1/8", "alb"]));
    std::fs::write(&path, conf.to_string()).unwrap();
    let out = std::process::Command::new(bin()).args(["check", "--config", path.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "server.trusted_proxies[1]: `10.0.0.1/8` has address bits set past its /8; the network is 10.0.0.0/8"
        ),
        "{err}"
    );
    assert!(err.contains("server.trusted_proxies[2]: `alb` is not an IP address or CIDR network"), "{err}");
}

/// Reads `child`'s stderr lines into a shared list from a thread.
fn collect_stderr(child: &mut std::process::Child) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    use std::io::BufRead as _;
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (sink, err) = (lines.clone(), child.stderr.take().unwrap());
    std::thread::spawn(move || {
        std::io::BufReader::new(err).lines().map_while(Result::ok).for_each(|l| sink.lock().unwrap().push(l))
    });
    lines
}

#[tokio::test]
async fn the_diagnostic_log_is_one_json_object_per_line_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, Conf::builtin(90.0, 10.0).to_string()).unwrap();
    let mut cmd = serve_command(&[
        "--config",
        path.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    let mut child = cmd
        .env("SPLITGATE_LOG_FORMAT", "json")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = collect_stderr(&mut child);
    let parsed = || -> Vec<serde_json::Value> {
        lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    };
    let ready = eventually(Duration::from_secs(20), "no listening event", || async {
        parsed()
            .into_iter()
            .find(|v| v["message"] == "splitgate listening")
            .ok_or_else(|| format!("{:?}", lines.lock().unwrap()))
    })
    .await;
    assert_eq!(ready["level"], "INFO", "{ready}");
    assert!(ready["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{ready}");
    let addr = ready["addr"].as_str().unwrap().to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "the event's fields are top-level keys: {ready}");
    assert_eq!(recommend(&format!("http://{addr}/recommend"), "u1").await.0, 200);

    // A rejected reload: a multi-line reason still makes one line.
    std::fs::write(&path, "[split]\nsalt = 1\n").unwrap();
    wait_until(Duration::from_secs(10), "no rejection logged", || async {
        parsed().iter().any(|v| v["level"] == "WARN" || v["level"] == "ERROR")
    })
    .await;
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert_eq!(status.code(), Some(0));
    let all = parsed();
    assert!(all.iter().any(|v| v["message"] == "stopped"), "{all:?}");
    assert!(all.iter().all(|v| v["level"].is_string() && v["message"].is_string()), "{all:?}");
}

#[test]
fn an_unknown_log_format_is_refused_and_fatal_errors_stay_json() {
    let mut cmd = serve_command(&["--config", "/nonexistent/splitgate.toml"]);
    cmd.env("SPLITGATE_LOG_FORMAT", "yaml");
    let (code, err) = exit_of(cmd);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("SPLITGATE_LOG_FORMAT must be `text` or `json`, not `yaml`"), "{err}");

    let mut cmd = serve_command(&["--config", "/nonexistent/splitgate.toml"]);
    cmd.env("SPLITGATE_LOG_FORMAT", "json");
    let (code, err) = exit_of(cmd);
    assert_eq!(code, Some(1), "{err}");
    let lines: Vec<serde_json::Value> =
        err.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert_eq!(lines[0]["level"], "ERROR");
    assert!(lines[0]["message"].as_str().unwrap().contains("/nonexistent/splitgate.toml"), "{err}");
}
