//! The SageMaker connector's unit tests: URL parts, the `host` SigV4 signs, the exact bytes sent,
//! every answer field handed back, and how dial failures reach the SDK.

use super::*;

fn target(uri: &str) -> Option<(bool, &str, &str, &str)> {
    Target::parse(uri).map(|t| (t.tls, t.authority, &t.uri[..t.origin_len], t.path))
}

#[test]
fn targets() {
    assert_eq!(
        target("https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/rec/invocations"),
        Some((
            true,
            "runtime.sagemaker.us-east-1.amazonaws.com",
            "https://runtime.sagemaker.us-east-1.amazonaws.com",
            "/endpoints/rec/invocations"
        ))
    );
    assert_eq!(
        target("http://127.0.0.1:9000/endpoints/e/invocations?x=1"),
        Some((false, "127.0.0.1:9000", "http://127.0.0.1:9000", "/endpoints/e/invocations?x=1"))
    );
    assert_eq!(target("http://[::1]:9000"), Some((false, "[::1]:9000", "http://[::1]:9000", "/")));
    assert_eq!(target("http://h?q"), Some((false, "h", "http://h", "?q")));
    assert_eq!(target("ftp://h/p"), None);
    assert_eq!(target("http:///p"), None);
    assert_eq!(target("http://user@h/p"), None);
}

#[test]
fn dial_and_host_header() {
    let t = |u: &str| {
        let t = Target::parse(u).unwrap();
        (t.connect_authority(), t.host_header().to_owned(), t.host().to_owned())
    };
    let s = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    // As SigV4 signs `host` (aws-sigv4 canonical_request): the port only when not the default.
    assert_eq!(
        t("https://runtime.sagemaker.eu-west-1.amazonaws.com/p"),
        s(
            "runtime.sagemaker.eu-west-1.amazonaws.com:443",
            "runtime.sagemaker.eu-west-1.amazonaws.com",
            "runtime.sagemaker.eu-west-1.amazonaws.com"
        )
    );
    assert_eq!(t("https://localhost:443/p"), s("localhost:443", "localhost", "localhost"));
    assert_eq!(t("http://localhost:80/p"), s("localhost:80", "localhost", "localhost"));
    assert_eq!(t("http://localhost:443/p"), s("localhost:443", "localhost:443", "localhost"));
    assert_eq!(t("http://127.0.0.1:9000/p"), s("127.0.0.1:9000", "127.0.0.1:9000", "127.0.0.1"));
    assert_eq!(t("http://[::1]/p"), s("[::1]:80", "[::1]", "[::1]"));
    assert_eq!(t("https://[::1]:8443/p"), s("[::1]:8443", "[::1]:8443", "[::1]"));
}

#[test]
fn rendered_request() {
    let mut req = HttpRequest::new(SdkBody::from("{\"user_id\":\"u\"}"));
    req.set_uri("http://127.0.0.1:9000/endpoints/e/invocations").unwrap();
    req.set_method("POST").unwrap();
    for (n, v) in [
        ("content-type", "application/json"),
        ("content-length", "15"),
        ("x-amz-date", "20261201T000000Z"),
        ("authorization", "AWS4-HMAC-SHA256 Credential=AKID/20261201/us-east-1/sagemaker/aws4_request"),
    ] {
        req.headers_mut().insert(n, v);
    }
    let t = Target::parse(req.uri()).unwrap();
    let wire = render(&req, &t, req.body().bytes().unwrap());
    assert_eq!(
        String::from_utf8(wire).unwrap(),
        "POST /endpoints/e/invocations HTTP/1.1\r\nhost: 127.0.0.1:9000\r\ncontent-type: application/json\r\n\
         x-amz-date: 20261201T000000Z\r\n\
         authorization: AWS4-HMAC-SHA256 Credential=AKID/20261201/us-east-1/sagemaker/aws4_request\r\n\
         content-length: 15\r\n\r\n{\"user_id\":\"u\"}"
    );
    // A host the SDK set itself is sent as is, once.
    req.headers_mut().insert("host", "signed.example");
    let t = Target::parse(req.uri()).unwrap();
    let wire = String::from_utf8(render(&req, &t, b"")).unwrap();
    assert_eq!(wire.matches("host: ").count(), 1, "{wire}");
    assert!(wire.contains("\r\nhost: signed.example\r\n"), "{wire}");
}

#[test]
fn answers_keep_every_field() {
    let head = Bytes::from_static(
        b"HTTP/1.1 424 Failed Dependency\r\nx-amzn-errortype: ModelError:http://internal\r\n\
          Content-Type: application/json\r\nx-amzn-requestid: r-1\r\nx-amzn-requestid: r-2\r\n\r\n",
    );
    let answer = h1::Answer {
        status: 424,
        content_type: None,
        head: Some(head),
        body: Bytes::from_static(b"{\"OriginalMessage\":\"boom\"}"),
    };
    let resp = response(answer).unwrap();
    assert_eq!(resp.status().as_u16(), 424);
    assert_eq!(resp.headers().get("x-amzn-errortype"), Some("ModelError:http://internal"));
    assert_eq!(resp.headers().get("content-type"), Some("application/json"));
    assert_eq!(resp.headers().get_all("x-amzn-requestid").collect::<Vec<_>>(), ["r-1", "r-2"]);
    assert_eq!(resp.body().bytes(), Some(&b"{\"OriginalMessage\":\"boom\"}"[..]));
    let bad = h1::Answer { status: 1000, content_type: None, head: None, body: Bytes::new() };
    assert!(response(bad).is_err());
}

#[test]
fn dial_failures_are_io_and_keep_their_cause() {
    let refused = connector_error(CallError::Connect {
        authority: "127.0.0.1:1".into(),
        source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
    });
    assert!(refused.is_io());
    let slow = connector_error(CallError::ConnectTimeout("127.0.0.1:1".into()));
    assert!(slow.is_io(), "a connect timeout is 'unavailable', as for http models");
    let big = connector_error(CallError::Frame(h1::parse::FrameError::TooLarge(10)));
    assert!(big.is_other());
    let cause = std::error::Error::source(&big).and_then(|s| s.downcast_ref::<CallError>());
    assert!(matches!(cause, Some(CallError::Frame(h1::parse::FrameError::TooLarge(10)))));
}
