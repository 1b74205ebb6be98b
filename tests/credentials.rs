//! Credentials that rotate under load: a loopback server plays the ECS container-credentials
//! endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI`) and hands out keys that expire 8 s after they
//! are issued, answering each fetch only after 1.5 s. The proxy serves a SageMaker model at a
//! loopback endpoint that checks every call's SigV4 signature against the secret of the key it
//! names. Under steady bounded load, no request may fail, calls must keep arriving while each
//! refresh is outstanding, none may take as long as one credentials fetch (a request waiting on
//! a refresh would), every call must be signed with a key that was still valid when it arrived,
//! and the keys must actually have rotated.

mod support;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::*;

const LIFETIME: Duration = Duration::from_secs(8);
const FETCH_DELAY: Duration = Duration::from_millis(1_500);
const LOAD_FOR: Duration = Duration::from_secs(14);
const MAX_REQUESTS: usize = 40_000;

/// Serves `handler` over HTTP/1.1 on 127.0.0.1:0 until dropped (the task is aborted).
async fn serve<F, Fut>(handler: F) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>)
where
    F: Fn(http::Request<Bytes>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = http::Response<Full<Bytes>>> + Send,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let handler = handler.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
                        Ok::<_, Infallible>(handler(http::Request::from_parts(parts, body)).await)
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    (addr, task)
}

/// Keys handed out so far: access key id → (secret, session token, expiry).
type Issued = Arc<Mutex<HashMap<String, (String, String, SystemTime)>>>;

/// One call as the endpoint saw it.
struct Call {
    key: String,
    at: SystemTime,
    verdict: Result<(), String>,
}

fn rfc3339(t: SystemTime) -> String {
    aws_smithy_types::DateTime::from(t).fmt(aws_smithy_types::date_time::Format::DateTime).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_ecs_credentials_never_fail_or_stall_a_request() {
    let issued: Issued = Arc::default();
    let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let windows: Arc<Mutex<Vec<(SystemTime, SystemTime)>>> = Arc::default();
    let (ecs_addr, _ecs) = {
        let (issued, fetches, windows) = (issued.clone(), fetches.clone(), windows.clone());
        serve(move |_req| {
            let (issued, fetches, windows) = (issued.clone(), fetches.clone(), windows.clone());
            async move {
                let asked = SystemTime::now();
                tokio::time::sleep(FETCH_DELAY).await;
                windows.lock().unwrap().push((asked, SystemTime::now()));
                let n = fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                let (key, secret, token) = (format!("ASIAROTATE{n:04}"), format!("secret-{n}"), format!("token-{n}"));
                // Whole seconds, as the real endpoint writes them; never later than LIFETIME.
                let expiry = SystemTime::UNIX_EPOCH
                    + Duration::from_secs(
                        (SystemTime::now() + LIFETIME).duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
                    );
                issued.lock().unwrap().insert(key.clone(), (secret.clone(), token.clone(), expiry));
                let body = serde_json::json!({
                    "AccessKeyId": key, "SecretAccessKey": secret, "Token": token,
                    "Expiration": rfc3339(expiry), "RoleArn": "arn:aws:iam::123456789012:role/task",
                });
                http::Response::new(Full::new(Bytes::from(body.to_string())))
            }
        })
        .await
    };
    let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
    let (model_addr, _model) = {
        let (issued, calls) = (issued.clone(), calls.clone());
        serve(move |req| {
            let (issued, calls) = (issued.clone(), calls.clone());
            async move {
                let at = SystemTime::now();
                let (parts, body) = req.into_parts();
                let auth = parts.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
                let key = support::sigv4::parse_authorization(auth).map(|a| a.access_key_id).unwrap_or_default();
                let known = issued.lock().unwrap().get(&key).cloned();
                let verdict = match known {
                    None => Err(format!("unknown key {key:?}")),
                    Some((_, _, expiry)) if at >= expiry => Err(format!("{key} used after it expired")),
                    Some((_, token, _))
                        if parts.headers.get("x-amz-security-token").is_none_or(|t| t != token.as_str()) =>
                    {
                        Err(format!("{key} sent without its session token"))
                    }
                    Some((secret, _, _)) => {
                        support::sigv4::verify("POST", &parts.uri, &parts.headers, &body, &secret).map(|_| ())
                    }
                };
                let ok = verdict.is_ok();
                calls.lock().unwrap().push(Call { key, at, verdict });
                let mut resp =
                    http::Response::new(Full::new(Bytes::from_static(br#"{"items":[{"item_id":"rot-1"}]}"#)));
                if !ok {
                    *resp.status_mut() = http::StatusCode::FORBIDDEN;
                    resp.headers_mut()
                        .insert("x-amzn-errortype", http::HeaderValue::from_static("InvalidSignatureException"));
                }
                resp.headers_mut().insert("content-type", http::HeaderValue::from_static("application/json"));
                resp
            }
        })
        .await
    };

    let conf = Conf::base()
        .model_sagemaker("rec-sm", "sm-v1", "rec-endpoint", &format!("http://{model_addr}"))
        .model("rec-sm", "timeout_ms", 5_000)
        .model_builtin("rec-v2-2", "v2.2.0")
        .split("s")
        .champion("champion", "rec-v2-2", 0.0)
        .variant("challenger", "rec-sm", 100.0);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("splitgate.toml");
    std::fs::write(&path, conf.to_string()).unwrap();
    let full_uri = format!("http://{ecs_addr}/v2/credentials/task");
    // Blank static keys: the standard chain skips them and reaches the container endpoint.
    let p = Proxy::start_with(
        dir,
        path.clone(),
        &["--config", path.to_str().unwrap()],
        &[("AWS_ACCESS_KEY_ID", ""), ("AWS_SECRET_ACCESS_KEY", ""), ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full_uri)],
    );

    // Steady load: four clients back to back, bounded in time and count.
    let started = Instant::now();
    let url = p.url("/recommend");
    let mut clients = Vec::new();
    for c in 0..4 {
        let url = url.clone();
        clients.push(tokio::spawn(async move {
            let http = client();
            let mut out = Vec::new();
            let mut i = 0;
            while started.elapsed() < LOAD_FOR && out.len() < MAX_REQUESTS / 4 {
                let sent = Instant::now();
                let (status, _, body) = recommend_with(&http, &url, &format!("rot-{c}-{i}")).await;
                out.push((status.as_u16(), sent.elapsed(), String::from_utf8_lossy(&body).into_owned()));
                i += 1;
            }
            out
        }));
    }
    let mut results = Vec::new();
    for c in clients {
        results.extend(c.await.unwrap());
    }

    let failed: Vec<_> = results.iter().filter(|r| r.0 != 200).take(5).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed, e.g. {failed:?}",
        results.iter().filter(|r| r.0 != 200).count(),
        results.len()
    );
    // While each refresh was outstanding, calls kept reaching the endpoint (on the old key).
    let calls_guard = calls.lock().unwrap();
    let windows = windows.lock().unwrap().clone();
    assert!(windows.len() >= 3, "fetches: {windows:?}");
    for (asked, answered) in &windows[1..] {
        if *answered > SystemTime::now() - Duration::from_millis(200) {
            continue; // still open when the load stopped
        }
        let during = calls_guard.iter().filter(|c| c.at > *asked && c.at < *answered).count();
        assert!(during > 0, "no call got through while credentials were being fetched ({asked:?}..{answered:?})");
    }
    drop(calls_guard);
    let slowest = results.iter().map(|r| r.1).max().unwrap();
    assert!(slowest < FETCH_DELAY, "a request took {slowest:?}: it waited on a credentials fetch ({FETCH_DELAY:?})");
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), results.len(), "every request reached the endpoint once");
    let bad: Vec<_> = calls.iter().filter_map(|c| c.verdict.as_ref().err()).take(3).collect();
    assert!(bad.is_empty(), "{bad:?}");
    let mut keys: Vec<&str> = calls.iter().map(|c| c.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    assert!(keys.len() >= 3, "the keys rotated under load: {keys:?} over {} calls", calls.len());
    // Each new key took over from the previous one while that was still valid.
    let issued = issued.lock().unwrap();
    let last_use: HashMap<&str, SystemTime> = calls.iter().map(|c| (c.key.as_str(), c.at)).collect();
    for k in &keys {
        assert!(last_use[k] < issued[*k].2, "{k} was used until it expired");
    }
    assert_no_panic(&p);
}
