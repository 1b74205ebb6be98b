//! Replays every saved fuzz input (`fuzz/regressions/<target>/*`) through the same checks the
//! fuzz targets run (`fuzz/checks.rs`), so a crash found once stays fixed, in every `cargo test`.
//!
//! File names carry expectations for config and request-head inputs: `ok-*` must parse and
//! validate (be accepted), `err-*` must be rejected (by the parser, the validator or the head
//! rules); anything else (fuzzer finds, `crash-*`, seeds)
//! only has to go through without a panic. An empty or missing directory fails the test: a replay
//! of nothing proves nothing.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions").join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} has no inputs", dir.display());
    files
}

/// Runs `check` on every input of `target`; fails naming every input that panicked.
fn replay(target: &str, check: fn(&Path, &[u8])) -> usize {
    let files = inputs(target);
    let failed: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let data = std::fs::read(path).unwrap();
            catch_unwind(AssertUnwindSafe(|| check(path, &data))).err().map(|e| {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                format!("{}: {msg}", path.display())
            })
        })
        .collect();
    assert!(failed.is_empty(), "{} of {} {target} inputs failed:\n{}", failed.len(), files.len(), failed.join("\n"));
    files.len()
}

#[test]
fn config_inputs() {
    let n = replay("config", |path, data| {
        checks::config(data);
        let name = path.file_name().unwrap().to_string_lossy();
        let outcome = std::str::from_utf8(data).ok().and_then(checks::config_outcome);
        if name.starts_with("ok-") {
            assert_eq!(outcome, Some(true), "must parse and validate");
        } else if name.starts_with("err-") {
            assert_ne!(outcome, Some(true), "must be rejected");
        }
    });
    println!("replayed {n} config inputs");
}

#[test]
fn user_id_inputs() {
    let n = replay("user_id", |_, data| checks::user_id(data));
    println!("replayed {n} user_id inputs");
}

#[test]
fn compare_inputs() {
    let n = replay("compare", |_, data| checks::compare(data));
    println!("replayed {n} compare inputs");
}

#[test]
fn request_head_inputs() {
    let n = replay("request_head", |path, data| {
        checks::request_head(data);
        let name = path.file_name().unwrap().to_string_lossy();
        let outcome = checks::request_head_outcome(data);
        if name.starts_with("ok-") {
            assert_eq!(outcome, Some(true), "must be accepted");
        } else if name.starts_with("err-") {
            assert_eq!(outcome, Some(false), "must be refused");
        }
    });
    println!("replayed {n} request_head inputs");
}
