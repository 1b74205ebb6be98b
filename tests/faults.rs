//! Model faults against the real binary: a champion model that refuses connections, resets
//! mid-answer, hangs past its deadline, speaks garbage or fails with 5xx. For each: the client's
//! status and error code, the metric that counts it, recovery once the fault clears, and no panic
//! in the proxy's log. `bursts_of_failures_leak_no_connections` also checks that the proxy process
//! gets back to its baseline of open fds and sockets (read from /proc/PID/fd) after each burst.
//! Config file faults are in `tests/config_faults.rs`.
//!
//! The faulty model is a raw TCP server written here (`RawModel`), so a test can send exactly the
//! bytes of a broken answer and then heal it on the same port.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------------------------
// A model server that misbehaves on purpose.

/// What `RawModel` does with each connection.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    /// A correct HTTP/1.1 200 with `{"items":[…]}`, keep-alive.
    Healthy,
    /// Half a status line and headers, then close.
    PartialHeaders,
    /// Full headers announcing 100 bytes, 10 of them, then close.
    PartialBody,
    /// Read the request, then close with RST (SO_LINGER 0).
    Reset,
    /// Bytes that are not HTTP at all, then close.
    Garbage,
}

struct RawModel {
    addr: SocketAddr,
    fault: Arc<Mutex<Fault>>,
    task: tokio::task::JoinHandle<()>,
}

impl RawModel {
    async fn start(fault: Fault) -> RawModel {
        Self::start_on("127.0.0.1:0".parse().unwrap(), fault).await
    }

    /// Binds `addr` (a port that may have just been freed: the listener sets SO_REUSEADDR).
    async fn start_on(addr: SocketAddr, fault: Fault) -> RawModel {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let fault = Arc::new(Mutex::new(fault));
        let f = fault.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, f.clone()));
            }
        });
        RawModel { addr, fault, task }
    }

    fn url(&self) -> String {
        format!("http://{}/invocations", self.addr)
    }

    fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }
}

impl Drop for RawModel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, fault: Arc<Mutex<Fault>>) {
    while read_request(&mut stream).await.is_some() {
        let now = *fault.lock().unwrap();
        let _ = match now {
            Fault::Healthy => {
                let body = r#"{"items":[{"item_id":"ok-1","score":0.9},{"item_id":"ok-2","score":0.5}]}"#;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                stream.write_all(format!("{head}{body}").as_bytes()).await
            }
            Fault::PartialHeaders => stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: appl").await,
            Fault::PartialBody => stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"items\":[").await,
            Fault::Reset => {
                let _ = stream.set_zero_linger();
                Ok(())
            }
            Fault::Garbage => {
                stream.write_all(b"\x00\xffSSH-2.0-OpenSSH_9.2\r\n\x16\x03\x01 not http at all\r\n\r\n").await
            }
        };
        if now != Fault::Healthy {
            return; // dropping the stream closes it (with RST for `Reset`)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers around the harness.

fn upstream_errors(model: &str, kind: &str) -> String {
    format!(r#"splitgate_upstream_errors_total{{model="{model}",kind="{kind}"}}"#)
}

/// Sends `n` requests and asserts every one got `status` with error code `code`.
async fn expect_all(p: &Proxy, n: usize, status: u16, code: &str) {
    for i in 0..n {
        assert_eq!(attempt(p, &format!("u{i}")).await, (status, code.to_owned()), "request {i}");
    }
}

/// Retries `/recommend` until it answers 200 (the fault has cleared), failing after 5 s.
async fn wait_recovered(p: &Proxy) {
    eventually(Duration::from_secs(5), "no recovery", || async {
        let got = attempt(p, "recovery").await;
        if got.0 == 200 {
            Ok(())
        } else {
            Err(format!("still {got:?}"))
        }
    })
    .await
}

/// Sends `n` concurrent requests on one pooled client and asserts each answer; returns the proxy's
/// open fds while that client's connections are still open, then drops the client.
async fn burst(p: &Proxy, pid: u32, n: usize, status: u16, code: &str) -> (usize, usize) {
    let c = client();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (c, url) = (c.clone(), p.url("/recommend"));
            tokio::spawn(async move { recommend_with(&c, &url, &format!("burst-{i}")).await })
        })
        .collect();
    for t in tasks {
        let (got, _, body) = t.await.unwrap();
        assert_eq!(got.as_u16(), status, "{}", String::from_utf8_lossy(&body));
        assert_eq!(json(&body)["error"]["code"], code);
    }
    open_fds(pid)
}

/// After a burst of failing requests, the proxy's sockets and fds come back to the baseline
/// (± a little slack for the admin connection of the metrics scrape), within 3 s.
async fn assert_no_leak(pid: u32, baseline: (usize, usize), what: &str) {
    eventually(Duration::from_secs(3), what, || async {
        let now = open_fds(pid);
        if now.0 <= baseline.0 + 2 && now.1 <= baseline.1 + 2 {
            Ok(())
        } else {
            Err(format!("fds {now:?} (all, sockets) vs baseline {baseline:?}"))
        }
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Model faults.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_502_and_a_restarted_model_serves_again() {
    let dead = support::upstream::dead_addr().await;
    let p = Proxy::start(Conf::http_champion(&format!("http://{dead}/invocations"), 1_000));
    expect_all(&p, 5, 502, "upstream_unavailable").await;
    assert_eq!(value(&p, &upstream_errors("champ", "upstream_unavailable")).await, 5.0);

    // The model comes back on the same port.
    let model = RawModel::start_on(dead, Fault::Healthy).await;
    wait_recovered(&p).await;
    expect_all(&p, 5, 200, "").await;
    assert_eq!(value(&p, &upstream_errors("champ", "upstream_unavailable")).await, 5.0);
    drop(model);
    assert_no_panic(&p);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_cut_short_are_502_upstream_failed_and_heal() {
    let model = RawModel::start(Fault::Healthy).await;
    let p = Proxy::start(Conf::http_champion(&model.url(), 1_000));
    expect_all(&p, 2, 200, "").await;
    let mut failed = 0.0;
    for fault in [Fault::PartialHeaders, Fault::PartialBody, Fault::Reset] {
        model.set(fault);
        for i in 0..3 {
            let got = attempt(&p, &format!("{fault:?}-{i}")).await;
            assert_eq!(got, (502, "upstream_failed".to_owned()), "{fault:?} request {i}");
        }
        failed += 3.0;
        assert_eq!(value(&p, &upstream_errors("champ", "upstream_failed")).await, failed, "{fault:?}");
        model.set(Fault::Healthy);
        wait_recovered(&p).await;
    }
    assert_eq!(value(&p, &upstream_errors("champ", "upstream_unavailable")).await, 0.0);
    assert_no_panic(&p);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_http_bytes_are_502_upstream_failed_and_heal() {
    let model = RawModel::start(Fault::Garbage).await;
    let p = Proxy::start(Conf::http_champion(&model.url(), 1_000));
    expect_all(&p, 4, 502, "upstream_failed").await;
    assert_eq!(value(&p, &upstream_errors("champ", "upstream_failed")).await, 4.0);
    model.set(Fault::Healthy);
    wait_recovered(&p).await;
    // A well-formed HTTP answer whose body is not JSON is the model's answer: passed through.
    let other = Upstream::builder().garbage().start().await;
    p.write_config(Conf::http_champion(&other.url(), 1_000).version(2));
    p.wait_version(2).await;
    let (status, _, body) = recommend(&p.url("/recommend"), "u").await;
    assert_eq!((status.as_u16(), &body[..]), (200, &b"<html>not json"[..]));
    assert_no_panic(&p);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_slower_than_its_deadline_is_504_and_heals() {
    let model = Upstream::builder().latency(Duration::from_secs(5)).answer(&["late"]).start().await;
    let p = Proxy::start(Conf::http_champion(&model.url(), 150));
    let t = Instant::now();
    expect_all(&p, 3, 504, "upstream_timeout").await;
    assert!(t.elapsed() < Duration::from_secs(3), "three 150 ms deadlines took {:?}", t.elapsed());
    assert_eq!(value(&p, &upstream_errors("champ", "upstream_timeout")).await, 3.0);
    model.set(Upstream::builder().answer(&["fast"]));
    wait_recovered(&p).await;
    let (_, _, body) = recommend(&p.url("/recommend"), "u").await;
    assert_eq!(json(&body)["items"][0]["item_id"], "fast");
    assert_no_panic(&p);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_5xx_is_passed_through_not_counted_as_a_proxy_error() {
    let model = Upstream::builder().fail_with(500).start().await;
    let p = Proxy::start(Conf::http_champion(&model.url(), 1_000));
    for code in [500u16, 503, 599] {
        model.set(Upstream::builder().fail_with(code));
        let (status, h, body) = recommend(&p.url("/recommend"), "u").await;
        assert_eq!(status.as_u16(), code);
        assert_eq!(&body[..], b"{\"error\":\"model failed\"}", "the model's body, unchanged");
        assert_eq!(header(&h, "x-splitgate-variant"), "champion");
    }
    let m = p.metrics().await;
    for kind in ["upstream_unavailable", "upstream_failed", "upstream_timeout"] {
        assert_eq!(metric(&m, &upstream_errors("champ", kind)).unwrap_or(0.0), 0.0, "{kind}:\n{m}");
    }
    model.set(Upstream::builder().answer(&["back"]));
    wait_recovered(&p).await;
    assert_no_panic(&p);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_of_failures_leak_no_connections() {
    let raw = RawModel::start(Fault::Healthy).await;
    let slow = Upstream::builder().latency(Duration::from_secs(5)).answer(&["late"]).start().await;
    let dead = support::upstream::dead_addr().await;
    let p = Proxy::start(Conf::http_champion(&raw.url(), 1_000));
    let pid = p.pid();
    // Warm up (pools, worker threads, the admin connection), then take the baseline.
    expect_all(&p, 3, 200, "").await;
    let _ = p.metrics().await;
    // Settling time for the warm-up connections to close, so the baseline is not inflated; no
    // event marks "closed" from outside (a too-early baseline would only loosen the check).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let baseline = open_fds(pid);

    let mut version = 1;
    let mut reconfigure = |url: String, timeout_ms: u64| {
        version += 1;
        p.write_config(Conf::http_champion(&url, timeout_ms).version(version));
        version
    };
    let dead_url = format!("http://{dead}/invocations");
    /// A fault: the raw model's behaviour, or another model URL (with its timeout) to switch to.
    struct Case {
        what: &'static str,
        switch_to: Option<(String, u64)>,
        fault: Fault,
        status: u16,
        code: &'static str,
    }
    let case = |what, switch_to, fault, status, code| Case { what, switch_to, fault, status, code };
    let cases = [
        case("reset", None, Fault::Reset, 502, "upstream_failed"),
        case("partial body", None, Fault::PartialBody, 502, "upstream_failed"),
        case("garbage", None, Fault::Garbage, 502, "upstream_failed"),
        case("timeout", Some((slow.url(), 100)), Fault::Healthy, 504, "upstream_timeout"),
        case("refused", Some((dead_url, 1_000)), Fault::Healthy, 502, "upstream_unavailable"),
    ];
    for Case { what, switch_to, fault, status, code } in cases {
        raw.set(fault);
        if let Some((url, timeout_ms)) = switch_to {
            let v = reconfigure(url, timeout_ms);
            p.wait_version(v).await;
        }
        let during = burst(&p, pid, 40, status, code).await;
        // The count must see the burst's connections, or "no leak" below would prove nothing.
        assert!(during.1 >= baseline.1 + 10, "{what}: sockets {during:?} during the burst, baseline {baseline:?}");
        assert_no_leak(pid, baseline, what).await;
        println!(
            "{what}: fds (all, sockets) baseline {baseline:?}, during the burst {during:?}, after {:?}",
            open_fds(pid)
        );
    }
    assert_no_panic(&p);
}
