//! The admin API on the admin listener: live config, weight edits (with dry run), promote,
//! rollback, audit, status — all behind bearer tokens — plus the automatic guard, the SRM watch
//! (`srm_task`), and the dashboard page (`ui`) with the samplers that feed it (`series`,
//! `guard_view`).

pub mod audit;
mod audit_view;
mod change;
pub mod edit;
mod error;
mod file;
pub mod guard_task;
mod guard_view;
pub mod interleaving;
pub(crate) mod routes;
pub mod series;
pub mod srm_task;
mod ui;
pub mod views;

pub use change::change;
pub use error::AdminError;
pub use routes::handle;

use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};

use crate::aws::dynamo::ConfigTable;
use crate::config::RawConfig;
use crate::proxy::Proxy;

/// The admin service on the admin listener: the proxy it edits, and the state it owns — the
/// audit trail, the operator token from the environment, and (with a DynamoDB source) the
/// config table and the file's static part. The guard and the ramp act through it too.
pub struct Admin {
    pub proxy: Arc<Proxy>,
    pub audit: audit::AuditLog,
    /// SHA-256 of `SPLITGATE_ADMIN_TOKEN`, read once at start.
    pub(crate) env_token: Option<[u8; 32]>,
    /// Set at start-up when the source of truth is DynamoDB: the table and the static part.
    pub dynamo: OnceLock<(ConfigTable, RawConfig)>,
    /// Set at start-up with `[fleet]`: shared counters and the guard lease.
    pub fleet: OnceLock<Arc<crate::fleet::Fleet>>,
    /// The dashboard's sparklines (written by `series::spawn` every 10 s).
    pub(crate) series: Mutex<crate::series::Series>,
    /// What the guard loop saw last (`guard_view`); `Null` until it first runs.
    pub(crate) guard_view: Mutex<serde_json::Value>,
}

impl Admin {
    pub fn new(proxy: Arc<Proxy>) -> Admin {
        let env_token = std::env::var("SPLITGATE_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .map(|t| Sha256::digest(t.as_bytes()).into());
        let audit_log = proxy.runtime.snapshot.load().plan.audit_log.clone();
        Admin {
            audit: audit::AuditLog::new(audit_log),
            env_token,
            dynamo: OnceLock::new(),
            fleet: OnceLock::new(),
            series: Mutex::default(),
            guard_view: Mutex::default(),
            proxy,
        }
    }
}
