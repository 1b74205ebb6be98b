//! What the whole-request benches share: the instrumented allocator, an in-process proxy from a
//! config text, the `/recommend` request, allocation counting and the criterion loop over
//! `Proxy::handle`.

use std::alloc::System;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::Criterion;
use http_body_util::Full;
use splitgate::accesslog::AccessLog;
use splitgate::config;
use splitgate::metrics::Metrics;
use splitgate::proxy::Proxy;
use splitgate::snapshot::Source;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

pub const PEER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 40000);

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"))
}

/// A proxy serving `text`, its AWS clients prepared, its access log discarded, with a throttle
/// high enough that the bench measures the bucket's cost and never a 429.
pub fn proxy(rt: &tokio::runtime::Runtime, text: &str) -> Arc<Proxy> {
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

/// `POST /recommend` for `user-N` with the demo key, plus `extra` header fields.
pub fn request(user: u64, extra: &[(&str, &str)]) -> http::Request<Full<Bytes>> {
    let body = format!(r#"{{"user_id":"user-{user}","context":{{"page":"home"}}}}"#);
    let mut b = http::Request::post("/recommend")
        .header("host", "splitgate")
        .header("x-api-key", "splitgate-demo-key")
        .header("content-type", "application/json");
    for (name, value) in extra {
        b = b.header(*name, *value);
    }
    b.body(Full::new(Bytes::from(body))).unwrap_or_else(|e| panic!("{e}"))
}

/// Serves `n` requests made by `make` (built first, so only the proxy's allocations count) and
/// prints the allocations and bytes allocated per request.
pub fn allocations_per_request(
    rt: &tokio::runtime::Runtime,
    p: &Arc<Proxy>,
    label: &str,
    n: u64,
    make: impl Fn(u64) -> http::Request<Full<Bytes>>,
) {
    let reqs: Vec<_> = (0..n).map(make).collect();
    let region = Region::new(GLOBAL);
    for r in reqs {
        let resp = rt.block_on(p.handle(r, PEER));
        assert_eq!(resp.status(), 200, "{label}");
    }
    let stats = region.change();
    println!(
        "{label}: {:.1} allocations, {:.0} bytes allocated per request (over {n} requests)",
        stats.allocations as f64 / n as f64,
        stats.bytes_allocated as f64 / n as f64
    );
}

/// One criterion benchmark of a whole in-process request per `(name, proxy)`, a new user each.
pub fn bench_handle(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    setups: &[(&str, &Arc<Proxy>)],
    make: impl Fn(u64) -> http::Request<Full<Bytes>>,
) {
    for (name, p) in setups {
        let mut user = 0u64;
        c.bench_function(name, |b| {
            b.iter_batched(
                || {
                    user += 1;
                    make(user)
                },
                |r| rt.block_on(p.handle(r, PEER)),
                criterion::BatchSize::SmallInput,
            )
        });
    }
}

/// Short runs: these benches count allocations first and time second.
pub fn criterion() -> Criterion {
    Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1))
}
