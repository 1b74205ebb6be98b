//! The admin API on the admin listener: live config, weight edits (with dry run), promote,
//! rollback, audit, status — all behind bearer tokens — plus the automatic guard.

pub mod audit;
mod change;
pub mod edit;
mod error;
mod file;
pub mod guard_task;
pub(crate) mod routes;

pub use change::change;
pub use error::AdminError;
pub use routes::handle;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use crate::aws::dynamo::ConfigTable;
use crate::config::RawConfig;
use crate::split::BUCKETS;

/// Requests per bucket in the current and previous half hour: "the last hour's users", cheaply.
pub struct Traffic {
    halves: [Box<[AtomicU32]>; 2],
    current: AtomicUsize,
}

impl Default for Traffic {
    fn default() -> Self {
        let half = || (0..BUCKETS).map(|_| AtomicU32::new(0)).collect::<Vec<_>>().into_boxed_slice();
        Traffic { halves: [half(), half()], current: AtomicUsize::new(0) }
    }
}

impl Traffic {
    #[inline]
    pub fn record(&self, bucket: u32) {
        let half = &self.halves[self.current.load(Ordering::Relaxed) & 1];
        if let Some(c) = half.get(bucket as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Starts a new half hour: the older half is cleared and becomes current.
    pub fn rotate(&self) {
        let next = (self.current.load(Ordering::Relaxed) + 1) & 1;
        for c in self.halves[next].iter() {
            c.store(0, Ordering::Relaxed);
        }
        self.current.store(next, Ordering::Relaxed);
    }

    /// Requests per bucket over the last hour.
    pub fn counts(&self) -> Vec<u64> {
        (0..BUCKETS as usize)
            .map(|i| {
                u64::from(self.halves[0][i].load(Ordering::Relaxed))
                    + u64::from(self.halves[1][i].load(Ordering::Relaxed))
            })
            .collect()
    }
}

/// Process-wide admin state.
pub struct AdminState {
    pub audit: audit::AuditLog,
    /// One change at a time per process (the file watcher takes it too, so it never applies a
    /// text older than a change made meanwhile); across replicas the file lock or the DynamoDB
    /// version condition serialises.
    pub(crate) lock: tokio::sync::Mutex<()>,
    /// SHA-256 of `SPLITGATE_ADMIN_TOKEN`, read once at start.
    env_token: Option<[u8; 32]>,
    /// Set by `serve` when the source of truth is DynamoDB: the table and the file's static part.
    pub dynamo: std::sync::OnceLock<(ConfigTable, RawConfig)>,
    /// Set by `serve`: where a config with the demo key may serve; every reload is checked too.
    pub demo_policy: std::sync::OnceLock<crate::auth::DemoPolicy>,
}

impl AdminState {
    pub fn new(audit_log: Option<PathBuf>) -> AdminState {
        let env_token = std::env::var("SPLITGATE_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .map(|t| Sha256::digest(t.as_bytes()).into());
        AdminState {
            audit: audit::AuditLog::new(audit_log),
            lock: tokio::sync::Mutex::new(()),
            env_token,
            dynamo: std::sync::OnceLock::new(),
            demo_policy: std::sync::OnceLock::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_rotates_by_halves() {
        let t = Traffic::default();
        t.record(5);
        t.record(5);
        t.rotate();
        t.record(5);
        assert_eq!(t.counts()[5], 3, "the last hour spans both halves");
        t.rotate();
        assert_eq!(t.counts()[5], 1, "the oldest half is forgotten");
        t.record(BUCKETS + 7);
        assert_eq!(t.counts().iter().sum::<u64>(), 1, "out-of-range buckets are ignored");
    }
}
