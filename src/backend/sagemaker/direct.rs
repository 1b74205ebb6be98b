//! `InvokeEndpoint` on the success path without the SDK's per-call orchestrator.
//!
//! A profile of the SDK path (`loadtest/PERFORMANCE.md`) put ~360k instructions and 337 heap
//! allocations into every call, almost all of it the orchestrator's per-call machinery (config
//! layering, interceptors, identity and endpoint plumbing) around two things that matter: the
//! request's shape and its SigV4 signature. So this module renders the request as the SDK's
//! serializer does (path, `Content-Type` defaulting to `application/octet-stream`, `Accept`,
//! `X-Amzn-SageMaker-Inference-Id`, `X-Amzn-SageMaker-Target-Variant`, the trace headers),
//! signs it with [`super::sigv4`] (the SDK's signing settings for this operation, the key
//! derived once a day) and sends it through the same lean pool. A 2xx answer is the model's;
//! anything else goes to the SDK's own error model ([`super::scope`] replays the answer into a
//! real SDK call), so `ModelError`, throttling and validation errors are read by the SDK's code.
//!
//! The SDK stays the oracle: a unit test sends the same calls through the SDK (our production
//! client config, a fixed clock, static keys) and requires the same method, path, body, header
//! values and — its telemetry fields aside — signature; `sigv4`'s tests compare thousands of
//! generated requests with `aws-sigv4`; `tests/aws.rs` checks what reaches the wire with an
//! independent SigV4 implementation.

use std::sync::Arc;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::identity::Identity;
use smallvec::SmallVec;

use super::connector::Target;
use super::sigv4::{self, KeyCache};
use crate::aws::credentials::Refreshing;
use crate::backend::h1::{self, CallError, Want};
use crate::backend::http::trace_headers;
use crate::backend::{HttpClient as Upstreams, ModelRequest};

/// SageMaker Runtime's SigV4 signing name (the SDK's `SigningName` for the service).
const SIGNING_NAME: &str = "sagemaker";
/// What the SDK's serializer sends when the caller gave no content type.
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";
/// Sent unsigned, like the SDK's own `user-agent` (SigV4 excludes it: proxies rewrite it).
const USER_AGENT: &str = concat!("splitgate/", env!("CARGO_PKG_VERSION"));

/// One SageMaker endpoint origin: its pool, host, signing region and credentials. Shared by every
/// model on that origin and across reloads (built with the SDK client, in `crate::aws`).
pub struct Direct {
    pool: Arc<h1::Pool>,
    /// `scheme://authority` plus the endpoint URL's own path, without a trailing `/`.
    base: Box<str>,
    host: Box<str>,
    keys: KeyCache,
    credentials: Refreshing,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct").field("base", &self.base).field("region", &self.keys.region()).finish_non_exhaustive()
    }
}

/// One endpoint's request target, computed once per model.
#[derive(Debug, Clone)]
pub struct Route {
    /// The absolute URL SigV4 signs.
    uri: Box<str>,
    /// Where the path starts in `uri`.
    path_at: usize,
}

impl Route {
    /// `InvokeEndpoint`'s target under `base` (the SDK's `/endpoints/{EndpointName}/invocations`
    /// after the endpoint URL's own path).
    fn new(base: &str, endpoint: &str) -> Option<Route> {
        if endpoint.is_empty() || !endpoint.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return None;
        }
        let uri = format!("{base}/endpoints/{endpoint}/invocations");
        let path_at = Target::parse(&uri)?.path_offset();
        Some(Route { uri: uri.into(), path_at })
    }

    fn path(&self) -> &str {
        &self.uri[self.path_at..]
    }
}

/// What the endpoint said.
#[derive(Debug)]
pub enum Sent {
    /// A 2xx answer: the model's.
    Answered(h1::Answer),
    /// Any other status, with its head, for the SDK's error model.
    Refused(h1::Answer),
}

/// Why a direct call did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum DirectError {
    /// The credentials chain has not answered yet; the SDK path reports this its own way.
    #[error("no AWS credentials loaded yet")]
    NoCredentials,
    #[error("signing the request: {0}")]
    Sign(String),
    #[error(transparent)]
    Call(#[from] CallError),
}

impl Direct {
    /// `None` when the endpoint URL is not one the lean client can dial (the SDK path serves it).
    pub fn new(endpoint_url: &str, region: &str, upstreams: &Upstreams, credentials: Refreshing) -> Option<Direct> {
        // A query or fragment in the endpoint URL would not survive appending the path.
        if endpoint_url.contains(['?', '#']) {
            return None;
        }
        let target = Target::parse(endpoint_url)?;
        let pool = upstreams.lean_pool(&target.connect_authority(), target.tls.then_some(target.host())).ok()?;
        let base = endpoint_url.strip_suffix('/').unwrap_or(endpoint_url);
        // Paths the signer would have to re-encode or normalise are left to the SDK.
        let probe = Route::new(base, "e")?;
        if !sigv4::is_canonical_path(probe.path()) {
            return None;
        }
        Some(Direct {
            pool,
            base: base.into(),
            host: target.host_header().into(),
            keys: KeyCache::new(region, SIGNING_NAME),
            credentials,
        })
    }

    /// The target for `endpoint`; `None` for a name the SDK would have to percent-encode (config
    /// validation allows only `A-Z a-z 0-9 -`, which it leaves as they are).
    pub fn route(&self, endpoint: &str) -> Option<Route> {
        Route::new(&self.base, endpoint)
    }

    /// One signed call; the caller applies the deadline.
    pub async fn call(
        &self,
        route: &Route,
        target_variant: Option<&str>,
        req: &ModelRequest<'_>,
        limit: usize,
    ) -> Result<Sent, DirectError> {
        let identity = self.credentials.identity().ok_or(DirectError::NoCredentials)?;
        let call = Call { route, host: &self.host, keys: &self.keys, target_variant };
        let wire = call.render(req, &identity, SystemTime::now())?;
        let answer = self.pool.call_with(&wire, limit, Want::HeadUnless2xx).await?;
        Ok(if (200..300).contains(&answer.status) { Sent::Answered(answer) } else { Sent::Refused(answer) })
    }
}

/// Everything but the caller's request that shapes the bytes on the wire.
pub(super) struct Call<'a> {
    pub route: &'a Route,
    pub host: &'a str,
    pub keys: &'a KeyCache,
    pub target_variant: Option<&'a str>,
}

impl Call<'_> {
    /// The whole signed HTTP/1.1 request at `now`, in one buffer.
    pub(super) fn render(
        &self,
        req: &ModelRequest<'_>,
        identity: &Identity,
        now: SystemTime,
    ) -> Result<Vec<u8>, DirectError> {
        let creds = identity
            .data::<Credentials>()
            .ok_or_else(|| DirectError::Sign("the identity is not AWS credentials".into()))?;
        // The trace values are rendered on the stack by `trace_headers`; keep them for the
        // borrow below. Non-UTF-8 caller values are dropped, as the SDK path does. Every field
        // goes to the signer, which leaves out what SigV4 excludes (`x-amzn-trace-id`, which
        // AWS's front ends append to), exactly as the SDK's does.
        // On the stack for the usual three (traceparent, one tracestate line, X-Amzn-Trace-Id)
        // and the usual dozen fields: no heap allocation unless a caller sends many lines.
        let trace: SmallVec<[(&'static str, _); 4]> = trace_headers(req).map(|(n, v)| (n.as_str(), v)).collect();
        let mut length = itoa::Buffer::new();
        let date = sigv4::amz_date(now);
        let date_str = std::str::from_utf8(&date).map_err(|e| DirectError::Sign(e.to_string()))?;
        let mut fields: SmallVec<[(&str, &str); 14]> = SmallVec::new();
        fields.push(("host", self.host));
        fields.push(("content-type", req.content_type.and_then(|v| v.to_str().ok()).unwrap_or(DEFAULT_CONTENT_TYPE)));
        if let Some(accept) = req.accept.and_then(|v| v.to_str().ok()) {
            fields.push(("accept", accept));
        }
        if let Ok(id) = req.request_id.to_str() {
            fields.push(("x-amzn-sagemaker-inference-id", id));
        }
        if let Some(v) = self.target_variant {
            fields.push(("x-amzn-sagemaker-target-variant", v));
        }
        for (name, value) in &trace {
            if let Ok(v) = std::str::from_utf8(value.as_bytes()) {
                fields.push((name, v));
            }
        }
        fields.push(("content-length", length.format(req.body.len())));
        fields.push(("x-amz-date", date_str));
        if let Some(token) = creds.session_token() {
            fields.push(("x-amz-security-token", token));
        }
        // Stable: repeated names (`tracestate` lines) keep their order, as SigV4 joins them.
        fields.sort_by(|a, b| a.0.cmp(b.0));

        let day: [u8; 8] = date[..8].try_into().unwrap_or(*b"19700101");
        let key = self.keys.get(creds.secret_access_key(), day);
        let signature = sigv4::signature(&key, &date, self.route.path(), &fields, req.body);

        let mut wire = Vec::with_capacity(768 + req.body.len());
        for part in [b"POST ".as_slice(), self.route.path().as_bytes(), b" HTTP/1.1\r\n"] {
            wire.extend_from_slice(part);
        }
        for (name, value) in &fields {
            for part in [name.as_bytes(), b": ", value.as_bytes(), b"\r\n"] {
                wire.extend_from_slice(part);
            }
        }
        for part in [
            b"authorization: ".as_slice(),
            sigv4::ALGORITHM.as_bytes(),
            b" Credential=",
            creds.access_key_id().as_bytes(),
            b"/",
            key.scope.as_bytes(),
            b", SignedHeaders=",
        ] {
            wire.extend_from_slice(part);
        }
        for (i, name) in sigv4::signed_names(&fields).enumerate() {
            if i > 0 {
                wire.push(b';');
            }
            wire.extend_from_slice(name.as_bytes());
        }
        for part in [b", Signature=".as_slice(), &signature, b"\r\nuser-agent: ", USER_AGENT.as_bytes(), b"\r\n\r\n"] {
            wire.extend_from_slice(part);
        }
        wire.extend_from_slice(req.body);
        Ok(wire)
    }
}

#[cfg(test)]
#[path = "direct_tests.rs"]
mod tests;
