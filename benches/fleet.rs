//! The fleet's pure work per flush interval (off the request path, but it runs on every replica
//! every interval): encoding this replica's tallies, decoding and merging ten replicas' records
//! into the fleet view, folding them into the guard's accumulator, and a lease decision.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use splitgate::experiment::Sketch;
use splitgate::fleet::lease::Lease;
use splitgate::fleet::merge::{view, Accumulator, ReplicaRecord};
use splitgate::tally::{Tallies, VariantTally};

fn replica(i: u64) -> ReplicaRecord {
    let mut tallies = Tallies::default();
    for name in ["champion", "challenger"] {
        let mut t = VariantTally::default();
        t.outcomes.requests = 1_000 * i;
        t.outcomes.errors = i;
        let mut users = Sketch::default();
        for u in 0..5_000u64 {
            users.add(splitgate::split::stable_hash("bench", format!("{name}-{i}-{u}").as_bytes()));
        }
        t.experiment.users = users;
        t.experiment.events = vec![i; 7];
        for us in 0..200 {
            t.latency.record(f64::from(us) * 37.0);
        }
        tallies.variants.insert(name.into(), t);
    }
    ReplicaRecord { id: format!("replica-{i}"), flushed_at_ms: 1_000, tallies }
}

fn fleet(c: &mut Criterion) {
    let records: Vec<ReplicaRecord> = (1..=10).map(replica).collect();
    let bodies: Vec<String> = records.iter().map(|r| serde_json::to_string(&r.tallies).unwrap_or_default()).collect();
    println!("one replica's item body (2 variants): {} bytes", bodies[0].len());
    c.bench_function("fleet/encode one replica's tallies (2 variants)", |b| {
        b.iter(|| serde_json::to_string(black_box(&records[0].tallies)).map(|s| s.len()))
    });
    c.bench_function("fleet/decode 10 replicas' tallies", |b| {
        b.iter(|| bodies.iter().filter_map(|s| serde_json::from_str::<Tallies>(s).ok()).count())
    });
    c.bench_function("fleet/merge 10 replicas into the fleet view", |b| {
        b.iter(|| view(black_box(&records), 1_500, 5_000).replicas.len())
    });
    let mut acc = Accumulator::default();
    c.bench_function("fleet/accumulate 10 replicas for the guard", |b| {
        b.iter(|| {
            acc.update(black_box(&records));
            acc.sample("challenger", 0).requests
        })
    });
    let lease = Lease::new(10_000, 5_000);
    c.bench_function("fleet/lease decision", |b| b.iter(|| lease.tick(black_box(7_000), None, 7_000, "a")));
}

criterion_group!(benches, fleet);
criterion_main!(benches);
