//! A whole request through an in-process proxy to a SageMaker-backed variant (the real SDK:
//! request building, SigV4, error model) whose `endpoint_url` is a loopback model server, next to
//! the same request to an `http` model on the same server, so the two compare in one run. Also
//! counts heap allocations per request with an instrumented allocator, as `benches/request.rs`
//! does, printed before the timings.
//!
//! The model server is a plain thread with one fixed buffer (no allocation per request, so the
//! counts are the proxy's own): it reads a request head, its `content-length` body, and writes a
//! fixed 200 answer, keep-alive.

use std::alloc::System;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::Full;
use splitgate::accesslog::AccessLog;
use splitgate::config;
use splitgate::metrics::Metrics;
use splitgate::proxy::Proxy;
use splitgate::snapshot::Source;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const BODY: &str = r#"{"items":[{"item_id":"sku-1","score":0.9},{"item_id":"sku-2","score":0.8}]}"#;

/// The model's answer, built once (its length must be right, or no connection is ever reused).
fn answer() -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         x-amzn-invoked-production-variant: AllTraffic\r\n\r\n{BODY}",
        BODY.len()
    )
    .into_bytes()
}

/// The model server: one thread per connection, each with one reused buffer.
fn model_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let answer: &'static [u8] = answer().leak();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream, answer));
        }
    });
    addr
}

fn serve(mut s: TcpStream, answer: &[u8]) {
    let _ = s.set_nodelay(true);
    let mut buf = vec![0u8; 64 * 1024];
    let mut have = 0;
    loop {
        // One request: the head, then content-length bytes of body.
        let (head_end, body_len) = loop {
            if let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                break (end + 4, content_length(&buf[..end]));
            }
            match s.read(&mut buf[have..]) {
                Ok(0) | Err(_) => return,
                Ok(n) => have += n,
            }
        };
        while have < head_end + body_len {
            match s.read(&mut buf[have..]) {
                Ok(0) | Err(_) => return,
                Ok(n) => have += n,
            }
        }
        if s.write_all(answer).is_err() {
            return;
        }
        buf.copy_within(head_end + body_len..have, 0);
        have -= head_end + body_len;
    }
}

fn content_length(head: &[u8]) -> usize {
    let text = std::str::from_utf8(head).unwrap_or("");
    text.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0)
}

fn config_text(model: &str) -> String {
    format!(
        r#"
[server]
max_response_bytes = 65536
[[auth.keys]]
name = "bench"
sha256 = "5b1f89fd1eaf4f5a25821da4a9d3f8a6881fdd0d8ec50232ed0bf787f4f9a0ad"
[models.m]
version = "v1"
timeout_ms = 1000
{model}
[split]
salt = "s"
[[split.variants]]
name = "champion"
model = "m"
weight = 100
champion = true
"#
    )
}

fn proxy(rt: &tokio::runtime::Runtime, text: &str) -> Arc<Proxy> {
    let plan = config::parse(text)
        .and_then(|raw| config::validate(&raw).map_err(config::ConfigError::Invalid))
        .unwrap_or_else(|e| panic!("bench config: {e}"));
    let _guard = rt.enter();
    let metrics = Metrics::new();
    let log = AccessLog::spawn(65_536, Box::new(std::io::sink()), metrics.access_log_dropped.clone())
        .unwrap_or_else(|e| panic!("{e}"));
    let client = splitgate::backend::http_client(Duration::from_secs(1), 8).unwrap_or_else(|e| panic!("{e}"));
    let plan = config::Plan { throttle: Some(splitgate::throttle::Gcra::new(1e9, 1_000_000_000)), ..plan };
    let aws = splitgate::aws::AwsClients::new();
    rt.block_on(aws.prepare(&plan, &client));
    Arc::new(Proxy::new(plan, "bench".into(), Source::Inline, client, log, metrics, aws))
}

fn request(user: u64) -> http::Request<Full<Bytes>> {
    let body = format!(r#"{{"user_id":"user-{user}","context":{{"page":"home"}}}}"#);
    http::Request::post("/recommend")
        .header("host", "splitgate")
        .header("x-api-key", "splitgate-demo-key")
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .header("x-amzn-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn allocations_per_request(rt: &tokio::runtime::Runtime, p: &Arc<Proxy>, label: &str) {
    let peer: SocketAddr = ([127, 0, 0, 1], 40000).into();
    // Warm the pools (connection, credentials) before counting.
    for i in 0..100 {
        assert_eq!(rt.block_on(p.handle(request(i), peer)).status(), 200, "{label}: warm-up");
    }
    let n = 5_000u64;
    let reqs: Vec<_> = (0..n).map(request).collect();
    let region = Region::new(GLOBAL);
    for r in reqs {
        let resp = rt.block_on(p.handle(r, peer));
        assert_eq!(resp.status(), 200, "{label}");
    }
    let stats = region.change();
    // The server boxes each request's future (one allocation of this size, not counted above:
    // `handle` is awaited here directly); it was 20 KB while an interleaving arm's two model
    // calls sat inline in it.
    let future = std::mem::size_of_val(&p.handle(request(0), peer));
    println!(
        "{label}: {:.1} allocations, {:.0} bytes allocated per request (over {n} requests); request future {future} bytes",
        stats.allocations as f64 / n as f64,
        stats.bytes_allocated as f64 / n as f64
    );
}

fn whole_request(c: &mut Criterion) {
    // The static credentials the SDK's standard chain finds first; no instance-metadata probe.
    std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    std::env::remove_var("AWS_PROFILE");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    let addr = model_server();
    let http = proxy(&rt, &config_text(&format!("backend = \"http\"\nurl = \"http://{addr}/invocations\"")));
    let sagemaker = proxy(
        &rt,
        &config_text(&format!(
            "backend = \"sagemaker\"\nendpoint = \"rec-endpoint\"\nregion = \"us-east-1\"\nendpoint_url = \"http://{addr}\""
        )),
    );
    // The same endpoint with every call through the SDK's orchestrator: the baseline the direct
    // path is measured against, in the same run.
    let sdk = proxy(
        &rt,
        &config_text(&format!(
            "backend = \"sagemaker\"\nendpoint = \"rec-endpoint\"\nregion = \"us-east-1\"\nendpoint_url = \"http://{addr}\"\nsagemaker_client = \"sdk\""
        )),
    );
    allocations_per_request(&rt, &http, "request/http model");
    allocations_per_request(&rt, &sagemaker, "request/sagemaker model");
    allocations_per_request(&rt, &sdk, "request/sagemaker model, sagemaker_client = sdk");
    let peer: SocketAddr = ([127, 0, 0, 1], 40000).into();
    for (name, p) in [
        ("request/http model (loopback)", &http),
        ("request/sagemaker model (loopback)", &sagemaker),
        ("request/sagemaker model, sdk client (loopback)", &sdk),
    ] {
        let mut user = 0u64;
        c.bench_function(name, |b| {
            b.iter_batched(
                || {
                    user += 1;
                    request(user)
                },
                |r| rt.block_on(p.handle(r, peer)),
                criterion::BatchSize::SmallInput,
            )
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = whole_request
}
criterion_main!(benches);
