//! Interleaving's cost. The merge as the request path runs it (read both answers' lists, the
//! team draft, the merged body, the team code), its parts, feedback's attribution, and a whole
//! in-process request to an interleaving arm against the same request to a plain variant in the
//! same run (both on builtin models, so the difference is the second model call plus the merge),
//! with heap allocations per request counted as in `benches/request.rs`.

mod support;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use splitgate::interleave::answer::ranked;
use splitgate::interleave::code::{decode, fingerprint};
use splitgate::interleave::page::{merge, Tag};
use splitgate::interleave::{seed, team_draft};

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

fn whole_request(c: &mut Criterion) {
    let rt = support::runtime();
    let setups = [
        ("plain variant", support::proxy(&rt, &config(false))),
        ("interleaving arm", support::proxy(&rt, &config(true))),
    ];
    let request = |user| support::request(user, &[]);
    for (label, p) in &setups {
        support::allocations_per_request(&rt, p, &format!("request/builtin {label}"), 10_000, request);
    }
    let probe = rt.block_on(setups[1].1.handle(request(1), support::PEER));
    assert_eq!(probe.headers()["x-splitgate-interleave"], "merged", "the arm merges");
    let names: Vec<String> = setups.iter().map(|(label, _)| format!("request/builtin {label} (in-process)")).collect();
    let cases: Vec<(&str, &std::sync::Arc<splitgate::proxy::Proxy>)> =
        names.iter().zip(&setups).map(|(n, (_, p))| (n.as_str(), p)).collect();
    support::bench_handle(c, &rt, &cases, request);
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = pure, whole_request
}
criterion_main!(benches);
