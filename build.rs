//! Build script: records the commit the binary is built from, for `splitgate_build_info`.
//!
//! `SPLITGATE_COMMIT` (set by a release pipeline or a Docker build argument) wins; otherwise
//! `git rev-parse` on the checkout; otherwise `unknown` (a source tarball, an image built
//! without `.git`). The build reruns when HEAD or the branch it points at moves.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_owned())
}

fn main() {
    println!("cargo:rerun-if-env-changed=SPLITGATE_COMMIT");
    let commit = match std::env::var("SPLITGATE_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_owned(),
        _ => {
            // A worktree keeps HEAD in its own git dir and the branches in the common one.
            // Only paths that exist: cargo reruns a script watching a missing file every build.
            let watch = |path: String| {
                if std::path::Path::new(&path).exists() {
                    println!("cargo:rerun-if-changed={path}");
                }
            };
            if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
                watch(format!("{dir}/HEAD"));
            }
            if let Some(common) = git(&["rev-parse", "--git-common-dir"]) {
                if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
                    watch(format!("{common}/{branch}"));
                }
                watch(format!("{common}/packed-refs"));
            }
            git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_owned())
        }
    };
    // Label values are printed verbatim into /metrics: keep them to a safe alphabet.
    let commit: String = commit.chars().filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).take(40).collect();
    println!("cargo:rustc-env=SPLITGATE_COMMIT={commit}");
}
