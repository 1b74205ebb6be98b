//! Listeners: accept loops for the main and admin ports (HTTP/1.1 and h2c on each), connection
//! limits, and graceful drain. Nothing here knows about routes; it hands requests to `proxy`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::proxy::Proxy;
use crate::tls::Tls;

/// A running proxy: its bound addresses and the handle to stop it.
pub struct Server {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub proxy: Arc<Proxy>,
    stop: watch::Sender<bool>,
    main: JoinHandle<GracefulShutdown>,
    admin: JoinHandle<GracefulShutdown>,
}

impl Server {
    /// Starts serving on already-bound listeners; `tls` terminates TLS on the main one.
    pub fn start(
        proxy: Arc<Proxy>,
        main: TcpListener,
        admin: TcpListener,
        tls: Option<Arc<Tls>>,
    ) -> std::io::Result<Server> {
        let addr = main.local_addr()?;
        let admin_addr = admin.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let server = proxy.snapshot.load().plan.server.clone();
        let main = tokio::spawn(accept_loop(main, proxy.clone(), stopped.clone(), Listener::Main(tls), server.clone()));
        let admin_limits = crate::config::ServerConfig { max_connections: 256, ..server };
        let admin = tokio::spawn(accept_loop(admin, proxy.clone(), stopped, Listener::Admin, admin_limits));
        spawn_upkeep(proxy.clone());
        Ok(Server { addr, admin_addr, proxy, stop, main, admin })
    }

    /// Drains: readiness fails at once, new connections are refused after `grace` (time for load
    /// balancers to notice), in-flight requests finish within `deadline`. Returns true if every
    /// connection closed in time.
    pub async fn shutdown(self, grace: Duration, deadline: Duration) -> bool {
        self.proxy.draining.store(true, Ordering::Relaxed);
        tokio::time::sleep(grace).await;
        let _ = self.stop.send(true);
        let (main, admin) = (self.main.await, self.admin.await);
        let drain = async {
            if let Ok(g) = main {
                g.shutdown().await;
            }
            if let Ok(g) = admin {
                g.shutdown().await;
            }
        };
        tokio::time::timeout(deadline, drain).await.is_ok()
    }
}

fn spawn_upkeep(proxy: Arc<Proxy>) {
    let weak = Arc::downgrade(&proxy);
    drop(proxy);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            match weak.upgrade() {
                Some(p) => p.metrics.upkeep(),
                None => return,
            }
        }
    });
}

/// Which listener an accept loop serves.
enum Listener {
    Main(Option<Arc<Tls>>),
    Admin,
}

/// A TLS client has this long to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn accept_loop(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    mut stop: watch::Receiver<bool>,
    kind: Listener,
    limits: crate::config::ServerConfig,
) -> GracefulShutdown {
    let graceful = GracefulShutdown::new();
    let idle = Duration::from_millis(limits.idle_timeout_ms);
    let mut h1 = http1::Builder::new();
    h1.timer(TokioTimer::new())
        // One hyper timer runs from the end of an answer (or the accept) to the end of the next
        // request head: it is the keep-alive idle timeout and the slowloris guard at once.
        .header_read_timeout(idle)
        .keep_alive(true)
        .max_buf_size(limits.max_header_bytes.max(8_192));
    let mut h2 = http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new()).max_concurrent_streams(256).max_header_list_size(limits.max_header_bytes as u32);
    // TLS connections (and the admin port) tell HTTP/1.1 from HTTP/2 with hyper-util's detector.
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(idle)
        .keep_alive(true)
        .max_buf_size(limits.max_header_bytes.max(8_192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .max_header_list_size(limits.max_header_bytes as u32);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Usually EMFILE/ENFILE: back off instead of spinning; the listener stays open.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        // Past the connection limit, close at once: the client retries elsewhere, we stay healthy.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (p, watcher) = (proxy.clone(), graceful.watcher());
        match &kind {
            Listener::Admin => {
                let svc = service_fn(move |req| {
                    let p = p.clone();
                    async move { Ok::<_, Infallible>(p.handle_admin(req).await) }
                });
                let builder = builder.clone();
                tokio::spawn(async move {
                    let _ = watcher.watch(builder.serve_connection(TokioIo::new(stream), svc).into_owned()).await;
                    drop(slot);
                });
            }
            Listener::Main(tls) => {
                // hyper keeps one request future per connection for the connection's whole life,
                // idle or not: boxing it per request (one allocation) keeps idle connections
                // ~4 KB smaller than storing the whole pipeline's state inline.
                let svc = service_fn(move |req| {
                    let p = p.clone();
                    async move { Ok::<_, Infallible>(Box::pin(p.handle(req, peer)).await) }
                });
                // Plain and TLS connections are spawned apart: a task is sized for its future's
                // largest state, and hyper keeps it for the connection's whole life, idle or not.
                match tls.as_ref().map(|t| t.acceptor()) {
                    None => {
                        // Plain TCP: the protocol is known from the first bytes, so each connection
                        // is served by hyper's HTTP/1 or HTTP/2 connection alone, not by a future
                        // that has room for both (and no rewind wrapper sits on every read).
                        let (h1, h2, draining) = (h1.clone(), h2.clone(), stopped(stop.clone()));
                        tokio::spawn(async move {
                            // A client that has sent nothing yet holds no request: on drain it is
                            // closed at once, as hyper closes idle keep-alive connections.
                            let sniffed = tokio::select! {
                                r = tokio::time::timeout(idle, sniff(&stream)) => r,
                                _ = draining => return,
                            };
                            let served: Result<(), crate::error::BoxError> = match sniffed {
                                Ok(Ok(Proto::Http1)) => watcher
                                    .watch(h1.serve_connection(TokioIo::new(stream), svc))
                                    .await
                                    .map_err(Into::into),
                                Ok(Ok(Proto::H2)) => {
                                    Box::pin(watcher.watch(h2.serve_connection(TokioIo::new(stream), svc)))
                                        .await
                                        .map_err(Into::into)
                                }
                                Ok(Err(e)) => Err(e.into()),
                                Err(_) => Ok(()), // silent past the idle timeout: just close
                            };
                            if let Err(e) = served {
                                tracing::debug!(error = %e, %peer, "connection ended with an error");
                            }
                            drop(slot);
                        });
                    }
                    Some(acceptor) => {
                        let (builder, draining) = (builder.clone(), stopped(stop.clone()));
                        tokio::spawn(async move {
                            let handshake = tokio::select! {
                                r = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => r,
                                _ = draining => return,
                            };
                            let served = match handshake {
                                Ok(Ok(tls_stream)) => {
                                    watcher
                                        .watch(builder.serve_connection(TokioIo::new(tls_stream), svc).into_owned())
                                        .await
                                }
                                Ok(Err(e)) => Err(e.into()),
                                Err(_) => Err("TLS handshake timed out".into()),
                            };
                            if let Err(e) = served {
                                tracing::debug!(error = %e, %peer, "connection ended with an error");
                            }
                            drop(slot);
                        });
                    }
                }
            }
        }
    }
    graceful
}

/// Resolves once the listener is told to stop; never if it is dropped without being told.
async fn stopped(mut stop: watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// What a plain-TCP client speaks.
#[derive(Debug, PartialEq, Eq)]
enum Proto {
    Http1,
    H2,
}

/// The HTTP/2 connection preface (RFC 9113 §3.4): a client with prior knowledge starts with it.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Tells HTTP/2 prior knowledge from HTTP/1 by peeking at the first bytes, consuming nothing.
/// One extra syscall per connection, none per request.
async fn sniff(stream: &TcpStream) -> std::io::Result<Proto> {
    let mut buf = [0u8; H2_PREFACE.len()];
    let mut pause = Duration::from_millis(1);
    loop {
        let n = stream.peek(&mut buf).await?;
        match classify(&buf[..n]) {
            Some(proto) => return Ok(proto),
            // Only a prefix of the preface so far (rare: clients send it in one segment). `peek`
            // would return the same bytes at once, so wait instead of spinning, backing off so a
            // client that stalls there costs ~20 wake-ups a second, not hundreds; the caller's
            // idle timeout bounds the whole wait.
            None => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
        }
    }
}

/// `None` while `first` is a proper prefix of the preface; EOF (empty) goes to HTTP/1, which closes.
fn classify(first: &[u8]) -> Option<Proto> {
    if first.is_empty() || !H2_PREFACE.starts_with(first) {
        Some(Proto::Http1)
    } else if first.len() == H2_PREFACE.len() {
        Some(Proto::H2)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_the_preface() {
        assert_eq!(classify(H2_PREFACE), Some(Proto::H2));
        assert_eq!(classify(b""), Some(Proto::Http1), "EOF: HTTP/1 reads it and closes");
        assert_eq!(classify(b"POST /recommend HTTP/1.1\r\n"), Some(Proto::Http1));
        assert_eq!(classify(b"GET / HTTP/1.1\r\nhost: x\r\n"), Some(Proto::Http1));
        assert_eq!(classify(b"PRI * HTTP/1.1\r\n\r\nSM\r\n\r\n"), Some(Proto::Http1));
        for n in 1..H2_PREFACE.len() {
            assert_eq!(classify(&H2_PREFACE[..n]), None, "a {n}-byte prefix waits for more");
        }
        assert_eq!(classify(b"P"), None, "POST and PRI share their first byte");
        assert_eq!(classify(b"PO"), Some(Proto::Http1));
    }
}
