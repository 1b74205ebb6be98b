//! A whole request through an in-process proxy to a builtin model (no sockets): auth → throttle →
//! body → user id → split → model → response → metrics → access log. Also counts heap
//! allocations per request with an instrumented allocator, printed before the timings.

use std::alloc::System;
use std::net::SocketAddr;
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

const CONFIG: &str = include_str!("../config/splitgate.toml");
const SHADOW: &str = "\n[[shadow]]\nmodel = \"rec-v2-3\"\nsample_percent = 100\nqueue_capacity = 100000\n";

fn proxy(rt: &tokio::runtime::Runtime, text: &str) -> Arc<Proxy> {
    let plan = config::parse(text)
        .and_then(|raw| config::validate(&raw).map_err(config::ConfigError::Invalid))
        .unwrap_or_else(|e| panic!("bench config: {e}"));
    let _guard = rt.enter();
    let metrics = Metrics::new();
    let log = AccessLog::spawn(65_536, Box::new(std::io::sink()), metrics.access_log_dropped.clone())
        .unwrap_or_else(|e| panic!("{e}"));
    let client = splitgate::backend::http_client(Duration::from_secs(1), 8).unwrap_or_else(|e| panic!("{e}"));
    // A high throttle so the bench measures the bucket's cost, never a 429.
    let plan = config::Plan { throttle: Some(splitgate::throttle::Gcra::new(1e9, 1_000_000_000)), ..plan };
    Arc::new(Proxy::new(plan, "bench".into(), Source::Inline, client, log, metrics, splitgate::aws::AwsClients::new()))
}

fn request(user: u64) -> http::Request<Full<Bytes>> {
    let body = format!(r#"{{"user_id":"user-{user}","context":{{"page":"home"}}}}"#);
    http::Request::post("/recommend")
        .header("host", "splitgate")
        .header("x-api-key", "splitgate-demo-key")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn allocations_per_request(rt: &tokio::runtime::Runtime, p: &Arc<Proxy>, label: &str) {
    let peer: SocketAddr = ([127, 0, 0, 1], 40000).into();
    let n = 10_000u64;
    // Build the requests first so only the proxy's own allocations are counted.
    let reqs: Vec<_> = (0..n).map(request).collect();
    let region = Region::new(GLOBAL);
    for r in reqs {
        let resp = rt.block_on(p.handle(r, peer));
        assert_eq!(resp.status(), 200);
    }
    let stats = region.change();
    println!(
        "{label}: {:.1} allocations, {:.0} bytes allocated per request (over {n} requests)",
        stats.allocations as f64 / n as f64,
        stats.bytes_allocated as f64 / n as f64
    );
}

fn whole_request(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    let plain = proxy(&rt, CONFIG);
    let shadowed = proxy(&rt, &format!("{CONFIG}{SHADOW}"));
    allocations_per_request(&rt, &plain, "request/builtin");
    allocations_per_request(&rt, &shadowed, "request/builtin+100% shadow");
    let peer: SocketAddr = ([127, 0, 0, 1], 40000).into();
    for (name, p) in
        [("request/builtin (in-process)", &plain), ("request/builtin + 100% shadow (in-process)", &shadowed)]
    {
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
