//! Disagreement capture: a rate-limited sample of shadow/primary differences as JSON lines in a
//! size-rotated file. Writes happen on a dedicated thread; the shadow task only `try_send`s.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::Instant;

use crate::config::CapturePlan;
use crate::throttle::{Gcra, TokenBucket};

/// A capture file's writer thread plus the limiter in front of it.
pub struct Capture {
    tx: SyncSender<String>,
    limiter: TokenBucket,
    clock: Instant,
    pub plan: CapturePlan,
}

impl Capture {
    /// Opens (creating) the file and starts its writer thread.
    pub fn open(plan: CapturePlan) -> std::io::Result<Arc<Capture>> {
        let file = open_append(&plan.path)?;
        let (tx, rx) = sync_channel(1_024);
        let (path, max, files) = (plan.path.clone(), plan.max_bytes, plan.files);
        std::thread::Builder::new()
            .name("shadow-capture".into())
            .spawn(move || write_loop(rx, file, &path, max, files))?;
        let burst = plan.per_second.ceil().max(1.0) as u32;
        Ok(Arc::new(Capture {
            tx,
            limiter: TokenBucket::new(Gcra::new(plan.per_second, burst)),
            clock: Instant::now(),
            plan,
        }))
    }

    /// Whether a record may be written now (consumes a token if so).
    pub fn allow(&self) -> bool {
        self.limiter.try_acquire(self.clock.elapsed().as_nanos() as u64).is_ok()
    }

    /// Queues one line (without newline); dropped if the writer is behind.
    pub fn write(&self, line: String) {
        let _ = self.tx.try_send(line);
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn write_loop(rx: Receiver<String>, mut file: File, path: &Path, max_bytes: u64, files: u32) {
    let mut size = file.metadata().map(|m| m.len()).unwrap_or(0);
    while let Ok(line) = rx.recv() {
        let len = line.len() as u64 + 1;
        if size > 0 && size + len > max_bytes {
            // path.N-1 → path.N, …, path → path.1; the oldest falls off.
            for n in (1..files).rev() {
                let _ = std::fs::rename(rotated(path, n), rotated(path, n + 1));
            }
            let _ = std::fs::rename(path, rotated(path, 1));
            match open_append(path) {
                Ok(f) => {
                    file = f;
                    size = 0;
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "shadow capture file cannot be reopened; capture stops");
                    return;
                }
            }
        }
        if file.write_all(line.as_bytes()).and_then(|_| file.write_all(b"\n")).is_ok() {
            size += len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_n_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cap.jsonl");
        let plan = CapturePlan {
            path: path.clone(),
            below_overlap: 1.0,
            per_second: 1e6,
            max_bytes: 4_096,
            files: 2,
            raw_user_id: false,
        };
        let cap = Capture::open(plan).unwrap();
        for i in 0..100 {
            cap.write(format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(200)));
        }
        drop(cap);
        // The writer thread drains after the sender is gone. Poll for the whole end state: a
        // check of one file at a time can land mid-rotation (path.1 renamed away, path not yet).
        let settled = || {
            rotated(&path, 1).exists()
                && rotated(&path, 2).exists()
                && std::fs::metadata(&path).map(|m| m.len() > 0).unwrap_or(false)
        };
        for _ in 0..250 {
            if settled() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(settled(), "two rotated files and a live one");
        assert!(std::fs::metadata(&path).unwrap().len() <= 4_096);
        assert!(!rotated(&path, 3).exists());
    }

    #[test]
    fn rate_limited() {
        let dir = tempfile::tempdir().unwrap();
        let plan = CapturePlan {
            path: dir.path().join("c"),
            below_overlap: 1.0,
            per_second: 5.0,
            max_bytes: 1 << 20,
            files: 1,
            raw_user_id: false,
        };
        let cap = Capture::open(plan).unwrap();
        let allowed = (0..100).filter(|_| cap.allow()).count();
        assert_eq!(allowed, 5);
    }
}
