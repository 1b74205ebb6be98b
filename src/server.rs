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

/// Slowloris guard: a client must finish its request head within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// Starts serving on already-bound listeners.
    pub fn start(proxy: Arc<Proxy>, main: TcpListener, admin: TcpListener) -> std::io::Result<Server> {
        let addr = main.local_addr()?;
        let admin_addr = admin.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let max_connections = proxy.snapshot.load().plan.server.max_connections;
        let main = tokio::spawn(accept_loop(main, proxy.clone(), stopped.clone(), false, max_connections));
        let admin = tokio::spawn(accept_loop(admin, proxy.clone(), stopped, true, 256));
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

async fn accept_loop(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    mut stop: watch::Receiver<bool>,
    admin: bool,
    max_connections: usize,
) -> GracefulShutdown {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT).keep_alive(true);
    builder.http2().timer(TokioTimer::new()).max_concurrent_streams(256);
    let slots = Arc::new(Semaphore::new(max_connections));
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
        let p = proxy.clone();
        let conn = if admin {
            let svc = service_fn(move |req| {
                let p = p.clone();
                async move { Ok::<_, Infallible>(p.handle_admin(req).await) }
            });
            let fut = graceful.watch(builder.serve_connection(TokioIo::new(stream), svc).into_owned());
            tokio::spawn(async move {
                let _ = fut.await;
                drop(slot);
            })
        } else {
            let svc = service_fn(move |req| {
                let p = p.clone();
                async move { Ok::<_, Infallible>(p.handle(req, peer).await) }
            });
            let fut = graceful.watch(builder.serve_connection(TokioIo::new(stream), svc).into_owned());
            tokio::spawn(async move {
                if let Err(e) = fut.await {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                drop(slot);
            })
        };
        drop(conn);
    }
    graceful
}
