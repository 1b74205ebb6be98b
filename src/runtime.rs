//! The live config of one process: the one snapshot every request loads once at entry, what the
//! last reload attempts did (for the admin `/health`), the lock that serialises config changes in
//! this process, and where a config holding the demo key may serve. `reload` and the admin
//! service write it; the request path only reads the snapshot.

use std::sync::OnceLock;
use std::time::SystemTime;

use arc_swap::ArcSwap;

use crate::auth::DemoPolicy;
use crate::snapshot::Snapshot;
use crate::split::history::{History, Recorded, RecordedVariant, SplitRecord};

/// Outcome of the reload attempts so far, for the admin `/health`. Only `reload` writes it.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    pub last_error: Option<String>,
    pub last_error_at: Option<SystemTime>,
    pub rejected: u64,
    pub applied: u64,
    /// Set while the config source (DynamoDB) cannot be read: serving continues, degraded.
    pub source_error: Option<String>,
    /// Settings changed by a reload that only a restart applies (`config::RESTART_REQUIRED`).
    pub restart_pending: Vec<&'static str>,
}

pub struct Runtime {
    /// Everything hot-reloadable, swapped whole.
    pub snapshot: ArcSwap<Snapshot>,
    /// Written by `reload` only.
    pub status: ArcSwap<ReloadStatus>,
    /// One change at a time per process (an operator's edit, the guard, the ramp, the file
    /// watcher — so it never applies a text older than a change made meanwhile); across replicas
    /// the file lock or the DynamoDB version condition serialises.
    pub(crate) changes: tokio::sync::Mutex<()>,
    /// Set at start-up: where a config with the demo key may serve; every reload is checked too.
    pub demo_policy: OnceLock<DemoPolicy>,
    /// The split layouts of recent versions (this process's, plus the fleet's published ones),
    /// for feedback attribution by the version that served. Copy-on-write: feedback only reads.
    pub history: ArcSwap<History>,
}

impl Runtime {
    pub fn new(first: Snapshot) -> Runtime {
        let record = split_record(&first);
        let runtime = Runtime {
            snapshot: ArcSwap::from_pointee(first),
            status: ArcSwap::from_pointee(ReloadStatus::default()),
            changes: tokio::sync::Mutex::new(()),
            demo_policy: OnceLock::new(),
            history: ArcSwap::from_pointee(History::default()),
        };
        runtime.remember([record]);
        runtime
    }

    /// Installs a new snapshot and remembers its split.
    pub fn install(&self, next: Snapshot) {
        let record = split_record(&next);
        self.snapshot.store(std::sync::Arc::new(next));
        self.remember([record]);
    }

    /// Adds split layouts (this process's or ones the fleet published) to the history.
    pub fn remember(&self, records: impl IntoIterator<Item = SplitRecord>) {
        let fresh: Vec<Recorded> = {
            let known = self.history.load();
            records.into_iter().filter(|r| !known.contains(r.version)).filter_map(Recorded::new).collect()
        };
        if fresh.is_empty() {
            return;
        }
        self.history.rcu(|old| {
            let mut h = History::clone(old);
            for r in &fresh {
                h.insert(r.clone());
            }
            h
        });
    }
}

/// The split a snapshot serves, as the history records it.
pub fn split_record(snap: &Snapshot) -> SplitRecord {
    let p = &snap.plan;
    SplitRecord {
        version: snap.version,
        salt: p.salt.clone(),
        variants: p
            .variants
            .iter()
            .enumerate()
            .map(|(i, v)| RecordedVariant {
                name: v.name.clone(),
                buckets: v.buckets,
                champion: v.champion,
                slot: p.layout.slot(i).map(|s| (s.start, s.end)),
            })
            .collect(),
    }
}
