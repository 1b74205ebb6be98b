//! Serving one HTTP/2 connection with the timers hyper's HTTP/2 server does not have: it is
//! closed (GOAWAY) once no stream has been open for `idle_timeout_ms`, the same bound HTTP/1
//! connections get from hyper's header-read timer, so clients holding connections without
//! requests (a preface and SETTINGS, then nothing) cannot fill `max_connections`. A connection
//! whose handshake never completes is dropped too. Dead peers are found by hyper's keep-alive
//! PINGs (`h2_keepalive_interval_ms` / `h2_keepalive_timeout_ms`, set on the builder).

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;

use crate::error::BoxError;
use crate::proxy::Body;

/// After a GOAWAY (idle or drain), how often to check whether the connection may be dropped: a
/// healthy peer is gone at once; one that never finished its handshake is dropped at the check.
const CLOSE_CHECK: Duration = Duration::from_millis(500);

/// Open streams of one connection, and a wake-up whenever the count leaves or reaches zero.
#[derive(Default)]
struct Activity {
    open: AtomicUsize,
    changed: Notify,
}

impl Activity {
    fn start(self: &Arc<Self>) -> Open {
        if self.open.fetch_add(1, Ordering::AcqRel) == 0 {
            self.changed.notify_waiters();
        }
        Open(self.clone())
    }

    /// Resolves once the connection has had no open stream for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let mut changed = pin!(self.changed.notified());
            // Registered before the count is read, so a change in between still wakes us.
            changed.as_mut().enable();
            if self.open.load(Ordering::Acquire) == 0 {
                if tokio::time::timeout(idle, changed).await.is_err() {
                    return;
                }
            } else {
                changed.await;
            }
        }
    }
}

/// One open stream; closing it may start the idle clock.
struct Open(Arc<Activity>);

impl Drop for Open {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.changed.notify_waiters();
        }
    }
}

/// The listener's service, counting the streams it serves.
#[derive(Clone)]
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

type StreamFuture<E> = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

impl<S> Service<Request<Incoming>> for Tracked<S>
where
    S: Service<Request<Incoming>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = StreamFuture<S::Error>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let open = self.activity.start();
        let answer = self.inner.call(req);
        Box::pin(async move {
            let r = answer.await;
            drop(open);
            r
        })
    }
}

/// Serves `io` as HTTP/2 until the client leaves, the connection idles past `idle`, or
/// `draining` resolves; then GOAWAY, in-flight streams finish, and the connection closes.
pub(super) async fn serve<I, S>(
    io: I,
    svc: S,
    builder: &hyper::server::conn::http2::Builder<TokioExecutor>,
    idle: Duration,
    draining: impl Future<Output = ()>,
) -> Result<(), BoxError>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    let activity = Arc::new(Activity::default());
    let svc = Tracked { inner: svc, activity: activity.clone() };
    let mut conn = pin!(builder.serve_connection(TokioIo::new(io), svc));
    let mut draining = pin!(draining);
    {
        let mut idle_out = pin!(activity.idle_for(idle));
        tokio::select! {
            r = conn.as_mut() => return r.map_err(Into::into),
            _ = &mut idle_out => {}
            _ = &mut draining => {}
        }
    }
    conn.as_mut().graceful_shutdown();
    loop {
        tokio::select! {
            r = conn.as_mut() => return r.map_err(Into::into),
            _ = tokio::time::sleep(CLOSE_CHECK) => {
                // No stream left but still open: the peer never finished its handshake or does
                // not read our GOAWAY. Nothing is lost by dropping it.
                if activity.open.load(Ordering::Acquire) == 0 {
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How long, from now, until `a` has been idle for `idle` (on the paused clock).
    fn time_until_idle(a: &Arc<Activity>, idle: Duration) -> tokio::task::JoinHandle<Duration> {
        let a = a.clone();
        tokio::spawn(async move {
            let t = tokio::time::Instant::now();
            a.idle_for(idle).await;
            t.elapsed()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn idle_clock_runs_only_without_open_streams() {
        let a = Arc::new(Activity::default());
        let idle = Duration::from_secs(10);
        let started = tokio::time::Instant::now();
        a.idle_for(idle).await;
        assert_eq!(started.elapsed(), idle, "no stream at all: idle from the start");

        let open = a.start();
        let waiter = time_until_idle(&a, idle);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!waiter.is_finished(), "an open stream holds the connection however long it takes");
        drop(open);
        let waited = waiter.await.unwrap();
        assert_eq!(waited, Duration::from_secs(70), "the clock starts when the last stream ends");
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_stream_restarts_the_idle_clock() {
        let a = Arc::new(Activity::default());
        let idle = Duration::from_secs(10);
        let waiter = time_until_idle(&a, idle);
        tokio::time::sleep(Duration::from_secs(8)).await;
        drop(a.start()); // a quick request at 8 s
        assert_eq!(waiter.await.unwrap(), Duration::from_secs(18));
    }
}
