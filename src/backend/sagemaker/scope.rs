//! What one SageMaker call carries past the SDK's fluent builder: the caller's body (handed to
//! the signed request without a copy), the request's trace headers, and the answer size limit
//! for the connector. The SDK has no per-call slot for these, so they ride in a tokio
//! task-local scoped to the call's future, read by a client-level interceptor registered once
//! (no per-request `customize()`, which rebuilds the operation's runtime plugins each call).
//! A call can also carry an answer the direct path (`super::direct`) already received: the
//! connector then hands that to the SDK instead of sending anything, so the SDK's error model
//! reads a non-2xx answer without the endpoint being called twice.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use bytes::Bytes;

/// Answers larger than this are refused when a call has no scope (never on the request path:
/// every call is scoped; this only bounds a stray direct use of the client).
const UNSCOPED_LIMIT: usize = 1 << 20;

tokio::task_local! {
    static CALL: Call;
}

/// One call's context.
#[derive(Debug)]
pub struct Call {
    /// The caller's body, byte for byte (a reference-counted handle, not a copy).
    pub body: Bytes,
    /// `X-Amzn-Trace-Id`, `traceparent`, `tracestate` lines (`backend::http::trace_headers`).
    pub trace: Vec<(&'static str, String)>,
    /// `server.max_response_bytes` of the snapshot the request runs in.
    pub response_limit: usize,
    /// An answer already received, for the connector to return instead of calling out. Taken
    /// once (a `Mutex` only because a task-local is shared; never contended).
    pub replay: std::sync::Mutex<Option<crate::backend::h1::Answer>>,
}

/// Runs `f` (the SDK's `send()`) with `call` visible to the interceptor and the connector.
pub async fn run<F: std::future::Future>(call: Call, f: F) -> F::Output {
    CALL.scope(call, f).await
}

/// The answer limit of the current call.
pub fn response_limit() -> usize {
    CALL.try_with(|c| c.response_limit).unwrap_or(UNSCOPED_LIMIT)
}

/// The answer the current call replays, once.
pub fn take_replay() -> Option<crate::backend::h1::Answer> {
    CALL.try_with(|c| c.replay.lock().unwrap_or_else(|e| e.into_inner()).take()).ok().flatten()
}

/// Puts the scoped call's body and trace headers on the request before it is signed, so they
/// are covered by SigV4 exactly as if the builder had set them.
#[derive(Debug, Default)]
pub struct CallInterceptor;

impl Intercept for CallInterceptor {
    fn name(&self) -> &'static str {
        "splitgate::backend::sagemaker::CallInterceptor"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Ok(result) = CALL.try_with(|call| {
            let request = context.request_mut();
            // The builder got an empty blob (no copy); the length header is the serializer's
            // and must describe the body that is signed and sent.
            *request.body_mut() = SdkBody::from(call.body.clone());
            request
                .headers_mut()
                .try_insert("content-length", itoa::Buffer::new().format(call.body.len()).to_owned())?;
            for (i, (name, value)) in call.trace.iter().enumerate() {
                // Replace anything the SDK set itself (in Lambda it copies _X_AMZN_TRACE_ID);
                // repeated names (tracestate lines) are appended.
                if call.trace[..i].iter().any(|(n, _)| n == name) {
                    request.headers_mut().try_append(*name, value.clone())?;
                } else {
                    request.headers_mut().try_insert(*name, value.clone())?;
                }
            }
            Ok::<_, BoxError>(())
        }) else {
            return Ok(());
        };
        result
    }
}
