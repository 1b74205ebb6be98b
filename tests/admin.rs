//! Operators in control: the admin API and CLI edit the source of truth (file or DynamoDB),
//! conflicts are refused, every change is audited, and the guard rolls a failing or slow
//! challenger back by itself — once — while requests keep succeeding.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use http::Method;
use serde_json::json;
use support::moto::Moto;
use support::upstream::items;
use support::*;

fn commented(challenger: f64) -> String {
    format!(
        "# operators: ramp carefully\n{}",
        config(&builtin_split(100.0 - challenger, challenger), "[admin]\naudit_log = \"AUDIT\"")
    )
}

fn start(challenger: f64) -> Proxy {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("splitgate.toml");
    let audit = dir.path().join("audit.jsonl");
    std::fs::write(&path, commented(challenger).replace("AUDIT", audit.to_str().unwrap())).unwrap();
    Proxy::start_at(dir, path)
}

async fn share(p: &Proxy) -> f64 {
    let ids: Vec<String> = (0..400).map(|i| format!("adm-{i}")).collect();
    let v = variants_of(&p.url("/recommend"), &ids, 4).await;
    v.iter().filter(|x| *x == "challenger").count() as f64 / ids.len() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_needs_a_bearer_token() {
    let p = start(10.0);
    assert_eq!(get(&p.admin_url("/admin/config")).await.0, 401);
    let (status, _, body) = send(
        http::Request::get(p.admin_url("/admin/config"))
            .header("authorization", "Bearer wrong")
            .body(Default::default())
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(json(&body)["error"]["code"], "unauthorized");
    let (status, _, body) = admin(&p, Method::GET, "/admin/config", None, &[]).await;
    assert_eq!(status, 200);
    let v = json(&body);
    assert_eq!(v["version"], 1);
    assert_eq!(v["keys"][0]["sha256"], "<redacted>");
    assert!(!String::from_utf8_lossy(&body).contains(KEY_SHA), "key hashes must be redacted");
    assert_eq!(v["split"]["variants"][1]["weight"], 10.0);
    // The main listener has no admin API.
    assert_eq!(post(&p.url("/admin/rollback"), Some(KEY), "{}", &[]).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_edits_write_the_file_apply_live_and_are_audited() {
    let p = start(10.0);
    // Some traffic so the dry run has an hour of buckets to estimate from.
    share(&p).await;
    let (status, _, body) =
        admin(&p, Method::PUT, "/admin/weights?dry_run=true", Some(json!({"challenger": 50})), &[]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let dry = json(&body);
    let moved = dry["share_that_would_change_variant"].as_f64().unwrap();
    assert!((0.3..0.5).contains(&moved), "about 40% of traffic moves from 10% to 50%: {dry}");
    assert_eq!(p.health().await["config"]["version"], 1, "a dry run changes nothing");

    let (status, _, body) =
        admin(&p, Method::PUT, "/admin/weights", Some(json!({"challenger": 50, "reason": "ramp step 2"})), &[]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["version"], 2);
    assert_eq!(json(&body)["weights"]["champion"], 50.0);
    let text = std::fs::read_to_string(p.path()).unwrap();
    assert!(text.starts_with("version = 2") || text.contains("\nversion = 2"), "{text}");
    assert!(text.contains("# operators: ramp carefully"), "comments are preserved");
    assert!((share(&p).await - 0.5).abs() < 0.08);
    // The watcher sees the file it already applied and does not bump the version again.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(p.health().await["config"]["version"], 2);

    // A stale writer gets 409 and nothing changes.
    let (status, _, body) =
        admin(&p, Method::PUT, "/admin/weights", Some(json!({"challenger": 20})), &[("if-match", "1")]).await;
    assert_eq!(status, 409, "{}", String::from_utf8_lossy(&body));
    // Invalid edits are refused before anything is written.
    assert_eq!(admin(&p, Method::PUT, "/admin/weights", Some(json!({"champion": 20})), &[]).await.0, 400);
    assert_eq!(admin(&p, Method::PUT, "/admin/weights", Some(json!({"challenger": 120})), &[]).await.0, 400);

    let (_, _, body) = admin(&p, Method::POST, "/admin/rollback", Some(json!({"reason": "bad ctr"})), &[]).await;
    assert_eq!(json(&body)["weights"]["challenger"], 0.0);
    let (_, _, body) = admin(&p, Method::POST, "/admin/promote", Some(json!({"variant": "challenger"})), &[]).await;
    assert_eq!(json(&body)["version"], 4);
    let cfg = json(&admin(&p, Method::GET, "/admin/config", None, &[]).await.2);
    assert_eq!(cfg["split"]["variants"][0]["model"], "rec-v2-3", "the challenger's model now serves as champion");

    let audit = json(&admin(&p, Method::GET, "/admin/audit", None, &[]).await.2);
    let records = audit["records"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["who"], "ops");
    assert_eq!(records[0]["action"], "weights");
    assert_eq!(records[0]["reason"], "ramp step 2");
    assert_eq!((records[0]["old_version"].as_u64(), records[0]["new_version"].as_u64()), (Some(1), Some(2)));
    assert_eq!(records[1]["action"], "rollback");
    let file = std::fs::read_to_string(p.dir.path().join("audit.jsonl")).unwrap();
    assert_eq!(file.lines().count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_talks_to_the_admin_api() {
    let p = start(10.0);
    let run = |args: &[&str]| {
        Command::new(bin())
            .args(args)
            .env("SPLITGATE_ADMIN_URL", format!("http://{}", p.admin))
            .env("SPLITGATE_ADMIN_TOKEN", ADMIN_TOKEN)
            .output()
            .unwrap()
    };
    let out = run(&["weights", "set", "challenger=25", "--reason", "cli"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["status"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["variants"][1]["weight"], 25.0);
    let out = run(&["rollback", "--reason", "cli rollback"]);
    assert!(out.status.success());
    assert_eq!(p.health().await["variants"][1]["weight"], 0.0);
    let out = Command::new(bin())
        .args(["status", "--admin", &format!("http://{}", p.admin), "--token", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a bad token is a usage error");
}

fn guarded(challenger_url: &str, champion_url: &str, guard: &str, webhook: &str) -> String {
    let models = format!(
        r#"
[models.champ]
version = "c1"
backend = "http"
url = "{champion_url}"

[models.chall]
version = "n1"
backend = "http"
url = "{challenger_url}"
timeout_ms = 2000

[split]
salt = "g"
fallback_to_champion = true
[[split.variants]]
name = "champion"
model = "champ"
weight = 50
champion = true
[[split.variants]]
name = "challenger"
model = "chall"
weight = 50
"#
    );
    config(
        &models,
        &format!("[guard]\n{guard}\nmin_requests = 20\nevaluate_every_ms = 100\nwebhook_url = \"{webhook}\"\n"),
    )
}

async fn drive(p: &Proxy, n: usize) -> Vec<(u16, String)> {
    let c = client();
    let mut out = Vec::new();
    for i in 0..n {
        let (status, h, _) = recommend_with(&c, &p.url("/recommend"), &format!("guard-{i}")).await;
        out.push((status.as_u16(), header(&h, "x-splitgate-fallback").to_owned()));
    }
    out
}

async fn wait_rollback(p: &Proxy) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let h = p.health().await;
        if h["variants"][1]["weight"] == 0.0 {
            return h;
        }
        assert!(Instant::now() < deadline, "guard did not roll back: {h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_rolls_back_a_failing_challenger_once_and_requests_keep_succeeding() {
    let champion = Upstream::start(Behaviour::Items(items(&["a"]))).await;
    let challenger = Upstream::start(Behaviour::Items(items(&["b"]))).await;
    let hook = Upstream::start(Behaviour::Items(vec![])).await;
    let p = Proxy::start(&guarded(
        &challenger.url(),
        &champion.url(),
        "error_rate = 0.05\nerror_window_secs = 5",
        &hook.url(),
    ));
    assert!(drive(&p, 40).await.iter().all(|(s, _)| *s == 200));
    challenger.set(Behaviour::Status(500));
    let results = drive(&p, 120).await;
    assert!(results.iter().all(|(s, _)| *s == 200), "fallback keeps every request succeeding");
    assert!(results.iter().any(|(_, f)| f == "1"), "some requests fell back to the champion");
    wait_rollback(&p).await;
    drive(&p, 40).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let m = p.metrics().await;
    assert_eq!(
        metric(&m, r#"splitgate_guard_rollbacks_total{variant="challenger",trigger="error_rate"}"#),
        Some(1.0),
        "{m}"
    );
    let audit = json(&admin(&p, Method::GET, "/admin/audit", None, &[]).await.2);
    let records = audit["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "exactly one rollback: {audit}");
    assert_eq!(records[0]["who"], "guard");
    assert!(records[0]["reason"].as_str().unwrap().contains("error_rate"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while hook.hits() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = hook.seen.lock().unwrap()[0].clone();
    let note: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!((note["event"].as_str(), note["variant"].as_str()), (Some("rollback"), Some("challenger")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_rolls_back_a_slow_challenger() {
    let champion = Upstream::start(Behaviour::Items(items(&["a"]))).await;
    let challenger = Upstream::start(Behaviour::Slow(Duration::from_millis(150), items(&["b"]))).await;
    let hook = Upstream::start(Behaviour::Items(vec![])).await;
    let p = Proxy::start(&guarded(
        &challenger.url(),
        &champion.url(),
        "latency_ms = 100\nlatency_window_secs = 10",
        &hook.url(),
    ));
    drive(&p, 80).await;
    wait_rollback(&p).await;
    let m = p.metrics().await;
    assert_eq!(
        metric(&m, r#"splitgate_guard_rollbacks_total{variant="challenger",trigger="latency"}"#),
        Some(1.0),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_edits_on_dynamodb_are_conditional() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let moto = Moto::start().await;
    moto.create_table("splitgate-config", "pk").await;
    moto.dynamodb()
        .create_table()
        .table_name("splitgate-audit")
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("sk")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()
                .unwrap(),
        )
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("sk")
                .key_type(aws_sdk_dynamodb::types::KeyType::Range)
                .build()
                .unwrap(),
        )
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    let full = config(&builtin_split(90.0, 10.0), "");
    let doc = full[full.find("[[auth.keys]]").unwrap()..]
        .replace(&format!("[[admin.tokens]]\nname = \"ops\"\nsha256 = \"{ADMIN_SHA}\"\n"), "");
    moto.dynamodb()
        .put_item()
        .table_name("splitgate-config")
        .item("pk", AttributeValue::S("k".into()))
        .item("version", AttributeValue::N("1".into()))
        .item("document", AttributeValue::S(doc))
        .send()
        .await
        .unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[admin]\naudit_table = \"splitgate-audit\"\n[[admin.tokens]]\nname = \"ops\"\nsha256 = \"{ADMIN_SHA}\"\n[source]\nkind = \"dynamodb\"\ntable = \"splitgate-config\"\nkey = \"k\"\npoll_interval_ms = 200\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n",
        moto.url
    );
    let (a, b) = (Proxy::start(&text), Proxy::start(&text));
    let (status, _, body) = admin(&a, Method::PUT, "/admin/weights", Some(json!({"challenger": 40})), &[]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["version"], 2);
    b.wait_version(2).await;
    assert_eq!(b.health().await["variants"][1]["weight"], 40.0, "the other replica converges through DynamoDB");
    let item = moto
        .dynamodb()
        .get_item()
        .table_name("splitgate-config")
        .key("pk", AttributeValue::S("k".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(item.item.unwrap()["version"], AttributeValue::N("2".into()));
    let (status, _, _) =
        admin(&b, Method::PUT, "/admin/weights", Some(json!({"challenger": 5})), &[("if-match", "1")]).await;
    assert_eq!(status, 409);
    let audit = moto.dynamodb().scan().table_name("splitgate-audit").send().await.unwrap();
    assert_eq!(audit.items().len(), 1, "the change is in the DynamoDB audit table");
    let record: serde_json::Value = serde_json::from_str(audit.items()[0]["record"].as_s().unwrap()).unwrap();
    assert_eq!((record["who"].as_str(), record["new_version"].as_u64()), (Some("ops"), Some(2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_follows_the_serving_variant_and_experiment_stats_add_up() {
    let p = start(50.0);
    let c = client();
    // 200 users: every challenger user clicks once, every other champion user clicks once.
    let mut served = Vec::new();
    for i in 0..200 {
        let (status, h, _) = recommend_with(&c, &p.url("/recommend"), &format!("exp-{i}")).await;
        assert_eq!(status, 200);
        served.push((
            format!("exp-{i}"),
            header(&h, "x-request-id").to_owned(),
            header(&h, "x-splitgate-variant").to_owned(),
        ));
    }
    // Move everyone to the champion: feedback that names its request id still credits the
    // variant that actually served it.
    admin(&p, Method::PUT, "/admin/weights", Some(json!({"challenger": 0})), &[]).await;
    let (mut challenger_users, mut champion_clicks) = (0, 0);
    for (i, (user, rid, variant)) in served.iter().enumerate() {
        let clicks = usize::from(variant == "challenger" || i % 2 == 0);
        challenger_users += usize::from(variant == "challenger");
        champion_clicks += usize::from(variant == "champion" && clicks == 1);
        for _ in 0..clicks {
            let body = json!({"user_id": user, "item_id": "item-1", "event": "click", "request_id": rid}).to_string();
            let (status, _, answer) = post(&p.url("/feedback"), Some(KEY), &body, &[]).await;
            assert_eq!(status, 202);
            let a = json(&answer);
            assert_eq!(a["variant"], variant.as_str());
            assert_eq!(a["attributed_by"], "request_id");
        }
    }
    // Without a request id the live split decides.
    let body = json!({"user_id": "exp-0", "item_id": "i", "event": "purchase"}).to_string();
    assert_eq!(json(&post(&p.url("/feedback"), Some(KEY), &body, &[]).await.2)["variant"], "champion");

    let (status, _, body) = admin(&p, Method::GET, "/admin/experiment?event=click", None, &[]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let e = json(&body);
    let by = |n: &str| e["variants"].as_array().unwrap().iter().find(|v| v["name"] == n).unwrap().clone();
    let (champ, chall) = (by("champion"), by("challenger"));
    assert_eq!(chall["events"]["click"].as_u64(), Some(challenger_users as u64));
    assert_eq!(champ["events"]["click"].as_u64(), Some(champion_clicks as u64));
    assert_eq!(champ["events"]["purchase"], 1);
    let users = chall["users"].as_u64().unwrap() as f64;
    assert!(
        (users - challenger_users as f64).abs() <= 0.05 * challenger_users as f64 + 2.0,
        "HLL estimate {users} vs {challenger_users}"
    );
    assert!(chall["conversion"]["rate"].as_f64().unwrap() > 0.95, "every challenger user converted: {chall}");
    let champ_rate = champ["conversion"]["rate"].as_f64().unwrap();
    assert!((0.35..0.65).contains(&champ_rate), "half the champion users converted: {champ}");
    assert!(
        champ["conversion"]["ci_low"].as_f64().unwrap() < champ_rate
            && champ_rate < champ["conversion"]["ci_high"].as_f64().unwrap()
    );
    assert!(chall["p_value_vs_champion"].as_f64().unwrap() < 0.05, "1.0 vs 0.5 is significant: {chall}");
    assert_eq!(chall["significantly_worse"], false, "better, not worse");
    assert_eq!(admin(&p, Method::GET, "/admin/experiment?event=nope", None, &[]).await.0, 400);
}
