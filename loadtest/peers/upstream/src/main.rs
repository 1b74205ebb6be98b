//! Benchmark stand-in for a model server. One tokio current-thread runtime (a single thread), HTTP/1.1
//! keep-alive, reads the whole request body, answers every request with the same ~400-byte JSON
//! `{"model":..,"items":[{"item_id":..,"score":..},..]}`.
//!
//!   upstream --listen 127.0.0.1:PORT [--name NAME] [--delay-ms N]
//!
//! `--delay-ms` sleeps before answering (the "slow shadow"). Prints `listening ADDR` on stderr once
//! bound. Stops on SIGTERM/SIGINT (default signal disposition), so there is no shutdown code.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

fn answer(name: &str) -> Bytes {
    let mut s = format!("{{\"model\":\"{name}\",\"items\":[");
    for i in 0..8 {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            "{{\"item_id\":\"sku-{:05}\",\"score\":0.{:04}}}",
            10_007 * (i + 1) % 99_991,
            9_000 - 700 * i
        ));
    }
    s.push_str("],\"pad\":\"");
    while s.len() < 398 {
        s.push('x');
    }
    s.push_str("\"}");
    Bytes::from(s)
}

fn main() {
    let mut listen: SocketAddr = "127.0.0.1:9100".parse().unwrap();
    let mut name = String::from("model");
    let mut delay_ms = 0u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage(&a));
        match a.as_str() {
            "--listen" => listen = val().parse().unwrap_or_else(|_| usage("--listen")),
            "--name" => name = val(),
            "--delay-ms" => delay_ms = val().parse().unwrap_or_else(|_| usage("--delay-ms")),
            _ => usage(&a),
        }
    }
    let body = answer(&name);
    let delay = Duration::from_millis(delay_ms);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await.expect("bind");
        eprintln!("listening {}", listener.local_addr().unwrap());
        let json = HeaderValue::from_static("application/json");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (body, json) = (body.clone(), json.clone());
            let svc = service_fn(move |req: Request<Incoming>| {
                let (body, json) = (body.clone(), json.clone());
                async move {
                    let _ = req.into_body().collect().await;
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    let mut r = Response::new(Full::new(body));
                    r.headers_mut().insert(CONTENT_TYPE, json);
                    Ok::<_, Infallible>(r)
                }
            });
            let conn = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), svc);
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
}

fn usage(bad: &str) -> ! {
    eprintln!("bad argument {bad}\nusage: upstream --listen IP:PORT [--name NAME] [--delay-ms N]");
    std::process::exit(2)
}
