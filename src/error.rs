//! The request path's one error type, its HTTP status, and its stable metric label.
//!
//! Every failure a caller can cause or observe is a variant here. `status()` and `code()` are
//! exhaustive matches (no catch-all), so adding a variant forces a decision about both.

use std::time::Duration;

/// Boxed cause of a backend failure, kept for logs; never shown to callers in full.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every value [`ProxyError::code`] can return, in a fixed order (metric handles are indexed by it).
pub const CODES: [&str; 22] = [
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
    "body_timeout",
    "malformed_request",
    "unsupported_transfer_encoding",
    "client_closed_request",
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
    /// The body did not arrive within `server.body_timeout_ms` (a trickled or stalled upload).
    #[error("the request body did not arrive within {timeout_ms} ms")]
    BodyTimeout { timeout_ms: u64 },
    /// The request head breaks RFC 9110/9112 (a missing or repeated `Host`, …).
    #[error("malformed request: {reason}")]
    MalformedRequest { reason: &'static str },
    /// A transfer coding other than `chunked` (RFC 9112 §6.1): we would forward a still-coded body.
    #[error("transfer codings other than chunked are not supported")]
    UnsupportedTransferEncoding,
    /// The client went away (closed the connection, reset the stream) before the answer was
    /// ready. Never sent; recorded as 499, as NGINX logs it.
    #[error("the client closed the request before the answer")]
    ClientClosed,
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
            | ProxyError::UnknownVariant(_)
            | ProxyError::MalformedRequest { .. } => S::BAD_REQUEST,
            ProxyError::BodyTimeout { .. } => S::REQUEST_TIMEOUT,
            ProxyError::UnsupportedTransferEncoding => S::NOT_IMPLEMENTED,
            ProxyError::ClientClosed => S::from_u16(499).unwrap_or(S::BAD_REQUEST),
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
        CODES[self.code_index()]
    }

    /// Position of [`Self::code`] in [`CODES`]: an exhaustive match, so a new variant must be
    /// given a code (and metric handles, indexed by it, never miss one).
    pub fn code_index(&self) -> usize {
        match self {
            ProxyError::Unauthorized => 0,
            ProxyError::Throttled { .. } => 1,
            ProxyError::PayloadTooLarge { .. } => 2,
            ProxyError::BodyRead(_) => 3,
            ProxyError::InvalidJson(_) => 4,
            ProxyError::MissingUserId { .. } => 5,
            ProxyError::UserIdTooLong { .. } => 6,
            ProxyError::UnknownVariant(_) => 7,
            ProxyError::NotFound => 8,
            ProxyError::MethodNotAllowed { .. } => 9,
            ProxyError::Overloaded => 10,
            ProxyError::UpstreamUnavailable { .. } => 11,
            ProxyError::UpstreamTimeout { .. } => 12,
            ProxyError::UpstreamFailed { .. } => 13,
            ProxyError::UpstreamTooLarge { .. } => 14,
            ProxyError::UpstreamThrottled { .. } => 15,
            ProxyError::UpstreamModelError { .. } => 16,
            ProxyError::UpstreamRejected { .. } => 17,
            ProxyError::BodyTimeout { .. } => 18,
            ProxyError::MalformedRequest { .. } => 19,
            ProxyError::UnsupportedTransferEncoding => 20,
            ProxyError::ClientClosed => 21,
        }
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

    fn json_error() -> serde_json::Error {
        serde_json::from_str::<serde_json::Value>("{").unwrap_err()
    }

    #[test]
    fn every_status_and_code_is_pinned() {
        let m = || "m".to_string();
        let cases: Vec<(ProxyError, u16, &str)> = vec![
            (ProxyError::Unauthorized, 401, "unauthorized"),
            (ProxyError::Throttled { retry_after: Duration::from_millis(1) }, 429, "throttled"),
            (ProxyError::PayloadTooLarge { limit: 1 }, 413, "payload_too_large"),
            (ProxyError::BodyRead("reset".into()), 400, "body_read_failed"),
            (ProxyError::InvalidJson(json_error()), 400, "invalid_json"),
            (ProxyError::MissingUserId { field: "user_id".into(), header: "x-user-id".into() }, 400, "missing_user_id"),
            (ProxyError::UserIdTooLong { max: 256 }, 400, "invalid_user_id"),
            (ProxyError::UnknownVariant("x".into()), 400, "unknown_variant"),
            (ProxyError::NotFound, 404, "not_found"),
            (ProxyError::MethodNotAllowed { allow: "POST" }, 405, "method_not_allowed"),
            (ProxyError::Overloaded, 503, "overloaded"),
            (ProxyError::UpstreamUnavailable { model: m(), source: "refused".into() }, 502, "upstream_unavailable"),
            (ProxyError::UpstreamTimeout { model: m(), timeout_ms: 5 }, 504, "upstream_timeout"),
            (ProxyError::UpstreamFailed { model: m(), message: m() }, 502, "upstream_failed"),
            (ProxyError::UpstreamTooLarge { model: m(), limit: 1 }, 502, "upstream_too_large"),
            (ProxyError::UpstreamThrottled { model: m() }, 503, "upstream_throttled"),
            (ProxyError::UpstreamModelError { model: m(), message: m() }, 502, "upstream_model_error"),
            (ProxyError::UpstreamRejected { model: m(), message: m() }, 502, "upstream_rejected"),
            (ProxyError::BodyTimeout { timeout_ms: 10 }, 408, "body_timeout"),
            (ProxyError::MalformedRequest { reason: "no Host header" }, 400, "malformed_request"),
            (ProxyError::UnsupportedTransferEncoding, 501, "unsupported_transfer_encoding"),
            (ProxyError::ClientClosed, 499, "client_closed_request"),
        ];
        assert_eq!(cases.len(), CODES.len(), "every code has a case");
        let mut seen = std::collections::HashSet::new();
        for (err, status, code) in cases {
            assert_eq!(err.status().as_u16(), status, "{err}");
            assert_eq!(err.code(), code);
            assert!(seen.insert(err.code_index()), "{code} shares an index");
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
