//! Model backends: how a variant's model is called. The pipeline sees only [`Model::invoke`].
//!
//! A closed enum rather than a boxed trait object: the set of backends is known at compile time,
//! and enum dispatch keeps the per-request call free of a boxed future allocation.

mod builtin;
pub mod h1;
mod http;
pub mod sagemaker;
pub use self::http::{client as http_client, client_with_ca as http_client_with_ca};

pub use self::builtin::Builtin;
pub use self::http::{render_request, HttpBackend, HttpClient};

use std::sync::Arc;
use std::time::Duration;

use ::http::{HeaderValue, StatusCode};
use bytes::Bytes;

use crate::error::ProxyError;
use crate::metrics::ModelMetrics;

/// What a backend needs from the caller's request. Borrowed: nothing is copied to call a model.
#[derive(Debug, Clone, Copy)]
pub struct ModelRequest<'a> {
    /// The caller's body, byte for byte.
    pub body: &'a Bytes,
    pub content_type: Option<&'a HeaderValue>,
    pub accept: Option<&'a HeaderValue>,
    /// All of the caller's headers; backends forward the end-to-end ones, never the API key.
    pub headers: &'a ::http::HeaderMap,
    pub request_id: &'a HeaderValue,
    /// The trace the call belongs to: backends send it as `traceparent` (with the caller's
    /// `tracestate`) and `X-Amzn-Trace-Id`.
    pub trace: &'a crate::trace::TraceContext,
    pub user_id: &'a str,
    /// Marks shadow copies (`x-splitgate-shadow: 1`) so model servers can tell them apart.
    pub shadow: bool,
}

/// A model's answer, buffered (answers are small, and shadow comparison needs the whole body).
#[derive(Debug, Clone)]
pub struct ModelResponse {
    pub status: StatusCode,
    pub content_type: Option<HeaderValue>,
    pub body: Bytes,
}

/// How the model is reached.
#[derive(Debug)]
pub enum Backend {
    Builtin(Builtin),
    /// Boxed: the pooled client handle is large and builtin models should not pay for it.
    Http(Box<HttpBackend>),
    SageMaker(Box<sagemaker::SageMakerBackend>),
}

/// A configured model: name, version, backend, deadline and its pre-resolved error counters.
pub struct Model {
    pub name: Arc<str>,
    pub version: Arc<str>,
    /// `version` as a ready header value for `x-splitgate-model`.
    pub version_header: HeaderValue,
    pub backend: Backend,
    pub timeout: Duration,
    pub metrics: ModelMetrics,
}

impl Model {
    /// Calls the model within its deadline. Nothing is counted here: the caller's one recording
    /// step counts errors by kind (`Model::metrics`), so a call is never counted twice.
    pub async fn invoke(&self, req: ModelRequest<'_>) -> Result<ModelResponse, ProxyError> {
        self.invoke_within(req, self.timeout).await
    }

    /// Like [`Self::invoke`] with an explicit deadline (shadows carry their own).
    pub async fn invoke_within(&self, req: ModelRequest<'_>, timeout: Duration) -> Result<ModelResponse, ProxyError> {
        match &self.backend {
            Backend::Builtin(b) => Ok(b.answer(req.user_id)),
            Backend::Http(h) => self.deadline(timeout, h.call(&self.name, req)).await,
            // The SDK's own (kilobytes) future is boxed inside `call`, so this one stays small and
            // so does every connection's request future (hyper keeps one per connection).
            Backend::SageMaker(s) => self.deadline(timeout, s.call(&self.name, req, timeout.as_millis() as u64)).await,
        }
    }

    /// Counts one failed call of this model by its error kind.
    pub fn count_error(&self, e: &ProxyError) {
        if let Some(c) = self.metrics.errors.get(e.code_index()) {
            c.increment(1);
        }
    }
}

impl Model {
    async fn deadline(
        &self,
        timeout: Duration,
        call: impl std::future::Future<Output = Result<ModelResponse, ProxyError>>,
    ) -> Result<ModelResponse, ProxyError> {
        match tokio::time::timeout(timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(ProxyError::UpstreamTimeout {
                model: self.name.to_string(),
                timeout_ms: timeout.as_millis() as u64,
            }),
        }
    }

    /// The backend kind, for `/health` and the admin API.
    pub fn kind(&self) -> &'static str {
        match &self.backend {
            Backend::Builtin(_) => "builtin",
            Backend::Http(_) => "http",
            Backend::SageMaker(_) => "sagemaker",
        }
    }

    /// For SageMaker models, how calls are sent: `"direct"` or `"sdk"` (`sagemaker_client`, or
    /// `"sdk"` when the direct path cannot serve the endpoint URL or has no credentials source).
    pub fn sagemaker_client(&self) -> Option<&'static str> {
        match &self.backend {
            Backend::SageMaker(sm) => Some(if sm.is_direct() { "direct" } else { "sdk" }),
            _ => None,
        }
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("name", &self.name).field("version", &self.version).finish_non_exhaustive()
    }
}
