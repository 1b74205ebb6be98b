//! The direct path against the SDK as the oracle: the same call rendered by
//! `aws-sdk-sagemakerruntime` (our production client config, with only the transport swapped
//! for a recorder and the clock fixed) and by `Call::render` must agree on method, path, body,
//! every header the SDK's serializer and signer set (its own telemetry headers aside), and the
//! signature once those are aside. The wire's signature is checked independently in `tests/aws.rs`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_sdk_sagemakerruntime::config::SharedCredentialsProvider;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};

use super::*;
use crate::backend::sagemaker::SageMakerBackend;
use crate::trace::{TraceContext, TraceIds};

/// What the SDK handed to its HTTP client.
#[derive(Debug, Clone, Default)]
struct Seen {
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
struct Recorder(Arc<Mutex<Option<Seen>>>);

impl HttpClient for Recorder {
    fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for Recorder {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let seen = Seen {
            method: request.method().to_owned(),
            uri: request.uri().to_owned(),
            headers: request.headers().iter().map(|(n, v)| (n.to_ascii_lowercase(), v.to_owned())).collect(),
            body: request.body().bytes().unwrap_or_default().to_vec(),
        };
        *self.0.lock().unwrap() = Some(seen);
        let mut response = http::Response::new(SdkBody::from("{}"));
        response.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
        HttpConnectorFuture::ready(Ok(response.try_into().unwrap()))
    }
}

const AT: Duration = Duration::from_secs(1_764_633_600); // 2025-12-02T00:00:00Z

fn credentials(token: Option<&str>) -> Credentials {
    Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token.map(str::to_owned), None, "test")
}

/// The SDK's request for `req`, through our production client config.
async fn through_the_sdk(
    endpoint_url: &str,
    variant: Option<&str>,
    token: Option<&str>,
    req: ModelRequest<'_>,
) -> Seen {
    let config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .endpoint_url(endpoint_url)
        .build();
    let upstreams = crate::backend::http::client(Duration::from_secs(1), 4).unwrap();
    let ours =
        super::super::client::build(&config, &upstreams, Some(SharedCredentialsProvider::new(credentials(token))))
            .unwrap();
    let recorder = Recorder::default();
    let conf = ours
        .config()
        .to_builder()
        .http_client(recorder.clone())
        .time_source(aws_smithy_async::time::StaticTimeSource::new(SystemTime::UNIX_EPOCH + AT))
        .build();
    let client = aws_sdk_sagemakerruntime::Client::from_conf(conf);
    let backend = SageMakerBackend::new(Some(client), None, "rec-endpoint".into(), variant.map(str::to_owned), 1 << 20);
    let answer = backend.call("m", req, 1_000).await;
    assert!(answer.is_ok(), "{answer:?}");
    let seen = recorder.0.lock().unwrap().clone();
    seen.expect("the SDK sent a request")
}

/// Ours, parsed back from the wire bytes.
fn direct(endpoint_url: &str, variant: Option<&str>, token: Option<&str>, req: &ModelRequest<'_>) -> (Seen, String) {
    let target = Target::parse(endpoint_url).unwrap();
    let base = endpoint_url.strip_suffix('/').unwrap_or(endpoint_url);
    let route = Route::new(base, "rec-endpoint").unwrap();
    let keys = KeyCache::new("eu-west-1", "sagemaker");
    let call = Call { route: &route, host: target.host_header(), keys: &keys, target_variant: variant };
    let identity = Identity::from(credentials(token));
    let wire = call.render(req, &identity, SystemTime::UNIX_EPOCH + AT).unwrap();
    let mut fields = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Request::new(&mut fields);
    let httparse::Status::Complete(at) = parsed.parse(&wire).unwrap() else { panic!("partial head") };
    let seen = Seen {
        method: parsed.method.unwrap().to_owned(),
        uri: format!("{base}{}", parsed.path.unwrap().strip_prefix(&base[target.path_offset()..]).unwrap()),
        headers: parsed
            .headers
            .iter()
            .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8(h.value.to_vec()).unwrap()))
            .collect(),
        body: wire[at..].to_vec(),
    };
    (seen, target.host_header().to_owned())
}

/// The SDK's own telemetry (and `authorization`, compared separately): not part of the call.
fn telemetry(name: &str) -> bool {
    matches!(name, "user-agent" | "x-amz-user-agent" | "amz-sdk-invocation-id" | "amz-sdk-request" | "authorization")
}

fn without(seen: &Seen, skip: impl Fn(&str) -> bool) -> Vec<(String, String)> {
    let mut h: Vec<_> = seen.headers.iter().filter(|(n, _)| !skip(n)).cloned().collect();
    h.sort();
    h
}

/// `Credential=…/scope, SignedHeaders=a;b, Signature=hex` → (scope, signed headers, signature).
fn authorization(seen: &Seen) -> (String, Vec<String>, String) {
    let auth = seen.headers.iter().find(|(n, _)| n == "authorization").map(|(_, v)| v.clone()).unwrap();
    let part = |key: &str| auth.split([',', ' ']).find_map(|p| p.strip_prefix(key)).unwrap().to_owned();
    let signed = part("SignedHeaders=").split(';').map(str::to_owned).collect();
    (part("Credential="), signed, part("Signature="))
}

async fn agree(
    endpoint_url: &str,
    variant: Option<&str>,
    token: Option<&str>,
    headers: HeaderMap,
    body: &'static [u8],
) {
    let body = Bytes::from_static(body);
    let id = HeaderValue::from_static("8f1c2d3e000000070123456789abcdef");
    let trace = TraceContext::from_headers(&headers, &TraceIds::with_seed(7), SystemTime::UNIX_EPOCH + AT);
    let req = ModelRequest {
        body: &body,
        content_type: headers.get("content-type"),
        accept: headers.get("accept"),
        headers: &headers,
        request_id: &id,
        trace: &trace,
        user_id: "u",
        shadow: false,
    };
    let sdk = through_the_sdk(endpoint_url, variant, token, req).await;
    let (ours, host) = direct(endpoint_url, variant, token, &req);
    let case = format!("{endpoint_url} variant={variant:?} token={token:?} headers={headers:?}");
    assert_eq!((&ours.method, &ours.uri, &ours.body), (&sdk.method, &sdk.uri, &sdk.body), "{case}");
    // The SDK's request has no `host` yet (its HTTP client writes the one SigV4 signed).
    let mut expected = without(&sdk, telemetry);
    expected.push(("host".into(), host.clone()));
    expected.sort();
    assert_eq!(without(&ours, telemetry), expected, "{case}");
    let (sdk_scope, sdk_signed, sdk_signature) = authorization(&sdk);
    let (scope, signed, signature) = authorization(&ours);
    assert_eq!(scope, sdk_scope, "{case}");
    let sdk_signed_calls: Vec<_> = sdk_signed.iter().filter(|h| !telemetry(h)).cloned().collect();
    assert_eq!(signed, sdk_signed_calls, "the same fields signed, telemetry aside: {case}");
    // With the SDK's telemetry in the canonical request the signatures differ; re-signing the
    // SDK's own request without those fields (with the SDK's signer) must give ours exactly.
    let resigned = resign_without_telemetry(&sdk, &host, token);
    assert_eq!(signature, resigned, "{case}");
    assert_ne!(signature, sdk_signature, "sanity: telemetry fields are part of the SDK's signature");
}

/// The SDK's request minus its telemetry fields, signed with aws-sigv4 as aws-runtime does.
fn resign_without_telemetry(sdk: &Seen, host: &str, token: Option<&str>) -> String {
    let identity = Identity::from(credentials(token));
    let mut fields: Vec<(&str, &str)> = vec![("host", host)];
    fields.extend(
        sdk.headers
            .iter()
            .filter(|(n, _)| !telemetry(n) && n != "x-amz-date" && n != "x-amz-security-token")
            .map(|(n, v)| (n.as_str(), v.as_str())),
    );
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("eu-west-1")
        .name("sagemaker")
        .time(SystemTime::UNIX_EPOCH + AT)
        .settings(SigningSettings::default())
        .build()
        .unwrap();
    let request =
        SignableRequest::new("POST", sdk.uri.as_str(), fields.into_iter(), SignableBody::Bytes(&sdk.body)).unwrap();
    sign(request, &params.into()).unwrap().signature().to_owned()
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        h.append(*n, HeaderValue::from_static(v));
    }
    h
}

type Case = (&'static str, Option<&'static str>, Option<&'static str>, HeaderMap, &'static [u8]);

#[tokio::test]
async fn the_direct_request_is_the_sdks_request() {
    let traced = headers(&[
        ("content-type", "application/json"),
        ("accept", "application/json"),
        ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ("tracestate", "rojo=00f067aa0ba902b7"),
        ("tracestate", "congo=t61rcWkgMzE"),
        ("x-amzn-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"),
    ]);
    // (endpoint URL, target variant, session token, caller headers, body)
    let cases: [Case; 6] = [
        (
            "https://runtime.sagemaker.eu-west-1.amazonaws.com",
            Some("AllTraffic"),
            Some("session"),
            traced.clone(),
            b"{\"user_id\":\"u1\"}",
        ),
        ("https://runtime.sagemaker.eu-west-1.amazonaws.com", None, None, HeaderMap::new(), b"{}"),
        (
            "http://127.0.0.1:9000",
            None,
            Some("t"),
            headers(&[("content-type", "text/csv"), ("accept", "text/csv")]),
            b"1,2,3\n",
        ),
        ("http://127.0.0.1:9000/", Some("v-2"), None, traced, b""),
        ("https://runtime.sagemaker.eu-west-1.amazonaws.com:443", None, None, headers(&[("accept", "*/*")]), b"[1]"),
        (
            "http://localhost:80/prefix",
            None,
            None,
            headers(&[("content-type", "application/json; charset=utf-8")]),
            b"{\"a\" : 1}",
        ),
    ];
    for (url, variant, token, h, body) in cases {
        agree(url, variant, token, h, body).await;
    }
}

#[test]
fn routes_and_what_the_direct_path_leaves_to_the_sdk() {
    let r = Route::new("https://h.example", "rec-1").unwrap();
    assert_eq!((&*r.uri, r.path()), ("https://h.example/endpoints/rec-1/invocations", "/endpoints/rec-1/invocations"));
    let r = Route::new("http://h:9/base", "e").unwrap();
    assert_eq!(r.path(), "/base/endpoints/e/invocations");
    // Names the SDK would percent-encode are left to it (config validation refuses them anyway).
    for bad in ["", "a b", "a/b", "ä", "a%20"] {
        assert!(Route::new("http://h", bad).is_none(), "{bad:?}");
    }
}
