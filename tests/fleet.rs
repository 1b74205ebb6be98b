//! Fleet-wide truth with real processes: three proxies on one config file, sharing counters and
//! the guard lease through a real DynamoDB emulator (moto). The fleet flushes every 300 ms with
//! a 1.5 s lease, so every condition below settles within a few seconds.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use http::Method;
use serde_json::{json, Value};
use support::moto::Moto;
use support::*;

const FLUSH_MS: u64 = 300;
const LEASE_MS: u64 = 1_500;

fn with_fleet(c: Conf, moto: &Moto, audit: &std::path::Path) -> Conf {
    c.extra(&format!(
        "[fleet]\ntable = \"fleet\"\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\nflush_interval_ms = {FLUSH_MS}\nlease_ms = {LEASE_MS}\n",
        moto.url
    ))
    .set("admin.audit_log", audit.to_str().unwrap())
}

/// Three replicas serving one config file, plus the audit file they share. The directory
/// holding both belongs to the test (in `Fleet`), so killing any replica leaves them in place.
struct Fleet {
    ps: Vec<Proxy>,
    audit: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn fleet_of_three(moto: &Moto, conf: impl FnOnce(&std::path::Path) -> Conf) -> Fleet {
    moto.create_table_pk_sk("fleet").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("splitgate.toml");
    let audit = dir.path().join("audit.jsonl");
    std::fs::write(&path, with_fleet(conf(&audit), moto, &audit).to_string()).unwrap();
    let ps = (0..3).map(|_| Proxy::start_at(tempfile::tempdir().unwrap(), path.clone())).collect();
    Fleet { ps, audit, _dir: dir }
}

async fn view(p: &Proxy, path: &str) -> Value {
    let (status, _, body) = admin(p, Method::GET, path, None, &[]).await;
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    json(&body)
}

fn requests_by_variant(v: &Value) -> BTreeMap<String, u64> {
    v["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["name"].as_str().unwrap().to_owned(), x["requests"].as_u64().unwrap()))
        .collect()
}

/// Sends `/recommend` for `users` round-robin over the replicas; returns requests per variant.
async fn spread(ps: &[Proxy], users: &[String]) -> BTreeMap<String, u64> {
    let c = client();
    let mut by_variant = BTreeMap::new();
    for (i, u) in users.iter().enumerate() {
        let (status, h, _) = recommend_with(&c, &ps[i % ps.len()].url("/recommend"), u).await;
        assert_eq!(status, 200);
        *by_variant.entry(header(&h, "x-splitgate-variant").to_owned()).or_insert(0) += 1;
    }
    by_variant
}

fn audit_records(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

async fn leaders(ps: &[Proxy]) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, p) in ps.iter().enumerate() {
        if p.health().await["fleet_detail"]["is_leader"] == true {
            out.push(i);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_reports_the_same_fleet_totals_equal_to_what_was_sent() {
    let moto = Moto::start().await;
    let Fleet { ps, _dir, .. } = fleet_of_three(&moto, |_| Conf::builtin(50.0, 50.0)).await;
    // 150 requests from 60 users, round-robin: every user reaches more than one replica.
    let users: Vec<String> = (0..150).map(|i| format!("fleet-user-{}", i % 60)).collect();
    let sent = spread(&ps, &users).await;
    let distinct: BTreeMap<String, usize> = {
        let c = client();
        let mut m: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
        for u in users.iter().take(60) {
            let (_, h, _) = recommend_with(&c, &ps[0].url("/recommend"), u).await;
            m.entry(header(&h, "x-splitgate-variant").to_owned()).or_default().insert(u.clone());
        }
        m.into_iter().map(|(k, v)| (k, v.len())).collect()
    };
    // The 60 extra requests above went to replica 0.
    let mut want = sent.clone();
    for (k, n) in &distinct {
        *want.entry(k.clone()).or_insert(0) += *n as u64;
    }
    for p in &ps {
        let v = eventually(Duration::from_secs(10), "fleet totals never matched what was sent", || async {
            let v = view(p, "/admin/experiment").await;
            if v["scope"] == "fleet" && v["replicas"] == 3 && requests_by_variant(&v) == want {
                Ok(v)
            } else {
                Err(v.to_string())
            }
        })
        .await;
        assert_eq!(v["replica_flushes"].as_array().unwrap().len(), 3, "{v}");
        // Users merge as a union (register max), not a sum of the replicas' estimates: each of
        // the 60 users was seen by several replicas, the fleet still counts each once.
        for x in v["variants"].as_array().unwrap() {
            let name = x["name"].as_str().unwrap();
            let exact = distinct[name] as f64;
            let est = x["users"].as_f64().unwrap();
            assert!((est - exact).abs() <= exact * 0.05 + 1.0, "{name}: {est} users, {exact} exact");
        }
        let status = view(p, "/admin/status").await;
        assert_eq!((status["scope"].as_str(), status["replicas"].as_u64()), (Some("fleet"), Some(3)));
        assert_eq!(requests_by_variant(&status), want);
        let shadow = view(p, "/admin/shadow").await;
        assert_eq!(shadow["scope"], "fleet");
    }
    // ?scope=local: this process's own slice.
    let local = view(&ps[1], "/admin/experiment?scope=local").await;
    assert_eq!(local["scope"], "local");
    assert_eq!(requests_by_variant(&local).values().sum::<u64>(), 50, "{local}");
    let bad = admin(&ps[1], Method::GET, "/admin/status?scope=galaxy", None, &[]).await;
    assert_eq!(bad.0, 400);
    // Exactly one replica holds the lease, and says so in its metrics.
    let l = eventually(Duration::from_secs(5), "no single lease holder", || async {
        let l = leaders(&ps).await;
        if l.len() == 1 {
            Ok(l)
        } else {
            Err(format!("{l:?}"))
        }
    })
    .await;
    // The gauge is set by the fleet loop (within a quarter lease period): 1 on the holder, 0 elsewhere.
    for (i, p) in ps.iter().enumerate() {
        let id = p.health().await["fleet_detail"]["replica_id"].as_str().unwrap().to_owned();
        let series = format!(r#"splitgate_fleet_leader{{replica="{id}"}}"#);
        let want = if i == l[0] { 1.0 } else { 0.0 };
        eventually(Duration::from_secs(3), &format!("{series} is not {want}"), || async {
            let m = p.metrics().await;
            if metric(&m, &series) == Some(want) {
                Ok(())
            } else {
                Err(m)
            }
        })
        .await;
    }
    let holder = view(&ps[(l[0] + 1) % 3], "/admin/status").await["leader"].clone();
    assert_eq!(holder, ps[l[0]].health().await["fleet_detail"]["replica_id"]);
}

/// Two HTTP models 50/50 with fallback; a guard whose only reachable trigger is "more than 10
/// model invocation errors a minute" (min_requests is out of reach for the rate triggers).
fn guarded(champion: &str, challenger: &str, hook: &str) -> Conf {
    Conf::base()
        .model_http("champ", "c1", champion)
        .model_http("chall", "n1", challenger)
        .split("fleet-guard")
        .set("split.fallback_to_champion", true)
        .champion("champion", "champ", 50.0)
        .variant("challenger", "chall", 50.0)
        .guard(|g| g.min_requests(100_000).evaluate_every_ms(100).invocation_errors_per_minute(10).webhook_url(hook))
}

/// Users the split puts in the challenger (found through replica 0's answers).
async fn challenger_users(p: &Proxy, n: usize) -> Vec<String> {
    let c = client();
    let mut out = Vec::new();
    for i in 0..10 * n {
        let u = format!("cu-{i}");
        let (_, h, _) = recommend_with(&c, &p.url("/recommend"), &u).await;
        if header(&h, "x-splitgate-variant") == "challenger" {
            out.push(u);
            if out.len() == n {
                break;
            }
        }
    }
    assert_eq!(out.len(), n);
    out
}

async fn weight_everywhere(ps: &[Proxy], want: f64) {
    for p in ps {
        eventually(Duration::from_secs(10), &format!("challenger weight never became {want}"), || async {
            let h = p.health().await;
            if h["variants"][1]["weight"] == want {
                Ok(())
            } else {
                Err(h["variants"].to_string())
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_spread_over_replicas_roll_back_once_for_the_fleet() {
    let moto = Moto::start().await;
    let champion = Upstream::builder().answer(&["a"]).start().await;
    let challenger = Upstream::builder().answer(&["b"]).start().await;
    let hook = Upstream::builder().start().await;
    let Fleet { ps, audit, _dir } =
        fleet_of_three(&moto, |_| guarded(&champion.url(), &challenger.url(), &hook.url())).await;
    let users = challenger_users(&ps[0], 18).await;
    // Healthy: plenty of challenger traffic on every replica, several fleet reads: no rollback.
    spread(&ps, &users).await;
    tokio::time::sleep(Duration::from_millis(4 * FLUSH_MS)).await;
    assert_eq!(ps[2].health().await["variants"][1]["weight"], 50.0, "a healthy challenger stays");
    // Failing: 6 challenger errors per replica (each under the threshold of 10), 18 for the fleet.
    challenger.set(Upstream::builder().fail_with(500));
    let results = spread(&ps, &users).await;
    assert_eq!(results.values().sum::<u64>(), 18, "fallback answered every request");
    weight_everywhere(&ps, 0.0).await;
    for p in &ps {
        let local = view(p, "/admin/status?scope=local").await;
        let errors = local["variants"][1]["model_errors"].as_u64().unwrap();
        assert!(errors <= 10, "a replica reached the threshold alone ({errors}): the test proves nothing");
    }
    // Let every replica run several more guard passes on fresh reads: still one of everything.
    tokio::time::sleep(Duration::from_millis(5 * FLUSH_MS)).await;
    let rollbacks: Vec<Value> = audit_records(&audit).into_iter().filter(|r| r["action"] == "rollback").collect();
    assert_eq!(rollbacks.len(), 1, "one audit record for the fleet: {rollbacks:?}");
    assert_eq!(rollbacks[0]["who"], "guard");
    assert!(rollbacks[0]["reason"].as_str().unwrap().contains("invocation_errors"), "{rollbacks:?}");
    wait_until(Duration::from_secs(5), "no webhook note", || async { hook.requests() >= 1 }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hook.requests(), 1, "one webhook call for the fleet");
    let mut total = 0.0;
    for p in &ps {
        let m = p.metrics().await;
        total += metric(&m, r#"splitgate_guard_rollbacks_total{variant="challenger",trigger="invocation_errors"}"#)
            .unwrap_or(0.0);
    }
    assert_eq!(total, 1.0);
    let fleet_audit = view(&ps[1], "/admin/audit").await;
    assert_eq!(
        fleet_audit["records"].as_array().unwrap().len(),
        1,
        "any replica shows the fleet's trail: {fleet_audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ramp_advances_once_per_hold_for_the_fleet() {
    let moto = Moto::start().await;
    let Fleet { ps, audit, _dir } = fleet_of_three(&moto, |_| {
        Conf::builtin(90.0, 10.0).guard(|g| g.min_requests(5).evaluate_every_ms(100)).ramp(&[10.0, 50.0, 100.0], "1s")
    })
    .await;
    let c = client();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut i = 0;
    while ps[0].health().await["variants"][1]["weight"] != 100.0 {
        assert!(Instant::now() < deadline, "the ramp did not reach 100% within 30 s");
        for p in &ps {
            let (status, _, _) = recommend_with(&c, &p.url("/recommend"), &format!("ramp-{i}")).await;
            assert_eq!(status, 200);
            i += 1;
        }
    }
    weight_everywhere(&ps, 100.0).await;
    tokio::time::sleep(Duration::from_millis(5 * FLUSH_MS)).await;
    let steps: Vec<(f64, f64)> = audit_records(&audit)
        .into_iter()
        .filter(|r| r["action"] == "ramp")
        .map(|r| (r["change"]["from"].as_f64().unwrap(), r["change"]["to"].as_f64().unwrap()))
        .collect();
    assert_eq!(steps, vec![(10.0, 50.0), (50.0, 100.0)], "exactly one step per hold for the fleet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_lease_holder_is_replaced_and_the_guard_keeps_working() {
    let moto = Moto::start().await;
    let champion = Upstream::builder().answer(&["a"]).start().await;
    let challenger = Upstream::builder().answer(&["b"]).start().await;
    let hook = Upstream::builder().start().await;
    let Fleet { mut ps, audit, _dir } =
        fleet_of_three(&moto, |_| guarded(&champion.url(), &challenger.url(), &hook.url())).await;
    let users = challenger_users(&ps[0], 12).await;
    let leader = eventually(Duration::from_secs(5), "no lease holder", || async {
        match leaders(&ps).await.as_slice() {
            [one] => Ok(*one),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    ps[leader].kill();
    let died = Instant::now();
    let survivors: Vec<Proxy> = ps.into_iter().enumerate().filter(|(i, _)| *i != leader).map(|(_, p)| p).collect();
    let new = eventually(Duration::from_secs(10), "nobody took the lease over", || async {
        match leaders(&survivors).await.as_slice() {
            [one] => Ok(*one),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let took = died.elapsed();
    assert!(took < Duration::from_millis(2 * LEASE_MS), "takeover took {took:?}, more than two lease periods");
    let _ = new;
    // The guard keeps working on the survivors: 12 errors across two replicas roll back.
    challenger.set(Upstream::builder().fail_with(500));
    spread(&survivors, &users).await;
    weight_everywhere(&survivors, 0.0).await;
    let rollbacks = audit_records(&audit).into_iter().filter(|r| r["action"] == "rollback").count();
    assert_eq!(rollbacks, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_on_another_replica_after_a_rollback_credits_the_variant_that_served() {
    let moto = Moto::start().await;
    let Fleet { ps, _dir, .. } = fleet_of_three(&moto, |_| Conf::builtin(50.0, 50.0)).await;
    let user = challenger_users(&ps[0], 1).await.remove(0);
    let (status, h, _) = recommend_with(&client(), &ps[0].url("/recommend"), &user).await;
    assert_eq!((status.as_u16(), header(&h, "x-splitgate-variant")), (200, "challenger"));
    let request_id = header(&h, "x-request-id").to_owned();
    let served_version: u64 = header(&h, "x-splitgate-config-version").parse().unwrap();
    // Roll the challenger back through replica A; replica C follows the file.
    let (status, _, body) = admin(&ps[0], Method::POST, "/admin/rollback", Some(json!({"reason": "test"})), &[]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let new_version = json(&body)["version"].as_u64().unwrap();
    ps[2].wait_version(new_version).await;
    // The id splitgate minted names the version: C recomputes the user's bucket under it.
    let fb = json!({"user_id": user, "request_id": request_id, "event": "click"}).to_string();
    let (status, _, body) = post(&ps[2].url("/feedback"), Some(KEY), &fb, &[]).await;
    assert_eq!(status, 202);
    let v = json(&body);
    assert_eq!(
        (v["variant"].as_str(), v["attributed_by"].as_str()),
        (Some("challenger"), Some("config_version")),
        "{v}"
    );
    // A caller with its own request id brings the version back itself (body or header).
    let fb = json!({"user_id": user, "request_id": "my-own-id", "event": "click", "config_version": served_version});
    let v = json(&post(&ps[1].url("/feedback"), Some(KEY), &fb.to_string(), &[]).await.2);
    assert_eq!(v["variant"], "challenger", "{v}");
    let fb = json!({"user_id": user, "event": "click"}).to_string();
    let version = served_version.to_string();
    let v = json(&post(&ps[1].url("/feedback"), Some(KEY), &fb, &[("x-splitgate-config-version", &version)]).await.2);
    assert_eq!(v["variant"], "challenger", "{v}");
    // Without any of that, the live split decides.
    let v = json(&post(&ps[1].url("/feedback"), Some(KEY), &fb, &[]).await.2);
    assert_eq!((v["variant"].as_str(), v["attributed_by"].as_str()), (Some("champion"), Some("hash")), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_dynamodb_is_down_serving_goes_on_nobody_acts_and_nothing_is_lost() {
    let mut moto = Moto::start().await;
    let port = moto.port();
    let Fleet { ps, _dir, .. } =
        fleet_of_three(&moto, |_| Conf::builtin(50.0, 50.0).guard(|g| g.min_requests(5))).await;
    let before: Vec<String> = (0..30).map(|i| format!("down-{i}")).collect();
    let mut sent = spread(&ps, &before).await;
    moto.stop();
    // Every request succeeds while the table is gone.
    let during: Vec<String> = (30..90).map(|i| format!("down-{i}")).collect();
    for (k, n) in spread(&ps, &during).await {
        *sent.entry(k).or_insert(0) += n;
    }
    for p in &ps {
        eventually(Duration::from_secs(10), "the fleet never reported degraded", || async {
            let h = p.health().await;
            if h["fleet"] == "degraded" {
                Ok(())
            } else {
                Err(h.to_string())
            }
        })
        .await;
    }
    // No replica may act for the fleet once its lease has run out unrenewed.
    eventually(Duration::from_millis(3 * LEASE_MS), "a replica kept acting without a renewable lease", || async {
        let l = leaders(&ps).await;
        if l.is_empty() {
            Ok(())
        } else {
            Err(format!("{l:?}"))
        }
    })
    .await;
    for p in &ps {
        eventually(Duration::from_secs(5), "splitgate_fleet_up never went to 0", || async {
            let m = p.metrics().await;
            if metric(&m, "splitgate_fleet_up") == Some(0.0) {
                Ok(())
            } else {
                Err(m)
            }
        })
        .await;
    }
    // DynamoDB comes back (empty): the cumulative counters are written again, nothing was lost.
    let moto = Moto::start_on(port).await;
    moto.create_table_pk_sk("fleet").await;
    let v = eventually(Duration::from_secs(15), "fleet counters never came back whole", || async {
        let v = view(&ps[0], "/admin/experiment").await;
        if v["replicas"] == 3 && requests_by_variant(&v) == sent {
            Ok(v)
        } else {
            Err(v.to_string())
        }
    })
    .await;
    assert_eq!(v["fleet"], "ok");
    eventually(Duration::from_secs(10), "no lease holder after DynamoDB returned", || async {
        if leaders(&ps).await.len() == 1 {
            Ok(())
        } else {
            Err("none or several".to_owned())
        }
    })
    .await;
}
