//! "Slow read": a client without a key pipelines requests that need none (`GET /health`) and
//! never reads the answers, so the proxy's writes block. The proxy must not keep such a
//! connection past `idle_timeout_ms` of no write progress, or a few clients hold every
//! connection slot. Raw sockets with a small receive buffer against the real binary.

mod support;

use std::time::Duration;

use support::*;
use tokio::io::AsyncWriteExt;

/// Opens a connection with a 4 KiB receive buffer and pipelines ~2 MB of `GET /health` for up to
/// 2 s (the writes stall once the proxy stops reading, because it is stuck writing to us); then
/// holds the socket without reading.
async fn slow_reader(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut s = socket.connect(addr).await.unwrap();
    let burst = b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n".repeat(60_000);
    let _ = tokio::time::timeout(Duration::from_secs(2), s.write_all(&burst)).await;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_cannot_hold_the_connection_slots() {
    let p = Proxy::start(Conf::builtin(50.0, 50.0).server("max_connections", 2).server("idle_timeout_ms", 1_500));
    let held = [slow_reader(p.addr).await, slow_reader(p.addr).await];
    // Both slots are taken by clients that do not read; a new client is served once the proxy
    // has given up on them (no write progress for 1.5 s).
    eventually(Duration::from_secs(10), "a new client served despite the slow readers", || async {
        let req = http::Request::get(p.url("/health")).body(http_body_util::Full::new(bytes::Bytes::new())).unwrap();
        match tokio::time::timeout(Duration::from_millis(500), client().request(req)).await {
            Ok(Ok(r)) if r.status() == 200 => Ok(()),
            other => Err(format!("{:?}", other.map(|r| r.map(|r| r.status())))),
        }
    })
    .await;
    drop(held);
}
