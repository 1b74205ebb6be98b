//! Experiment statistics end to end, each on a real proxy process: a bot whose user ids were
//! picked with `splitgate route` to land in the challenger breaks a 50/50 split — the SRM check
//! flags it on `/admin/experiment`, `splitgate_experiment_srm_flagged` is 1, the ramp holds and
//! promote needs `force` — while the same traffic without the bot is not flagged and ramps; a
//! ramp 10 → 50 with a different conversion rate per epoch reports both epochs and the
//! stratified estimate; and the exposure log recomputes offline with `loadtest/assignment.py`.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use http::Method;
use serde_json::{json, Value};
use support::*;

async fn experiment(p: &Proxy, event: &str) -> Value {
    json(&admin(p, Method::GET, &format!("/admin/experiment?event={event}"), None, &[]).await.2)
}

async fn weight(p: &Proxy) -> f64 {
    p.health().await["variants"][1]["weight"].as_f64().unwrap()
}

/// `candidates` routed by `splitgate route` under the proxy's config: those it puts in `variant`.
fn ids_routed_to(p: &Proxy, candidates: &[String], variant: &str) -> Vec<String> {
    use std::io::Write;
    let mut child = Command::new(bin())
        .args(["route", "--config"])
        .arg(p.path())
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = candidates.join("\n") + "\n";
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let (id, v) = (f.next()?, f.next()?);
            (v == variant).then(|| id.to_owned())
        })
        .collect()
}

fn users(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// 50/50, and (version 2) the same split with a ramp to 100 that may take a step every 500 ms
/// of healthy traffic. The ramp comes second so that it cannot step before the bot has come.
fn fifty_fifty() -> Conf {
    Conf::builtin(50.0, 50.0).version(1)
}

fn ramping_50_50() -> Conf {
    Conf::builtin(50.0, 50.0)
        .version(2)
        .guard(|g| g.min_requests(20).evaluate_every_ms(100))
        .ramp(&[50.0, 100.0], "500ms")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_in_the_challenger_is_an_srm_that_holds_the_ramp_and_promote() {
    let (bot, clean) = (Proxy::start(fifty_fifty()), Proxy::start(fifty_fifty()));
    let normal = users("user", 1_000);
    let bots: Vec<String> = ids_routed_to(&bot, &users("bot", 1_000), "challenger").into_iter().take(250).collect();
    assert_eq!(bots.len(), 250);
    for p in [&bot, &clean] {
        variants_of(&p.url("/recommend"), &normal, 8).await;
    }
    let got = variants_of(&bot.url("/recommend"), &bots, 8).await;
    assert!(got.iter().all(|v| v == "challenger"), "`splitgate route` and the proxy agree");

    // With the bot: flagged, on the report and the metric.
    let x = eventually(Duration::from_secs(5), "the SRM flag", || async {
        let x = experiment(&bot, "click").await;
        if x["srm"]["flagged"] == true {
            Ok(x)
        } else {
            Err(x["srm"].to_string())
        }
    })
    .await;
    let srm = &x["srm"];
    assert!(srm["p_value"].as_f64().unwrap() < 1e-6, "{srm}");
    // Every user is in the sample (1,250 < its capacity): the counts are exact.
    let observed = |v: &str| srm["observed"][v].as_u64().unwrap();
    assert_eq!(observed("champion") + observed("challenger"), 1_250, "{srm}");
    assert!(observed("challenger") > 700, "the bot's 250 are challengers: {srm}");
    assert!((srm["expected"]["challenger"].as_f64().unwrap() - 625.0).abs() < 1e-6, "{srm}");
    assert_eq!(x["epochs"].as_array().unwrap().len(), 1);
    assert!(x["epochs"][0]["srm"]["users"]["p_value"].as_f64().unwrap() < 1e-6);
    wait_metric(&bot, "splitgate_experiment_srm_flagged", 1.0).await;
    // Without it: no flag, and the metric says 0.
    let c = experiment(&clean, "click").await;
    assert_eq!(c["srm"]["flagged"], false, "{}", c["srm"]);
    assert!(c["srm"]["p_value"].as_f64().unwrap() > 0.001);
    assert_eq!(value(&clean, "splitgate_experiment_srm_flagged").await, 0.0);

    // Both keep serving healthy traffic, now with a ramp: the clean one ramps to 100%, the
    // broken one holds.
    for p in [&bot, &clean] {
        p.write_config(ramping_50_50().to_string());
        p.wait_version(2).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while weight(&clean).await < 100.0 {
        assert!(Instant::now() < deadline, "the clean proxy's ramp did not advance");
        for p in [&bot, &clean] {
            variants_of(&p.url("/recommend"), &normal[..100], 4).await;
        }
    }
    // Four more holds of traffic on the flagged proxy (an absence: no event says "it decided
    // not to move", so a span of time with the ramp's conditions otherwise met).
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        variants_of(&bot.url("/recommend"), &normal[..100], 4).await;
    }
    assert_eq!(weight(&bot).await, 50.0, "a flagged split must not ramp");
    assert!(bot.stderr_text().contains("sample ratio mismatch: the split is broken"), "the flip is logged");
    assert_eq!(bot.stderr_text().matches("sample ratio mismatch: the split is broken").count(), 1, "logged once");

    // Promote: 409 while flagged, unless forced — and then audited as forced.
    let (status, _, body) =
        admin(&bot, Method::POST, "/admin/promote", Some(json!({"variant": "challenger"})), &[]).await;
    assert_eq!(status.as_u16(), 409);
    assert_eq!(json(&body)["error"]["code"], "srm_flagged");
    let forced = json!({"variant": "challenger", "force": true, "reason": "known bot"});
    let (status, _, body) = admin(&bot, Method::POST, "/admin/promote", Some(forced), &[]).await;
    assert_eq!(status.as_u16(), 200, "{}", String::from_utf8_lossy(&body));
    let audit = json(&admin(&bot, Method::GET, "/admin/audit", None, &[]).await.2);
    let last = audit["records"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["action"].clone(), last["change"]["forced"].clone()), (json!("promote"), json!(true)), "{last}");
    // The clean proxy promotes without force.
    let (status, _, _) =
        admin(&clean, Method::POST, "/admin/promote", Some(json!({"variant": "challenger"})), &[]).await;
    assert_eq!(status.as_u16(), 200);
}

/// Sends `click` feedback for the users of `ids` whose index says they convert: `rate` per
/// variant, as a fraction in tenths (user i converts when i % 10 < tenths).
async fn convert(p: &Proxy, ids: &[String], served: &[String], tenths: &[(&str, usize)]) {
    for (i, (id, variant)) in ids.iter().zip(served).enumerate() {
        let t = tenths.iter().find(|(v, _)| v == variant).map_or(0, |(_, t)| *t);
        if i % 10 < t {
            let body = json!({"user_id": id, "item_id": "i1", "event": "click"}).to_string();
            let (s, _, _) = post(&p.url("/feedback"), Some(KEY), &body, &[]).await;
            assert_eq!(s.as_u16(), 202);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ramp_10_to_50_reports_epochs_and_the_stratified_estimate() {
    let p = Proxy::start(Conf::builtin(90.0, 10.0).version(1));
    // Epoch 1: a high-converting period; the challenger is 10 points better.
    let first = users("e1", 2_000);
    let served = variants_of(&p.url("/recommend"), &first, 8).await;
    convert(&p, &first, &served, &[("champion", 3), ("challenger", 4)]).await;
    p.write_config(Conf::builtin(50.0, 50.0).version(2).to_string());
    p.wait_version(2).await;
    // Epoch 2: a low-converting period, most of the challenger's users; still 10 points better.
    let second = users("e2", 2_000);
    let served = variants_of(&p.url("/recommend"), &second, 8).await;
    convert(&p, &second, &served, &[("champion", 1), ("challenger", 2)]).await;

    let x = experiment(&p, "click").await;
    let epochs = x["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2, "{x}");
    assert_eq!((epochs[0]["since_version"].clone(), epochs[1]["since_version"].clone()), (json!(1), json!(2)));
    assert_eq!(epochs[0]["weights"]["challenger"], 10.0);
    assert_eq!(epochs[1]["weights"]["challenger"], 50.0);
    let rate = |e: &Value, v: &str| e["variants"][v]["conversion"]["rate"].as_f64().unwrap();
    assert!((rate(&epochs[0], "champion") - 0.3).abs() < 0.03 && (rate(&epochs[0], "challenger") - 0.4).abs() < 0.08);
    assert!((rate(&epochs[1], "champion") - 0.1).abs() < 0.03 && (rate(&epochs[1], "challenger") - 0.2).abs() < 0.03);
    assert_eq!(epochs[1]["re_randomised"], false);
    assert_eq!(x["re_randomised"], false);
    assert_eq!(x["srm"]["flagged"], false, "{}", x["srm"]);
    let challenger = x["variants"].as_array().unwrap().iter().find(|v| v["name"] == "challenger").unwrap().clone();
    let seq = &challenger["sequential"];
    let diff = seq["difference"].as_f64().unwrap();
    assert!((diff - 0.10).abs() < 0.04, "stratified difference {diff}: {seq}");
    assert_eq!(seq["strata"], 2);
    let cs = seq["confidence_sequence"].as_array().unwrap();
    assert!(cs[0].as_f64().unwrap() < diff && diff < cs[1].as_f64().unwrap());
    // Pooled over both epochs the challenger looks barely better: the periods are mixed.
    let pooled = |v: &Value| v["metrics"]["conversion"]["rate"]["rate"].as_f64().unwrap();
    let champion = x["variants"].as_array().unwrap().iter().find(|v| v["name"] == "champion").unwrap().clone();
    assert!(pooled(&challenger) - pooled(&champion) < 0.03, "pooled {} vs {}", pooled(&challenger), pooled(&champion));
    assert_eq!(challenger["metrics"]["conversion"]["definition"], "users with >= 1 click event / exposed users");
    assert!(challenger["metrics"]["events_per_exposed_user"]["value"].as_f64().unwrap() > 0.0);

    // Lowering the challenger (a rollback to 10%) is allowed and marks the re-randomisation.
    p.write_config(Conf::builtin(80.0, 20.0).version(3).to_string());
    p.wait_version(3).await;
    variants_of(&p.url("/recommend"), &users("e3", 50), 4).await;
    let x = experiment(&p, "click").await;
    assert_eq!(x["re_randomised"], true, "{}", x["epochs"]);
    assert_eq!(x["re_randomised_from"], x["epochs"][2]["id"]);
    assert_eq!(x["epochs"][2]["lowered"], json!(["challenger"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exposure_log_recomputes_offline() {
    let p = Proxy::start(Conf::builtin(70.0, 30.0).version(4));
    let ids = users("log", 300);
    variants_of(&p.url("/recommend"), &ids, 4).await;
    let lines = eventually(Duration::from_secs(5), "300 access-log lines", || async {
        let l: Vec<String> = p.stdout_lines().into_iter().filter(|l| l.contains("POST /recommend")).collect();
        if l.len() >= 300 {
            Ok(l)
        } else {
            Err(l.len().to_string())
        }
    })
    .await;
    let first: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["userHash"].as_str().unwrap().len(), 16);
    assert_eq!(first["configVersion"], 4);
    assert!(first.get("userId").is_none(), "the raw id is not logged by default");
    assert!(!lines.iter().any(|l| l.contains("\"log-1\"")), "no raw user id anywhere");
    let run = |text: String| {
        let path = p.dir.path().join("access.jsonl");
        std::fs::write(&path, text).unwrap();
        Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/loadtest/assignment.py"))
            .arg("--config")
            .arg(p.path())
            .arg("--access-log")
            .arg(&path)
            .output()
            .unwrap()
    };
    let out = run(lines.join("\n"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("checked 300, mismatched 0"), "{stdout}");
    assert!(stdout.contains(&format!("{}\tchallenger\t", first["epoch"].as_str().unwrap())), "{stdout}");
    // A line whose bucket does not follow from its hash is caught.
    let bucket = first["bucket"].as_u64().unwrap();
    let tampered =
        lines[0].replace(&format!("\"bucket\":{bucket},"), &format!("\"bucket\":{},", (bucket + 1) % 10_000));
    let out = run([tampered].into_iter().chain(lines[1..].iter().cloned()).collect::<Vec<_>>().join("\n"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("checked 300, mismatched 1"));

    // With log_raw_user_id the raw id is there too.
    let q = Proxy::start(Conf::builtin(70.0, 30.0).extra("[experiment]\nlog_raw_user_id = true\n"));
    recommend(&q.url("/recommend"), "raw-7").await;
    wait_until(Duration::from_secs(5), "the raw id in the log", || async {
        q.stdout_lines().iter().any(|l| l.contains(r#""userId":"raw-7""#))
    })
    .await;
}
