//! Listeners: accept loops for the main and admin ports (HTTP/1.1 and h2c on each), connection
//! limits, and graceful drain. Nothing here knows about routes; it hands requests to `proxy`.

mod h2;
mod io;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::{service_fn, Service};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::error::BoxError;
use crate::proxy::{Body, Proxy};
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
        admin_service: Arc<crate::admin::Admin>,
        main: TcpListener,
        admin: TcpListener,
        tls: Option<Arc<Tls>>,
    ) -> std::io::Result<Server> {
        let addr = main.local_addr()?;
        let admin_addr = admin.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let server = proxy.runtime.snapshot.load().plan.server.clone();
        let main = tokio::spawn(accept_loop(main, proxy.clone(), stopped.clone(), Listener::Main(tls), server.clone()));
        let admin_limits = crate::config::ServerConfig { max_connections: 256, ..server };
        let admin =
            tokio::spawn(accept_loop(admin, proxy.clone(), stopped, Listener::Admin(admin_service), admin_limits));
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
                Some(p) => p.shared.metrics.upkeep(),
                None => return,
            }
        }
    });
}

/// Which listener an accept loop serves.
enum Listener {
    Main(Option<Arc<Tls>>),
    /// The admin service answers here (health details, metrics, the admin API).
    Admin(Arc<crate::admin::Admin>),
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
    let conns = Arc::new(Conns::new(&limits));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let open = proxy.shared.metrics.open_connections[matches!(kind, Listener::Admin(_)) as usize].clone();
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
        let slot = Slot::new(slot, &open);
        let _ = stream.set_nodelay(true);
        let p = proxy.clone();
        let c = Accepted {
            conns: conns.clone(),
            watcher: graceful.watcher(),
            draining: stopped(stop.clone()),
            stop: stop.clone(),
            peer,
        };
        // Plain and TLS connections are spawned apart: a task is sized for its future's largest
        // state, and hyper keeps it for the connection's whole life, idle or not.
        match &kind {
            Listener::Admin(service) => {
                let service = service.clone();
                let svc = service_fn(move |req| {
                    let a = service.clone();
                    async move { Ok::<_, Infallible>(crate::admin::handle(&a, req).await) }
                });
                tokio::spawn(async move {
                    plain(stream, svc, c).await;
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
                match tls.as_ref().map(|t| t.acceptor()) {
                    None => tokio::spawn(async move {
                        plain(stream, svc, c).await;
                        drop(slot);
                    }),
                    Some(acceptor) => tokio::spawn(async move {
                        over_tls(stream, &acceptor, svc, c).await;
                        drop(slot);
                    }),
                };
            }
        }
    }
    graceful
}

/// A connection's place under `max_connections`, counted in `splitgate_open_connections` from
/// accept to close (however the connection task ends).
struct Slot {
    _permit: tokio::sync::OwnedSemaphorePermit,
    open: metrics::Gauge,
}

impl Slot {
    fn new(permit: tokio::sync::OwnedSemaphorePermit, open: &metrics::Gauge) -> Slot {
        open.increment(1.0);
        Slot { _permit: permit, open: open.clone() }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.decrement(1.0);
    }
}

/// hyper's HTTP/1 and HTTP/2 connection settings of one listener.
struct Conns {
    h1: http1::Builder,
    h2: http2::Builder<TokioExecutor>,
    idle: Duration,
}

impl Conns {
    fn new(limits: &crate::config::ServerConfig) -> Conns {
        let idle = Duration::from_millis(limits.idle_timeout_ms);
        let mut h1 = http1::Builder::new();
        h1.timer(TokioTimer::new())
            // One hyper timer runs from the end of an answer (or the accept) to the end of the next
            // request head: it is the keep-alive idle timeout and the slowloris guard at once.
            .header_read_timeout(idle)
            .keep_alive(true)
            .max_buf_size(limits.max_header_bytes.max(8_192));
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .max_concurrent_streams(256)
            .max_header_list_size(limits.max_header_bytes as u32)
            // PINGs find peers that vanished without a FIN (a dead NAT entry, a killed host); the
            // idle GOAWAY itself is ours (`h2::serve`), since hyper's HTTP/2 server has none.
            .keep_alive_interval(Duration::from_millis(limits.h2_keepalive_interval_ms))
            .keep_alive_timeout(Duration::from_millis(limits.h2_keepalive_timeout_ms));
        Conns { h1, h2, idle }
    }
}

/// What a connection task needs besides its socket and service.
struct Accepted<D> {
    conns: Arc<Conns>,
    watcher: Watcher,
    /// Resolves when the listener drains.
    draining: D,
    /// The listener's stop signal, for HTTP/2 connections to drain on (they outlive `draining`).
    stop: watch::Receiver<bool>,
    peer: SocketAddr,
}

/// A plain-TCP connection: the protocol is told from the first bytes, so the connection is served
/// by hyper's HTTP/1 or HTTP/2 connection alone, not by a future with room for both (and no
/// rewind wrapper sits on every read).
async fn plain<S>(stream: TcpStream, svc: S, c: Accepted<impl Future<Output = ()>>)
where
    S: Service<Request<Incoming>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    // Taken apart so `draining` is dead (and its space reused) once the connection is served.
    let Accepted { conns, watcher, draining, stop, peer } = c;
    // A client that has sent nothing yet holds no request: on drain it is closed at once, as
    // hyper closes idle keep-alive connections.
    let sniffed = tokio::select! {
        r = tokio::time::timeout(conns.idle, sniff(&stream)) => r,
        _ = draining => return,
    };
    let served = match sniffed {
        Ok(Ok(Proto::Http1)) => serve_h1(stream, svc, &conns, watcher).await,
        Ok(Ok(Proto::H2)) => serve_h2(stream, svc, &conns, watcher, stop).await,
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Ok(()), // silent past the idle timeout: just close
    };
    if let Err(e) = served {
        tracing::debug!(error = %e, %peer, "connection ended with an error");
    }
}

/// A TLS connection: the protocol is the one ALPN settled on (RFC 9113 §3.2: HTTP/2 over TLS is
/// negotiated, never assumed).
async fn over_tls<S>(stream: TcpStream, acceptor: &TlsAcceptor, svc: S, c: Accepted<impl Future<Output = ()>>)
where
    S: Service<Request<Incoming>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    let Accepted { conns, watcher, draining, stop, peer } = c;
    let handshake = tokio::select! {
        r = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => r,
        _ = draining => return,
    };
    let served = match handshake {
        Ok(Ok(tls)) => {
            if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                serve_h2(tls, svc, &conns, watcher, stop).await
            } else {
                serve_h1(tls, svc, &conns, watcher).await
            }
        }
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err("TLS handshake timed out".into()),
    };
    if let Err(e) = served {
        tracing::debug!(error = %e, %peer, "connection ended with an error");
    }
}

/// Serves `io` as HTTP/1.1 until the client leaves or the listener drains.
async fn serve_h1<I, S>(io: I, svc: S, conns: &Conns, watcher: Watcher) -> Result<(), BoxError>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    let io = io::WriteDeadline::new(io, conns.idle);
    Ok(watcher.watch(conns.h1.serve_connection(TokioIo::new(io), svc)).await?)
}

/// Serves `io` as HTTP/2 with an idle GOAWAY (see `h2`). Boxed: HTTP/2 connections are rare
/// here, so tasks that can also hold an HTTP/1 connection are not sized for them.
fn serve_h2<I, S>(io: I, svc: S, conns: &Arc<Conns>, watcher: Watcher, stop: watch::Receiver<bool>) -> Served
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    let conns = conns.clone();
    Box::pin(async move {
        let io = io::WriteDeadline::new(io, conns.idle);
        let served = h2::serve(io, svc, &conns.h2, conns.idle, stopped(stop)).await;
        // Held to here: the listener's graceful shutdown waits for every watcher to go.
        drop(watcher);
        served
    })
}

type Served = std::pin::Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

/// Resolves once the listener is told to stop; never if it is dropped without being told.
async fn stopped(mut stop: watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// What a client speaks.
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
