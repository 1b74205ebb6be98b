//! Interleaving's cost. The merge as the request path runs it (read both answers' lists, the
//! team draft, the merged body, the team code), its parts, feedback's attribution, and a whole
//! in-process request to an interleaving arm against the same request to a plain variant in the
//! same run (both on builtin models, so the difference is the second model call plus the merge),
//! with heap allocations per request counted as in `benches/request.rs`.

use std::alloc::System;
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::Full;
use splitgate::interleave::answer::ranked;
use splitgate::interleave::code::{decode, fingerprint};
use splitgate::interleave::page::{merge, Tag};
use splitgate::interleave::{seed, team_draft};
use splitgate::proxy::Proxy;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Two builtin models' answers for one user (what the arm below merges).
const A: &[u8] = br#"{"user_id":"user-8675309","model":"v2.2.0","items":[{"item_id":"item-526","score":0.9423},{"item_id":"item-1241","score":0.9359},{"item_id":"item-1857","score":0.7071},{"item_id":"item-4802","score":0.7044},{"item_id":"item-2576","score":0.7010},{"item_id":"item-312","score":0.6897},{"item_id":"item-3928","score":0.6197},{"item_id":"item-1231","score":0.6084},{"item_id":"item-2077","score":0.5939},{"item_id":"item-3258","score":0.5932}]}"#;
const B: &[u8] = br#"{"user_id":"user-8675309","model":"v2.3.0","items":[{"item_id":"item-1241","score":0.9611},{"item_id":"item-526","score":0.9320},{"item_id":"item-4802","score":0.7502},{"item_id":"item-77","score":0.7133},{"item_id":"item-1857","score":0.7001},{"item_id":"item-3928","score":0.6650},{"item_id":"item-9001","score":0.6400},{"item_id":"item-312","score":0.6304},{"item_id":"item-18","score":0.6010},{"item_id":"item-2576","score":0.5820}]}"#;

fn pure(c: &mut Criterion) {
    let tag = Tag { salt: "rec-2026-11", variant: "interleave-v23", request_id: b"5d1e38919a505b6e0000000000000001" };
    c.bench_function("interleave/merge step (parse 2x10 items, team draft, body, team code)", |b| {
        b.iter(|| {
            let (ra, rb) =
                (ranked(black_box(A), "/items", "item_id", 10), ranked(black_box(B), "/items", "item_id", 10));
            let (Ok(ra), Ok(rb)) = (ra, rb) else { panic!("bench answers") };
            let s = seed(tag.salt, b"user-8675309", tag.request_id);
            merge((A, &ra), (B, &rb), 10, s, tag)
        })
    });
    c.bench_function("interleave/read one answer's list (10 items)", |b| {
        b.iter(|| ranked(black_box(A), "/items", "item_id", 10))
    });
    // The same answer read the way shadow comparison reads it (ids only): the baseline in this run.
    c.bench_function("interleave/baseline: shadow extract_ids of the same answer", |b| {
        b.iter(|| splitgate::shadow::compare::extract_ids(black_box(A), "/items", "item_id", 10))
    });
    let (Ok(ra), Ok(rb)) = (ranked(A, "/items", "item_id", 10), ranked(B, "/items", "item_id", 10)) else {
        panic!("bench answers")
    };
    let (ids_a, ids_b) = (ra.ids(A), rb.ids(B));
    c.bench_function("interleave/team draft (10 + 10 ids)", |b| {
        b.iter(|| team_draft(black_box(&ids_a), black_box(&ids_b), 10, black_box(0x6529_9454_b73b_f6f4)))
    });
    c.bench_function("interleave/seed (sha256 of salt, user, request id)", |b| {
        b.iter(|| seed(black_box("rec-2026-11"), black_box(b"user-8675309"), black_box(tag.request_id)))
    });
    let page = merge((A, &ra), (B, &rb), 10, 7, tag);
    c.bench_function("interleave/feedback: verify the team code and place an item", |b| {
        b.iter(|| {
            decode(tag.salt, tag.variant, tag.request_id, black_box(&page.code))
                .map(|c| c.locate(fingerprint(tag.request_id, black_box("item-77"))))
        })
    });
}

const CONFIG: &str = include_str!("../config/splitgate.toml");

/// The shipped config with its challenger as an interleaving arm of the two builtin models, at
/// 100%; `plain` keeps the champion at 100% instead (the same models, one call).
fn config(arm: bool) -> String {
    let text = CONFIG.replace(
        "name = \"challenger\"\nmodel = \"rec-v2-3\"",
        "name = \"interleave-v23\"\ninterleave = [\"rec-v2-2\", \"rec-v2-3\"]",
    );
    let (champion, arm_weight) =
        if arm { ("weight = 0\n", "weight = 100\n") } else { ("weight = 100\n", "weight = 0\n") };
    text.replacen("weight = 90\n", champion, 1).replacen("weight = 10\n", arm_weight, 1)
}

fn proxy(rt: &tokio::runtime::Runtime, text: &str) -> Arc<Proxy> {
    let plan = splitgate::config::parse(text)
        .and_then(|raw| splitgate::config::validate(&raw).map_err(splitgate::config::ConfigError::Invalid))
        .unwrap_or_else(|e| panic!("bench config: {e}"));
    let _guard = rt.enter();
    let metrics = splitgate::metrics::Metrics::new();
    let log =
        splitgate::accesslog::AccessLog::spawn(65_536, Box::new(std::io::sink()), metrics.access_log_dropped.clone())
            .unwrap_or_else(|e| panic!("{e}"));
    let client = splitgate::backend::http_client(Duration::from_secs(1), 8).unwrap_or_else(|e| panic!("{e}"));
    let plan = splitgate::config::Plan { throttle: Some(splitgate::throttle::Gcra::new(1e9, 1_000_000_000)), ..plan };
    let aws = splitgate::aws::AwsClients::new();
    Arc::new(Proxy::new(plan, "bench".into(), splitgate::snapshot::Source::Inline, client, log, metrics, aws))
}

fn request(user: u64) -> http::Request<Full<Bytes>> {
    http::Request::post("/recommend")
        .header("host", "splitgate")
        .header("x-api-key", "splitgate-demo-key")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(format!(r#"{{"user_id":"user-{user}","context":{{"page":"home"}}}}"#))))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn whole_request(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    let peer: SocketAddr = ([127, 0, 0, 1], 40000).into();
    let setups = [("plain variant", proxy(&rt, &config(false))), ("interleaving arm", proxy(&rt, &config(true)))];
    for (label, p) in &setups {
        let n = 10_000u64;
        let reqs: Vec<_> = (0..n).map(request).collect();
        let region = Region::new(GLOBAL);
        for r in reqs {
            let resp = rt.block_on(p.handle(r, peer));
            assert_eq!(resp.status(), 200);
        }
        let stats = region.change();
        println!(
            "request/builtin {label}: {:.1} allocations, {:.0} bytes allocated per request (over {n} requests)",
            stats.allocations as f64 / n as f64,
            stats.bytes_allocated as f64 / n as f64
        );
    }
    let probe = rt.block_on(setups[1].1.handle(request(1), peer));
    assert_eq!(probe.headers()["x-splitgate-interleave"], "merged", "the arm merges");
    for (label, p) in &setups {
        let mut user = 0u64;
        c.bench_function(&format!("request/builtin {label} (in-process)"), |b| {
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
    targets = pure, whole_request
}
criterion_main!(benches);
