//! The sticky split from outside: ratios, stickiness across processes, ramp stability, and the
//! offline recomputation script agreeing with the proxy.

mod support;

use std::collections::HashMap;
use std::process::{Command, Stdio};

use support::*;

fn users(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_ratio_within_one_percent_on_20000_users() {
    let p = Proxy::start(Conf::builtin(90.0, 10.0));
    let ids = users(20_000, "ratio");
    let got = variants_of(&p.url("/recommend"), &ids, 8).await;
    let challenger = got.iter().filter(|v| *v == "challenger").count() as f64 / ids.len() as f64;
    assert!((0.09..=0.11).contains(&challenger), "challenger share {challenger}");
    assert!(got.iter().all(|v| v == "champion" || v == "challenger"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_user_same_variant_on_two_processes_and_the_cli() {
    let text = Conf::builtin(70.0, 30.0).to_string();
    let (a, b) = (Proxy::start(&text), Proxy::start(&text));
    let ids = users(2_000, "sticky");
    let (va, vb) = (variants_of(&a.url("/recommend"), &ids, 4).await, variants_of(&b.url("/recommend"), &ids, 4).await);
    assert_eq!(va, vb, "two replicas disagree");
    // And a repeat on the same process gives the same answer.
    assert_eq!(variants_of(&a.url("/recommend"), &ids[..200], 2).await, va[..200]);
    let routed = route_cli(a.path(), &ids);
    let cli: Vec<String> = ids.iter().map(|u| routed[u].0.clone()).collect();
    assert_eq!(cli, va, "`splitgate route` disagrees with the proxy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramping_10_50_100_never_moves_a_challenger_user_out() {
    let p = Proxy::start(Conf::builtin(90.0, 10.0));
    let ids = users(5_000, "ramp");
    let mut previous = variants_of(&p.url("/recommend"), &ids, 4).await;
    for (version, w) in [(2u64, 50.0), (3, 100.0)] {
        p.write_config(Conf::builtin(100.0 - w, w).version(version).to_string());
        p.wait_version(version).await;
        let now = variants_of(&p.url("/recommend"), &ids, 4).await;
        for (i, (before, after)) in previous.iter().zip(&now).enumerate() {
            assert!(before != "challenger" || after == "challenger", "{} left the challenger at {w}%", ids[i]);
        }
        let share = now.iter().filter(|v| *v == "challenger").count() as f64 / ids.len() as f64;
        assert!((share - w / 100.0).abs() < 0.02, "share {share} at {w}%");
        previous = now;
    }
}

#[test]
fn assignment_py_agrees_with_route_on_10000_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    // Three variants with an explicit slot and two-decimal weights exercise the whole algorithm.
    let slot: toml_edit::Array = [60.0, 75.5].iter().map(|x| support::conf::num(*x)).collect();
    let text = Conf::builtin(80.66, 12.34).variant_with("third", "rec-v2-3", 7.0, |v| v.set("slot", slot)).to_string();
    std::fs::write(&path, &text).unwrap();
    let ids: Vec<String> = (0..10_000).map(|i| format!("user-{i}-é{}", i * 7919)).collect();
    let rust = route_cli(&path, &ids);
    let py = run_with_stdin(
        Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/loadtest/assignment.py"))
            .arg("--config")
            .arg(&path)
            .arg("-"),
        &ids,
    );
    let mut seen = HashMap::new();
    for (id, (variant, model)) in parse_routes(&py) {
        assert_eq!(rust[&id], (variant.clone(), model), "user {id}");
        *seen.entry(variant).or_insert(0) += 1;
    }
    assert_eq!(seen.values().sum::<usize>(), 10_000);
    assert_eq!(seen.len(), 3, "every variant should receive users: {seen:?}");
}

fn route_cli(config: &std::path::Path, ids: &[String]) -> HashMap<String, (String, String)> {
    let out = run_with_stdin(Command::new(bin()).arg("route").arg("--config").arg(config).arg("-"), ids);
    parse_routes(&out).into_iter().collect()
}

fn run_with_stdin(cmd: &mut Command, ids: &[String]) -> String {
    use std::io::Write;
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = ids.join("\n") + "\n";
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn parse_routes(out: &str) -> Vec<(String, (String, String))> {
    out.lines()
        .map(|l| {
            let mut f = l.split('\t');
            let (id, v, m) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
            (id.to_owned(), (v.to_owned(), m.to_owned()))
        })
        .collect()
}
