//! Fleet-wide truth (`[fleet]`): every replica's counters and one guard lease in one DynamoDB
//! table, so the numbers operators read and the guard's automatic decisions cover all replicas.
//!
//! - [`merge`] (pure): fleet views and the guard's ever-growing fleet samples, from the
//!   replicas' cumulative records;
//! - [`lease`] (pure): the lease state machine — who may act, and when to write;
//! - [`store`]: the DynamoDB edge (one put and one query per interval, the lease's conditional
//!   put, published split layouts);
//! - [`task`]: the loop that flushes, reads, renews and publishes, off the request path.
//!
//! Nothing here touches a request: the fleet reads the same relaxed-atomic counters the
//! recorder's sinks already keep (`tally::Tallies::local`), so the request path is unchanged.

pub mod lease;
pub mod merge;
pub mod replica;
pub mod store;
pub mod task;

use std::sync::Mutex;
use std::time::Instant;

use arc_swap::ArcSwap;
use serde_json::{json, Value};

use crate::config::FleetConfig;
use crate::guard::Sample;
use crate::tally::Tallies;

/// What the last rounds of the loop learned, swapped whole.
#[derive(Debug, Default)]
pub struct State {
    pub view: merge::FleetView,
    pub acc: merge::Accumulator,
    /// When the table was last read successfully (monotonic), `None` before the first read.
    pub read_at: Option<Instant>,
    /// Why the fleet is degraded (the last DynamoDB failure), if it is.
    pub degraded: Option<String>,
    /// The lease holder as last read (another replica, or this one).
    pub holder: Option<String>,
    pub last_flush_ms: Option<u64>,
}

pub struct Fleet {
    pub replica_id: String,
    pub cfg: FleetConfig,
    store: store::Store,
    pub(crate) state: ArcSwap<State>,
    lease: Mutex<lease::Lease>,
    clock: Instant,
    metrics: task::FleetMetrics,
}

impl Fleet {
    pub fn new(cfg: FleetConfig, replica_id: String, store: store::Store, metrics: &crate::metrics::Metrics) -> Fleet {
        let lease = lease::Lease::new(cfg.lease_ms, cfg.flush_interval_ms);
        Fleet {
            metrics: task::FleetMetrics::new(metrics, &replica_id),
            replica_id,
            cfg,
            store,
            state: ArcSwap::from_pointee(State::default()),
            lease: Mutex::new(lease),
            clock: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }

    fn lease(&self) -> std::sync::MutexGuard<'_, lease::Lease> {
        self.lease.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this replica holds a valid lease right now: only then may it act for the fleet.
    pub fn is_leader(&self) -> bool {
        let now = self.now_ms();
        self.lease().is_leader(now)
    }

    /// Whether the fleet counters are current: the table was read within the last two intervals.
    pub fn healthy(&self) -> bool {
        let s = self.state.load();
        s.degraded.is_none()
            && s.read_at.is_some_and(|t| t.elapsed().as_millis() as u64 <= 2 * self.cfg.flush_interval_ms)
    }

    /// The fleet's merged counters (as of the last read).
    pub fn merged(&self) -> Tallies {
        self.state.load().view.merged.clone()
    }

    /// The fleet's cumulative outcomes for `variant`, for the guard's windows.
    pub fn sample(&self, variant: &str, at_ms: u64) -> Sample {
        self.state.load().acc.sample(variant, at_ms)
    }

    /// The lease holder, if any is known.
    pub fn leader(&self) -> Option<String> {
        if self.is_leader() {
            return Some(self.replica_id.clone());
        }
        self.state.load().holder.clone().filter(|h| *h != self.replica_id)
    }

    /// `"scope": "fleet"` plus who counted: added to every fleet-scoped admin view.
    pub fn describe(&self) -> Value {
        let s = self.state.load();
        json!({
            "scope": "fleet",
            "replicas": s.view.replicas.len(),
            "replica_flushes": s.view.replicas.iter().map(|r| json!({
                "id": r.id,
                "last_flush_ms": r.last_flush_ms,
                "last_flush": rfc3339(r.last_flush_ms),
            })).collect::<Vec<_>>(),
            "replica_id": self.replica_id,
            "leader": self.leader(),
            "fleet": if self.healthy() { "ok" } else { "degraded" },
        })
    }

    /// For the admin `/health`.
    pub fn health(&self) -> Value {
        let s = self.state.load();
        json!({
            "state": if self.healthy() { "ok" } else { "degraded" },
            "replica_id": self.replica_id,
            "leader": self.leader(),
            "is_leader": self.is_leader(),
            "replicas": s.view.replicas.len(),
            "last_flush_ms": s.last_flush_ms,
            "error": s.degraded,
        })
    }

    /// Gives the lease up on shutdown, so another replica takes over at once.
    pub async fn release(&self) {
        if self.is_leader() {
            // Stop acting first: from here on this replica makes no fleet decision.
            let now = self.now_ms();
            self.lease().wrote(now, lease::WriteResult::Held { holder: String::new() }, &self.replica_id);
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.store.release_lease(&self.replica_id))
                .await;
        }
    }
}

/// Wall-clock ms as RFC 3339 UTC.
pub fn rfc3339(ms: u64) -> String {
    aws_sdk_dynamodb::primitives::DateTime::from_millis(ms as i64)
        .fmt(aws_sdk_dynamodb::primitives::DateTimeFormat::DateTime)
        .unwrap_or_default()
}

/// Wall-clock ms now.
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
