//! The live config of one process: the one snapshot every request loads once at entry, what the
//! last reload attempts did (for the admin `/health`), the lock that serialises config changes in
//! this process, and where a config holding the demo key may serve. `reload` and the admin
//! service write it; the request path only reads the snapshot.

use std::sync::OnceLock;
use std::time::SystemTime;

use arc_swap::ArcSwap;

use crate::auth::DemoPolicy;
use crate::snapshot::Snapshot;

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
}

impl Runtime {
    pub fn new(first: Snapshot) -> Runtime {
        Runtime {
            snapshot: ArcSwap::from_pointee(first),
            status: ArcSwap::from_pointee(ReloadStatus::default()),
            changes: tokio::sync::Mutex::new(()),
            demo_policy: OnceLock::new(),
        }
    }
}
