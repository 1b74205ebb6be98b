//! Transport hardening against the real binary: TLS on the main listener (ALPN h2 and
//! http/1.1), certificate hot reload without dropping open connections, https:// models trusted
//! only through a configured CA, per-key throttles, and idle HTTP/2-over-TLS connections closed
//! after the idle timeout.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::{CertificateDer, ServerName};
use support::*;

struct Cert {
    pem: String,
    key: String,
    der: CertificateDer<'static>,
}

fn cert() -> Cert {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    Cert { pem: c.cert.pem(), key: c.signing_key.serialize_pem(), der: c.cert.der().clone() }
}

fn client_config(root: &CertificateDer<'static>, alpn: &[&[u8]]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let mut c = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    c
}

/// Handshakes with `addr` and returns (ALPN protocol, the server's leaf certificate).
async fn handshake(
    addr: std::net::SocketAddr,
    config: rustls::ClientConfig,
) -> (Option<Vec<u8>>, CertificateDer<'static>, tokio_rustls::client::TlsStream<tokio::net::TcpStream>) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (_, conn) = tls.get_ref();
    let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
    let leaf = conn.peer_certificates().unwrap()[0].clone().into_owned();
    (alpn, leaf, tls)
}

/// Builtin models 90/10 served over TLS with `c`, written to `dir`.
fn tls_config(dir: &std::path::Path, c: &Cert) -> Conf {
    std::fs::write(dir.join("cert.pem"), &c.pem).unwrap();
    std::fs::write(dir.join("key.pem"), &c.key).unwrap();
    Conf::builtin(90.0, 10.0)
        .set("server.tls.cert_path", format!("{}/cert.pem", dir.display()))
        .set("server.tls.key_path", format!("{}/key.pem", dir.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_h2_and_http1_and_reloads_the_certificate_live() {
    let dir = tempfile::tempdir().unwrap();
    let first = cert();
    let path = dir.path().join("splitgate.toml");
    std::fs::write(&path, tls_config(dir.path(), &first).to_string()).unwrap();
    let p = Proxy::start_at(dir, path);

    let (alpn, leaf, h2_stream) = handshake(p.addr, client_config(&first.der, &[b"h2", b"http/1.1"])).await;
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(leaf, first.der);
    // ALPN said h2, so the proxy must speak HTTP/2 on it: a real request over HTTP/2 + TLS.
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(h2_stream)).await.unwrap();
    tokio::spawn(conn);
    let h2_req = http::Request::post("https://localhost/recommend")
        .header("x-api-key", KEY)
        .body(Full::new(Bytes::from_static(br#"{"user_id":"tls-h2-user"}"#)))
        .unwrap();
    let resp = h2.send_request(h2_req).await.unwrap();
    assert_eq!((resp.status().as_u16(), resp.version()), (200, http::Version::HTTP_2));
    assert!(resp.headers().contains_key("x-splitgate-variant"));
    let (alpn, _, stream) = handshake(p.addr, client_config(&first.der, &[b"http/1.1"])).await;
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));

    // A real request over HTTP/1.1 + TLS on the connection we keep open across the reload.
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = || {
        http::Request::post("/recommend")
            .header("host", "localhost")
            .header("x-api-key", KEY)
            .body(Full::new(Bytes::from_static(br#"{"user_id":"tls-user"}"#)))
            .unwrap()
    };
    let resp = sender.send_request(req()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-splitgate-variant"));
    resp.into_body().collect().await.unwrap();

    // Replace the certificate: new connections get the new one, the open one keeps working.
    let second = cert();
    std::fs::write(p.dir.path().join("cert.pem"), &second.pem).unwrap();
    std::fs::write(p.dir.path().join("key.pem"), &second.key).unwrap();
    wait_until(Duration::from_secs(10), "the new certificate was never served", || async {
        let tcp = tokio::net::TcpStream::connect(p.addr).await.unwrap();
        tokio_rustls::TlsConnector::from(Arc::new(client_config(&second.der, &[b"http/1.1"])))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .is_ok()
    })
    .await;
    let resp = sender.send_request(req()).await.unwrap();
    assert_eq!(resp.status(), 200, "a connection opened before the reload still works");
    assert!(p.stderr_text().contains("TLS certificate reloaded"));

    // Plain HTTP to a TLS port is refused, not served.
    let c = client();
    let r = c.request(http::Request::get(p.url("/health")).body(Full::new(Bytes::new())).unwrap()).await;
    assert!(r.is_err() || r.is_ok_and(|r| r.status() != 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_models_with_a_configured_ca() {
    let c = cert();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &c.pem).unwrap();
    // A TLS model server on loopback.
    let server_config = {
        std::fs::write(dir.path().join("m.pem"), &c.pem).unwrap();
        std::fs::write(dir.path().join("m.key"), &c.key).unwrap();
        splitgate::tls::server_config(&dir.path().join("m.pem"), &dir.path().join("m.key")).unwrap()
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
                        br#"{"items":[{"item_id":"secure"}]}"#,
                    ))))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    let models = Conf::base()
        .model_http("m", "m1", &format!("https://localhost:{}/invocations", addr.port()))
        .split("s")
        .champion("champion", "m", 100.0);
    let text = models.clone().server("upstream_ca_path", format!("{}/ca.pem", dir.path().display()));
    let p = Proxy::start(&text);
    let (status, _, body) = recommend(&p.url("/recommend"), "u").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["items"][0]["item_id"], "secure");
    // Without the CA the model's certificate is not trusted: 502, never a silent downgrade.
    let untrusted = Proxy::start(models);
    let (status, _, body) = recommend(&untrusted.url("/recommend"), "u").await;
    assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noisy_key_cannot_starve_the_others() {
    let text = Conf::builtin(90.0, 10.0).without_keys().key("demo", KEY_SHA, |k| k.set("allow_override", true)).key(
        "plain",
        PLAIN_SHA,
        |k| k.set("rate_per_second", 0.5).set("burst", 2),
    );
    let p = Proxy::start(&text);
    let c = client();
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for i in 0..5 {
            v.push(recommend_with(&c, &p.url("/recommend"), &format!("noisy-{i}")).await.0.as_u16());
        }
        v
    };
    assert_eq!(statuses, [200, 200, 429, 429, 429]);
    for i in 0..5 {
        assert_eq!(recommend(&p.url("/recommend"), &format!("other-{i}")).await.0, 200, "the demo key is unaffected");
    }
}

/// An HTTP/2-over-TLS connection that opens no stream is closed (GOAWAY) after
/// `idle_timeout_ms`, like an h2c one: TLS clients cannot hold connection slots either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tls_http2_connections_are_closed_after_the_idle_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let c = cert();
    let text = tls_config(dir.path(), &c).server("idle_timeout_ms", 1500);
    let p = Proxy::start(&text);
    let (alpn, _, mut tls) = handshake(p.addr, client_config(&c.der, &[b"h2"])).await;
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0").await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(6), tls.read(&mut buf)).await;
        match read.expect("still open 6 s later with a 1.5 s idle timeout") {
            Ok(0) | Err(_) => break,
            Ok(_) => continue, // SETTINGS, GOAWAY
        }
    }
    assert!(started.elapsed() < Duration::from_secs(4), "closed after {:?}", started.elapsed());
}
