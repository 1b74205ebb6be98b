//! A whole request through an in-process proxy to a SageMaker-backed variant (the real SDK:
//! request building, SigV4, error model) whose `endpoint_url` is a loopback model server, next to
//! the same request to an `http` model on the same server, so the two compare in one run. Also
//! counts heap allocations per request with an instrumented allocator, as `benches/request.rs`
//! does, printed before the timings.
//!
//! The model server is a plain thread with one fixed buffer (no allocation per request, so the
//! counts are the proxy's own): it reads a request head, its `content-length` body, and writes a
//! fixed 200 answer, keep-alive.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use criterion::{criterion_group, criterion_main, Criterion};

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

/// The request, with the fields a SageMaker call carries on (`Accept`, the X-Ray trace).
fn request(user: u64) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    support::request(
        user,
        &[("accept", "application/json"), ("x-amzn-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793")],
    )
}

/// Allocations per request after warming the pools (connection, credentials), and the size of
/// the request future the server boxes per request (one allocation of this size, not counted by
/// the region: `handle` is awaited here directly); it was 20 KB while an interleaving arm's two
/// model calls sat inline in it.
fn allocations(rt: &tokio::runtime::Runtime, p: &std::sync::Arc<splitgate::proxy::Proxy>, label: &str) {
    for i in 0..100 {
        assert_eq!(rt.block_on(p.handle(request(i), support::PEER)).status(), 200, "{label}: warm-up");
    }
    support::allocations_per_request(rt, p, label, 5_000, request);
    println!("{label}: request future {} bytes", std::mem::size_of_val(&p.handle(request(0), support::PEER)));
}

fn whole_request(c: &mut Criterion) {
    // The static credentials the SDK's standard chain finds first; no instance-metadata probe.
    std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    std::env::remove_var("AWS_PROFILE");
    let rt = support::runtime();
    let addr = model_server();
    let http = support::proxy(&rt, &config_text(&format!("backend = \"http\"\nurl = \"http://{addr}/invocations\"")));
    let sagemaker = support::proxy(
        &rt,
        &config_text(&format!(
            "backend = \"sagemaker\"\nendpoint = \"rec-endpoint\"\nregion = \"us-east-1\"\nendpoint_url = \"http://{addr}\""
        )),
    );
    // The same endpoint with every call through the SDK's orchestrator: the baseline the direct
    // path is measured against, in the same run.
    let sdk = support::proxy(
        &rt,
        &config_text(&format!(
            "backend = \"sagemaker\"\nendpoint = \"rec-endpoint\"\nregion = \"us-east-1\"\nendpoint_url = \"http://{addr}\"\nsagemaker_client = \"sdk\""
        )),
    );
    allocations(&rt, &http, "request/http model");
    allocations(&rt, &sagemaker, "request/sagemaker model");
    allocations(&rt, &sdk, "request/sagemaker model, sagemaker_client = sdk");
    support::bench_handle(
        c,
        &rt,
        &[
            ("request/http model (loopback)", &http),
            ("request/sagemaker model (loopback)", &sagemaker),
            ("request/sagemaker model, sdk client (loopback)", &sdk),
        ],
        request,
    );
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = whole_request
}
criterion_main!(benches);
