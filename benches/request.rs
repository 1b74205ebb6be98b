//! A whole request through an in-process proxy to a builtin model (no sockets): auth → throttle →
//! body → user id → split → model → response → metrics → access log. Also counts heap
//! allocations per request with an instrumented allocator, printed before the timings.

mod support;

use criterion::{criterion_group, criterion_main, Criterion};

const CONFIG: &str = include_str!("../config/splitgate.toml");
const SHADOW: &str = "\n[[shadow]]\nmodel = \"rec-v2-3\"\nsample_percent = 100\nqueue_capacity = 100000\n";

fn whole_request(c: &mut Criterion) {
    let rt = support::runtime();
    let plain = support::proxy(&rt, CONFIG);
    let shadowed = support::proxy(&rt, &format!("{CONFIG}{SHADOW}"));
    let request = |user| support::request(user, &[]);
    support::allocations_per_request(&rt, &plain, "request/builtin", 10_000, request);
    support::allocations_per_request(&rt, &shadowed, "request/builtin+100% shadow", 10_000, request);
    support::bench_handle(
        c,
        &rt,
        &[("request/builtin (in-process)", &plain), ("request/builtin + 100% shadow (in-process)", &shadowed)],
        request,
    );
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = whole_request
}
criterion_main!(benches);
