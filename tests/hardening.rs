//! Nobody without a key can hold the proxy, and early answers never kill a connection silently.
//! Raw sockets against the real binary: HTTP/2 connections that open no stream (h2c), bodies
//! trickled past `server.body_timeout_ms`, answers sent before the body was read, and the
//! RFC 9110/9112 head rules (Host, Transfer-Encoding, Connection-nominated headers), plus the
//! duplicate-`user_id` parser differential.

mod support;

use std::time::{Duration, Instant};

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The HTTP/2 client preface and an empty SETTINGS frame: all a client must send to hold an
/// HTTP/2 connection open.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const EMPTY_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

/// Builtin models 50/50, with extra `[server]` settings (name, milliseconds or count).
fn proxy_with(server: &[(&str, i64)]) -> Proxy {
    Proxy::start(server.iter().fold(Conf::builtin(50.0, 50.0), |c, (k, v)| c.server(k, *v)))
}

/// Reads until the peer closes; the elapsed time, or `None` if still open after `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + within).into(), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue, // SETTINGS, PING, GOAWAY…
        }
    }
}

/// A request's head and the answer's head, over a fresh connection; `rest` is sent after the
/// head (part of a body, or nothing).
async fn answer_to(p: &Proxy, head: &str, rest: &[u8]) -> (TcpStream, String) {
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(rest).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), read_request(&mut s)).await.unwrap();
    (s, answer.expect("an answer"))
}

fn has_close(head: &str) -> bool {
    head.lines().any(|l| l.eq_ignore_ascii_case("connection: close"))
}

fn post_head(extra: &str, length: usize) -> String {
    format!("POST /recommend HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n{extra}content-length: {length}\r\n\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http2_connections_cannot_fill_the_connection_slots() {
    let p = proxy_with(&[("idle_timeout_ms", 1500), ("max_connections", 4)]);
    let sockets = open_fds(p.pid()).1;
    let mut held = Vec::new();
    for i in 0..4 {
        let mut s = TcpStream::connect(p.addr).await.unwrap();
        s.write_all(H2_PREFACE).await.unwrap();
        // Half of them complete SETTINGS, half stop after the preface (a handshake never done).
        if i % 2 == 0 {
            s.write_all(EMPTY_SETTINGS).await.unwrap();
        }
        held.push(s);
    }
    // Every slot is taken (the proxy has accepted all four: its socket count says so) and a
    // fifth client is turned away at once.
    wait_until(Duration::from_secs(5), "the proxy did not accept the 4 connections", || async {
        open_fds(p.pid()).1 >= sockets + 4
    })
    .await;
    let mut turned_away = TcpStream::connect(p.addr).await.unwrap();
    assert!(closed_within(&mut turned_away, Duration::from_secs(1)).await.is_some(), "over max_connections");
    for (i, s) in held.iter_mut().enumerate() {
        let closed = closed_within(s, Duration::from_secs(6)).await;
        let waited = closed.unwrap_or_else(|| panic!("connection {i} still open 6 s later (idle 1.5 s)"));
        assert!(waited < Duration::from_secs(4), "connection {i} closed after {waited:?}");
    }
    // The slots are free again: a real client is served.
    let (status, _, _) = recommend(&p.url("/recommend"), "after-h2").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_connection_serving_requests_stays_open_past_the_idle_timeout() {
    let p = proxy_with(&[("idle_timeout_ms", 1000)]);
    // One HTTP/2 connection, driven by hand: a pooled client would reconnect silently, so a
    // close would go unseen. Here a closed connection fails the next `send_request`.
    let tcp = TcpStream::connect(p.addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake::<_, _, http_body_util::Full<bytes::Bytes>>(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    let driver = tokio::spawn(conn);
    // A request every 400 ms for 3 s: never idle for a whole second, so never closed.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        let req = http::Request::post(p.url("/recommend"))
            .header("x-api-key", KEY)
            .body(http_body_util::Full::new(bytes::Bytes::from_static(br#"{"user_id":"h2"}"#)))
            .unwrap();
        let answer = send.send_request(req).await.expect("the same connection still carries requests");
        assert_eq!(answer.status(), 200);
        // The pacing is the test: a gap shorter than the idle timeout, repeated past it.
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert!(!driver.is_finished(), "the connection stayed open while in use");
    // And once it goes idle, the proxy closes it (GOAWAY), ending the client's connection task.
    let closed = tokio::time::timeout(Duration::from_secs(4), driver).await;
    assert!(closed.is_ok(), "idle for 4 s with a 1 s idle timeout, yet still open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_gets_408_and_the_connection_is_closed() {
    let p = proxy_with(&[("body_timeout_ms", 1000)]);
    let started = Instant::now();
    let (mut s, head) =
        answer_to(&p, &format!("{}{}", post_head(&format!("x-api-key: {KEY}\r\n"), 1000), ""), b"{\"us").await;
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    assert!(has_close(&head), "{head}");
    assert!(started.elapsed() < Duration::from_secs(5), "answered after {:?}", started.elapsed());
    assert!(closed_within(&mut s, Duration::from_secs(2)).await.is_some(), "closed after the 408");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_bodies_do_not_hold_in_flight_slots() {
    let p = proxy_with(&[("body_timeout_ms", 8000), ("max_in_flight", 2)]);
    // Four callers (twice max_in_flight) start bodies they never finish…
    let sockets = open_fds(p.pid()).1;
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(p.addr).await.unwrap();
        s.write_all(post_head(&format!("x-api-key: {KEY}\r\n"), 1000).as_bytes()).await.unwrap();
        s.write_all(b"{").await.unwrap();
        slow.push(s);
    }
    // The proxy has accepted all four (its socket count says so); the sleep then gives it time
    // to read their heads, which nothing outside can observe.
    wait_until(Duration::from_secs(5), "the proxy did not accept the 4 callers", || async {
        open_fds(p.pid()).1 >= sockets + 4
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // …and everyone else is still served, not shed with 503.
    for i in 0..5 {
        let (status, _, body) = recommend(&p.url("/recommend"), &format!("u{i}")).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_before_the_body_was_read_say_connection_close() {
    let p = proxy_with(&[]);
    // 413 for a declared length over max_body_bytes (4096), before any body byte.
    let (mut s, head) = answer_to(&p, &post_head(&format!("x-api-key: {KEY}\r\n"), 200_000), b"").await;
    assert!(head.starts_with("HTTP/1.1 413") && has_close(&head), "{head}");
    assert!(closed_within(&mut s, Duration::from_secs(2)).await.is_some());
    // 401 before a 60 KB body was read (an eighth of it sent).
    let (mut s, head) = answer_to(&p, &post_head("", 60_000), &[b' '; 7_500]).await;
    assert!(head.starts_with("HTTP/1.1 401") && has_close(&head), "{head}");
    assert!(closed_within(&mut s, Duration::from_secs(2)).await.is_some());
    // 400 for a broken chunked body.
    let chunked =
        format!("POST /recommend HTTP/1.1\r\nhost: t\r\nx-api-key: {KEY}\r\ntransfer-encoding: chunked\r\n\r\n");
    let (mut s, head) = answer_to(&p, &chunked, b"zz\r\n{}\r\n0\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 400") && has_close(&head), "{head}");
    assert!(closed_within(&mut s, Duration::from_secs(2)).await.is_some());
    // A 401 whose (small) body was sent whole keeps the connection: nothing is left unread.
    let body = r#"{"user_id":"u"}"#;
    let (mut s, head) = answer_to(&p, &post_head("x-api-key: wrong\r\n", body.len()), body.as_bytes()).await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    if !has_close(&head) {
        // Reused: the next request on the same socket is answered.
        s.write_all(post_head(&format!("x-api-key: {KEY}\r\n"), body.len()).as_bytes()).await.unwrap();
        s.write_all(body.as_bytes()).await.unwrap();
        let next = read_request(&mut s).await.expect("the connection carries another request");
        assert!(next.starts_with("HTTP/1.1 200"), "{next}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_heads_that_break_rfc_9112_are_refused() {
    let model = Upstream::builder().answer(&["a"]).start().await;
    let p = Proxy::start(Conf::http_champion(&model.url(), 2_000));
    let body = r#"{"user_id":"u"}"#;
    let key = format!("x-api-key: {KEY}\r\n");
    let cases = [
        (format!("POST /recommend HTTP/1.1\r\n{key}content-length: {}\r\n\r\n", body.len()), "400"),
        (post_head(&format!("{key}host: other\r\n"), body.len()), "400"),
        (
            format!("POST /recommend HTTP/1.1\r\nhost: t\r\n{key}transfer-encoding: gzip, chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n", body.len()),
            "501",
        ),
    ];
    for (head, want) in &cases {
        let (_, answer) = answer_to(&p, head, if head.contains("chunked") { b"" } else { body.as_bytes() }).await;
        assert!(answer.starts_with(&format!("HTTP/1.1 {want}")), "{head:?} → {answer}");
    }
    assert_eq!(model.requests(), 0, "no refused request reached the model");

    // Headers a client names in Connection are hop-by-hop: the model never sees them.
    let head = post_head(
        &format!("{key}connection: keep-alive, x-secret-hop\r\nx-secret-hop: 1\r\nx-kept: 2\r\n"),
        body.len(),
    );
    let (_, answer) = answer_to(&p, &head, body.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let seen = model.seen.lock().unwrap().last().cloned().unwrap();
    assert!(seen.headers.get("x-secret-hop").is_none(), "{:?}", seen.headers);
    assert_eq!(seen.headers.get("x-kept").unwrap(), "2");

    // Two user ids: the split would take one and a Python/JS/Go model the other.
    let dup = r#"{"user_id":"alice","user_id":"bob"}"#;
    let (status, _, answer) = post(&p.url("/recommend"), Some(KEY), dup, &[]).await;
    assert_eq!(status, 400);
    assert_eq!(json(&answer)["error"]["code"], "invalid_json");
}

/// One HTTP/2 frame: 9-byte header, then the payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_answering_pings_is_dropped() {
    // Idle and body timeouts far away: only the keep-alive PING can end this connection.
    let p = proxy_with(&[
        ("idle_timeout_ms", 60000),
        ("body_timeout_ms", 60000),
        ("h2_keepalive_interval_ms", 1000),
        ("h2_keepalive_timeout_ms", 500),
    ]);
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    s.write_all(H2_PREFACE).await.unwrap();
    s.write_all(EMPTY_SETTINGS).await.unwrap();
    // HEADERS for POST /recommend (HPACK: static :method POST, :scheme http, literal :path,
    // :authority and x-api-key), END_HEADERS but not END_STREAM: a body that never comes keeps
    // the stream open, so the idle GOAWAY does not apply and the peer looks merely quiet.
    let mut block = vec![0x83, 0x86, 0x44, 10];
    block.extend_from_slice(b"/recommend");
    block.extend_from_slice(&[0x41, 1, b't', 0x40, 9]);
    block.extend_from_slice(b"x-api-key");
    block.push(KEY.len() as u8);
    block.extend_from_slice(KEY.as_bytes());
    s.write_all(&frame(0x1, 0x4, 1, &block)).await.unwrap();
    // We read (so the server's PINGs arrive) but never acknowledge them.
    let closed = closed_within(&mut s, Duration::from_secs(6)).await;
    let waited = closed.expect("a peer that ignores PINGs is still connected 6 s later");
    assert!(waited >= Duration::from_millis(900), "closed after {waited:?}, before any PING was due");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_also_says_connection_close_before_an_unread_body() {
    let p = proxy_with(&[]);
    let mut s = TcpStream::connect(p.admin).await.unwrap();
    s.write_all(
        b"PUT /admin/weights HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 60000\r\n\r\n",
    )
    .await
    .unwrap();
    s.write_all(&[b' '; 100]).await.unwrap();
    let head = tokio::time::timeout(Duration::from_secs(5), read_request(&mut s)).await.unwrap().expect("an answer");
    assert!(head.starts_with("HTTP/1.1 401") && has_close(&head), "{head}");
    assert!(closed_within(&mut s, Duration::from_secs(2)).await.is_some());
}
