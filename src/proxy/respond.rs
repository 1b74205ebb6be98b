//! Synthetic responses: JSON error bodies with their status and headers, and JSON documents.

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;

use super::{Body, MODEL, REQUEST_ID, VARIANT};
use crate::error::ProxyError;
use crate::snapshot::Snapshot;

static JSON: HeaderValue = HeaderValue::from_static("application/json");

/// `{"error":{"code":…,"message":…,"request_id":…}}` with the error's status. When a variant had
/// been chosen, its headers are kept so callers can see which model failed.
pub fn error(e: &ProxyError, request_id: &HeaderValue, snap: &Snapshot, variant: Option<usize>) -> Response<Body> {
    let body = serde_json::json!({
        "error": {
            "code": e.code(),
            "message": e.to_string(),
            "request_id": request_id.to_str().unwrap_or(""),
        }
    });
    let mut r = json_response(e.status(), &body);
    let h = r.headers_mut();
    h.insert(&REQUEST_ID, request_id.clone());
    if let Some(secs) = e.retry_after() {
        h.insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    if let ProxyError::MethodNotAllowed { allow } = e {
        h.insert(ALLOW, HeaderValue::from_static(allow));
    }
    if let Some(v) = variant.and_then(|i| snap.variants.get(i)) {
        h.insert(&VARIANT, v.name_header.clone());
        h.insert(&MODEL, v.model.version_header.clone());
    }
    r
}

/// A JSON document response.
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, JSON.clone());
    r
}
