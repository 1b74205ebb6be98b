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
use crate::proxy::Proxy;
use crate::runtime::ReloadStatus;
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
    if let Some(Err(e)) = proxy.runtime.demo_policy.get().map(|p| p.check(plan.keys.iter().map(|(d, _)| d))) {
        return Err(reject(proxy, e.into()));
    }
    proxy.shared.aws.prepare(&plan, &proxy.shared.client).await;
    let current = proxy.runtime.snapshot.load_full();
    // Settings read only at start-up keep their old values until a restart: say which (the
    // log, and the admin `/health` until the process restarts).
    let restart = config::restart_required(&current.plan, &plan);
    if !restart.is_empty() {
        tracing::warn!(settings = ?restart, "applied, but these settings keep their old values until a restart");
    }
    let version = plan.version.unwrap_or(current.version + 1);
    let origin = Origin { version, digest, source };
    let next = Snapshot::build(plan, origin, proxy.shared.deps(), Some(&current));
    proxy.runtime.install(next);
    proxy.shared.metrics.reloads_applied.increment(1);
    proxy.shared.metrics.config_version.set(version as f64);
    update(proxy, |s| {
        s.applied += 1;
        s.last_error = None;
        s.last_error_at = None;
        for name in &restart {
            if !s.restart_pending.contains(name) {
                s.restart_pending.push(name);
            }
        }
    });
    Ok(version)
}

/// Longest rejection reason kept for the admin `/health`: a reason is for a human, and must not
/// let a huge config make every health answer huge.
const MAX_REASON_BYTES: usize = 1024;

/// `reason` cut to at most [`MAX_REASON_BYTES`] bytes, on a character boundary, marked with `…`.
fn capped(mut reason: String) -> String {
    if reason.len() > MAX_REASON_BYTES {
        let mut end = MAX_REASON_BYTES - '…'.len_utf8();
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push('…');
    }
    reason
}

fn reject(proxy: &Proxy, e: ConfigError) -> ConfigError {
    proxy.shared.metrics.reloads_rejected.increment(1);
    let msg = capped(e.to_string());
    update(proxy, |s| {
        s.rejected += 1;
        s.last_error = Some(msg.clone());
        s.last_error_at = Some(SystemTime::now());
    });
    e
}

fn update(proxy: &Proxy, f: impl Fn(&mut ReloadStatus)) {
    proxy.runtime.status.rcu(|old| {
        let mut s = (**old).clone();
        f(&mut s);
        s
    });
}

fn source_health(proxy: &Proxy, error: Option<String>) {
    proxy.shared.metrics.source_up.set(if error.is_none() { 1.0 } else { 0.0 });
    if error.is_some() {
        proxy.shared.metrics.source_errors.increment(1);
    }
    update(proxy, |s| s.source_error = error.clone());
}

/// Watches `path` and applies every new, different content. Keeps running for the process life.
pub fn watch_file(proxy: Arc<Proxy>, path: PathBuf, initial_text: &str) -> notify::Result<()> {
    let wake = Arc::new(tokio::sync::Notify::new());
    let waker = wake.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        use notify::event::{AccessKind, AccessMode, EventKind};
        // Opening and reading a file are events too (inotify IN_OPEN, IN_CLOSE_NOWRITE): waking
        // on them would make our own read wake us again, forever, every DEBOUNCE.
        let read_only = |k: &EventKind| matches!(k, EventKind::Access(a) if *a != AccessKind::Close(AccessMode::Write));
        if event.is_ok_and(|e| !read_only(&e.kind)) {
            waker.notify_one();
        }
    })?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    let mut last = digest(initial_text.as_bytes());
    tokio::spawn(async move {
        let _keep_alive = watcher;
        let mut last_read_error: Option<String> = None;
        // The file as last read; `None` until the first poll (start-up read it without a stamp).
        let mut seen: Option<Stamp> = None;
        loop {
            tokio::select! {
                _ = wake.notified() => tokio::time::sleep(DEBOUNCE).await,
                _ = tokio::time::sleep(POLL) => {}
            }
            let stamp = match tokio::fs::metadata(&path).await {
                Ok(m) => Stamp::of(&m),
                Err(e) => {
                    report_unreadable(&proxy, &path, e, &mut last_read_error);
                    continue;
                }
            };
            // An unchanged file costs this one stat, not a read and a hash.
            if seen.as_ref() == Some(&stamp) && !stamp.recent() {
                continue;
            }
            let max = proxy.runtime.snapshot.load().plan.server.max_config_bytes;
            if stamp.len > max as u64 {
                // Refused from its size alone, once per version of the file: never opened.
                if seen.as_ref() != Some(&stamp) {
                    let e = ConfigError::TooLarge { path: path.display().to_string(), max };
                    tracing::error!("config rejected, keeping the last good one: {e}");
                    reject(&proxy, e);
                    seen = Some(stamp);
                }
                continue;
            }
            // Not while this replica's admin API is mid-change: a text read before its write
            // and applied after it would turn the live config back by one version.
            let _no_change_meanwhile = proxy.runtime.changes.lock().await;
            let file = path.clone();
            let read = tokio::task::spawn_blocking(move || config::read_limited(&file, max)).await;
            let text = match read {
                Ok(Ok(t)) => {
                    last_read_error = None;
                    seen = Some(stamp);
                    t
                }
                Ok(Err(e @ ConfigError::TooLarge { .. })) => {
                    // It grew between the stat and the read; the stamp is kept, so not re-read.
                    seen = Some(stamp);
                    tracing::error!(path = %path.display(), "config rejected, keeping the last good one: {e}");
                    reject(&proxy, e);
                    continue;
                }
                Ok(Err(ConfigError::Read { source, .. })) => {
                    report_unreadable(&proxy, &path, source, &mut last_read_error);
                    continue;
                }
                Ok(Err(e)) => {
                    tracing::error!(path = %path.display(), "config rejected, keeping the last good one: {e}");
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "config read task failed");
                    continue;
                }
            };
            let d = digest(text.as_bytes());
            // Also skip what is already live: the admin API writes the file and applies it itself.
            // A file put back to the live text makes an earlier rejection stale: clear it, or the
            // admin `/health` would show a reason that no longer describes the file.
            let live = d == proxy.runtime.snapshot.load().digest;
            if live && proxy.runtime.status.load().last_error.is_some() {
                update(&proxy, |s| {
                    s.last_error = None;
                    s.last_error_at = None;
                });
            }
            if d == last || live {
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

/// Counts and shows an unreadable file like a rejected config (so alerting sees it), once per
/// distinct error.
fn report_unreadable(proxy: &Proxy, path: &Path, e: std::io::Error, last: &mut Option<String>) {
    let msg = e.to_string();
    if last.as_deref() != Some(msg.as_str()) {
        tracing::warn!(path = %path.display(), error = %msg, "config file unreadable; keeping the last good config");
        reject(proxy, ConfigError::Read { path: path.display().to_string(), source: e });
        *last = Some(msg);
    }
}

/// Within this long of its modification a file is read even with an unchanged [`Stamp`]: a
/// same-size rewrite inside the filesystem's timestamp granularity keeps mtime and size (git's
/// "racy clean" rule).
const RACY: Duration = Duration::from_secs(2);

/// What a `stat()` says about the file: a change to any of these means "read it again". The
/// inode and device catch a rename over the file (editors, the admin API, ConfigMap swaps).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
    device: u64,
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let (inode, device) = {
            use std::os::unix::fs::MetadataExt;
            (m.ino(), m.dev())
        };
        #[cfg(not(unix))]
        let (inode, device) = (0, 0);
        Stamp { modified: m.modified().ok(), len: m.len(), inode, device }
    }

    /// Modified too recently (or at an unknown or future time) to trust the stamp alone.
    fn recent(&self) -> bool {
        self.modified.is_none_or(|t| SystemTime::now().duration_since(t).map_or(true, |age| age < RACY))
    }
}

/// The file's static part combined with a DynamoDB document at `version`.
pub fn combine(file: &RawConfig, version: u64, document: &str) -> Result<RawConfig, ConfigError> {
    let hot: HotConfig = config::parse_as(document, Some(&format!("DynamoDB document v{version}")))?;
    Ok(file.with_hot(hot, version))
}

/// Polls the DynamoDB item every `poll`; applies each new version, rejects bad ones (once per
/// version), and while DynamoDB fails keeps serving, reports degraded and backs off.
pub fn watch_dynamodb(proxy: Arc<Proxy>, file: RawConfig, table: ConfigTable, poll: Duration, source: Source) {
    tokio::spawn(async move {
        let mut seen = proxy.runtime.snapshot.load().version;
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
            if version.is_none_or(|v| v == seen || v == proxy.runtime.snapshot.load().version) {
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
