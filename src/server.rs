//! Listeners: accept loops for the main and admin ports (HTTP/1.1 and h2c on each), connection
//! limits, and graceful drain. Nothing here knows about routes; it hands requests to `proxy`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
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
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // One hyper timer runs from the end of an answer (or the accept) to the end of the next
        // request head: it is the keep-alive idle timeout and the slowloris guard at once.
        .header_read_timeout(Duration::from_millis(limits.idle_timeout_ms))
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
        let (p, builder, watcher) = (proxy.clone(), builder.clone(), graceful.watcher());
        match &kind {
            Listener::Admin => {
                let svc = service_fn(move |req| {
                    let p = p.clone();
                    async move { Ok::<_, Infallible>(p.handle_admin(req).await) }
                });
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
                let acceptor = tls.as_ref().map(|t| t.acceptor());
                tokio::spawn(async move {
                    let served = match acceptor {
                        None => watcher.watch(builder.serve_connection(TokioIo::new(stream), svc).into_owned()).await,
                        Some(acceptor) => {
                            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                Ok(Ok(tls_stream)) => {
                                    watcher
                                        .watch(builder.serve_connection(TokioIo::new(tls_stream), svc).into_owned())
                                        .await
                                }
                                Ok(Err(e)) => Err(e.into()),
                                Err(_) => Err("TLS handshake timed out".into()),
                            }
                        }
                    };
                    if let Err(e) = served {
                        tracing::debug!(error = %e, %peer, "connection ended with an error");
                    }
                    drop(slot);
                });
            }
        }
    }
    graceful
}
