//! The SageMaker backend: `InvokeEndpoint` with the caller's body, content type and accept
//! unchanged, the request id as `InferenceId` (joins SageMaker Data Capture records) and the
//! request's trace headers (`X-Amzn-Trace-Id`, `traceparent`, `tracestate`).
//!
//! A call goes out on the direct path (`direct`): rendered as the SDK's serializer renders it,
//! signed with the SDK's settings by `sigv4` (tested against `aws-sigv4`, the SDK's signer),
//! sent through our lean HTTP/1.1 pool; a 2xx answer is the model's. Every other answer is read
//! by the SDK's own error model: `aws-sdk-sagemakerruntime` runs the call with that answer
//! replayed (`scope`), so the endpoint is never called twice. The SDK client (`client`) also
//! serves whole calls when the direct path cannot (credentials not loaded yet, an endpoint URL
//! it cannot dial or sign as it is) or must not (`sagemaker_client = "sdk"` on the model): our
//! HTTP/1.1 client underneath (`connector`), a static endpoint, no SDK timers or stalled-stream
//! checks (the model's deadline bounds the call), credentials refreshed off the path
//! (`crate::aws::credentials`), body and trace headers handed over without a per-request
//! `customize()`.

pub mod client;
pub mod connector;
pub mod direct;
mod scope;
pub mod sigv4;

use std::sync::Arc;

use aws_sdk_sagemakerruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sagemakerruntime::operation::invoke_endpoint::InvokeEndpointError;
use aws_sdk_sagemakerruntime::primitives::Blob;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};

use self::direct::{Direct, DirectError, Route, Sent};
use super::h1::parse::FrameError;
use super::h1::{self, CallError};
use super::{ModelRequest, ModelResponse};
use crate::error::ProxyError;

/// A SageMaker endpoint (optionally one production variant of it).
#[derive(Debug)]
pub struct SageMakerBackend {
    /// `None` only if the snapshot was built without preparing AWS clients first (a bug): calls
    /// then fail as unavailable instead of panicking.
    client: Option<aws_sdk_sagemakerruntime::Client>,
    direct: Option<(Arc<Direct>, Route)>,
    endpoint: String,
    target_variant: Option<String>,
    max_response_bytes: usize,
}

impl SageMakerBackend {
    pub fn new(
        client: Option<aws_sdk_sagemakerruntime::Client>,
        direct: Option<Arc<Direct>>,
        endpoint: String,
        target_variant: Option<String>,
        max_response_bytes: usize,
    ) -> Self {
        let direct = direct.and_then(|d| d.route(&endpoint).map(|r| (d, r)));
        SageMakerBackend { client, direct, endpoint, target_variant, max_response_bytes }
    }

    /// Whether calls take the direct path (shown by `/health` and the bench).
    pub fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// One invocation; the caller applies the deadline.
    pub async fn call(&self, model: &str, req: ModelRequest<'_>, timeout_ms: u64) -> Result<ModelResponse, ProxyError> {
        let limit = self.max_response_bytes;
        let mut replay = None;
        if let Some((direct, route)) = &self.direct {
            match direct.call(route, self.target_variant.as_deref(), &req, limit).await {
                Ok(Sent::Answered(answer)) => return Ok(answered(answer)),
                Ok(Sent::Refused(answer)) => replay = Some(answer),
                // The SDK path reports missing credentials its own way.
                Err(DirectError::NoCredentials) => {}
                Err(DirectError::Call(e)) => return Err(classify(model, &transport_failure(&e), timeout_ms, limit)),
                Err(e @ DirectError::Sign(_)) => {
                    return Err(classify(model, &Failure::Other(e.to_string()), timeout_ms, limit))
                }
            }
        }
        // Boxed where it is made: the SDK's future is ~10 KB (see `call_sdk`).
        Box::pin(self.call_sdk(model, req, timeout_ms, replay)).await
    }

    /// The call through the SDK: whole, or reading an `answer` the direct path already got.
    async fn call_sdk(
        &self,
        model: &str,
        req: ModelRequest<'_>,
        timeout_ms: u64,
        answer: Option<h1::Answer>,
    ) -> Result<ModelResponse, ProxyError> {
        let Some(client) = &self.client else {
            return Err(ProxyError::UpstreamUnavailable {
                model: model.to_owned(),
                source: "AWS client not initialised".into(),
            });
        };
        // The body goes in through the call scope (no copy); the builder's blob stays empty.
        let mut op = client
            .invoke_endpoint()
            .endpoint_name(&self.endpoint)
            .body(Blob::new(Vec::new()))
            .set_target_variant(self.target_variant.clone());
        if let Some(ct) = req.content_type.and_then(|v| v.to_str().ok()) {
            op = op.content_type(ct);
        }
        if let Some(accept) = req.accept.and_then(|v| v.to_str().ok()) {
            op = op.accept(accept);
        }
        if let Ok(id) = req.request_id.to_str() {
            op = op.inference_id(id);
        }
        // The same trace headers as an http model gets (X-Ray's joins the call in AWS; SageMaker
        // passes no other header to the container).
        let trace: Vec<(&'static str, String)> = super::http::trace_headers(&req)
            .filter_map(|(name, v)| std::str::from_utf8(v.as_bytes()).ok().map(|v| (name.as_str(), v.to_owned())))
            .collect();
        let call = scope::Call {
            body: req.body.clone(),
            trace,
            response_limit: self.max_response_bytes,
            replay: std::sync::Mutex::new(answer),
        };
        // The SDK's future is ~10 KB; boxed where it is made, it is copied once, not at every
        // layer that wraps it (a profile showed ~40 KB of memcpy per call before).
        let result = scope::run(call, Box::pin(op.send())).await;
        match result {
            Ok(out) => Ok(ModelResponse {
                status: StatusCode::OK,
                content_type: out.content_type().and_then(|c| HeaderValue::from_str(c).ok()),
                body: out.body.map(|b| Bytes::from(b.into_inner())).unwrap_or_default(),
            }),
            Err(e) => Err(classify(model, &failure(&e), timeout_ms, self.max_response_bytes)),
        }
    }
}

/// A 2xx answer as the caller gets it (the SDK path answers 200 for every 2xx too).
fn answered(answer: h1::Answer) -> ModelResponse {
    ModelResponse {
        status: StatusCode::OK,
        content_type: answer.content_type.and_then(|raw| HeaderValue::from_maybe_shared(raw).ok()),
        body: answer.body,
    }
}

/// A transport failure of our HTTP/1.1 client, on either path.
fn transport_failure(e: &CallError) -> Failure {
    match e {
        CallError::Frame(FrameError::TooLarge(_)) => Failure::TooLarge,
        CallError::Connect { .. } | CallError::ConnectTimeout(_) | CallError::Io(_) | CallError::Closed => {
            Failure::Unreachable(e.to_string())
        }
        CallError::HeadTooLarge | CallError::Frame(_) => Failure::Other(e.to_string()),
    }
}

/// What went wrong, reduced to what decides the caller's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The SDK's own timeout fired.
    Timeout,
    /// The request never got an answer (connect refused, DNS, TLS).
    Unreachable(String),
    /// The answer was larger than `server.max_response_bytes`.
    TooLarge,
    /// SageMaker answered with an error.
    Service { code: Option<String>, model_error: bool, validation: bool, message: String },
    /// An unparseable or unexpected response.
    Other(String),
}

fn failure<R: std::fmt::Debug>(e: &SdkError<InvokeEndpointError, R>) -> Failure {
    match e {
        SdkError::TimeoutError(_) => Failure::Timeout,
        SdkError::DispatchFailure(d) if d.is_timeout() => Failure::Timeout,
        SdkError::DispatchFailure(d) => {
            let source = d.as_connector_error().and_then(std::error::Error::source);
            match source.and_then(|s| s.downcast_ref::<CallError>()) {
                Some(e) => transport_failure(e),
                None => Failure::Unreachable(format!("{:?}", d.as_connector_error())),
            }
        }
        SdkError::ServiceError(s) => {
            let err = s.err();
            let message = match err {
                InvokeEndpointError::ModelError(m) => m.original_message().or(m.message()).unwrap_or("").to_owned(),
                other => other.message().unwrap_or("").to_owned(),
            };
            Failure::Service {
                code: err.code().map(str::to_owned),
                model_error: matches!(err, InvokeEndpointError::ModelError(_)),
                validation: matches!(err, InvokeEndpointError::ValidationError(_)),
                message,
            }
        }
        other => Failure::Other(aws_sdk_sagemakerruntime::error::DisplayErrorContext(other).to_string()),
    }
}

/// Pure mapping to the caller's error: ModelError → 502 with the model's message, throttling → 503
/// with `retry-after`, validation → 502 (our config's fault, not the caller's), timeouts → 504.
pub fn classify(model: &str, f: &Failure, timeout_ms: u64, limit: usize) -> ProxyError {
    let model = model.to_owned();
    match f {
        Failure::Timeout => ProxyError::UpstreamTimeout { model, timeout_ms },
        Failure::TooLarge => ProxyError::UpstreamTooLarge { model, limit },
        Failure::Unreachable(why) => ProxyError::UpstreamUnavailable { model, source: why.clone().into() },
        Failure::Service { code, .. }
            if matches!(
                code.as_deref(),
                Some("ThrottlingException" | "ThrottledException" | "TooManyRequestsException")
            ) =>
        {
            ProxyError::UpstreamThrottled { model }
        }
        Failure::Service { model_error: true, message, .. } => {
            ProxyError::UpstreamModelError { model, message: message.clone() }
        }
        Failure::Service { validation: true, message, .. } => {
            ProxyError::UpstreamRejected { model, message: message.clone() }
        }
        Failure::Service { code, message, .. } => {
            ProxyError::UpstreamFailed { model, message: format!("{}: {message}", code.as_deref().unwrap_or("error")) }
        }
        Failure::Other(message) => ProxyError::UpstreamFailed { model, message: message.clone() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(code: &str, model_error: bool, validation: bool) -> Failure {
        Failure::Service { code: Some(code.into()), model_error, validation, message: "boom".into() }
    }

    #[test]
    fn error_mapping() {
        let cases = [
            (service("ModelError", true, false), 502, "upstream_model_error"),
            (service("ThrottlingException", false, false), 503, "upstream_throttled"),
            (service("ValidationError", false, true), 502, "upstream_rejected"),
            (service("ServiceUnavailable", false, false), 502, "upstream_failed"),
            (Failure::Timeout, 504, "upstream_timeout"),
            (Failure::Unreachable("refused".into()), 502, "upstream_unavailable"),
            (Failure::TooLarge, 502, "upstream_too_large"),
            (Failure::Other("bad xml".into()), 502, "upstream_failed"),
        ];
        for (f, status, code) in cases {
            let e = classify("m", &f, 100, 1024);
            assert_eq!(e.status().as_u16(), status, "{f:?}");
            assert_eq!(e.code(), code, "{f:?}");
        }
        assert_eq!(classify("m", &service("ThrottlingException", false, false), 1, 1).retry_after(), Some(1));
        let e = classify("m", &service("ModelError", true, false), 1, 1);
        assert!(e.to_string().contains("boom"), "the model's message reaches the caller: {e}");
    }
}
