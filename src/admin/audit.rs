//! The audit trail: every operator or guard change, as JSON lines in a file and a bounded
//! in-memory tail for `GET /admin/audit`.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::Serialize;

/// One change.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub time: String,
    /// The admin token's name, or `guard` for automatic rollbacks.
    pub who: String,
    pub action: String,
    pub reason: Option<String>,
    pub change: serde_json::Value,
    pub old_version: u64,
    pub new_version: u64,
}

const TAIL: usize = 1_000;

pub struct AuditLog {
    path: Option<PathBuf>,
    tail: Mutex<VecDeque<Record>>,
}

impl AuditLog {
    pub fn new(path: Option<PathBuf>) -> AuditLog {
        AuditLog { path, tail: Mutex::new(VecDeque::with_capacity(64)) }
    }

    /// Appends `record` to the file (if configured) and the tail. Admin-path only, never per request.
    pub async fn append(&self, record: Record) {
        if let Some(path) = self.path.clone() {
            let line = serde_json::to_string(&record).unwrap_or_default();
            let written = tokio::task::spawn_blocking(move || {
                let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
                writeln!(f, "{line}")?;
                f.sync_data()
            })
            .await;
            if !matches!(written, Ok(Ok(()))) {
                tracing::error!(?written, "could not write the audit log");
            }
        }
        let mut tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        if tail.len() == TAIL {
            tail.pop_front();
        }
        tail.push_back(record);
    }

    /// The most recent records, newest last.
    pub fn recent(&self, limit: usize) -> Vec<Record> {
        let tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        tail.iter().skip(tail.len().saturating_sub(limit)).cloned().collect()
    }
}
