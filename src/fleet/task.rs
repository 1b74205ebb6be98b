//! The fleet loop, off the request path: every lease period (the smaller of the flush interval
//! and a third of the lease) it may renew or take the lease; every flush interval it writes this
//! replica's cumulative counters, reads the whole fleet partition back, and folds it into the
//! views and the guard's samples. Every DynamoDB call is bounded by a timeout, so an unreachable
//! table degrades the fleet (the guard falls back to local evaluation) and never stalls anything.
//!
//! DynamoDB calls per replica per flush interval: 1 PutItem (its counters) + 1 Query (the fleet
//! partition); the lease holder adds 1 conditional PutItem per renewal (every lease period);
//! followers write the lease only when the one they read has expired. Once per config version: 1 conditional PutItem
//! (its split layout); once a minute: 1 Query for layouts published by others.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge};

use super::lease::{Action, WriteResult};
use super::{merge, wall_ms, Fleet, State};
use crate::metrics::{Metrics, FLEET_CALLS, FLEET_LEADER, FLEET_REPLICAS, FLEET_UP};
use crate::proxy::Proxy;
use crate::tally::Tallies;

/// A dead replica's counters are deleted (by the lease holder) after this many silent intervals.
const GC_INTERVALS: u64 = 10;
/// Layouts published by other replicas are looked up every this many flushes.
const SPLIT_EVERY: u64 = 12;

pub(crate) struct FleetMetrics {
    leader: Gauge,
    up: Gauge,
    replicas: Gauge,
    ok: [Counter; 3],
    failed: [Counter; 3],
}

const OPS: [&str; 3] = ["put_counters", "query", "lease"];

impl FleetMetrics {
    pub(crate) fn new(m: &Metrics, replica: &str) -> FleetMetrics {
        let call = |op, result| m.counter(FLEET_CALLS, &[("operation", op), ("result", result)]);
        let up = m.gauge(FLEET_UP, &[]);
        up.set(1.0);
        FleetMetrics {
            leader: m.gauge(FLEET_LEADER, &[("replica", replica)]),
            up,
            replicas: m.gauge(FLEET_REPLICAS, &[]),
            ok: OPS.map(|op| call(op, "ok")),
            failed: OPS.map(|op| call(op, "failed")),
        }
    }

    fn count(&self, op: usize, ok: bool) {
        let c = if ok { &self.ok } else { &self.failed };
        if let Some(c) = c.get(op) {
            c.increment(1);
        }
    }
}

/// Runs while the proxy lives.
pub fn spawn(fleet: Arc<Fleet>, proxy: Weak<Proxy>) {
    tokio::spawn(async move {
        let interval = Duration::from_millis(fleet.cfg.flush_interval_ms);
        // Wake often enough that neither the flush nor the lease renewal runs late by more than a
        // quarter of its period (the work happens only when due).
        let tick = Duration::from_millis((fleet.lease().period_ms().min(fleet.cfg.flush_interval_ms) / 4).max(10));
        // Every call gets at most one interval (and never less than a second).
        let bound = interval.max(Duration::from_secs(1));
        let mut last_flush: Option<Instant> = None;
        let (mut flushes, mut published, mut was_leader) = (0u64, None::<u64>, false);
        let mut lease_seen = None;
        loop {
            let Some(p) = proxy.upgrade() else { return };
            if last_flush.is_none_or(|t| t.elapsed() >= interval) {
                last_flush = Some(Instant::now());
                lease_seen = flush(&fleet, &p, bound).await.or(lease_seen);
                if published != Some(p.runtime.snapshot.load().version) {
                    published = publish_split(&fleet, &p, bound).await.or(published);
                }
                if flushes % SPLIT_EVERY == 0 {
                    load_splits(&fleet, &p, bound).await;
                }
                flushes += 1;
            }
            let now = fleet.now_ms();
            let wall = wall_ms();
            let action = fleet.lease().tick(now, lease_seen.as_ref(), wall, &fleet.replica_id);
            if action == Action::Write {
                let expires = fleet.lease().expires_at(wall);
                let (result, winner) =
                    tokio::time::timeout(bound, fleet.store.write_lease(&fleet.replica_id, wall, expires))
                        .await
                        .unwrap_or((WriteResult::Failed, None));
                fleet.metrics.count(2, result != WriteResult::Failed);
                lease_seen = winner.or(lease_seen);
                fleet.lease().wrote(now, result, &fleet.replica_id);
            }
            let leader = fleet.is_leader();
            fleet.metrics.leader.set(if leader { 1.0 } else { 0.0 });
            fleet.metrics.up.set(if fleet.healthy() { 1.0 } else { 0.0 });
            if leader != was_leader {
                if leader {
                    tracing::info!(replica = %fleet.replica_id, "took the fleet guard lease");
                } else {
                    tracing::warn!(replica = %fleet.replica_id, "no longer holds the fleet guard lease");
                }
                was_leader = leader;
            }
            drop(p);
            tokio::time::sleep(tick).await;
        }
    });
}

/// Writes this replica's counters, reads everyone's, and installs the new state. Returns the
/// lease item as read.
async fn flush(fleet: &Fleet, proxy: &Proxy, bound: Duration) -> Option<super::lease::Seen> {
    let snap = proxy.runtime.snapshot.load_full();
    let body = serde_json::to_string(&Tallies::local(&snap)).unwrap_or_default();
    let wall = wall_ms();
    let put = tokio::time::timeout(bound, fleet.store.put_tally(&fleet.replica_id, wall, body)).await;
    let put_error = match put {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer within {} ms", bound.as_millis())),
    };
    let put_ok = put_error.is_none();
    fleet.metrics.count(0, put_ok);
    let read = tokio::time::timeout(bound, fleet.store.read()).await;
    let read = match read {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", bound.as_millis())),
    };
    fleet.metrics.count(1, read.is_ok());
    let old = fleet.state.load_full();
    let error = put_error.or_else(|| read.as_ref().err().cloned());
    if error.is_some() {
        fleet.metrics.up.set(0.0);
    }
    match (&error, &old.degraded) {
        (Some(e), None) => {
            tracing::warn!(error = %e, "fleet table unreachable: counters stay in memory, the guard evaluates locally")
        }
        (None, Some(_)) => tracing::info!("fleet table reachable again: fleet-wide counters and guard resumed"),
        _ => {}
    }
    let mut next = State {
        view: old.view.clone(),
        acc: old.acc.clone(),
        read_at: old.read_at,
        degraded: error,
        holder: old.holder.clone(),
        last_flush_ms: if put_ok { Some(wall) } else { old.last_flush_ms },
    };
    let mut seen = None;
    if let Ok(r) = read {
        if r.undecodable > 0 {
            tracing::warn!(items = r.undecodable, "fleet items that could not be read were skipped");
        }
        next.acc.update(&r.records);
        next.view = merge::view(&r.records, wall_ms(), fleet.cfg.flush_interval_ms);
        next.read_at = Some(Instant::now());
        next.holder = r.lease.as_ref().filter(|l| l.expires_at_ms > wall).map(|l| l.holder.clone());
        fleet.metrics.replicas.set(next.view.replicas.len() as f64);
        if fleet.is_leader() {
            collect_garbage(fleet, &r.records, bound).await;
        }
        seen = r.lease;
    }
    fleet.state.store(Arc::new(next));
    seen
}

/// The lease holder deletes counters of replicas silent for [`GC_INTERVALS`] intervals, so the
/// one Query per interval stays small however many tasks were replaced.
async fn collect_garbage(fleet: &Fleet, records: &[merge::ReplicaRecord], bound: Duration) {
    let cutoff = wall_ms().saturating_sub(GC_INTERVALS * fleet.cfg.flush_interval_ms);
    for r in records.iter().filter(|r| r.flushed_at_ms < cutoff) {
        match tokio::time::timeout(bound, fleet.store.delete_tally(&r.id, r.flushed_at_ms)).await {
            Ok(Ok(())) => tracing::info!(replica = %r.id, "removed a silent replica's fleet counters"),
            _ => return,
        }
    }
}

/// Publishes the live version's split; returns the version once it is in the table.
async fn publish_split(fleet: &Fleet, proxy: &Proxy, bound: Duration) -> Option<u64> {
    let record = crate::runtime::split_record(&proxy.runtime.snapshot.load());
    match tokio::time::timeout(bound, fleet.store.put_split(&record, wall_ms())).await {
        Ok(Ok(())) => Some(record.version),
        _ => None,
    }
}

/// Learns the layouts other replicas published (versions this one never served).
async fn load_splits(fleet: &Fleet, proxy: &Proxy, bound: Duration) {
    if let Ok(Ok(records)) = tokio::time::timeout(bound, fleet.store.splits(None)).await {
        proxy.runtime.remember(records);
    }
}
