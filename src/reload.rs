//! Hot reload: build a whole new snapshot from new config text, validate, swap — or keep the last
//! good one and say why. The file watcher reacts to directory events (editors that write a temp
//! file and rename it, ConfigMaps that swap a symlink) and re-reads every second as a safety net.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use notify::{RecursiveMode, Watcher};
use sha2::{Digest, Sha256};

use crate::auth::to_hex;
use crate::config::{self, ConfigError};
use crate::proxy::{Proxy, ReloadStatus};
use crate::snapshot::{Origin, Snapshot, Source};

/// How often the file is re-read even without a change event.
const POLL: Duration = Duration::from_secs(1);
/// Events come in bursts while a file is written; wait this long for the burst to end.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// First 16 hex digits of the text's SHA-256: identifies a config in `/health` and logs.
pub fn digest(text: &[u8]) -> String {
    to_hex(&Sha256::digest(text)[..8])
}

/// Parses, validates and swaps in `text`. On any problem the live snapshot is untouched, the
/// rejection is counted and recorded for `/health`, and the reasons are returned.
pub fn apply(proxy: &Proxy, text: &str, source: Source) -> Result<u64, ConfigError> {
    let outcome =
        config::parse(text).and_then(|raw| config::validate(&raw).map_err(ConfigError::Invalid));
    let plan = match outcome {
        Ok(plan) => plan,
        Err(e) => {
            proxy.metrics.reloads_rejected.increment(1);
            let old = proxy.reload.load();
            proxy.reload.store(Arc::new(ReloadStatus {
                last_error: Some(e.to_string()),
                last_error_at: Some(SystemTime::now()),
                rejected: old.rejected + 1,
                applied: old.applied,
            }));
            return Err(e);
        }
    };
    let current = proxy.snapshot.load_full();
    for (what, old, new) in [
        (
            "server.listen",
            current.plan.server.listen.as_str(),
            plan.server.listen.as_str(),
        ),
        (
            "server.admin_listen",
            &current.plan.server.admin_listen,
            &plan.server.admin_listen,
        ),
    ] {
        if old != new {
            tracing::warn!(
                field = what,
                old,
                new,
                "listener change needs a restart; still serving on the old address"
            );
        }
    }
    if current.plan.server.workers != plan.server.workers
        || current.plan.server.max_connections != plan.server.max_connections
    {
        tracing::warn!("server.workers / server.max_connections changes need a restart");
    }
    let version = plan.version.unwrap_or(current.version + 1);
    let origin = Origin {
        version,
        digest: digest(text.as_bytes()),
        source,
    };
    let next = Snapshot::build(plan, origin, proxy.deps(), Some(&current));
    proxy.snapshot.store(Arc::new(next));
    proxy.metrics.reloads_applied.increment(1);
    proxy.metrics.config_version.set(version as f64);
    let old = proxy.reload.load();
    proxy.reload.store(Arc::new(ReloadStatus {
        applied: old.applied + 1,
        ..(**old).clone()
    }));
    Ok(version)
}

/// Watches `path` and applies every new, different content. Keeps running for the process life.
pub fn watch_file(proxy: Arc<Proxy>, path: PathBuf, initial_text: &str) -> notify::Result<()> {
    let wake = Arc::new(tokio::sync::Notify::new());
    let waker = wake.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            waker.notify_one();
        }
    })?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    let mut last = digest(initial_text.as_bytes());
    tokio::spawn(async move {
        let _keep_alive = watcher;
        let mut last_read_error: Option<String> = None;
        loop {
            tokio::select! {
                _ = wake.notified() => tokio::time::sleep(DEBOUNCE).await,
                _ = tokio::time::sleep(POLL) => {}
            }
            let text = match tokio::fs::read_to_string(&path).await {
                Ok(t) => {
                    last_read_error = None;
                    t
                }
                Err(e) => {
                    let msg = e.to_string();
                    if last_read_error.as_deref() != Some(msg.as_str()) {
                        tracing::warn!(path = %path.display(), error = %msg, "config file unreadable; keeping the last good config");
                        last_read_error = Some(msg);
                    }
                    continue;
                }
            };
            let d = digest(text.as_bytes());
            if d == last {
                continue;
            }
            last = d.clone();
            match apply(&proxy, &text, Source::File(path.display().to_string())) {
                Ok(version) => tracing::info!(version, digest = %d, "config reloaded"),
                Err(e) => {
                    tracing::error!(digest = %d, "config rejected, keeping the last good one: {e}")
                }
            }
        }
    });
    Ok(())
}
