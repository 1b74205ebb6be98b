//! `/health` tells anyone the status only; the admin listener adds the details, and a rejected
//! config's reason there has line and column but never the config's text, is capped at 1 KB and
//! is cleared by the next good config. Oversized configs are refused unread, and an unchanged
//! file is not re-read.

mod support;

use std::time::Duration;

use support::*;

const SECRET: &str = "s3cret-salt-do-not-leak";

fn good(version: u64) -> String {
    Conf::builtin(90.0, 10.0).version(version).to_string()
}

/// Waits until `n` reloads have been rejected.
async fn wait_rejected(p: &Proxy, n: u64) {
    eventually(Duration::from_secs(5), &format!("rejection {n} not counted"), || async {
        let m = p.metrics().await;
        if metric(&m, r#"splitgate_config_reloads_total{result="rejected"}"#) == Some(n as f64) {
            Ok(())
        } else {
            Err(m)
        }
    })
    .await
}

async fn both_healths(p: &Proxy) -> (String, serde_json::Value) {
    let main = String::from_utf8(get(&p.url("/health")).await.2.to_vec()).unwrap();
    (main, p.health().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_config_shows_where_but_never_its_text_and_clears_when_fixed() {
    let p = Proxy::start(good(1));
    let (main, _) = both_healths(&p).await;
    assert_eq!(json(&main.clone().into()), serde_json::json!({"status": "ok", "ready": true}));

    // A broken string on a salt line: the parser's usual message would quote that line. (Broken
    // on purpose, so appended as text: an unterminated string after a valid config.)
    let broken = format!("{}salt = \"{SECRET}\nweight = 3\n", good(2));
    p.write_config(&broken);
    wait_rejected(&p, 1).await;
    let (main, admin) = both_healths(&p).await;
    let reason = admin["config"]["last_reload_error"].as_str().unwrap().to_owned();
    let line = broken.lines().position(|l| l.contains(SECRET)).unwrap() + 1;
    assert!(reason.contains(&format!("TOML parse error at line {line}, column ")), "{reason}");
    for text in [&main, &admin.to_string(), &p.stderr_text()] {
        assert!(!text.contains(SECRET), "the secret leaked: {text}");
    }
    for field in ["config", "variants", "models", "last_reload_error", "version"] {
        assert!(!main.contains(field), "main /health shows `{field}`: {main}");
    }
    assert_eq!(admin["config"]["version"], 1, "the last good config keeps serving");

    // A config with hundreds of problems: the reason kept is at most 1 KB.
    let many = (0..200)
        .fold(Conf::builtin(90.0, 10.0).version(3), |c, i| c.variant(&format!("v{i}"), &format!("missing-{i}"), 0.0));
    p.write_config(many);
    wait_rejected(&p, 2).await;
    let reason = p.health().await["config"]["last_reload_error"].as_str().unwrap().to_owned();
    assert!(reason.len() <= 1024 && reason.contains("split.variants["), "{} bytes: {reason}", reason.len());

    // A good config clears it.
    p.write_config(good(4));
    p.wait_version(4).await;
    let admin = p.health().await;
    assert!(admin["config"]["last_reload_error"].is_null(), "{admin}");
    assert_eq!(admin["config"]["reloads_rejected"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_over_max_config_bytes_is_rejected_and_the_old_one_keeps_serving() {
    let p = Proxy::start(good(1));
    // 2 MiB of comment after a valid config: valid TOML, but over the 1 MiB default.
    let huge = format!("{}\n# {}\n", good(2), "x".repeat(2 << 20));
    p.write_config(&huge);
    wait_rejected(&p, 1).await;
    let admin = p.health().await;
    let reason = admin["config"]["last_reload_error"].as_str().unwrap();
    assert!(reason.contains("larger than 1048576 bytes"), "{reason}");
    assert_eq!(admin["config"]["version"], 1);
    assert_eq!(recommend(&p.url("/recommend"), "still-serving").await.0, 200);
    // Not rejected again on every poll: the unchanged file is not re-read. An absence, so a
    // fixed span: two and a half 1 s polls, then the count is still 1.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    wait_rejected(&p, 1).await;
    // Putting the live text back (the commonest fix) clears the stale reason, with no reload.
    p.write_config(good(1));
    eventually(Duration::from_secs(5), "the reason is cleared once the file is the live config again", || async {
        let h = p.health().await;
        if h["config"]["last_reload_error"].is_null() {
            Ok(())
        } else {
            Err(h.to_string())
        }
    })
    .await;
    assert_eq!(p.health().await["config"]["version"], 1);
}

#[test]
fn a_config_over_its_own_max_config_bytes_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("splitgate.toml");
    let conf = Conf::builtin(90.0, 10.0).version(1).server("max_config_bytes", 1024);
    let text = format!("{conf}# {}\n", "x".repeat(1024));
    assert!(text.len() > 1024);
    std::fs::write(&path, &text).unwrap();
    let (code, err) = exit_of(serve_command(&["--config", path.to_str().unwrap()]));
    assert!(code.is_some_and(|c| c != 0), "{err}");
    assert!(err.contains("larger than 1024 bytes"), "{err}");
}

/// An idle proxy does not re-read an unchanged config: over several polls it reads (all fds,
/// sockets included) fewer bytes than the file holds.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_config_costs_a_stat_not_a_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("splitgate.toml");
    let text = format!("{}\n# {}\n", good(1), "x".repeat(512 << 10));
    std::fs::write(&path, &text).unwrap();
    // Old enough that the watcher trusts its stamp (a just-written file is re-read for a while).
    let old = std::time::SystemTime::now() - Duration::from_secs(60);
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(old).unwrap();
    let p = Proxy::start_at(dir, path);
    let rchar = || {
        let io = std::fs::read_to_string(format!("/proc/{}/io", p.pid())).unwrap();
        io.lines().find_map(|l| l.strip_prefix("rchar: ")).unwrap().trim().parse::<u64>().unwrap()
    };
    // Let the first poll record the stamp (it reads the file once; nothing outside marks that
    // poll, so a poll period and a half).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let before = rchar();
    // The measured span: two and a half idle polls.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let read = rchar() - before;
    assert!(read < text.len() as u64 / 2, "read {read} bytes in 2.5 s idle, the file has {}", text.len());
}
