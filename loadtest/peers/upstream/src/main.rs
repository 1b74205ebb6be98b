//! Benchmark stand-in for a model server. One tokio current-thread runtime (a single thread), HTTP/1.1
//! keep-alive, reads the whole request body, answers every request with the same ~400-byte JSON
//! `{"model":..,"items":[{"item_id":..,"score":..},..]}`.
//!
//!   upstream --listen 127.0.0.1:PORT [--name NAME] [--delay-ms N] [--tls-cert PEM --tls-key PEM]
//!
//! `--delay-ms` sleeps before answering (the "slow shadow"). With `--tls-cert`/`--tls-key` it
//! speaks HTTPS (rustls with ring, TLS 1.2/1.3, ALPN http/1.1) instead. Prints `listening ADDR`
//! on stderr once bound. Stops on SIGTERM/SIGINT (default signal disposition), so there is no
//! shutdown code.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls;

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
    let (mut cert, mut key) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage(&a));
        match a.as_str() {
            "--listen" => listen = val().parse().unwrap_or_else(|_| usage("--listen")),
            "--name" => name = val(),
            "--delay-ms" => delay_ms = val().parse().unwrap_or_else(|_| usage("--delay-ms")),
            "--tls-cert" => cert = Some(val()),
            "--tls-key" => key = Some(val()),
            _ => usage(&a),
        }
    }
    let body = answer(&name);
    let delay = Duration::from_millis(delay_ms);
    let tls = match (cert, key) {
        (Some(c), Some(k)) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(&c, &k)))),
        (None, None) => None,
        _ => usage("--tls-cert and --tls-key go together"),
    };
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
            match tls.clone() {
                None => {
                    let conn = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), svc);
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                }
                Some(acceptor) => {
                    tokio::spawn(async move {
                        let Ok(stream) = acceptor.accept(stream).await else { return };
                        let _ = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), svc).await;
                    });
                }
            }
        }
    });
}

fn tls_config(cert: &str, key: &str) -> rustls::ServerConfig {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<_, _>>())
        .unwrap_or_else(|e| panic!("--tls-cert {cert}: {e}"));
    let key = PrivateKeyDer::from_pem_file(key).unwrap_or_else(|e| panic!("--tls-key {key}: {e}"));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .unwrap_or_else(|e| panic!("TLS config: {e}"));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

fn usage(bad: &str) -> ! {
    eprintln!("bad argument {bad}\nusage: upstream --listen IP:PORT [--name NAME] [--delay-ms N] [--tls-cert PEM --tls-key PEM]");
    std::process::exit(2)
}
