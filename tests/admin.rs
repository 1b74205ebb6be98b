//! Operators in control, against the real binary: the admin API needs its token and redacts
//! key hashes; weight edits, rollback and promote (API and CLI) write the file or the DynamoDB
//! item, apply live, refuse stale writers (409) and are audited; feedback is credited to the
//! variant that served the request, and `/admin/experiment` adds it up.
//! The guard's automatic rollbacks are in `tests/guard.rs`.

mod support;

use std::process::Command;
use std::time::Duration;

use http::Method;
use serde_json::json;
use support::moto::Moto;
use support::*;

/// Builtin models at `challenger`% with an audit log in the proxy's temp dir, written after an
/// operator's comment (which admin edits must preserve).
fn start(challenger: f64) -> Proxy {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("splitgate.toml");
    let audit = dir.path().join("audit.jsonl");
    let conf = Conf::builtin(100.0 - challenger, challenger).set("admin.audit_log", audit.to_str().unwrap());
    std::fs::write(&path, format!("# operators: ramp carefully\n{conf}")).unwrap();
    Proxy::start_at(dir, path)
}

async fn share(p: &Proxy) -> f64 {
    challenger_share(p, "adm", 400).await
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
    // The watcher sees the file it already applied and does not bump the version again (an
    // absence: the sleep spans a poll period and a half, then the version is checked).
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
    let run = |args: &[&str]| p.cli(args);
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
    let doc = Conf::builtin(90.0, 10.0).hot_document();
    moto.dynamodb()
        .put_item()
        .table_name("splitgate-config")
        .item("pk", AttributeValue::S("k".into()))
        .item("version", AttributeValue::N("1".into()))
        .item("document", AttributeValue::S(doc))
        .send()
        .await
        .unwrap();
    // The static part only: listeners, the admin token and audit table, and the DynamoDB source.
    let text = Conf::base()
        .without_keys()
        .remove("server.max_body_bytes")
        .set("admin.audit_table", "splitgate-audit")
        .source_dynamodb("splitgate-config", "k", 200, &moto.url)
        .to_string();
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
