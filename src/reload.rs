//! Hot reload: build a whole new snapshot from new config, validate, swap — or keep the last good
//! one and say why. Two sources: the config file (watched for directory events, so editors' rename
//! and ConfigMap symlink swaps are seen, and re-read every second as a safety net) and a DynamoDB
//! item (polled; the version is read first so an unchanged item costs one tiny read).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use notify::{RecursiveMode, Watcher};
use sha2::{Digest, Sha256};

use crate::auth::to_hex;
use crate::aws::dynamo::ConfigTable;
use crate::config::{self, ConfigError, HotConfig, RawConfig};
use crate::proxy::{Proxy, ReloadStatus};
use crate::snapshot::{Origin, Snapshot, Source};

/// How often the file is re-read even without a change event.
const POLL: Duration = Duration::from_secs(1);
/// Events come in bursts while a file is written; wait this long for the burst to end.
const DEBOUNCE: Duration = Duration::from_millis(50);
/// Longest wait between DynamoDB attempts while it is failing.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// First 16 hex digits of the text's SHA-256: identifies a config in `/health` and logs.
pub fn digest(text: &[u8]) -> String {
    to_hex(&Sha256::digest(text)[..8])
}

/// Parses file text and applies it (see [`apply_raw`]).
pub async fn apply(proxy: &Proxy, text: &str, source: Source) -> Result<u64, ConfigError> {
    match config::parse(text) {
        Ok(raw) => apply_raw(proxy, &raw, digest(text.as_bytes()), source).await,
        Err(e) => Err(reject(proxy, e)),
    }
}

/// Validates `raw` and swaps it in. On any problem the live snapshot is untouched, the rejection
/// is counted and recorded for `/health`, and the reasons are returned.
pub async fn apply_raw(proxy: &Proxy, raw: &RawConfig, digest: String, source: Source) -> Result<u64, ConfigError> {
    let plan = match config::validate(raw) {
        Ok(plan) => plan,
        Err(issues) => return Err(reject(proxy, ConfigError::Invalid(issues))),
    };
    proxy.aws.prepare(&plan).await;
    let current = proxy.snapshot.load_full();
    let (old, new) = (&current.plan.server, &plan.server);
    if old.listen != new.listen || old.admin_listen != new.admin_listen {
        tracing::warn!(old = %old.listen, new = %new.listen, "listener change needs a restart; still serving on the old address");
    }
    if old.workers != new.workers
        || old.max_connections != new.max_connections
        || old.idle_timeout_ms != new.idle_timeout_ms
        || old.max_header_bytes != new.max_header_bytes
    {
        tracing::warn!("server.workers / max_connections / idle_timeout_ms / max_header_bytes changes need a restart");
    }
    let version = plan.version.unwrap_or(current.version + 1);
    let origin = Origin { version, digest, source };
    let next = Snapshot::build(plan, origin, proxy.deps(), Some(&current));
    proxy.snapshot.store(Arc::new(next));
    proxy.metrics.reloads_applied.increment(1);
    proxy.metrics.config_version.set(version as f64);
    update(proxy, |s| s.applied += 1);
    Ok(version)
}

fn reject(proxy: &Proxy, e: ConfigError) -> ConfigError {
    proxy.metrics.reloads_rejected.increment(1);
    let msg = e.to_string();
    update(proxy, |s| {
        s.rejected += 1;
        s.last_error = Some(msg.clone());
        s.last_error_at = Some(SystemTime::now());
    });
    e
}

fn update(proxy: &Proxy, f: impl Fn(&mut ReloadStatus)) {
    proxy.reload.rcu(|old| {
        let mut s = (**old).clone();
        f(&mut s);
        s
    });
}

fn source_health(proxy: &Proxy, error: Option<String>) {
    proxy.metrics.source_up.set(if error.is_none() { 1.0 } else { 0.0 });
    if error.is_some() {
        proxy.metrics.source_errors.increment(1);
    }
    update(proxy, |s| s.source_error = error.clone());
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
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
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
            // Not while this replica's admin API is mid-change: a text read before its write
            // and applied after it would turn the live config back by one version.
            let _no_change_meanwhile = proxy.admin.lock.lock().await;
            let text = match tokio::fs::read_to_string(&path).await {
                Ok(t) => {
                    last_read_error = None;
                    t
                }
                Err(e) => {
                    let msg = e.to_string();
                    if last_read_error.as_deref() != Some(msg.as_str()) {
                        tracing::warn!(path = %path.display(), error = %msg, "config file unreadable; keeping the last good config");
                        // Counted and shown like a rejected config, so alerting sees it.
                        reject(&proxy, ConfigError::Read { path: path.display().to_string(), source: e });
                        last_read_error = Some(msg);
                    }
                    continue;
                }
            };
            let d = digest(text.as_bytes());
            // Also skip what is already live: the admin API writes the file and applies it itself.
            if d == last || d == proxy.snapshot.load().digest {
                last = d;
                continue;
            }
            last = d.clone();
            match apply(&proxy, &text, Source::File(path.display().to_string())).await {
                Ok(version) => tracing::info!(version, digest = %d, "config reloaded"),
                Err(e) => tracing::error!(digest = %d, "config rejected, keeping the last good one: {e}"),
            }
        }
    });
    Ok(())
}

/// The file's static part combined with a DynamoDB document at `version`.
pub fn combine(file: &RawConfig, version: u64, document: &str) -> Result<RawConfig, ConfigError> {
    let hot: HotConfig = toml::from_str(document)
        .map_err(|e| ConfigError::Syntax(format!("DynamoDB document v{version}: {}", e.to_string().trim_end())))?;
    Ok(file.with_hot(hot, version))
}

/// Polls the DynamoDB item every `poll`; applies each new version, rejects bad ones (once per
/// version), and while DynamoDB fails keeps serving, reports degraded and backs off.
pub fn watch_dynamodb(proxy: Arc<Proxy>, file: RawConfig, table: ConfigTable, poll: Duration, source: Source) {
    tokio::spawn(async move {
        let mut seen = proxy.snapshot.load().version;
        let mut delay = poll;
        loop {
            tokio::time::sleep(delay).await;
            let version = match table.version().await {
                Ok(v) => v,
                Err(e) => {
                    delay = (delay * 2).min(MAX_BACKOFF.max(poll));
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "config source unreachable; serving the last good config");
                    source_health(&proxy, Some(e.to_string()));
                    continue;
                }
            };
            delay = poll;
            source_health(&proxy, None);
            // Skip what is already live (this replica's admin API applies its own writes at once).
            if version.is_none_or(|v| v == seen || v == proxy.snapshot.load().version) {
                continue;
            }
            let (version, document) = match table.fetch().await {
                Ok(Some(item)) => item,
                Ok(None) => continue,
                Err(e) => {
                    source_health(&proxy, Some(e.to_string()));
                    continue;
                }
            };
            seen = version;
            let result = match combine(&file, version, &document) {
                Ok(raw) => apply_raw(&proxy, &raw, digest(document.as_bytes()), source.clone()).await,
                Err(e) => Err(reject(&proxy, e)),
            };
            match result {
                Ok(v) => tracing::info!(version = v, "config reloaded from DynamoDB"),
                Err(e) => tracing::error!(version, "DynamoDB config rejected, keeping the last good one: {e}"),
            }
        }
    });
}
