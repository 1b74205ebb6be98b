//! The HTTP backend's unit tests: lean targets and the exact bytes of a rendered request.

use super::*;

fn target(url: &str) -> Option<(String, Option<String>, String)> {
    lean_target(&url.parse().unwrap()).map(|t| (t.connect, t.tls_host, String::from_utf8(t.head.into_vec()).unwrap()))
}

#[test]
fn lean_targets() {
    let t = |c: &str, h: &str| Some((c.to_owned(), None, h.to_owned()));
    let tls = |c: &str, name: &str, h: &str| Some((c.to_owned(), Some(name.to_owned()), h.to_owned()));
    assert_eq!(
        target("http://10.0.0.5:8080/invocations"),
        t("10.0.0.5:8080", "POST /invocations HTTP/1.1\r\nhost: 10.0.0.5:8080\r\n")
    );
    assert_eq!(
        target("http://model.internal/v1/rank?x=1"),
        t("model.internal:80", "POST /v1/rank?x=1 HTTP/1.1\r\nhost: model.internal\r\n")
    );
    assert_eq!(target("http://[::1]:9000"), t("[::1]:9000", "POST / HTTP/1.1\r\nhost: [::1]:9000\r\n"));
    assert_eq!(target("http://[::1]/p"), t("[::1]:80", "POST /p HTTP/1.1\r\nhost: [::1]\r\n"));
    assert_eq!(
        target("https://model.internal/p"),
        tls("model.internal:443", "model.internal", "POST /p HTTP/1.1\r\nhost: model.internal\r\n")
    );
    assert_eq!(
        target("https://localhost:8443/invocations"),
        tls("localhost:8443", "localhost", "POST /invocations HTTP/1.1\r\nhost: localhost:8443\r\n")
    );
    assert_eq!(target("https://[::1]:9443/"), tls("[::1]:9443", "[::1]", "POST / HTTP/1.1\r\nhost: [::1]:9443\r\n"));
    assert_eq!(target("http://user:pw@model.internal/p"), None);
    assert_eq!(target("ftp://model.internal/p"), None);
}

#[test]
fn tls_server_names() {
    assert_eq!(server_name("model.internal").unwrap(), ServerName::try_from("model.internal").unwrap());
    assert!(matches!(server_name("[::1]").unwrap(), ServerName::IpAddress(_)));
    assert!(matches!(server_name("127.0.0.1").unwrap(), ServerName::IpAddress(_)));
    assert!(server_name("bad name").is_err());
}

#[test]
fn rendered_requests() {
    let mut headers = http::HeaderMap::new();
    for (n, v) in [
        ("x-api-key", "secret"),
        ("connection", "keep-alive"),
        ("content-length", "999"),
        ("host", "proxy.example"),
        ("x-request-id", "caller-chosen"),
        ("x-amzn-trace-id", "Root=1-abc"),
        ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ("tracestate", "rojo=00f067aa0ba902b7"),
        ("tracestate", "congo=t61rcWkgMzE"),
        ("expect", "100-continue"),
        ("accept", "application/json"),
    ] {
        headers.append(http::HeaderName::from_static(n), HeaderValue::from_static(v));
    }
    let body = Bytes::from_static(b"{\"user_id\":\"u\"}");
    let id = HeaderValue::from_static("req-1");
    let trace = trace::TraceContext::from_headers(&headers, &trace::TraceIds::with_seed(1), std::time::UNIX_EPOCH);
    let req = ModelRequest {
        body: &body,
        content_type: None,
        accept: headers.get("accept"),
        headers: &headers,
        request_id: &id,
        trace: &trace,
        user_id: "u",
        shadow: true,
    };
    let wire = String::from_utf8(render_request(b"POST /p HTTP/1.1\r\nhost: m:1\r\n", &req)).unwrap();
    assert_eq!(
        wire,
        "POST /p HTTP/1.1\r\nhost: m:1\r\naccept: application/json\r\n\
         content-type: application/json\r\nx-request-id: req-1\r\n\
         traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\
         tracestate: rojo=00f067aa0ba902b7\r\ntracestate: congo=t61rcWkgMzE\r\n\
         x-amzn-trace-id: Root=1-abc\r\nx-splitgate-shadow: 1\r\n\
         content-length: 15\r\n\r\n{\"user_id\":\"u\"}"
    );
}

#[test]
fn a_request_without_trace_headers_carries_a_minted_trace_in_both_formats() {
    let mut headers = http::HeaderMap::new();
    // A tracestate without a valid traceparent is dropped (W3C: it cannot be trusted).
    headers.append("traceparent", HeaderValue::from_static("00-abc-def-01"));
    headers.append("tracestate", HeaderValue::from_static("rojo=1"));
    let body = Bytes::from_static(b"{}");
    let id = HeaderValue::from_static("r");
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(0x5759_e988);
    let trace = trace::TraceContext::from_headers(&headers, &trace::TraceIds::with_seed(42), now);
    let req = ModelRequest {
        body: &body,
        content_type: None,
        accept: None,
        headers: &headers,
        request_id: &id,
        trace: &trace,
        user_id: "u",
        shadow: false,
    };
    let wire = String::from_utf8(render_request(b"POST / HTTP/1.1\r\nhost: m\r\n", &req)).unwrap();
    // SplitMix64 with seed 42 (see trace's tests): the trace id and the span id.
    assert!(
        wire.contains(
            "traceparent: 00-5759e988bdd732262feb6e95b266f103-47526757130f9f52-01\r\n\
             x-amzn-trace-id: Root=1-5759e988-bdd732262feb6e95b266f103;Parent=47526757130f9f52;Sampled=1\r\n"
        ),
        "{wire}"
    );
    assert!(!wire.contains("rojo") && !wire.contains("00-abc-def-01"), "{wire}");
}
