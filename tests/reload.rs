//! Hot reload from outside: valid edits apply live, bad ones are rejected and the last good config
//! keeps serving, editors' rename-replace and ConfigMap symlink swaps are seen, and no request in
//! flight fails while configs change.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::*;

fn versioned(version: u64, champion: f64, challenger: f64) -> String {
    Conf::builtin(champion, challenger).version(version).to_string()
}

async fn share(p: &Proxy) -> f64 {
    challenger_share(p, "share", 400).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_edit_applies_within_a_second_and_is_counted() {
    let p = Proxy::start(versioned(1, 100.0, 0.0));
    assert_eq!(share(&p).await, 0.0);
    let t = Instant::now();
    p.write_config(versioned(2, 0.0, 100.0));
    p.wait_version(2).await;
    // The watcher reacts to the write event; the 1 s poll is only the fallback.
    assert!(t.elapsed() < Duration::from_millis(1_500), "reload took {:?}", t.elapsed());
    assert_eq!(share(&p).await, 1.0);
    let m = p.metrics().await;
    assert_eq!(metric(&m, r#"splitgate_config_reloads_total{result="applied"}"#), Some(1.0));
    assert_eq!(metric(&m, "splitgate_config_version"), Some(2.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_edits_are_rejected_and_the_last_good_config_serves() {
    let p = Proxy::start(versioned(1, 100.0, 0.0));
    let bad = [
        versioned(2, 60.0, 60.0),       // weights sum to 120
        "this is [not toml".to_owned(), // syntax
        Conf::builtin(100.0, 0.0).version(2).remove("split.salt").set("split.sallt", "rec-2026-11").to_string(), // unknown field
        String::new(), // truncated to nothing
    ];
    for (i, text) in bad.iter().enumerate() {
        p.write_config(text);
        eventually(Duration::from_secs(5), &format!("rejection {i} not counted"), || async {
            let m = p.metrics().await;
            let n = metric(&m, r#"splitgate_config_reloads_total{result="rejected"}"#);
            if n == Some((i + 1) as f64) {
                Ok(())
            } else {
                Err(m)
            }
        })
        .await;
        let h = p.health().await;
        assert_eq!(h["config"]["version"], 1);
        assert!(h["config"]["last_reload_error"].as_str().is_some_and(|e| !e.is_empty()));
        assert_eq!(recommend(&p.url("/recommend"), "still-serving").await.0, 200);
    }
    assert!(p.stderr_text().contains("config rejected"), "rejections are logged with reasons");
    // A deleted file keeps the old config too; a good file afterwards applies.
    std::fs::remove_file(p.path()).unwrap();
    // The watcher reports the missing file (as a rejection, once); then it still serves.
    wait_until(Duration::from_secs(5), "the deleted file was not noticed", || async {
        p.stderr_text().contains("config file unreadable")
    })
    .await;
    assert_eq!(recommend(&p.url("/recommend"), "after-delete").await.0, 200);
    p.write_config(versioned(3, 50.0, 50.0));
    p.wait_version(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_replace_like_an_editor() {
    let p = Proxy::start(versioned(1, 100.0, 0.0));
    let tmp = p.dir.path().join(".splitgate.toml.swp");
    std::fs::write(&tmp, versioned(2, 0.0, 100.0)).unwrap();
    std::fs::rename(&tmp, p.path()).unwrap();
    p.wait_version(2).await;
    assert_eq!(share(&p).await, 1.0);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_style_symlink_swap() {
    use std::os::unix::fs::symlink;
    // Kubernetes mounts: config -> ..data/splitgate.toml, ..data -> ..v1; an update swaps ..data.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("..v1")).unwrap();
    std::fs::write(d.join("..v1/splitgate.toml"), versioned(1, 100.0, 0.0)).unwrap();
    symlink("..v1", d.join("..data")).unwrap();
    symlink("..data/splitgate.toml", d.join("splitgate.toml")).unwrap();
    let path = d.join("splitgate.toml");
    let p = Proxy::start_at(dir, path);
    let d = p.dir.path();
    std::fs::create_dir(d.join("..v2")).unwrap();
    std::fs::write(d.join("..v2/splitgate.toml"), versioned(2, 0.0, 100.0)).unwrap();
    symlink("..v2", d.join("..data_tmp")).unwrap();
    std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
    p.wait_version(2).await;
    assert_eq!(share(&p).await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_fails_while_configs_change() {
    let p = Arc::new(Proxy::start(versioned(1, 90.0, 10.0)));
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut load = Vec::new();
    for w in 0..4 {
        let (p, stop, ok, failed) = (p.clone(), stop.clone(), ok.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            let c = client();
            let mut i = 0u64;
            // Bounded: stops when told, or after 20,000 requests.
            while !stop.load(Ordering::Relaxed) && i < 20_000 {
                let (status, _, _) = recommend_with(&c, &p.url("/recommend"), &format!("load-{w}-{i}")).await;
                if status == 200 {
                    ok.fetch_add(1, Ordering::Relaxed)
                } else {
                    failed.fetch_add(1, Ordering::Relaxed)
                };
                i += 1;
            }
        }));
    }
    for v in 2..=11u64 {
        let w = (v * 9 % 100) as f64;
        p.write_config(versioned(v, 100.0 - w, w));
        p.wait_version(v).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "requests failed during reloads");
    assert!(ok.load(Ordering::Relaxed) > 100, "the load loop did not run");
}

/// A reload that changes a start-up-only setting applies the rest, and says which settings wait
/// for a restart: in the log and in the admin `/health` (`config.restart_pending`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_only_settings_are_reported_as_waiting_for_a_restart() {
    let p = Proxy::start(Conf::builtin(90.0, 10.0).version(1));
    assert_eq!(p.health().await["config"]["restart_pending"], serde_json::json!([]));
    p.write_config(Conf::builtin(50.0, 50.0).version(2).server("idle_timeout_ms", 5_000));
    p.wait_version(2).await;
    let h = p.health().await;
    assert_eq!(h["config"]["restart_pending"], serde_json::json!(["server.idle_timeout_ms"]), "{h}");
    assert_eq!(h["variants"][1]["weight"], 50.0, "the weight change applied at once");
    assert!(p.stderr_text().contains("keep their old values until a restart"), "{}", p.stderr_text());
}
