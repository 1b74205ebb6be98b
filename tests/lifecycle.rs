//! Connection lifecycle against the real binary. SIGTERM: the five requests in flight (to a
//! 700 ms model) still finish with 200 and are access-logged, a silent connection does not hold
//! the drain up, and the process exits 0 before its drain deadline. (Readiness failing during the
//! drain and shadow copies draining are not checked here.) Idle keep-alive and silent connections
//! are closed after `server.idle_timeout_ms`; a request whose first byte arrives alone is served.

mod support;

use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let slow = Upstream::builder().latency(Duration::from_millis(700)).answer(&["late"]).start().await;
    let conf = Conf::base().model_http("m", "m1", &slow.url()).model("m", "timeout_ms", 5000).split("s");
    let mut p = Proxy::start(conf.champion("champion", "m", 100.0));
    let url = p.url("/recommend");
    let in_flight: Vec<_> = (0..5)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move { recommend(&url, &format!("drain-{i}")).await })
        })
        .collect();
    // A client connected but silent holds no request: draining must not wait for it.
    let _silent = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    // SIGTERM only once all five requests have reached the model (and so are in flight).
    wait_until(Duration::from_secs(5), "the 5 requests never reached the model", || async { slow.requests() >= 5 })
        .await;
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
    assert!(!p.stderr_text().contains("drain deadline passed"), "{}", p.stderr_text());
    let log = p.stdout_lines();
    assert_eq!(log.len(), 5, "every drained request is in the access log: {log:?}");
}

/// Sends one request on `stream` and reads the answer head; `None` if the connection is closed.
async fn request_on(stream: &mut tokio::net::TcpStream) -> Option<String> {
    request_in_two_parts(stream, 0).await
}

/// Like [`request_on`], but the first `first` bytes go out alone, 100 ms before the rest.
async fn request_in_two_parts(stream: &mut tokio::net::TcpStream, first: usize) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = r#"{"user_id":"idle-1"}"#;
    let req = format!(
        "POST /recommend HTTP/1.1\r\nhost: x\r\nx-api-key: {KEY}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    if first > 0 {
        stream.write_all(&req.as_bytes()[..first]).await.ok()?;
        // The gap is the test: the proxy must wait for more bytes, not decide on the first one.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stream.write_all(&req.as_bytes()[first..]).await.ok()?;
    let mut buf = vec![0u8; 8192];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.ok()?.ok()?;
    (n > 0).then(|| String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// A proxy on builtin models whose `idle_timeout_ms` is 1.5 s.
fn proxy_with_short_idle_timeout() -> Proxy {
    Proxy::start(Conf::builtin(90.0, 10.0).server("idle_timeout_ms", 1500))
}

/// The proxy closes `stream` by itself (EOF, no answer) between 1.2 and 4 s from now.
async fn assert_closed_after_the_idle_timeout(stream: &mut tokio::net::TcpStream) {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0, "closed, not answered");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1_200) && waited < Duration::from_secs(4), "closed after {waited:?}");
}

/// `server.idle_timeout_ms` bounds how long a keep-alive connection may sit without a request:
/// within it the connection is reused, past it the proxy closes it (a load balancer in front must
/// use a shorter idle timeout, which is why the default is 75 s).
#[tokio::test]
async fn idle_keep_alive_connections_close_after_idle_timeout_ms() {
    let proxy = proxy_with_short_idle_timeout();
    let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let first = request_on(&mut stream).await.unwrap();
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    // Idle for half the timeout: the connection must still be reused.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let second = request_on(&mut stream).await.expect("still open after 0.7 s idle");
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    // Past the idle timeout the proxy closes the connection by itself.
    assert_closed_after_the_idle_timeout(&mut stream).await;
}

/// A client that connects and never sends a byte is closed after the idle timeout too, and one
/// whose first bytes trickle in (a prefix shared by `POST` and the HTTP/2 preface) is still
/// served: the protocol is told from the first bytes without consuming them.
#[tokio::test]
async fn silent_connections_close_and_trickled_requests_are_served() {
    let proxy = proxy_with_short_idle_timeout();
    let mut silent = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    assert_closed_after_the_idle_timeout(&mut silent).await;

    let mut trickled = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    trickled.set_nodelay(true).unwrap();
    let head = request_in_two_parts(&mut trickled, 1).await.expect("answered");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}
