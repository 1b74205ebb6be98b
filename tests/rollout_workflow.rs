//! `examples/github-actions/model-rollout.yml`, run for real: its `run:` steps, in order, with
//! GitHub's shell and `$GITHUB_ENV` semantics (`tests/support/run_workflow.py`), against a local
//! splitgate whose config lives in DynamoDB on moto, while a client keeps sending traffic. A
//! healthy challenger is added at its share, judged and promoted; a failing one is caught (by the
//! workflow's own check, or by splitgate's guard first) and rolled back, and the job fails. The
//! shipped document template is checked against the shipped static config too.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use support::moto::Moto;
use support::*;

const WORKFLOW: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/github-actions/model-rollout.yml");
const TEMPLATE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/examples/github-actions/deploy/splitgate-document.toml.tmpl");
const RUNNER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/run_workflow.py");
const VENV_BIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv-test/bin");
const CHAMPION: &str = "rec-v2-2-0";
const MODEL_VERSION: &str = "v2.3.0";
const MODEL_ID: &str = "rec-v2-3-0";

/// The user's own deploy step: here it creates the model, an endpoint config and the endpoint in
/// moto's SageMaker with boto3 (what a real deploy_model.py does against AWS).
const DEPLOY_MODEL_PY: &str = r#"
import argparse, boto3
ap = argparse.ArgumentParser()
ap.add_argument("--model-version", required=True)
ap.add_argument("--environment", required=True)
ap.add_argument("--traffic-percentage", type=int, required=True)
a = ap.parse_args()
sm = boto3.client("sagemaker")
variant = "rec-" + a.model_version.replace(".", "-")
sm.create_model(ModelName=variant, ExecutionRoleArn="arn:aws:iam::123456789012:role/sagemaker",
                PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/rec:" + a.model_version})
sm.create_endpoint_config(EndpointConfigName=variant, ProductionVariants=[{
    "VariantName": variant[len("rec-"):], "ModelName": variant, "InitialInstanceCount": 1,
    "InstanceType": "ml.m5.xlarge", "InitialVariantWeight": 1.0}])
endpoint = "rec-" + a.environment
sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=variant)
print("deployed", variant, "to", endpoint, sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"])
"#;

fn tool(name: &str) {
    let found = Command::new("sh").args(["-c", &format!("command -v {name}")]).output().unwrap().status.success();
    assert!(
        found,
        "`{name}` is needed by the workflow's steps (`.ci/run` installs it: apt-get install jq gettext-base)"
    );
}

/// The test's document template: the shipped one's shape, with HTTP models on loopback.
fn test_template(champion_url: &str, challenger_url: &str) -> String {
    format!(
        r#"[[auth.keys]]
name = "demo"
sha256 = "{KEY_SHA}"
[[auth.keys]]
name = "plain"
sha256 = "{PLAIN_SHA}"

[models."${{CHAMPION_MODEL}}"]
version = "${{CHAMPION_VERSION}}"
backend = "http"
url = "{champion_url}"

[models."${{MODEL_ID}}"]
version = "${{MODEL_VERSION}}"
backend = "http"
url = "{challenger_url}"

[split]
salt = "rollout"
[[split.variants]]
name = "champion"
model = "${{CHAMPION_MODEL}}"
weight = ${{CHAMPION_WEIGHT}}
champion = true
[[split.variants]]
name = "challenger"
model = "${{MODEL_ID}}"
weight = ${{TRAFFIC_PERCENTAGE}}
"#
    )
}

/// A proxy on a DynamoDB-held config (v1: the champion at 100%, the challenger variant on the
/// same model at 0%, as after a promotion), the workflow's working directory laid out as a user's
/// repository (`deploy/`, `scripts/`), and traffic flowing until the returned flag is set.
struct Stack {
    moto: Moto,
    proxy: Proxy,
    workdir: tempfile::TempDir,
    stop: Arc<AtomicBool>,
    traffic: tokio::task::JoinHandle<u64>,
    _models: (Upstream, Upstream),
}

async fn stack(challenger: Upstream, guard: bool) -> Stack {
    tool("jq");
    tool("envsubst");
    let moto = Moto::start().await;
    moto.create_table("splitgate-config", "pk").await;
    moto.create_table("splitgate-registry", "model_id").await;
    let champion = Upstream::builder().answer(&["a", "b"]).start().await;
    let v1 = Conf::base()
        .model_http(CHAMPION, "v2.2.0", &champion.url())
        .split("rollout")
        .champion("champion", CHAMPION, 100.0)
        .variant("challenger", CHAMPION, 0.0)
        .hot_document();
    moto.dynamodb()
        .put_item()
        .table_name("splitgate-config")
        .item("pk", AttributeValue::S("splitgate/test".into()))
        .item("version", AttributeValue::N("1".into()))
        .item("document", AttributeValue::S(v1))
        .send()
        .await
        .unwrap();
    let mut static_part = Conf::default()
        .server("listen", "127.0.0.1:0")
        .server("admin_listen", "127.0.0.1:0")
        .source_dynamodb("splitgate-config", "splitgate/test", 200, &moto.url)
        .set("registry.table", "splitgate-registry")
        .set("registry.region", "us-east-1")
        .set("registry.endpoint_url", moto.url.as_str())
        .admin_token("ops", ADMIN_SHA);
    if guard {
        static_part = static_part.guard(|g| g.min_requests(20).evaluate_every_ms(100).error_rate(0.05));
    }
    let workdir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(workdir.path().join("deploy")).unwrap();
    std::fs::create_dir_all(workdir.path().join("scripts")).unwrap();
    let static_path = workdir.path().join("deploy/splitgate-prod.toml");
    std::fs::write(&static_path, static_part.to_string()).unwrap();
    std::fs::write(
        workdir.path().join("deploy/splitgate-document.toml.tmpl"),
        test_template(&champion.url(), &challenger.url()),
    )
    .unwrap();
    std::fs::write(workdir.path().join("scripts/deploy_model.py"), DEPLOY_MODEL_PY).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start_at(dir, static_path);

    // Users keep coming: bounded in count and time, about 300 requests a second.
    let stop = Arc::new(AtomicBool::new(false));
    let (flag, url) = (stop.clone(), proxy.url("/recommend"));
    let traffic = tokio::spawn(async move {
        let c = client();
        let deadline = Instant::now() + Duration::from_secs(150);
        let mut sent = 0u64;
        while !flag.load(Ordering::Relaxed) && Instant::now() < deadline && sent < 60_000 {
            let req = http::Request::post(&url)
                .header("x-api-key", PLAIN_KEY)
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(bytes::Bytes::from(format!(
                    r#"{{"user_id":"user-{}"}}"#,
                    sent % 5_000
                ))))
                .unwrap();
            // Answers are judged by the workflow (through the proxy's status), not here.
            let _ = c.request(req).await;
            sent += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        sent
    });
    Stack { moto, proxy, workdir, stop, traffic, _models: (champion, challenger) }
}

/// Runs the workflow's `rollout` job; returns whether it succeeded and its report.
fn run_workflow(s: &Stack) -> (bool, serde_json::Value, String) {
    let report = s.workdir.path().join("report.json");
    let bin_dir = Path::new(bin()).parent().unwrap().to_owned();
    let path = format!("{}:{VENV_BIN}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let admin_url = format!("SPLITGATE_ADMIN_URL=http://{}", s.proxy.admin);
    let version = concat!("SPLITGATE_VERSION=", env!("CARGO_PKG_VERSION"));
    let python = PathBuf::from(VENV_BIN).join("python");
    assert!(python.exists(), "{} missing: run `make test` (it creates .venv-test)", python.display());
    let mut cmd = Command::new(python);
    cmd.arg(RUNNER)
        .arg(WORKFLOW)
        .args(["--job", "rollout", "--workdir"])
        .arg(s.workdir.path())
        .args(["--input", &format!("model_version={MODEL_VERSION}"), "--input", "environment=prod"])
        .args(["--input", "traffic_percentage=50", "--input", "monitor_seconds=6"])
        .args(["--var", &admin_url, "--var", "MODEL_BUCKET=model-artifacts", "--var", "AWS_REGION=us-east-1"])
        .args(["--secret", &format!("SPLITGATE_ADMIN_TOKEN={ADMIN_TOKEN}")])
        // Only the clock is shortened: poll every second, judge 20 requests instead of 100.
        .args(["--env", "POLL_SECONDS=1", "--env", "MIN_REQUESTS=20", "--env", "APPLY_TIMEOUT_SECONDS=30"])
        .args(["--env", version, "--step-timeout", "60", "--report"])
        .arg(&report)
        .env("PATH", path)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", &s.moto.url)
        // What aws-actions/configure-aws-credentials exports besides the credentials.
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("SPLITGATE_CONFIG")
        .env_remove("SPLITGATE_ADMIN_URL")
        .env_remove("SPLITGATE_ADMIN_TOKEN");
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let log = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // Shown with --nocapture, and by the test harness when the test fails.
    eprintln!("{log}");
    assert_ne!(out.status.code(), Some(2), "the runner refused the workflow:\n{log}");
    let report: serde_json::Value = std::fs::read(&report)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| panic!("no report (timed out?):\n{log}"));
    (out.status.success(), report, log)
}

fn outcome<'a>(report: &'a serde_json::Value, step_prefix: &str) -> &'a str {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str().unwrap().starts_with(step_prefix))
        .and_then(|s| s["outcome"].as_str())
        .unwrap_or_else(|| panic!("no step {step_prefix} in {report}"))
}

async fn status(p: &Proxy) -> serde_json::Value {
    json(&admin(p, http::Method::GET, "/admin/status", None, &[]).await.2)
}

fn variant<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["variants"].as_array().unwrap().iter().find(|v| v["name"] == name).unwrap()
}

async fn registry_status(moto: &Moto, model_id: &str) -> String {
    let item = moto
        .dynamodb()
        .get_item()
        .table_name("splitgate-registry")
        .key("model_id", AttributeValue::S(model_id.into()))
        .send()
        .await
        .unwrap();
    item.item().and_then(|i| i.get("status")).and_then(|s| s.as_s().ok()).cloned().unwrap_or_default()
}

async fn finish(s: Stack) -> u64 {
    s.stop.store(true, Ordering::Relaxed);
    s.traffic.await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_challenger_is_added_judged_and_promoted() {
    let s = stack(Upstream::builder().answer(&["c"]).start().await, true).await;
    let (ok, report, log) = run_workflow(&s);
    assert!(ok, "the job failed:\n{log}");
    for step in ["Plan", "Deploy", "Register", "Add it", "Wait", "Monitor", "Promote"] {
        assert_eq!(outcome(&report, step), "success", "{step}:\n{log}");
    }
    assert_eq!(outcome(&report, "Roll back"), "skipped");
    assert_eq!(outcome(&report, "actions/checkout"), "skipped-uses");
    assert!(log.contains(&format!("deployed {MODEL_ID} to rec-prod")), "{log}");
    let live = status(&s.proxy).await;
    // v2: the challenger at 50% (source put); v3: the promotion (admin API, same item).
    assert_eq!(live["version"], 3, "{live}");
    assert_eq!(variant(&live, "champion")["model"], MODEL_ID, "{live}");
    assert_eq!(variant(&live, "champion")["weight"], 100.0, "{live}");
    assert_eq!(registry_status(&s.moto, MODEL_ID).await, "champion");
    let (_, _, answer) = recommend(&s.proxy.url("/recommend"), "after-promotion").await;
    assert_eq!(json(&answer)["items"][0]["item_id"], "c", "the new model answers everyone");
    assert!(finish(s).await > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_challenger_fails_the_job_and_is_rolled_back_by_the_workflow() {
    // No guard: the workflow's own triggers must catch it.
    let s = stack(Upstream::builder().fail_with(500).start().await, false).await;
    let (ok, report, log) = run_workflow(&s);
    assert!(!ok, "the job must fail:\n{log}");
    assert_eq!(outcome(&report, "Add it"), "success", "{log}");
    assert_eq!(outcome(&report, "Monitor"), "failure", "{log}");
    assert!(log.contains("is above 0.05"), "the error rate is what failed it:\n{log}");
    assert_eq!(outcome(&report, "Promote"), "skipped");
    assert_eq!(outcome(&report, "Roll back"), "success", "{log}");
    let live = status(&s.proxy).await;
    assert_eq!(variant(&live, "challenger")["weight"], 0.0, "{live}");
    assert_eq!(variant(&live, "champion")["model"], CHAMPION, "{live}");
    assert_eq!(registry_status(&s.moto, MODEL_ID).await, "rolled_back");
    let audit = json(&admin(&s.proxy, http::Method::GET, "/admin/audit", None, &[]).await.2);
    assert!(audit.to_string().contains("failed its rollout"), "the workflow's rollback is audited: {audit}");
    finish(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_guard_rolls_back_first_the_job_fails_on_its_verdict() {
    let s = stack(Upstream::builder().fail_with(500).start().await, true).await;
    let (ok, report, log) = run_workflow(&s);
    assert!(!ok, "the job must fail:\n{log}");
    assert_eq!(outcome(&report, "Monitor"), "failure", "{log}");
    assert!(log.contains("rolled rec-v2-3-0 back"), "the guard's verdict is what failed it:\n{log}");
    assert_eq!(outcome(&report, "Roll back"), "success", "{log}");
    let live = status(&s.proxy).await;
    assert_eq!(variant(&live, "challenger")["weight"], 0.0, "{live}");
    assert_eq!(registry_status(&s.moto, MODEL_ID).await, "rolled_back");
    finish(s).await;
}

/// Every `run:` step passes shellcheck (as bash with `-eo pipefail`, GitHub's `shell: bash`).
#[test]
fn the_workflow_steps_pass_shellcheck() {
    tool("shellcheck");
    let dir = tempfile::tempdir().unwrap();
    let python = PathBuf::from(VENV_BIN).join("python");
    let split = r##"
import sys, yaml
wf = yaml.safe_load(open(sys.argv[1]))
for i, s in enumerate(wf["jobs"]["rollout"]["steps"]):
    if "run" in s:
        open(f"{sys.argv[2]}/step{i}.sh", "w").write("#!/bin/bash\nset -eo pipefail\n" + s["run"])
"##;
    let out = Command::new(python).args(["-c", split, WORKFLOW]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let scripts: Vec<PathBuf> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(scripts.len() >= 8, "{scripts:?}");
    let out = Command::new("shellcheck").args(["-S", "style"]).args(&scripts).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// The shipped template, rendered as the workflow renders it, is a valid document for the shipped
/// AWS static part (`splitgate check config/aws.toml --document …`).
#[test]
fn the_shipped_template_renders_a_valid_document() {
    tool("envsubst");
    let dir = tempfile::tempdir().unwrap();
    let rendered = dir.path().join("document.toml");
    let out = Command::new("sh")
        .args(["-c", &format!("envsubst < '{TEMPLATE}' > '{}'", rendered.display())])
        .envs([
            ("ENVIRONMENT", "prod"),
            ("CHAMPION_MODEL", "rec-v2-2"),
            ("CHAMPION_VERSION", "v2.2.0"),
            ("CHAMPION_TARGET", "v2-2"),
            ("MODEL_ID", MODEL_ID),
            ("MODEL_VERSION", MODEL_VERSION),
            ("MODEL_TARGET", "v2-3-0"),
            ("CHAMPION_WEIGHT", "90"),
            ("TRAFFIC_PERCENTAGE", "10"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let aws = concat!(env!("CARGO_MANIFEST_DIR"), "/config/aws.toml");
    let out = Command::new(bin()).args(["check", aws, "--document"]).arg(&rendered).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ok — 2 model(s), 2 variant(s)"), "{text}");
}
