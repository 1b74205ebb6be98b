//! The request path's one error type, its HTTP status, and its stable metric label.
//!
//! Every failure a caller can cause or observe is a variant here. `status()` and `code()` are
//! exhaustive matches (no catch-all), so adding a variant forces a decision about both.

use std::time::Duration;

/// Boxed cause of a backend failure, kept for logs; never shown to callers in full.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every value [`ProxyError::code`] can return, in a fixed order (metric handles are indexed by it).
pub const CODES: [&str; 18] = [
    "unauthorized",
    "throttled",
    "payload_too_large",
    "body_read_failed",
    "invalid_json",
    "missing_user_id",
    "invalid_user_id",
    "unknown_variant",
    "not_found",
    "method_not_allowed",
    "overloaded",
    "upstream_unavailable",
    "upstream_timeout",
    "upstream_failed",
    "upstream_too_large",
    "upstream_throttled",
    "upstream_model_error",
    "upstream_rejected",
];

/// Everything that can end a request early.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("missing or invalid API key")]
    Unauthorized,
    #[error("rate limit exceeded, retry after {}s", retry_after_secs(.retry_after))]
    Throttled { retry_after: Duration },
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("could not read the request body")]
    BodyRead(#[source] BoxError),
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(#[source] serde_json::Error),
    #[error("no user id: set the JSON string field `{field}` or the `{header}` header")]
    MissingUserId { field: String, header: String },
    #[error("user id is longer than {max} bytes")]
    UserIdTooLong { max: usize },
    #[error("unknown variant `{0}`")]
    UnknownVariant(String),
    #[error("no route for this path")]
    NotFound,
    #[error("method not allowed, use {allow}")]
    MethodNotAllowed { allow: &'static str },
    #[error("server is overloaded, retry later")]
    Overloaded,
    #[error("model `{model}` is unavailable")]
    UpstreamUnavailable {
        model: String,
        #[source]
        source: BoxError,
    },
    #[error("model `{model}` did not answer within {timeout_ms} ms")]
    UpstreamTimeout { model: String, timeout_ms: u64 },
    #[error("model `{model}` failed: {message}")]
    UpstreamFailed { model: String, message: String },
    #[error("model `{model}` answered more than {limit} bytes")]
    UpstreamTooLarge { model: String, limit: usize },
    #[error("model `{model}` is throttling requests, retry later")]
    UpstreamThrottled { model: String },
    #[error("model `{model}` returned an error: {message}")]
    UpstreamModelError { model: String, message: String },
    #[error("model `{model}` rejected the call (check its configuration): {message}")]
    UpstreamRejected { model: String, message: String },
}

fn retry_after_secs(d: &Duration) -> u64 {
    // Round up: telling a client to come back before a token exists only earns it another 429.
    d.as_millis().div_ceil(1000).max(1) as u64
}

impl ProxyError {
    /// The HTTP status a caller sees.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            ProxyError::Unauthorized => S::UNAUTHORIZED,
            ProxyError::Throttled { .. } => S::TOO_MANY_REQUESTS,
            ProxyError::PayloadTooLarge { .. } => S::PAYLOAD_TOO_LARGE,
            ProxyError::BodyRead(_)
            | ProxyError::InvalidJson(_)
            | ProxyError::MissingUserId { .. }
            | ProxyError::UserIdTooLong { .. }
            | ProxyError::UnknownVariant(_) => S::BAD_REQUEST,
            ProxyError::NotFound => S::NOT_FOUND,
            ProxyError::MethodNotAllowed { .. } => S::METHOD_NOT_ALLOWED,
            ProxyError::Overloaded => S::SERVICE_UNAVAILABLE,
            ProxyError::UpstreamUnavailable { .. }
            | ProxyError::UpstreamFailed { .. }
            | ProxyError::UpstreamTooLarge { .. }
            | ProxyError::UpstreamModelError { .. }
            | ProxyError::UpstreamRejected { .. } => S::BAD_GATEWAY,
            ProxyError::UpstreamThrottled { .. } => S::SERVICE_UNAVAILABLE,
            ProxyError::UpstreamTimeout { .. } => S::GATEWAY_TIMEOUT,
        }
    }

    /// A short, stable, machine-readable code: the `error.code` field and the metric label.
    pub fn code(&self) -> &'static str {
        match self {
            ProxyError::Unauthorized => "unauthorized",
            ProxyError::Throttled { .. } => "throttled",
            ProxyError::PayloadTooLarge { .. } => "payload_too_large",
            ProxyError::BodyRead(_) => "body_read_failed",
            ProxyError::InvalidJson(_) => "invalid_json",
            ProxyError::MissingUserId { .. } => "missing_user_id",
            ProxyError::UserIdTooLong { .. } => "invalid_user_id",
            ProxyError::UnknownVariant(_) => "unknown_variant",
            ProxyError::NotFound => "not_found",
            ProxyError::MethodNotAllowed { .. } => "method_not_allowed",
            ProxyError::Overloaded => "overloaded",
            ProxyError::UpstreamUnavailable { .. } => "upstream_unavailable",
            ProxyError::UpstreamTimeout { .. } => "upstream_timeout",
            ProxyError::UpstreamFailed { .. } => "upstream_failed",
            ProxyError::UpstreamTooLarge { .. } => "upstream_too_large",
            ProxyError::UpstreamThrottled { .. } => "upstream_throttled",
            ProxyError::UpstreamModelError { .. } => "upstream_model_error",
            ProxyError::UpstreamRejected { .. } => "upstream_rejected",
        }
    }

    /// Position of [`Self::code`] in [`CODES`].
    pub fn code_index(&self) -> usize {
        let code = self.code();
        CODES.iter().position(|c| *c == code).unwrap_or(0)
    }

    /// Seconds for a `retry-after` header, when the error has one.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ProxyError::Throttled { retry_after } => Some(retry_after_secs(retry_after)),
            ProxyError::Overloaded | ProxyError::UpstreamThrottled { .. } => Some(1),
            _ => None,
        }
    }

    /// True for failures of the model rather than of the caller or the proxy's policy.
    pub fn is_upstream(&self) -> bool {
        matches!(
            self,
            ProxyError::UpstreamUnavailable { .. }
                | ProxyError::UpstreamTimeout { .. }
                | ProxyError::UpstreamFailed { .. }
                | ProxyError::UpstreamTooLarge { .. }
                | ProxyError::UpstreamThrottled { .. }
                | ProxyError::UpstreamModelError { .. }
                | ProxyError::UpstreamRejected { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_pinned() {
        let cases: Vec<(ProxyError, u16, &str)> = vec![
            (ProxyError::Unauthorized, 401, "unauthorized"),
            (ProxyError::Throttled { retry_after: Duration::from_millis(1) }, 429, "throttled"),
            (ProxyError::PayloadTooLarge { limit: 1 }, 413, "payload_too_large"),
            (ProxyError::MissingUserId { field: "user_id".into(), header: "x-user-id".into() }, 400, "missing_user_id"),
            (ProxyError::NotFound, 404, "not_found"),
            (ProxyError::MethodNotAllowed { allow: "POST" }, 405, "method_not_allowed"),
            (ProxyError::Overloaded, 503, "overloaded"),
            (
                ProxyError::UpstreamUnavailable { model: "m".into(), source: "refused".into() },
                502,
                "upstream_unavailable",
            ),
            (ProxyError::UpstreamTimeout { model: "m".into(), timeout_ms: 5 }, 504, "upstream_timeout"),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status().as_u16(), status, "{err}");
            assert_eq!(err.code(), code);
            assert_eq!(CODES[err.code_index()], code);
        }
    }

    #[test]
    fn retry_after_rounds_up() {
        let e = ProxyError::Throttled { retry_after: Duration::from_millis(1_200) };
        assert_eq!(e.retry_after(), Some(2));
        let e = ProxyError::Throttled { retry_after: Duration::from_nanos(1) };
        assert_eq!(e.retry_after(), Some(1));
        assert_eq!(ProxyError::NotFound.retry_after(), None);
    }
}
