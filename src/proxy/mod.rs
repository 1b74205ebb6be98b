//! The request path. [`Proxy::handle`] is the outer layer: it routes, runs one inner pipeline that
//! returns `Result<Response, ProxyError>`, turns errors into JSON, then records metrics and the
//! access log exactly once. The stages themselves live in `recommend` and `feedback`.

mod feedback;
mod finish;
pub mod head;
mod health;
pub mod interleave;
pub mod recent;
mod recommend;
mod respond;

pub(crate) use recommend::read_within;
pub use respond::json_response;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response};
use http_body_util::Full;

use crate::accesslog::AccessLog;
use crate::auth::Caller;
use crate::backend::HttpClient;
use crate::config::Plan;
use crate::error::ProxyError;
use crate::metrics::{Metrics, Route};
use crate::record::Facts;
use crate::reqid::RequestIds;
use crate::runtime::Runtime;
use crate::shared::Shared;
use crate::snapshot::{Origin, Snapshot, Source};
use crate::split::traffic::Traffic;
use crate::trace::{TraceContext, TraceIds};
use finish::{Done, Pending};

/// The response body type of both listeners: answers are buffered, so a full body is exact.
pub type Body = Full<Bytes>;

pub(crate) static API_KEY: http::HeaderName = http::HeaderName::from_static("x-api-key");
pub(crate) static REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");
pub(crate) static VARIANT: http::HeaderName = http::HeaderName::from_static("x-splitgate-variant");
pub(crate) static MODEL: http::HeaderName = http::HeaderName::from_static("x-splitgate-model");
/// The config version that served: feedback may bring it back for attribution.
pub(crate) static CONFIG_VERSION: http::HeaderName = http::HeaderName::from_static("x-splitgate-config-version");

/// The request path's state: the live config (`runtime`), the long-lived clients it calls
/// through (`shared`), and what only the request path keeps — request ids, the access log, the
/// recent attributions, the bucket traffic map, drain and load-shedding state. The admin service
/// (`admin::Admin`) holds a `Proxy`; the proxy knows nothing of it.
pub struct Proxy {
    pub runtime: Runtime,
    pub shared: Shared,
    pub access_log: AccessLog,
    /// Which variant served recent request ids, for feedback attribution.
    pub recent: recent::RecentRequests,
    /// Requests per bucket over the last hour, for dry-run estimates of weight changes.
    pub traffic: Traffic,
    ids: RequestIds,
    trace_ids: TraceIds,
    started: Instant,
    /// Set on SIGTERM: readiness fails so load balancers stop sending before we stop accepting.
    pub draining: AtomicBool,
    in_flight: AtomicUsize,
}

/// Decrements the in-flight count however the request ends.
pub(crate) struct InFlight<'a>(&'a Proxy);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.shared.metrics.in_flight.decrement(1.0);
    }
}

impl Proxy {
    /// Builds the proxy around its first config. Must run inside a tokio runtime.
    /// `aws` must have been prepared for `plan` (see `AwsClients::prepare`).
    pub fn new(
        plan: Plan,
        digest: String,
        source: Source,
        client: HttpClient,
        access_log: AccessLog,
        metrics: Metrics,
        aws: crate::aws::AwsClients,
    ) -> Proxy {
        let shared = Shared::new(metrics, client, aws);
        let version = plan.version.unwrap_or(1);
        let snapshot = Snapshot::build(plan, Origin { version, digest, source }, shared.deps(), None);
        shared.metrics.config_version.set(snapshot.version as f64);
        Proxy {
            runtime: Runtime::new(snapshot),
            shared,
            access_log,
            recent: recent::RecentRequests::default(),
            traffic: Traffic::default(),
            ids: RequestIds::new(),
            trace_ids: TraceIds::new(),
            started: Instant::now(),
            draining: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Nanoseconds on the monotonic clock since start: the throttle's time base.
    fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// Main listener entry point.
    pub async fn handle<B>(self: &Arc<Self>, mut req: Request<B>, peer: SocketAddr) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<crate::error::BoxError>,
    {
        let start = Instant::now();
        let time = SystemTime::now();
        let snap = self.runtime.snapshot.load_full();
        let request_id = self.ids.accept_or_mint(req.headers().get(&REQUEST_ID), snap.version);
        let method = req.method().clone();
        let version = req.version();
        let (route, route_key) = route_of(req.method(), req.uri().path());
        let had_body = !hyper::body::Body::is_end_stream(req.body());
        // Headers named in `Connection` are gone before anything below reads one.
        let checked = head::check(req.headers_mut(), version);
        let trace = TraceContext::from_headers(req.headers(), &self.trace_ids, time);
        let ip = snap.plan.trusted_proxies.client_ip(peer.ip(), req.headers());
        // Owns the facts until the one `finish`: if this future is dropped before it answers (the
        // client went away), the drop still records the request, once.
        let done = Done { route, route_key, ip, time, method, version, start };
        let mut pending = Pending::new(self, &snap, request_id, trace, done);
        let (ctx, request_id, trace) = (&mut pending.facts, &pending.request_id, &pending.trace);

        let result = match checked {
            Err(e) => Err(e),
            Ok(()) => match (route, route_key) {
                (Route::Recommend, Some(_)) => self.recommend(&snap, req, request_id, trace, ctx).await,
                (Route::Feedback, Some(_)) => self.feedback(&snap, req, ctx).await,
                (Route::Health, Some(_)) => Ok(self.health(&snap, req.uri().query())),
                (Route::Metrics, Some(_)) => self.authenticate(&snap, req.headers(), ctx).map(|_| self.metrics_page()),
                (_, None) => Err(wrong_method_or_missing(req.uri().path())),
                (_, Some(_)) => Err(ProxyError::NotFound),
            },
        };

        let (mut response, error) = match result {
            Ok(r) => (r, None),
            Err(e) => (respond::error(&e, request_id, &snap, ctx.variant), Some(e)),
        };
        // Close the HTTP/1 connection, and say so, when the answer went out before the request
        // body was read to its end (401, 413, 408, a broken chunked body…): hyper cannot reuse
        // the connection, and a client that is not told sends its next request into a reset
        // (an ALB does not retry a POST: someone sees a 502). While draining, ask every HTTP/1
        // client to stop reusing the connection, so none sends a request just as it is closed.
        let unread_body = had_body && !ctx.body_read;
        if is_http1(version) && (unread_body || self.draining.load(Ordering::Relaxed)) {
            response.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        let length = hyper::body::Body::size_hint(response.body()).exact().unwrap_or(0);
        pending.finish(response.status().as_u16(), length, error.as_ref());
        response
    }

    /// Load shedding: refuse new work past `server.max_in_flight` instead of queueing it. Taken
    /// once the body is in: the slots count requests being served, so callers trickling bodies
    /// (bounded by `server.body_timeout_ms`) cannot hold them.
    pub(crate) fn admit(&self, snap: &Snapshot) -> Result<InFlight<'_>, ProxyError> {
        let max = snap.plan.server.max_in_flight;
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.shared.metrics.in_flight.increment(1.0);
        let guard = InFlight(self);
        if now >= max {
            return Err(ProxyError::Overloaded);
        }
        Ok(guard)
    }

    /// Stage 1: the `X-API-Key` must hash to a configured key.
    pub(crate) fn authenticate<'s>(
        &self,
        snap: &'s Snapshot,
        headers: &HeaderMap,
        ctx: &mut Facts,
    ) -> Result<&'s Caller, ProxyError> {
        let caller = headers.get(&API_KEY).and_then(|k| snap.keys.authenticate(k.as_bytes()));
        let c = caller.ok_or(ProxyError::Unauthorized)?;
        ctx.caller = Some(c.name.clone());
        Ok(c)
    }

    /// Stage 2: the listener-wide token bucket, then the caller's own.
    pub(crate) fn throttle(&self, snap: &Snapshot, caller: &Caller) -> Result<(), ProxyError> {
        let now = self.now_ns();
        let global = snap.throttle.as_deref().map_or(Ok(()), |b| b.try_acquire(now));
        let result = global.and_then(|_| caller.bucket.as_deref().map_or(Ok(()), |b| b.try_acquire(now)));
        result.map_err(|retry_after| ProxyError::Throttled { retry_after })
    }

    pub(crate) fn metrics_page(&self) -> Response<Body> {
        let mut text = self.shared.metrics.render();
        crate::metrics::live::variant_weights(&mut text, &self.runtime.snapshot.load());
        let mut r = Response::new(Full::new(Bytes::from(text)));
        r.headers_mut()
            .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
        r
    }
}

/// The route and its API Gateway style route key; `None` key = path known, method wrong (or unknown path).
fn route_of(method: &Method, path: &str) -> (Route, Option<&'static str>) {
    match (method, path) {
        (&Method::POST, "/recommend") => (Route::Recommend, Some("POST /recommend")),
        (&Method::POST, "/feedback") => (Route::Feedback, Some("POST /feedback")),
        (&Method::GET, "/health") => (Route::Health, Some("GET /health")),
        (&Method::GET, "/metrics") => (Route::Metrics, Some("GET /metrics")),
        _ => (Route::Other, None),
    }
}

fn is_http1(v: http::Version) -> bool {
    matches!(v, http::Version::HTTP_09 | http::Version::HTTP_10 | http::Version::HTTP_11)
}

fn wrong_method_or_missing(path: &str) -> ProxyError {
    match path {
        "/recommend" | "/feedback" => ProxyError::MethodNotAllowed { allow: "POST" },
        "/health" | "/metrics" => ProxyError::MethodNotAllowed { allow: "GET" },
        _ => ProxyError::NotFound,
    }
}
