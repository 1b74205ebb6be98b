//! The one recording of a request. [`Pending`] owns the request's facts while the pipeline runs
//! and records them exactly once: through [`Pending::finish`] with the answer, or — when the
//! pipeline's future is dropped before it answers, because the client closed the connection or
//! reset the stream — from `Drop`, as 499 `client_closed_request` with the time it had taken.
//! Either way every sink (Prometheus, CloudWatch, the guard, the experiment counters) sees the
//! outcome once, then the access log gets its line. So a model slower than its callers' patience
//! still feeds the guard's latency trigger. The line is also the exposure log: the user's hash,
//! bucket, config version and weight epoch.

use std::net::IpAddr;
use std::time::{Instant, SystemTime};

use http::{HeaderValue, Method};

use super::Proxy;
use crate::accesslog::Record;
use crate::error::ProxyError;
use crate::metrics::Route;
use crate::record::{ExperimentSink, Facts, GuardSink, InterleaveSink, Outcome, Sink};
use crate::snapshot::Snapshot;
use crate::trace::TraceContext;

/// What the outer layer knows of a request besides its facts.
pub(super) struct Done {
    pub route: Route,
    pub route_key: Option<&'static str>,
    /// The client's address: the peer, or who it forwards for when it is a trusted proxy.
    pub ip: IpAddr,
    pub time: SystemTime,
    pub method: Method,
    pub version: http::Version,
    pub start: Instant,
}

/// A request not yet recorded.
pub(super) struct Pending<'a> {
    proxy: &'a Proxy,
    snap: &'a Snapshot,
    pub facts: Facts,
    pub request_id: HeaderValue,
    /// The request's trace, as sent on to its models and logged.
    pub trace: TraceContext,
    /// `None` once recorded.
    done: Option<Done>,
}

impl<'a> Pending<'a> {
    pub fn new(proxy: &'a Proxy, snap: &'a Snapshot, request_id: HeaderValue, trace: TraceContext, done: Done) -> Self {
        Pending { proxy, snap, facts: Facts::default(), request_id, trace, done: Some(done) }
    }

    /// Records the answered request.
    pub fn finish(&mut self, status: u16, response_length: u64, error: Option<&ProxyError>) {
        if let Some(done) = self.done.take() {
            let facts = std::mem::take(&mut self.facts);
            let request_id = std::mem::replace(&mut self.request_id, HeaderValue::from_static(""));
            let trace_id = self.trace.trace_id;
            record(self.proxy, self.snap, done, request_id, trace_id, status, response_length, error, facts);
        }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if self.done.is_some() {
            let closed = ProxyError::ClientClosed;
            self.finish(closed.status().as_u16(), 0, Some(&closed));
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn record(
    proxy: &Proxy,
    snap: &Snapshot,
    done: Done,
    request_id: HeaderValue,
    trace_id: [u8; 16],
    status: u16,
    response_length: u64,
    error: Option<&ProxyError>,
    facts: Facts,
) {
    let latency = done.start.elapsed();
    let outcome = Outcome { route: done.route, status, latency, error, facts: &facts };
    let sinks: [&dyn Sink; 5] =
        [&proxy.shared.metrics, &proxy.shared.cloudwatch, &GuardSink, &ExperimentSink(&proxy.traffic), &InterleaveSink];
    for sink in sinks {
        sink.record(snap, &outcome);
    }
    if let Some(e) = error.filter(|e| e.status().is_server_error()) {
        tracing::debug!(request_id = ?request_id, error = %e, "request failed");
    }
    let variant = facts.variant.and_then(|i| snap.variants.get(i));
    let user = facts.exposure.or(facts.feedback_user);
    let (request_id, interleave) = super::interleave::logged(&facts, request_id);
    proxy.access_log.log(Record {
        request_id,
        trace_id,
        ip: done.ip,
        time: done.time,
        method: done.method,
        route_key: done.route_key.unwrap_or("$default"),
        status,
        protocol: done.version,
        response_length,
        latency,
        variant: variant.map(|v| v.name.clone()),
        model: variant.map(|v| match &v.interleave {
            Some(arm) => super::interleave::logged_model(arm, facts.interleave.as_ref()),
            None => v.model.version.clone(),
        }),
        upstream_latency: facts.upstream_latency,
        caller: facts.caller,
        error: error.map(ProxyError::code),
        fallback: facts.fallback,
        user_hash: user.map(|u| u.user_hash),
        bucket: user.and_then(|u| u.bucket),
        config_version: snap.version,
        epoch: Some(snap.epoch.id().clone()),
        user_id: facts.raw_user_id,
        interleave,
    });
}
