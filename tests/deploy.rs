//! Deploying without an image rebuild and without the demo key: the config comes from
//! `--config`, else `SPLITGATE_CONFIG` (TOML text or a path), else `config/splitgate.toml`; a
//! config holding the published demo key never serves off loopback without `--demo`, and never on
//! ECS. Every refusal happens before a port is bound.

mod support;

use http::Method;
use serde_json::json;
use support::*;

const ECS: (&str, &str) = ("ECS_CONTAINER_METADATA_URI_V4", "http://169.254.170.2/v4/never-contacted");

/// The test config (builtin 90/10) with the demo key's hash replaced by one nobody knows: what a
/// deployment carries.
fn without_demo_key() -> Conf {
    Conf::builtin(90.0, 10.0)
        .without_keys()
        .key("demo", "0000000000000000000000000000000000000000000000000000000000000001", |k| {
            k.set("allow_override", true)
        })
        .key("plain", PLAIN_SHA, |k| k)
}

fn write(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("splitgate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn admin_health(p: &Proxy) -> serde_json::Value {
    p.health().await
}

#[tokio::test]
async fn the_demo_key_serves_on_loopback() {
    let p = Proxy::start(Conf::builtin(90.0, 10.0));
    assert_eq!(recommend(&p.url("/recommend"), "u1").await.0, 200);
}

#[test]
fn the_demo_key_is_refused_on_a_non_loopback_listener_without_demo() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, &Conf::builtin(90.0, 10.0).to_string());
    // Refused before binding, so 0.0.0.0 is never actually opened.
    let mut cmd = serve_command(&["--config", path.to_str().unwrap()]);
    cmd.args(["--listen", "0.0.0.0:0", "--admin-listen", "127.0.0.1:0"]);
    let (code, err) = exit_of(cmd);
    assert!(code.is_some_and(|c| c != 0), "must exit non-zero: {code:?} {err}");
    assert!(err.contains("demo key") && err.contains("not loopback") && err.contains("--demo"), "{err}");
    assert!(!err.contains("splitgate listening"), "{err}");
}

#[test]
fn on_ecs_the_demo_key_is_refused_even_with_demo() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, &Conf::builtin(90.0, 10.0).to_string());
    let mut cmd = serve_command(&["--config", path.to_str().unwrap(), "--demo"]);
    cmd.args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]).env(ECS.0, ECS.1);
    let (code, err) = exit_of(cmd);
    assert!(code.is_some_and(|c| c != 0), "must exit non-zero: {code:?} {err}");
    assert!(err.contains("ECS task") && err.contains("`--demo` or not"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_ecs_a_demo_key_arriving_by_reload_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let text = without_demo_key().version(1).to_string();
    let path = write(&dir, &text);
    let args = ["--config", path.to_str().unwrap()];
    let p = Proxy::start_with(dir, path.clone(), &args, &[ECS]);
    assert_eq!(recommend_with(&client(), &p.url("/recommend"), "u1").await.0, 200);
    assert_eq!(recommend(&p.url("/recommend"), "u1").await.0, 401, "no demo key in this config");
    p.write_config(Conf::builtin(90.0, 10.0).version(2).to_string());
    let reason = eventually(std::time::Duration::from_secs(5), "reload not rejected", || async {
        let h = admin_health(&p).await;
        h["config"]["last_reload_error"].as_str().map(str::to_owned).ok_or_else(|| h.to_string())
    })
    .await;
    assert!(reason.contains("demo key"), "{reason}");
    assert_eq!(admin_health(&p).await["config"]["version"], 1, "the last good config keeps serving");
    assert_eq!(recommend(&p.url("/recommend"), "u1").await.0, 401, "the demo key is not accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splitgate_config_holding_toml_serves_it_statically() {
    let text = Conf::builtin(0.0, 100.0).to_string();
    let p = Proxy::start_with(tempfile::tempdir().unwrap(), "unused".into(), &[], &[("SPLITGATE_CONFIG", &text)]);
    let (status, headers, _) = recommend(&p.url("/recommend"), "u1").await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-splitgate-variant"), "challenger");
    assert_eq!(admin_health(&p).await["config"]["source"], "inline");
    assert!(p.stderr_text().contains("will not hot-reload"), "{}", p.stderr_text());
    let (status, _, body) = admin(&p, Method::PUT, "/admin/weights", Some(json!({"challenger": 50})), &[]).await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("no config source to write to"));

    // `check` reads the same variable.
    let out = std::process::Command::new(bin()).arg("check").env("SPLITGATE_CONFIG", &text).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("SPLITGATE_CONFIG: ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splitgate_config_holding_a_path_serves_and_reloads_that_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, &Conf::builtin(100.0, 0.0).version(1).to_string());
    let env = path.to_str().unwrap().to_owned();
    let p = Proxy::start_with(dir, path.clone(), &[], &[("SPLITGATE_CONFIG", &env)]);
    assert_eq!(admin_health(&p).await["config"]["source"], format!("file:{env}"));
    p.write_config(Conf::builtin(0.0, 100.0).version(2).to_string());
    p.wait_version(2).await;
    let (_, headers, _) = recommend(&p.url("/recommend"), "u1").await;
    assert_eq!(header(&headers, "x-splitgate-variant"), "challenger");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_config_beats_splitgate_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, &Conf::builtin(100.0, 0.0).to_string());
    let inline = Conf::builtin(0.0, 100.0).to_string();
    let args = ["--config", path.to_str().unwrap()];
    let p = Proxy::start_with(dir, path.clone(), &args, &[("SPLITGATE_CONFIG", &inline)]);
    let h = admin_health(&p).await;
    assert_eq!(h["config"]["source"], format!("file:{}", path.display()));
    assert_eq!(h["variants"][0]["weight"], 100.0);
}

#[test]
fn no_config_anywhere_says_what_to_do() {
    let empty = tempfile::tempdir().unwrap();
    let mut cmd = serve_command(&[]);
    cmd.current_dir(empty.path());
    let (code, err) = exit_of(cmd);
    assert!(code.is_some_and(|c| c != 0), "{err}");
    assert!(err.contains("no config: pass --config, set SPLITGATE_CONFIG, or run from the repo root"), "{err}");
    let looked = empty.path().canonicalize().unwrap().join("config/splitgate.toml");
    assert!(err.contains(&looked.display().to_string()) || err.contains("/config/splitgate.toml)"), "{err}");
}
