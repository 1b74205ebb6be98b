//! The lean HTTP/1.1 client against real model servers on loopback that frame their answers in
//! every way HTTP/1.1 allows: content-length, chunked with extensions and trailers, read-to-close,
//! `Connection: close`, interim 100 answers, and a server that silently drops every kept-alive
//! connection. For each: the caller gets the model's exact body, and the proxy reuses connections
//! when, and only when, it may (counted by the server's accepts).

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

const BODY: &str = r#"{"items":[{"item_id":"h1-1","score":0.9},{"item_id":"h1-2","score":0.5}]}"#;

/// How the scripted model frames each answer.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Framing {
    Length,
    /// Chunks of 7 bytes, a chunk extension, a trailer field.
    Chunked,
    /// No length: the body ends when the server closes.
    UntilClose,
    /// Content-length plus `Connection: close`, then close.
    CloseHeader,
    /// `100 Continue` first, then a content-length answer.
    Continue,
    /// A content-length answer, then the server closes without saying so (a short idle timeout).
    DropAfter,
}

struct Model {
    addr: SocketAddr,
    body: &'static str,
    accepted: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Model {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Model {
    async fn start(framing: Framing) -> Model {
        Self::start_with(framing, BODY).await
    }

    async fn start_with(framing: Framing, body: &'static str) -> Model {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (a, h) = (accepted.clone(), heads.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, framing, body, h.clone()));
            }
        });
        Model { addr, body, accepted, heads, task }
    }

    fn config(&self) -> String {
        Conf::http_champion(&format!("http://{}/invocations?x=1", self.addr), 3_000).to_string()
    }
}

async fn serve(mut stream: TcpStream, framing: Framing, body: &'static str, heads: Arc<Mutex<Vec<String>>>) {
    while let Some(head) = read_request(&mut stream).await {
        heads.lock().unwrap().push(head);
        let json = "content-type: application/json";
        let answer = match framing {
            Framing::Length | Framing::DropAfter => {
                format!("HTTP/1.1 200 OK\r\n{json}\r\ncontent-length: {}\r\n\r\n{body}", body.len())
            }
            Framing::Continue => format!(
                "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n{json}\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            ),
            Framing::CloseHeader => format!(
                "HTTP/1.1 200 OK\r\n{json}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            ),
            Framing::UntilClose => format!("HTTP/1.1 200 OK\r\n{json}\r\n\r\n{body}"),
            Framing::Chunked => {
                let mut s = format!("HTTP/1.1 200 OK\r\n{json}\r\ntransfer-encoding: chunked\r\n\r\n");
                for (i, part) in body.as_bytes().chunks(7).enumerate() {
                    let ext = if i == 1 { ";name=value" } else { "" };
                    s.push_str(&format!("{:x}{ext}\r\n{}\r\n", part.len(), std::str::from_utf8(part).unwrap()));
                }
                s.push_str("0\r\nx-trailer: done\r\n\r\n");
                s
            }
        };
        // Byte by byte for chunked answers, so the proxy sees every split point.
        if framing == Framing::Chunked {
            for b in answer.as_bytes().chunks(if body.len() > 4096 { 4096 } else { 5 }) {
                if stream.write_all(b).await.is_err() {
                    return;
                }
            }
        } else if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
        if matches!(framing, Framing::UntilClose | Framing::CloseHeader | Framing::DropAfter) {
            return;
        }
    }
}

/// Sends `n` sequential requests; every one must come back 200 with the model's exact body.
async fn sequential(proxy: &Proxy, model: &Model, n: usize) {
    for i in 0..n {
        let (status, headers, body) = recommend(&proxy.url("/recommend"), &format!("user-{i}")).await;
        assert_eq!(status, 200, "request {i}: {body:?}");
        assert!(
            body[..] == *model.body.as_bytes(),
            "request {i}: {} bytes, not the model's {}",
            body.len(),
            model.body.len()
        );
        assert_eq!(header(&headers, "content-type"), "application/json");
    }
}

#[tokio::test]
async fn keep_alive_answers_reuse_one_connection() {
    for framing in [Framing::Length, Framing::Chunked, Framing::Continue] {
        let model = Model::start(framing).await;
        let proxy = Proxy::start(model.config());
        sequential(&proxy, &model, 30).await;
        assert_eq!(model.accepted.load(Ordering::SeqCst), 1, "{framing:?}: one kept-alive connection");
    }
}

#[tokio::test]
async fn answers_that_end_the_connection_are_read_whole_and_never_reused() {
    for framing in [Framing::UntilClose, Framing::CloseHeader, Framing::DropAfter] {
        let model = Model::start(framing).await;
        let proxy = Proxy::start(model.config());
        sequential(&proxy, &model, 20).await;
        // DropAfter: the proxy may try a dead connection once per request, but never fails a caller.
        assert_eq!(model.accepted.load(Ordering::SeqCst), 20, "{framing:?}: a connection per request");
        let m = proxy.metrics().await;
        assert_eq!(metric(&m, r#"splitgate_upstream_errors_total{model="champ",kind="upstream_failed"}"#), Some(0.0));
    }
}

#[tokio::test]
async fn the_model_sees_one_well_formed_request() {
    let model = Model::start(Framing::Length).await;
    let proxy = Proxy::start(model.config());
    let r = post(
        &proxy.url("/recommend"),
        Some(KEY),
        r#"{"user_id":"u-7"}"#,
        &[("x-request-id", "req-h1-1"), ("x-custom", "kept"), ("connection", "keep-alive")],
    )
    .await;
    assert_eq!(r.0, 200);
    let head = model.heads.lock().unwrap()[0].clone();
    let lines: Vec<&str> = head.split("\r\n").collect();
    assert_eq!(lines[0], "POST /invocations?x=1 HTTP/1.1");
    assert_eq!(lines[1], format!("host: {}", model.addr));
    assert!(lines.contains(&"x-custom: kept"), "{head}");
    assert!(lines.contains(&"x-request-id: req-h1-1"), "{head}");
    assert!(lines.contains(&"content-length: 17"), "{head}");
    assert!(lines.contains(&"content-type: application/json"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(!lower.contains("x-api-key") && !lower.contains(KEY), "the key never reaches a model: {head}");
    assert_eq!(lower.matches("connection:").count(), 0, "hop-by-hop headers are not forwarded: {head}");
}

#[tokio::test]
async fn large_answers_arrive_whole_in_every_framing() {
    // ~110 KB: past the copy threshold, many reads, many chunks.
    let big: &'static str = Box::leak(
        format!(r#"{{"items":[{}]}}"#, (0..12_000).map(|i| format!(r#""i{i:05}""#)).collect::<Vec<_>>().join(","))
            .into_boxed_str(),
    );
    for framing in [Framing::Length, Framing::Chunked, Framing::UntilClose] {
        let model = Model::start_with(framing, big).await;
        let proxy = Proxy::start(model.config());
        sequential(&proxy, &model, 3).await;
    }
}
