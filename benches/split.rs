//! Hot pure functions of the request path: user-id extraction, hash + bucket, the split lookup,
//! request-id and trace-context minting, the client address behind a trusted proxy, the
//! throttle, access-log formatting, rendering the request to an HTTP model and parsing its
//! answer's head, shadow comparison, and recording a latency histogram.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderValue, Method, Version};
use splitgate::accesslog::{format_record, Record};
use splitgate::clientip::TrustedProxies;
use splitgate::reqid::RequestIds;
use splitgate::shadow::compare::{compare, extract_ids};
use splitgate::split::{bucket, Layout};
use splitgate::throttle::{Gcra, TokenBucket};
use splitgate::trace::{TraceContext, TraceIds};
use splitgate::userid;

const BODY: &[u8] = br#"{"context":{"page":"home","device":"ios","recent":[101,202,303,404]},"num_items":10,"user_id":"user-8675309","locale":"en-US"}"#;

fn pure(c: &mut Criterion) {
    c.bench_function("userid/from_json (125 B body, field last-but-one)", |b| {
        b.iter(|| userid::from_json(black_box(BODY), "user_id").ok())
    });
    c.bench_function("split/bucket (sha256 of salt+id, mod 10000)", |b| {
        b.iter(|| bucket(black_box("rec-2026-11"), black_box(b"user-8675309")))
    });
    let layout = Layout::new(&[9_000, 1_000], 0, &[None, None]).unwrap_or_else(|e| panic!("{e}"));
    c.bench_function("split/layout lookup", |b| b.iter(|| layout.variant_of(black_box(4_321))));
    c.bench_function("split/decision (bucket + lookup)", |b| {
        b.iter(|| layout.variant_of(bucket("rec-2026-11", black_box(b"user-8675309"))))
    });
    let ids = RequestIds::new();
    c.bench_function("headers/request id mint", |b| b.iter(|| ids.next(black_box(7))));
    let trace_ids = TraceIds::new();
    let none = http::HeaderMap::new();
    let now = SystemTime::now();
    c.bench_function("trace/mint (no trace headers)", |b| {
        b.iter(|| TraceContext::from_headers(black_box(&none), &trace_ids, now))
    });
    let mut w3c = http::HeaderMap::new();
    w3c.insert("traceparent", HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    c.bench_function("trace/read the caller's traceparent", |b| {
        b.iter(|| TraceContext::from_headers(black_box(&w3c), &trace_ids, now))
    });
    let mut alb = http::HeaderMap::new();
    alb.insert("x-forwarded-for", HeaderValue::from_static("198.51.100.4, 203.0.113.7"));
    let trusted = TrustedProxies::new(vec!["10.0.0.0/16".parse().unwrap_or_else(|e| panic!("{e}"))]);
    let peer = std::net::IpAddr::from([10, 0, 1, 5]);
    c.bench_function("clientip/behind a trusted ALB (2 hops)", |b| {
        b.iter(|| trusted.client_ip(black_box(peer), black_box(&alb)))
    });
    let supplied = HeaderValue::from_static("abc-123-def");
    c.bench_function("headers/request id echo", |b| b.iter(|| ids.accept_or_mint(Some(black_box(&supplied)), 7)));
    let bucket_ = TokenBucket::new(Gcra::new(1e12, 1_000_000));
    let mut now = 0u64;
    c.bench_function("throttle/gcra try_acquire", |b| {
        b.iter(|| {
            now += 1_000;
            bucket_.try_acquire(black_box(now))
        })
    });
    let record = Record {
        request_id: HeaderValue::from_static("5d1e38919a505b6e0000000000000000"),
        trace_id: *b"\x67\xa1\xb2\xc3\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67",
        ip: "127.0.0.1".parse().unwrap_or(std::net::IpAddr::from([127, 0, 0, 1])),
        time: SystemTime::now(),
        method: Method::POST,
        route_key: "POST /recommend",
        status: 200,
        protocol: Version::HTTP_11,
        response_length: 433,
        latency: Duration::from_micros(310),
        variant: Some("champion".into()),
        model: Some("v2.2.0".into()),
        upstream_latency: Some(Duration::from_micros(53)),
        caller: Some("demo".into()),
        error: None,
        fallback: false,
        user_hash: Some(0xa525_63fb_69ad_02b7),
        bucket: Some(3_575),
        config_version: 12,
        epoch: Some("3f2a9c01d4e5b678".into()),
        user_id: None,
        interleave: None,
    };
    let mut line = String::with_capacity(512);
    c.bench_function("accesslog/format one line", |b| {
        b.iter(|| {
            line.clear();
            format_record(black_box(&record), &mut line);
        })
    });
    let mut headers = http::HeaderMap::new();
    for (n, v) in [
        ("host", "splitgate.example"),
        ("x-api-key", "splitgate-demo-key"),
        ("content-type", "application/json"),
        ("content-length", "125"),
        ("user-agent", "k6/1.1"),
        ("x-amzn-trace-id", "Root=1-67a1b2c3-0123456789abcdef01234567"),
    ] {
        headers.append(http::HeaderName::from_static(n), HeaderValue::from_static(v));
    }
    let body = bytes::Bytes::from_static(BODY);
    let request_id = HeaderValue::from_static("0a1b2c3d4e5f60718293a4b5c6d7e8f9");
    let trace_ids = TraceIds::new();
    let trace = TraceContext::from_headers(&headers, &trace_ids, SystemTime::now());
    let model_req = splitgate::backend::ModelRequest {
        body: &body,
        content_type: headers.get("content-type"),
        accept: None,
        headers: &headers,
        request_id: &request_id,
        trace: &trace,
        user_id: "user-8675309",
        shadow: false,
    };
    let head = b"POST /invocations HTTP/1.1\r\nhost: 10.0.0.5:8080\r\n";
    c.bench_function("headers/render request to an http model (6 caller headers, 125 B body)", |b| {
        b.iter(|| splitgate::backend::render_request(black_box(head), black_box(&model_req)))
    });
    let answer_head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 398\r\ndate: Thu, 26 Nov 2026 18:00:00 GMT\r\n\r\n";
    c.bench_function("headers/parse a model's answer head", |b| {
        b.iter(|| splitgate::backend::h1::parse::head(black_box(answer_head)))
    });
    let a: Vec<String> = (0..10).map(|i| format!("item-{i}")).collect();
    let b_: Vec<String> = (0..10).map(|i| format!("item-{}", (i * 3) % 14)).collect();
    c.bench_function("compare/overlap+rbo+top1 (k=10)", |b| b.iter(|| compare(black_box(&a), black_box(&b_), 10)));
    let answer = br#"{"user_id":"u","model":"v2.2.0","items":[{"item_id":"item-526","score":0.9423},{"item_id":"item-1241","score":0.9359},{"item_id":"item-1857","score":0.7071},{"item_id":"item-4802","score":0.7044},{"item_id":"item-2576","score":0.7010},{"item_id":"item-312","score":0.6897},{"item_id":"item-3928","score":0.6197},{"item_id":"item-1231","score":0.6084},{"item_id":"item-2077","score":0.5939},{"item_id":"item-3258","score":0.5932}]}"#;
    c.bench_function("compare/extract_ids (10 items)", |b| {
        b.iter(|| extract_ids(black_box(answer), "/items", "item_id", 10))
    });
    let metrics = splitgate::metrics::Metrics::new();
    let latency = metrics.histogram(splitgate::metrics::UPSTREAM_DURATION, &[("variant", "champion"), ("model", "m")]);
    c.bench_function("metrics/histogram record (15 buckets, atomics)", |b| {
        b.iter(|| latency.record(black_box(0.000_731)))
    });
    // The experiment's request-path cost: every user below the sample threshold (here all of
    // them: 4,096 returning users, the capacity) takes a shard lock and updates its entry.
    let sampler = splitgate::experiment::Sampler::default();
    let view = sampler.enter(1, 1, 0, "champion", &[("champion", 50.0), ("challenger", 50.0)]);
    let hashes: Vec<u64> = (0..4_096u32).map(|i| splitgate::split::stable_hash("bench", &i.to_be_bytes())).collect();
    let mut i = 0usize;
    c.bench_function("experiment/expose a sampled user (epoch counter + sample entry)", |b| {
        b.iter(|| {
            i = (i + 1) % hashes.len();
            sampler.expose(&view, i & 1, black_box(hashes[i]))
        })
    });
    c.bench_function("experiment/expose an unsampled user (epoch counter only)", |b| {
        let above = u64::MAX; // key 2^32 - 1: above any lowered threshold once pruned
        b.iter(|| sampler.expose(&view, 0, black_box(above)))
    });
}

criterion_group!(benches, pure);
criterion_main!(benches);
