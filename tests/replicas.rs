//! Two replicas sharing one config file (same host or a shared volume): concurrent operator edits
//! through both are serialised by the file lock. Every 200 is on disk, every loser gets 409, and
//! the file is never lost or torn.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use http::Method;
use serde_json::json;
use support::*;

const WRITERS_PER_REPLICA: usize = 8;
const ATTEMPTS_PER_WRITER: usize = 25;

async fn live(p: &Proxy) -> (u64, String) {
    let (status, _, body) = admin(p, Method::GET, "/admin/config", None, &[]).await;
    assert_eq!(status, 200);
    let v = json(&body);
    (v["version"].as_u64().unwrap(), v["digest"].as_str().unwrap().to_owned())
}

/// One writer: read the replica's version, PUT a weight only this writer uses with If-Match,
/// retry on 409 until it wins once. Returns every (status, version in the answer).
async fn writer(p: &Proxy, weight: u32) -> Vec<(u16, Option<u64>)> {
    let mut answers = Vec::new();
    for _ in 0..ATTEMPTS_PER_WRITER {
        let (version, _) = live(p).await;
        let if_match = format!("\"{version}\"");
        let (status, _, body) = admin(
            p,
            Method::PUT,
            "/admin/weights",
            Some(json!({"challenger": weight, "reason": format!("writer {weight}")})),
            &[("if-match", &if_match)],
        )
        .await;
        let new = (status == 200).then(|| json(&body)["version"].as_u64().unwrap());
        answers.push((status.as_u16(), new));
        if status == 200 {
            break;
        }
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_edits_through_two_replicas_are_never_lost_or_torn() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("splitgate.toml");
    std::fs::write(&path, Conf::builtin(100.0, 0.0).to_string()).unwrap();
    let a = Proxy::start_at(dir, path.clone());
    // The second replica reads and writes the same file (its own temp dir stays empty).
    let b = Proxy::start_at(tempfile::tempdir().unwrap(), path.clone());
    let start_version = live(&a).await.0;
    assert_eq!(live(&b).await.0, start_version);

    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let mut tasks = Vec::new();
    for i in 0..2 * WRITERS_PER_REPLICA {
        let p = if i % 2 == 0 { a.clone() } else { b.clone() };
        let weight = i as u32 + 1;
        tasks.push(tokio::spawn(async move { (weight, writer(&p, weight).await) }));
    }
    // Version written by each 200 → the weight it wrote.
    let mut wins: BTreeMap<u64, u32> = BTreeMap::new();
    let mut conflicts = 0;
    for t in tasks {
        let (weight, answers) = t.await.unwrap();
        for (status, version) in answers {
            match (status, version) {
                (200, Some(v)) => assert!(wins.insert(v, weight).is_none(), "version {v} answered 200 twice"),
                (409, _) => conflicts += 1,
                other => panic!("writer {weight}: every answer must be 200 or 409, got {other:?}"),
            }
        }
    }
    assert!(wins.len() >= 2, "several writers must win: {wins:?}");
    assert!(conflicts > 0, "16 concurrent writers and no conflict: the test raced nothing");

    // Versions strictly increase one by one: each 200 was written on top of the previous one.
    let versions: Vec<u64> = wins.keys().copied().collect();
    let expected: Vec<u64> = (start_version + 1..=start_version + wins.len() as u64).collect();
    assert_eq!(versions, expected, "a 200 is missing from the file's history (lost write)");

    // The file is whole, at the last 200's version, with the last winner's weight.
    let last = *versions.last().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let file: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("torn config: {e}\n{text}"));
    assert_eq!(file["version"].as_integer(), Some(last as i64), "{text}");
    let challenger = &file["split"]["variants"][1];
    assert_eq!(
        challenger["weight"].as_float().or(challenger["weight"].as_integer().map(|w| w as f64)),
        Some(f64::from(wins[&last]))
    );
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("splitgate-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left behind: {leftovers:?}");

    // Both replicas converge on the file.
    eventually(Duration::from_secs(10), &format!("replicas did not converge on v{last}"), || async {
        let (va, da) = live(&a).await;
        let (vb, db) = live(&b).await;
        if va == last && vb == last && da == db {
            Ok(())
        } else {
            Err(format!("a v{va} {da}, b v{vb} {db}"))
        }
    })
    .await;

    // Each 200 is audited exactly once, by the replica that answered it.
    let mut audited = Vec::new();
    for p in [&a, &b] {
        let (_, _, body) = admin(p, Method::GET, "/admin/audit?limit=1000", None, &[]).await;
        for r in json(&body)["records"].as_array().unwrap() {
            audited.push(r["new_version"].as_u64().unwrap());
        }
    }
    audited.sort_unstable();
    assert_eq!(audited, versions);
}
