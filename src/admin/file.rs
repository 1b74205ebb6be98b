//! The config file as a source of truth shared by several replicas: an advisory lock on a sibling
//! lock file serialises read → check → write across processes, and a uniquely named temp file,
//! fsynced and renamed over the config, means a reader sees the old or the new text, never half.
//!
//! The lock is on `.<name>.splitgate-lock`, not on the config itself: the config is replaced by
//! rename, so a lock on its inode would protect a file nobody reads any more. The lock file is
//! never deleted (deleting it would let a late writer lock a fresh inode while another holds the
//! old one).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::error::AdminError;

/// Longest wait for another writer's lock before answering 503: a writer holds it for one read,
/// validate, fsync and rename, milliseconds normally.
const LOCK_WAIT: Duration = Duration::from_secs(3);
/// Longest pause between two attempts to take the lock.
const MAX_BACKOFF: Duration = Duration::from_millis(25);

/// Temp files written by this process so far; with the pid and the clock, a name no other
/// writer (thread or process) uses at the same time.
static TEMP_FILES: AtomicU64 = AtomicU64::new(0);

/// The exclusive right to edit one config file; released on [`Locked::release`] or drop.
pub struct Locked {
    /// Held open: the advisory lock lives as long as this descriptor. Shared with the blocking
    /// write, so a change abandoned mid-write (its future dropped) keeps the lock until the
    /// write has really finished.
    lock: Arc<File>,
    /// Where the config really lives (symlinks followed), so every replica locks the same file.
    target: PathBuf,
}

/// Where `path` really lives, and the lock file beside it.
fn target_and_lock(path: &Path) -> (PathBuf, PathBuf) {
    // Follow a symlinked config to lock and write where it really lives.
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let lock = sibling(&target, "splitgate-lock");
    (target, lock)
}

/// `.<name>.<suffix>` in the same directory as `path` (same filesystem, so rename is atomic).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("config");
    dir.join(format!(".{name}.{suffix}"))
}

/// Takes the advisory lock for `path`, waiting at most [`LOCK_WAIT`] (then 503).
pub async fn lock(path: &str) -> Result<Locked, AdminError> {
    lock_within(path, LOCK_WAIT).await
}

async fn lock_within(path: &str, wait: Duration) -> Result<Locked, AdminError> {
    let path = PathBuf::from(path);
    blocking(move || {
        let (target, lock_path) = target_and_lock(&path);
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(|source| {
            AdminError::File { what: "cannot open the lock file", path: lock_path.clone(), source }
        })?;
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(1);
        loop {
            match lock.try_lock() {
                Ok(()) => return Ok(Locked { lock: Arc::new(lock), target }),
                Err(TryLockError::WouldBlock) if Instant::now() + pause < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(MAX_BACKOFF);
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(AdminError::LockBusy { path: lock_path, waited_ms: wait.as_millis() as u64 })
                }
                Err(TryLockError::Error(source)) => {
                    return Err(AdminError::File { what: "cannot lock", path: lock_path, source })
                }
            }
        }
    })
    .await
}

impl Locked {
    /// The config text as it is on disk now, refused past `max` bytes.
    pub async fn read(&self, max: usize) -> Result<String, AdminError> {
        let target = self.target.clone();
        blocking(move || crate::config::read_limited(&target, max).map_err(AdminError::Config)).await
    }

    /// Replaces the config with `text`: unique temp file, fsync, rename, fsync of the directory.
    pub async fn write(&self, text: String) -> Result<(), AdminError> {
        let (target, held) = (self.target.clone(), self.lock.clone());
        blocking(move || {
            let _held = held;
            write_atomically(&target, &text).map_err(|source| AdminError::File {
                what: "writing",
                path: target,
                source,
            })
        })
        .await
    }

    /// Releases the lock (closing the descriptor is a syscall: off the async threads).
    pub async fn release(self) {
        let Locked { lock, .. } = self;
        let _ = tokio::task::spawn_blocking(move || {
            let _ = lock.unlock();
        })
        .await;
    }
}

fn write_atomically(target: &Path, text: &str) -> std::io::Result<()> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let n = TEMP_FILES.fetch_add(1, Ordering::Relaxed);
    let tmp = sibling(target, &format!("splitgate-tmp.{}.{n}.{nanos:09}", std::process::id()));
    let result = (|| {
        // create_new: should a name ever repeat, fail rather than write into someone's file.
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    // Persist the rename itself; a failure here leaves a correct file that may not survive a crash.
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// Runs blocking file work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AdminError> + Send + 'static,
) -> Result<T, AdminError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| Err(AdminError::Task(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_writer_waits_for_the_lock_and_temp_names_never_repeat() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("splitgate.toml");
        std::fs::write(&path, "a = 1\n").unwrap();
        let p = path.to_str().unwrap().to_owned();
        let first = lock(&p).await.unwrap();
        // The same process can't take it twice either: flock locks are per open file description.
        let second = tokio::spawn({
            let p = p.clone();
            async move {
                let l = lock(&p).await.unwrap();
                let text = l.read(1024).await.unwrap();
                l.release().await;
                text
            }
        });
        first.write("a = 2\n".into()).await.unwrap();
        assert!(!second.is_finished());
        first.release().await;
        assert_eq!(second.await.unwrap(), "a = 2\n", "the waiter reads what the holder wrote");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "config and lock file only, no temp left behind: {names:?}");
        assert_eq!(std::fs::read(&path).unwrap(), b"a = 2\n");
    }

    #[tokio::test]
    async fn a_lock_held_too_long_is_a_503_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("splitgate.toml");
        std::fs::write(&path, "a = 1\n").unwrap();
        let p = path.to_str().unwrap();
        let held = lock(p).await.unwrap();
        let e = lock_within(p, Duration::from_millis(50)).await.err().unwrap();
        assert_eq!((e.status(), e.code()), (http::StatusCode::SERVICE_UNAVAILABLE, "source_unavailable"));
        assert!(e.to_string().contains(".splitgate.toml.splitgate-lock"), "{e}");
        held.release().await;
        lock_within(p, Duration::from_millis(50)).await.unwrap().release().await;
    }
}
