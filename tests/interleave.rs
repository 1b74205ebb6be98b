//! Interleaving arms end to end: a real proxy, two real HTTP models on loopback, an arm at 100%.
//! The merged answer holds k items from both models in team-draft order; `/feedback` credits each
//! clicked item to the model that contributed it, on any replica; one model down, slow or broken
//! gives the other model's answer unchanged (`degraded`), never an error and never a wait past
//! the bound; `loadtest/interleave.py` recomputes from the access log what the proxy did.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use splitgate::interleave::{seed, team_draft, Team};
use support::upstream::{dead_addr, Builder};
use support::*;

const SALT: &str = "interleave-test";
const ARM: &str = "interleave-v23";
const A: &[&str] = &["a1", "x", "a2", "y", "a3", "a4", "a5", "a6", "a7", "a8"];
const B: &[&str] = &["x", "b1", "y", "b2", "b3", "b4", "b5", "b6", "b7", "b8"];

/// Models `rec-a` (version va) and `rec-b` (vb), an unused builtin champion, and the arm at 100%.
fn conf(a: &str, b: &str, wait_ms: u64, b_timeout_ms: u64) -> Conf {
    Conf::base()
        .model_http("rec-a", "va", a)
        .model("rec-a", "timeout_ms", 2_000)
        .model_http("rec-b", "vb", b)
        .model("rec-b", "timeout_ms", b_timeout_ms)
        .model_builtin("spare", "v0")
        .split(SALT)
        .champion("champion", "spare", 0.0)
        .interleave_arm(ARM, ("rec-a", "rec-b"), 100.0, |v| v.set("interleave_wait_ms", wait_ms))
}

/// The model's answer, asked directly (the bytes the proxy got from it).
async fn direct(u: &Upstream) -> bytes::Bytes {
    post(&u.url(), None, r#"{"user_id":"direct"}"#, &[]).await.2
}

fn ids(body: &bytes::Bytes) -> Vec<String> {
    json(body)["items"].as_array().unwrap().iter().map(|i| i["item_id"].as_str().unwrap().to_owned()).collect()
}

/// The merge the documentation promises for `user` and the id the models saw.
fn expected(user: &str, base: &str) -> (Vec<&'static str>, String) {
    let picks = team_draft(A, B, 10, seed(SALT, user.as_bytes(), base.as_bytes()));
    let ids = picks.iter().map(|p| if p.team == Team::A { A[p.index] } else { B[p.index] }).collect();
    (ids, picks.iter().map(|p| p.team.letter() as char).collect())
}

async fn feedback(p: &Proxy, body: Value) -> Value {
    let (status, _, b) = post(&p.url("/feedback"), Some(KEY), &body.to_string(), &[]).await;
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&b));
    json(&b)
}

async fn interleaving(p: &Proxy) -> Value {
    let v = json(&admin(p, http::Method::GET, "/admin/experiment", None, &[]).await.2);
    v["interleaving"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_answers_hold_both_models_in_team_draft_order_and_clicks_credit_their_model() {
    let (a, b) = (Upstream::builder().answer(A).start().await, Upstream::builder().answer(B).start().await);
    let p = Proxy::start(conf(&a.url(), &b.url(), 200, 2_000));
    let mut served = Vec::new();
    for i in 0..20 {
        let user = format!("u-{i}");
        let (status, h, body) = recommend(&p.url("/recommend"), &user).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(header(&h, "x-splitgate-variant"), ARM);
        assert_eq!(header(&h, "x-splitgate-interleave"), "merged");
        assert_eq!(header(&h, "x-splitgate-model"), "va+vb");
        // A minted id carries the team code: `<32 hex>.<code>`, the code also in x-splitgate-teams.
        let rid = header(&h, "x-request-id").to_owned();
        let (base, code) = rid.split_once('.').expect("a minted id with its code");
        assert!(base.len() == 32 && base.bytes().all(|c| c.is_ascii_hexdigit()), "{rid}");
        assert_eq!(code, header(&h, "x-splitgate-teams"));
        assert!(rid.len() <= 128);
        let got = ids(&body);
        let (want, _) = expected(&user, base);
        assert_eq!(got, want, "user {user}: not the documented team-draft order");
        assert_eq!(got.len(), 10);
        assert_eq!(got.iter().collect::<HashSet<_>>().len(), 10, "no item twice: {got:?}");
        assert!(got.iter().any(|i| i.starts_with('a')) && got.iter().any(|i| i.starts_with('b')), "{got:?}");
        // Items keep the models' own JSON (the mock writes a score on each).
        assert!(json(&body)["items"].as_array().unwrap().iter().all(|i| i["score"] == 0.5));
        let base = base.to_owned();
        served.push((user, rid, base));
    }
    // Both models got every request, with the caller's body and the plain id.
    assert_eq!((a.requests(), b.requests()), (20, 20));
    let last = b.seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(&last.body[..], br#"{"user_id":"u-19"}"#);
    assert_eq!(last.headers["x-request-id"], served[19].2.as_str());

    // Clicks: the first position of each team on u-0's page, by item id.
    let (user, rid, base) = &served[0];
    let picks = team_draft(A, B, 10, seed(SALT, user.as_bytes(), base.as_bytes()));
    let first = |team: Team| picks.iter().position(|p| p.team == team).unwrap();
    let item_at = |pos: usize| if picks[pos].team == Team::A { A[picks[pos].index] } else { B[picks[pos].index] };
    let (pa, pb) = (first(Team::A), first(Team::B));
    let click = |item: &str| serde_json::json!({"user_id": user, "request_id": rid, "item_id": item, "event": "click"});
    let fa = feedback(&p, click(item_at(pa))).await;
    assert_eq!(fa["variant"], ARM);
    assert_eq!(fa["attributed_by"], "request_id");
    assert_eq!(fa["interleave"], serde_json::json!({"credited": true, "team": "a", "model": "rec-a", "position": pa}));
    let fb = feedback(&p, click(item_at(pb))).await;
    assert_eq!(fb["interleave"], serde_json::json!({"credited": true, "team": "b", "model": "rec-b", "position": pb}));
    feedback(&p, click(item_at(pb))).await; // a repeat: counted once
    let none = feedback(&p, click("not-on-the-page")).await;
    assert_eq!(none["interleave"], serde_json::json!({"credited": false, "team": null, "reason": "not_shown"}));

    // Another replica credits the same way: nothing but the id travels.
    let q = Proxy::start(conf(&a.url(), &b.url(), 200, 2_000));
    let (user1, rid1, base1) = &served[1];
    let picks1 = team_draft(A, B, 10, seed(SALT, user1.as_bytes(), base1.as_bytes()));
    let b_item = picks1.iter().find(|p| p.team == Team::B).map(|p| B[p.index]).unwrap();
    let other =
        feedback(&q, serde_json::json!({"user_id": user1, "request_id": rid1, "item_id": b_item, "event": "click"}))
            .await;
    assert_eq!(other["interleave"]["team"], "b", "{other}");
    assert_eq!(interleaving(&q).await["outcomes"]["wins_b"], 1);

    // A caller's own id is never changed: the code comes back as `teams`.
    let (status, h, body) =
        post(&p.url("/recommend"), Some(KEY), r#"{"user_id":"own"}"#, &[("x-request-id", "caller-req-1")]).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-request-id"), "caller-req-1");
    let teams = header(&h, "x-splitgate-teams").to_owned();
    let (want, _) = expected("own", "caller-req-1");
    assert_eq!(ids(&body), want);
    let own = serde_json::json!({"user_id": "own", "request_id": "caller-req-1", "teams": teams, "item_id": want[0], "event": "click"});
    let credited = feedback(&p, own).await;
    assert_eq!(credited["interleave"]["credited"], true, "{credited}");
    let own_team = credited["interleave"]["team"].as_str().unwrap().to_owned();
    let forged =
        serde_json::json!({"user_id": "own", "request_id": "caller-req-2", "teams": teams, "item_id": want[0]});
    let f = feedback(&p, forged).await;
    assert_eq!(f["interleave"]["reason"], "no_team_code", "a code only counts for its own request: {f}");

    let s = interleaving(&p).await;
    assert_eq!(s["variant"], ARM);
    assert_eq!(s["models"]["a"]["name"], "rec-a");
    assert_eq!(s["impressions"], 21);
    assert_eq!(s["positions_shown"]["a"].as_u64().unwrap() + s["positions_shown"]["b"].as_u64().unwrap(), 210);
    let (ca, cb) = if own_team == "a" { (2, 1) } else { (1, 2) };
    assert_eq!(s["clicks"], serde_json::json!({"a": ca, "b": cb, "repeat": 1}), "{s}");
    assert_eq!(s["uncredited"]["not_shown"], 1);
    assert_eq!(s["uncredited"]["no_team_code"], 1);
    // u-0: one click on each team (a tie); "own": one click, a win for its team.
    let (wa, wb) = if own_team == "a" { (1, 0) } else { (0, 1) };
    assert_eq!(
        s["outcomes"],
        serde_json::json!({"requests_with_clicks": 2, "wins_a": wa, "wins_b": wb, "ties": 1}),
        "{s}"
    );
    assert_eq!(s["preference"]["delta"], if own_team == "a" { -0.5 } else { 0.5 });
    assert_eq!(s["sign_test"]["decisive"], 1);
    assert_eq!(s["sign_test"]["p_value"], 1.0);
    assert_eq!(s["anytime_valid"], Value::Null);
    let m = p.metrics().await;
    assert_eq!(
        metric(&m, r#"splitgate_interleave_requests_total{variant="interleave-v23",outcome="merged"}"#),
        Some(21.0)
    );
    assert_eq!(
        metric(&m, r#"splitgate_interleave_credits_total{variant="interleave-v23",team="b"}"#),
        Some(cb as f64 + 1.0)
    );
    assert_no_panic(&p);
}

/// One request: (status, headers, body, how long it took).
async fn timed(p: &Proxy, user: &str) -> (u16, http::HeaderMap, bytes::Bytes, Duration) {
    let t = Instant::now();
    let (s, h, b) = recommend(&p.url("/recommend"), user).await;
    (s.as_u16(), h, b, t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_model_down_gives_the_others_answer_unchanged_never_an_error_never_a_long_wait() {
    let (a, b) = (Upstream::builder().answer(A).start().await, Upstream::builder().answer(B).start().await);
    let (a_body, b_body) = (direct(&a).await, direct(&b).await);
    // B may take 5 s by its own deadline; the arm waits 300 ms past A's answer, no more.
    let p = Proxy::start(conf(&a.url(), &b.url(), 300, 5_000));
    let phases: [(&str, Builder, &str); 4] = [
        ("hang", Upstream::builder().hang(), "late"),
        ("slow", Upstream::builder().latency(Duration::from_secs(2)).answer(B), "late"),
        ("503", Upstream::builder().fail_with(503), "failed"),
        ("garbage", Upstream::builder().garbage(), "unusable"),
    ];
    for (name, behaviour, reason) in phases {
        b.set(behaviour);
        for i in 0..3 {
            let (status, h, body, took) = timed(&p, &format!("{name}-{i}")).await;
            assert_eq!(status, 200, "{name}: {}", String::from_utf8_lossy(&body));
            assert_eq!(header(&h, "x-splitgate-interleave"), "degraded", "{name}");
            assert_eq!(body, a_body, "{name}: A's answer, byte for byte");
            assert_eq!(header(&h, "x-splitgate-model"), "va");
            // The bound is A's answer + 300 ms; B's own deadline (5 s) must never be what ends it.
            assert!(took < Duration::from_millis(2_500), "{name}: waited {took:?}");
            let rid = header(&h, "x-request-id").to_owned();
            if i == 0 {
                let f = feedback(&p, serde_json::json!({"user_id": format!("{name}-0"), "request_id": rid, "item_id": "a1", "event": "click"})).await;
                assert_eq!(f["interleave"]["reason"], "degraded", "{name}: no preference: {f}");
            }
        }
        let s = interleaving(&p).await;
        assert!(s["degraded"]["b_missing"][reason].as_u64().unwrap() >= 3, "{name}: {s}");
    }
    // B dead: the same, at once.
    let dead = Proxy::start(conf(&a.url(), &format!("http://{}/invocations", dead_addr().await), 300, 5_000));
    let (status, h, body, _) = timed(&dead, "dead").await;
    assert_eq!((status, header(&h, "x-splitgate-interleave"), body), (200, "degraded", a_body.clone()));
    // A down instead: B's answer.
    b.set(Upstream::builder().answer(B));
    a.set(Upstream::builder().hang());
    let (status, h, body, took) = timed(&p, "a-down").await;
    assert_eq!((status, header(&h, "x-splitgate-interleave")), (200, "degraded"));
    assert_eq!((body, header(&h, "x-splitgate-model")), (b_body, "vb"));
    assert!(took < Duration::from_millis(2_500), "waited {took:?}");
    // Both down: an error like any variant's (never a made-up answer).
    a.set(Upstream::builder().fail_with(503));
    b.set(Upstream::builder().fail_with(503));
    let (status, h, _, _) = timed(&p, "both-down").await;
    assert_eq!(status, 503, "the model's own answer is passed through");
    assert_eq!(header(&h, "x-splitgate-interleave"), "failed");
    let s = interleaving(&p).await;
    assert_eq!(s["failed"], 1);
    assert_eq!(s["impressions"], 0);
    assert_eq!(s["outcomes"]["requests_with_clicks"], 0, "degraded answers carry no preference: {s}");
    let m = p.metrics().await;
    assert!(
        metric(&m, r#"splitgate_interleave_requests_total{variant="interleave-v23",outcome="degraded"}"#).unwrap()
            >= 13.0
    );
    assert!(
        metric(&m, r#"splitgate_upstream_errors_total{model="rec-b",kind="upstream_timeout"}"#)
            .is_none_or(|v| v == 0.0),
        "cut off is not a timeout: {m}"
    );
    assert_no_panic(&p);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offline_check_recomputes_what_the_proxy_logged() {
    let (a, b) = (Upstream::builder().answer(A).start().await, Upstream::builder().answer(B).start().await);
    let (a_body, b_body) = (direct(&a).await, direct(&b).await);
    let p = Proxy::start(conf(&a.url(), &b.url(), 300, 5_000));
    let mut cases = Vec::new();
    let mut add = |user: &str, rid: &str, teams: Option<&str>, served: &bytes::Bytes| {
        cases.push((user.to_owned(), rid.to_owned(), teams.map(str::to_owned), json(served)));
    };
    for i in 0..15 {
        let (_, h, body) = recommend(&p.url("/recommend"), &format!("py-{i}")).await;
        add(&format!("py-{i}"), header(&h, "x-request-id"), None, &body);
    }
    let (_, h, body) =
        post(&p.url("/recommend"), Some(KEY), r#"{"user_id":"own"}"#, &[("x-request-id", "own.id.7")]).await;
    add("own", "own.id.7", Some(header(&h, "x-splitgate-teams")), &body);
    b.set(Upstream::builder().fail_with(500));
    let (_, h, body) = recommend(&p.url("/recommend"), "py-degraded").await;
    assert_eq!(header(&h, "x-splitgate-interleave"), "degraded");
    add("py-degraded", header(&h, "x-request-id"), None, &body);

    let n = cases.len();
    let lines = eventually(Duration::from_secs(5), "access-log lines", || async {
        let l: Vec<Value> = p
            .stdout_lines()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|v: &Value| v["routeKey"] == "POST /recommend")
            .collect();
        if l.len() >= n {
            Ok(l)
        } else {
            Err(format!("{} lines", l.len()))
        }
    })
    .await;
    let jsonl = |tamper: bool| -> String {
        let mut out = String::new();
        for (user, rid, teams, served) in &cases {
            let mut log = lines
                .iter()
                .find(|l| l["requestId"] == rid.as_str())
                .cloned()
                .unwrap_or_else(|| panic!("no log line for {rid}"));
            if tamper && log["interleave"] == "merged" {
                let t = log["teams"].as_str().unwrap();
                let flipped: String = t.chars().map(|c| if c == 'A' { 'B' } else { 'A' }).collect();
                log["teams"] = flipped.into();
            }
            let mut case = serde_json::json!({"user_id": user, "answer_a": json(&a_body), "answer_b": json(&b_body), "log": log, "served": served});
            if let Some(t) = teams {
                case["teams"] = t.as_str().into();
            }
            out.push_str(&case.to_string());
            out.push('\n');
        }
        out
    };
    let run = |text: String| {
        let path = p.dir.path().join("cases.jsonl");
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/loadtest/interleave.py"))
            .args(["--config", p.path().to_str().unwrap(), "--variant", ARM, path.to_str().unwrap()])
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, out) = run(jsonl(false));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&format!("{n} case(s), 0 mismatch(es)")), "{out}");
    assert!(out.contains("ok degraded"), "{out}");
    // The check can fail: the same cases with the logged teams swapped are refused.
    let (code, out) = run(jsonl(true));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("MISMATCH: teams"), "{out}");
}

#[test]
fn check_validates_interleaving_arms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    let bad = Conf::base().model_builtin("rec-a", "va").split("s").champion("champion", "rec-a", 100.0).interleave_arm(
        ARM,
        ("rec-a", "ghost"),
        0.0,
        |v| v.set("model", "rec-a").set("k", 99),
    );
    std::fs::write(&path, bad.to_string()).unwrap();
    let out = std::process::Command::new(bin()).args(["check", "--config", path.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{err}");
    for want in [
        "split.variants[1].interleave: `model` and `interleave` exclude each other",
        "split.variants[1].interleave[1]: no model named `ghost`",
        "split.variants[1].k: must be between 1 and 24",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    let good = conf("http://127.0.0.1:1/", "http://127.0.0.1:2/", 50, 1_000);
    std::fs::write(&path, good.to_string()).unwrap();
    let out = std::process::Command::new(bin()).args(["check", "--config", path.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // `splitgate route` names both models of an arm.
    let out =
        std::process::Command::new(bin()).args(["route", "--config", path.to_str().unwrap(), "u1"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("u1\t{ARM}\trec-a+rec-b\n"));
}
