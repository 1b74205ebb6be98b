//! The command line as a new user meets it: `check` on the shipped examples (a static part alone,
//! or with its DynamoDB document), a missing default config, generated completions and man pages,
//! admin changes conditional on the live version (`--expect-version`, exit 3 when stale), and the
//! model registry commands against moto.

mod support;

use std::process::{Command, Output};

use aws_sdk_dynamodb::types::AttributeValue;
use support::moto::Moto;
use support::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn splitgate(args: &[&str]) -> Output {
    command(args).current_dir(ROOT).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn check_passes_on_the_shipped_aws_example_alone_and_with_its_document() {
    let alone = splitgate(&["check", "config/aws.toml"]);
    assert!(alone.status.success(), "{}", text(&alone));
    assert!(text(&alone).contains("config/aws.toml: ok — the static part"), "{}", text(&alone));
    assert!(text(&alone).contains("splitgate-prod-config/splitgate/prod"), "names the item: {}", text(&alone));
    let both = splitgate(&["check", "config/aws.toml", "--document", "config/aws-document.toml"]);
    assert!(both.status.success(), "{}", text(&both));
    assert!(text(&both).contains("ok — 2 model(s), 2 variant(s), 1 shadow(s), 1 key(s)"), "{}", text(&both));
}

#[test]
fn a_static_part_is_still_checked_and_a_bad_document_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("static.toml");
    let aws = std::fs::read_to_string(format!("{ROOT}/config/aws.toml")).unwrap();
    std::fs::write(&path, aws.replace("max_body_bytes = 1048576", "max_body_bytes = 0")).unwrap();
    let out = splitgate(&["check", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("server.max_body_bytes"), "{}", text(&out));
    assert!(!text(&out).contains("split:"), "the hot part is the document's business: {}", text(&out));

    let doc = dir.path().join("doc.toml");
    std::fs::write(&doc, "[split]\nsalt = \"s\"\n").unwrap();
    let out = splitgate(&["check", "config/aws.toml", "--document", doc.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("with the document") && text(&out).contains("split.variants"), "{}", text(&out));
}

#[test]
fn without_a_config_the_error_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin()).arg("check").current_dir(dir.path()).env_remove("SPLITGATE_CONFIG").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let looked = dir.path().canonicalize().unwrap().join("config/splitgate.toml");
    assert!(err.contains("pass --config, set SPLITGATE_CONFIG"), "{err}");
    assert!(
        err.contains(looked.to_str().unwrap())
            || err.contains(dir.path().join("config/splitgate.toml").to_str().unwrap()),
        "{err}"
    );
}

#[test]
fn completions_and_man_pages_come_from_the_command_tree() {
    for (shell, marker) in [("bash", "_splitgate()"), ("zsh", "#compdef splitgate"), ("fish", "complete -c splitgate")]
    {
        let out = splitgate(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("expect-version"), "{shell}: flags are completed too");
    }
    let out = splitgate(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");

    let out = splitgate(&["man"]);
    assert!(out.status.success());
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH splitgate 1"), "{page}");
    assert!(page.contains("completions") && page.contains("rollback"), "the commands are listed");
    let dir = tempfile::tempdir().unwrap();
    let out = splitgate(&["man", "--out-dir", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let serve = std::fs::read_to_string(dir.path().join("splitgate-serve.1")).unwrap();
    assert!(serve.contains("admin\\-listen") && serve.contains("SPLITGATE_LOG_FORMAT"), "{serve}");
    assert!(dir.path().join("splitgate-weights-set.1").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_changes_can_be_conditional_on_the_live_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("splitgate.toml");
    std::fs::write(&path, Conf::builtin(90.0, 10.0).version(4).to_string()).unwrap();
    let p = Proxy::start_at(dir, path);
    let run = |args: &[&str]| p.cli(args);
    let stale = run(&["weights", "set", "challenger=20", "--expect-version", "3"]);
    assert_eq!(stale.status.code(), Some(3), "a stale version is a conflict: {}", text(&stale));
    assert_eq!(p.health().await["variants"][1]["weight"], 10.0, "nothing changed");
    let ok = run(&["weights", "set", "challenger=20", "--expect-version", "4", "--reason", "ramp"]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert_eq!(p.health().await["variants"][1]["weight"], 20.0);
    let stale = run(&["rollback", "--reason", "x", "--expect-version", "4"]);
    assert_eq!(stale.status.code(), Some(3), "{}", text(&stale));
    let status: serde_json::Value = serde_json::from_slice(&run(&["status"]).stdout).unwrap();
    let live = status["version"].as_u64().unwrap().to_string();
    let ok = run(&["promote", "--variant", "challenger", "--expect-version", &live, "--reason", "healthy"]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert_eq!(p.health().await["variants"][0]["weight"], 100.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_are_registered_and_their_status_changed() {
    let moto = Moto::start().await;
    moto.create_table("splitgate-registry", "model_id").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    let conf = Conf::default()
        .set("registry.table", "splitgate-registry")
        .set("registry.region", "us-east-1")
        .set("registry.endpoint_url", moto.url.as_str());
    std::fs::write(&path, conf.to_string()).unwrap();
    let config = path.to_str().unwrap();
    let out = splitgate(&[
        "models",
        "register",
        "rec-v2-3",
        "--artifact",
        "s3://models/v2.3.0/",
        "--metrics",
        r#"{"ndcg@10": 0.52}"#,
        "--config",
        config,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let item = moto
        .dynamodb()
        .get_item()
        .table_name("splitgate-registry")
        .key("model_id", AttributeValue::S("rec-v2-3".into()))
        .send()
        .await
        .unwrap();
    let item = item.item().unwrap();
    assert_eq!(item["status"].as_s().unwrap(), "candidate", "the default status");
    assert_eq!(item["artifact"].as_s().unwrap(), "s3://models/v2.3.0/");
    assert_eq!(item["metrics"].as_s().unwrap(), r#"{"ndcg@10":0.52}"#);
    assert!(item["updated_at"].as_s().unwrap().ends_with('Z'));

    let out = splitgate(&["models", "set-status", "rec-v2-3", "champion", "--config", config]);
    assert!(out.status.success(), "{}", text(&out));
    let listed = splitgate(&["models", "list", "--config", config]);
    assert!(text(&listed).contains("rec-v2-3\tchampion\ts3://models/v2.3.0/"), "{}", text(&listed));

    let bad = splitgate(&["models", "set-status", "rec-v2-3", "retired", "--config", config]);
    assert_eq!(bad.status.code(), Some(2), "statuses are the lifecycle's: {}", text(&bad));
    let bad = splitgate(&["models", "register", "m", "--artifact", "a", "--metrics", "[1]", "--config", config]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(text(&bad).contains("--metrics must be a JSON object"), "{}", text(&bad));
}
