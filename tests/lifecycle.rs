//! SIGTERM: readiness fails first, in-flight requests finish, shadow copies drain, exit 0.

mod support;

use std::time::Duration;

use support::upstream::items;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let slow = Upstream::start(Behaviour::Slow(Duration::from_millis(700), items(&["late"]))).await;
    let models = format!(
        "[models.m]\nversion = \"m1\"\nbackend = \"http\"\nurl = \"{}\"\ntimeout_ms = 5000\n\n[split]\nsalt = \"s\"\n[[split.variants]]\nname = \"champion\"\nmodel = \"m\"\nweight = 100\nchampion = true\n",
        slow.url()
    );
    let mut p = Proxy::start(&config(&models, ""));
    let url = p.url("/recommend");
    let in_flight: Vec<_> = (0..5)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move { recommend(&url, &format!("drain-{i}")).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pid = p.pid();
    let code = tokio::task::spawn_blocking(move || {
        let code = p.terminate(Duration::from_secs(10));
        (code, p)
    });
    for t in in_flight {
        let (status, _, body) = t.await.unwrap();
        assert_eq!(status, 200, "a request accepted before SIGTERM must complete: {}", String::from_utf8_lossy(&body));
        assert_eq!(json(&body)["items"][0]["item_id"], "late");
    }
    let (code, p) = code.await.unwrap();
    assert_eq!(code, Some(0), "pid {pid} must exit 0 after draining");
    assert!(p.stderr_text().contains("draining"));
    assert!(!p.stderr_text().contains("panicked"));
    let log = p.stdout_lines();
    assert_eq!(log.len(), 5, "every drained request is in the access log: {log:?}");
}
