//! Request-head rules hyper leaves to the application (RFC 9110/9112), applied once at entry on
//! the main listener. Pure: a header map and a version in, a verdict out.
//!
//! - `Host`: exactly one on HTTP/1.1, at most one otherwise (RFC 9112 §3.2). Two different hosts
//!   are how requests get routed by one hop and interpreted by another.
//! - `Transfer-Encoding`: only `chunked` (RFC 9112 §6.1). hyper removes the chunked framing but
//!   would hand us a still gzip-coded body as if it were plain: refuse with 501 instead.
//! - Headers named in `Connection` are hop-by-hop (RFC 9110 §7.6.1): removed here, so neither the
//!   split nor any model sees them, and a caller cannot smuggle a header past the forwarding rules.

use http::header::{CONNECTION, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, Version};

use crate::error::ProxyError;

/// Checks the head and strips `Connection`-nominated headers. Costs two header lookups in the
/// common case (one `Host`, no `Transfer-Encoding`, `Connection: keep-alive` or none).
pub fn check(headers: &mut HeaderMap, version: Version) -> Result<(), ProxyError> {
    let hosts = headers.get_all(HOST).iter().count();
    if hosts > 1 {
        return Err(ProxyError::MalformedRequest { reason: "more than one Host header" });
    }
    if hosts == 0 && version == Version::HTTP_11 {
        return Err(ProxyError::MalformedRequest { reason: "HTTP/1.1 request without a Host header" });
    }
    if headers.contains_key(TRANSFER_ENCODING) && !only_chunked(headers) {
        return Err(ProxyError::UnsupportedTransferEncoding);
    }
    strip_nominated(headers);
    Ok(())
}

/// True when every `Transfer-Encoding` value lists `chunked` alone.
fn only_chunked(headers: &HeaderMap) -> bool {
    let mut codings = headers.get_all(TRANSFER_ENCODING).iter().flat_map(|v| v.as_bytes().split(|b| *b == b','));
    codings.all(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// Removes every header a `Connection` header names, except the connection options themselves.
fn strip_nominated(headers: &mut HeaderMap) {
    let mut named: Vec<HeaderName> = Vec::new();
    for value in headers.get_all(CONNECTION) {
        for token in value.as_bytes().split(|b| *b == b',').map(<[u8]>::trim_ascii) {
            if token.is_empty() || token.eq_ignore_ascii_case(b"close") || token.eq_ignore_ascii_case(b"keep-alive") {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(token) {
                named.push(name);
            }
        }
    }
    for name in named {
        // `Host` is the request's target, not a connection option: never let a client drop it.
        if name != HOST {
            headers.remove(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    fn code(pairs: &[(&str, &str)], version: Version) -> Result<(), &'static str> {
        check(&mut map(pairs), version).map_err(|e| e.code())
    }

    #[test]
    fn host_rules_by_version() {
        assert_eq!(code(&[("host", "a")], Version::HTTP_11), Ok(()));
        assert_eq!(code(&[], Version::HTTP_11), Err("malformed_request"));
        assert_eq!(code(&[], Version::HTTP_10), Ok(()), "HTTP/1.0 may omit Host");
        assert_eq!(code(&[], Version::HTTP_2), Ok(()), "HTTP/2 carries :authority");
        for v in [Version::HTTP_10, Version::HTTP_11, Version::HTTP_2] {
            assert_eq!(code(&[("host", "a"), ("host", "b")], v), Err("malformed_request"), "{v:?}");
            assert_eq!(code(&[("host", "a"), ("host", "a")], v), Err("malformed_request"), "{v:?}");
        }
    }

    #[test]
    fn only_chunked_transfer_coding_passes() {
        let h = ("host", "a");
        assert_eq!(code(&[h, ("transfer-encoding", "chunked")], Version::HTTP_11), Ok(()));
        assert_eq!(code(&[h, ("transfer-encoding", " Chunked ")], Version::HTTP_11), Ok(()));
        for bad in ["gzip, chunked", "gzip,chunked", "deflate", "chunked, gzip", "identity", ""] {
            assert_eq!(
                code(&[h, ("transfer-encoding", bad)], Version::HTTP_11),
                Err("unsupported_transfer_encoding"),
                "{bad:?}"
            );
        }
        assert_eq!(
            code(&[h, ("transfer-encoding", "gzip"), ("transfer-encoding", "chunked")], Version::HTTP_11),
            Err("unsupported_transfer_encoding"),
            "codings split over two header lines"
        );
    }

    #[test]
    fn connection_nominated_headers_are_removed() {
        let mut h = map(&[
            ("host", "a"),
            ("connection", "keep-alive, X-Secret-Hop"),
            ("connection", "x-other"),
            ("x-secret-hop", "1"),
            ("x-other", "2"),
            ("x-kept", "3"),
        ]);
        check(&mut h, Version::HTTP_11).unwrap();
        assert!(h.get("x-secret-hop").is_none());
        assert!(h.get("x-other").is_none());
        assert_eq!(h.get("x-kept").unwrap(), "3");
        assert_eq!(h.get("host").unwrap(), "a");
    }

    #[test]
    fn connection_cannot_remove_host_and_ignores_junk() {
        let mut h = map(&[("host", "a"), ("connection", "host, close, , bad token")]);
        check(&mut h, Version::HTTP_11).unwrap();
        assert_eq!(h.get("host").unwrap(), "a");
    }
}
