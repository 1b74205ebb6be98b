//! HTTP model servers: POST the caller's body to the model's URL. `http://` and `https://` models
//! go through the lean HTTP/1.1 client (`h1`, rustls with ALPN `http/1.1` for TLS); the general
//! hyper client serves webhooks, operator commands and the rare model URL with userinfo. Both
//! pools are process-wide and outlive config reloads.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use rustls_pki_types::{InvalidDnsNameError, ServerName};

use super::h1::{self, CallError};
use super::{ModelRequest, ModelResponse};
use crate::error::ProxyError;
use crate::trace;

/// The general hyper client: webhooks, the CLI's admin calls.
pub type GeneralClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The process-wide upstream clients: the general one and the lean pools for models (http and
/// https models, and the SageMaker clients' endpoints).
#[derive(Clone)]
pub struct HttpClient {
    general: GeneralClient,
    lean: Arc<h1::Pools>,
    /// The upstream trust store (system roots plus `server.upstream_ca_path`), ALPN `http/1.1`.
    lean_tls: Arc<rustls::ClientConfig>,
    max_idle_per_host: usize,
    connect_timeout: Duration,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").field("max_idle_per_host", &self.max_idle_per_host).finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A one-off request through the general client (webhooks, operator commands).
    pub fn request(&self, req: Request<Full<Bytes>>) -> hyper_util::client::legacy::ResponseFuture {
        self.general.request(req)
    }

    /// The lean pool for `authority` (`host:port`), over TLS with the certificate name `host`
    /// when `tls_host` is given; the same pool for every caller, across reloads.
    pub fn lean_pool(&self, authority: &str, tls_host: Option<&str>) -> Result<Arc<h1::Pool>, InvalidDnsNameError> {
        let tls = match tls_host {
            None => None,
            Some(host) => Some(h1::TlsTarget { config: self.lean_tls.clone(), server_name: server_name(host)? }),
        };
        Ok(self.lean.get(authority, tls, self.max_idle_per_host, self.connect_timeout))
    }
}

/// A host as it appears in a URL, as the name its TLS certificate must carry (IP literals,
/// bracketed or not, as IP addresses).
fn server_name(host: &str) -> Result<ServerName<'static>, InvalidDnsNameError> {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    ServerName::try_from(bare.to_owned())
}

/// Builds the pooled client: keep-alive, `TCP_NODELAY`, bounded idle connections per host, and
/// rustls (ring) with the system roots plus `extra_ca` (PEM) for https:// models.
pub fn client_with_ca(
    connect_timeout: Duration,
    max_idle_per_host: usize,
    extra_ca: Option<&std::path::Path>,
) -> Result<HttpClient, rustls::Error> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_keepalive(Some(Duration::from_secs(60)));
    connector.enforce_http(false);
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = extra_ca {
        use rustls_pki_types::pem::PemObject;
        match rustls_pki_types::CertificateDer::pem_file_iter(path) {
            Ok(certs) => {
                roots.add_parsable_certificates(certs.filter_map(Result::ok));
            }
            Err(e) => tracing::error!(path = %path.display(), error = %e, "cannot read server.upstream_ca_path"),
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut lean_tls = tls.clone();
    lean_tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(connector);
    let general = Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(max_idle_per_host)
        .build(https);
    Ok(HttpClient { general, lean: Arc::default(), lean_tls: Arc::new(lean_tls), max_idle_per_host, connect_timeout })
}

/// [`client_with_ca`] with the system roots only.
pub fn client(connect_timeout: Duration, max_idle_per_host: usize) -> Result<HttpClient, rustls::Error> {
    client_with_ca(connect_timeout, max_idle_per_host, None)
}

static JSON: HeaderValue = HeaderValue::from_static("application/json");
static SHADOW: HeaderValue = HeaderValue::from_static("1");
static REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");
static SHADOW_HEADER: http::HeaderName = http::HeaderName::from_static("x-splitgate-shadow");

/// A model behind an HTTP URL.
#[derive(Debug)]
pub struct HttpBackend {
    url: Uri,
    transport: Transport,
    max_response_bytes: usize,
}

#[derive(Debug)]
enum Transport {
    /// `http://` and `https://`: the request line and `host` are rendered once, here.
    Lean {
        pool: Arc<h1::Pool>,
        head: Box<[u8]>,
    },
    General(Box<GeneralClient>),
}

impl HttpBackend {
    pub fn new(url: Uri, client: HttpClient, max_response_bytes: usize) -> HttpBackend {
        let lean = lean_target(&url).and_then(|t| {
            let pool = client.lean_pool(&t.connect, t.tls_host.as_deref());
            pool.map_err(|e| tracing::warn!(url = %url, error = %e, "not a TLS server name; using the general client"))
                .ok()
                .map(|pool| Transport::Lean { pool, head: t.head })
        });
        let transport = lean.unwrap_or_else(|| Transport::General(Box::new(client.general)));
        HttpBackend { url, transport, max_response_bytes }
    }

    /// One exchange, body included; the caller applies the deadline.
    pub async fn call(&self, model: &str, req: ModelRequest<'_>) -> Result<ModelResponse, ProxyError> {
        match &self.transport {
            Transport::Lean { pool, head } => self.call_lean(pool, head, model, req).await,
            // Boxed for the same reason as SageMaker calls: keep the per-connection future small.
            Transport::General(client) => Box::pin(self.call_general(client, model, req)).await,
        }
    }

    async fn call_lean(
        &self,
        pool: &h1::Pool,
        head: &[u8],
        model: &str,
        req: ModelRequest<'_>,
    ) -> Result<ModelResponse, ProxyError> {
        let wire = render_request(head, &req);
        let answer = pool.call(&wire, self.max_response_bytes).await.map_err(|e| match e {
            CallError::Connect { .. } | CallError::ConnectTimeout(_) => {
                ProxyError::UpstreamUnavailable { model: model.to_owned(), source: Box::new(e) }
            }
            CallError::Frame(h1::parse::FrameError::TooLarge(limit)) => {
                ProxyError::UpstreamTooLarge { model: model.to_owned(), limit }
            }
            e => ProxyError::UpstreamFailed { model: model.to_owned(), message: e.to_string() },
        })?;
        let status = http::StatusCode::from_u16(answer.status).map_err(|_| ProxyError::UpstreamFailed {
            model: model.to_owned(),
            message: format!("invalid status {}", answer.status),
        })?;
        let content_type = answer.content_type.and_then(|raw| {
            if raw.as_ref() == JSON.as_bytes() {
                Some(JSON.clone())
            } else {
                HeaderValue::from_maybe_shared(raw).ok()
            }
        });
        Ok(ModelResponse { status, content_type, body: answer.body })
    }

    async fn call_general(
        &self,
        client: &GeneralClient,
        model: &str,
        req: ModelRequest<'_>,
    ) -> Result<ModelResponse, ProxyError> {
        let mut request = Request::new(Full::new(req.body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.url.clone();
        let headers = request.headers_mut();
        headers.reserve(req.headers.len() + 3);
        for (name, value) in req.headers {
            if forwardable(name) {
                headers.append(name, value.clone());
            }
        }
        if req.content_type.is_none() {
            headers.insert(CONTENT_TYPE, JSON.clone());
        }
        headers.insert(&REQUEST_ID, req.request_id.clone());
        for (name, value) in trace_headers(&req) {
            // Hex digits and `Root=…;` text are always valid header values.
            if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
                headers.append(name, v);
            }
        }
        if req.shadow {
            headers.insert(&SHADOW_HEADER, SHADOW.clone());
        }
        let response = client.request(request).await.map_err(|e| {
            if e.is_connect() {
                ProxyError::UpstreamUnavailable { model: model.to_owned(), source: Box::new(e) }
            } else {
                ProxyError::UpstreamFailed { model: model.to_owned(), message: error_chain(&e) }
            }
        })?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, self.max_response_bytes).collect().await.map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ProxyError::UpstreamTooLarge { model: model.to_owned(), limit: self.max_response_bytes }
            } else {
                ProxyError::UpstreamFailed { model: model.to_owned(), message: format!("reading the answer: {e}") }
            }
        })?;
        Ok(ModelResponse {
            status: parts.status,
            content_type: parts.headers.get(CONTENT_TYPE).cloned(),
            body: body.to_bytes(),
        })
    }
}

/// The whole HTTP/1.1 request for the lean client, in one buffer: `head` (request line and
/// `host`), the caller's end-to-end headers, our own, `content-length`, then the body.
pub fn render_request(head: &[u8], req: &ModelRequest<'_>) -> Vec<u8> {
    let mut wire = Vec::with_capacity(head.len() + 256 + req.body.len());
    wire.extend_from_slice(head);
    for (name, value) in req.headers {
        if forwardable(name) {
            for part in [name.as_str().as_bytes(), b": ", value.as_bytes(), b"\r\n"] {
                wire.extend_from_slice(part);
            }
        }
    }
    if req.content_type.is_none() {
        wire.extend_from_slice(b"content-type: application/json\r\n");
    }
    for part in [b"x-request-id: ".as_slice(), req.request_id.as_bytes(), b"\r\n"] {
        wire.extend_from_slice(part);
    }
    for (name, value) in trace_headers(req) {
        for part in [name.as_str().as_bytes(), b": ", value.as_bytes(), b"\r\n"] {
            wire.extend_from_slice(part);
        }
    }
    if req.shadow {
        wire.extend_from_slice(b"x-splitgate-shadow: 1\r\n");
    }
    wire.extend_from_slice(b"content-length: ");
    wire.extend_from_slice(itoa::Buffer::new().format(req.body.len()).as_bytes());
    wire.extend_from_slice(b"\r\n\r\n");
    wire.extend_from_slice(req.body);
    wire
}

/// One trace header to send, borrowed from the caller's headers or rendered on the stack.
pub(crate) enum TraceValue<'a> {
    Caller(&'a HeaderValue),
    TraceParent([u8; trace::TRACEPARENT_LEN]),
    XRay([u8; trace::XRAY_LEN]),
}

impl TraceValue<'_> {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            TraceValue::Caller(v) => v.as_bytes(),
            TraceValue::TraceParent(b) => b,
            TraceValue::XRay(b) => b,
        }
    }
}

/// The trace headers a model gets: `traceparent` (the caller's, re-rendered, or minted), the
/// caller's `tracestate` lines when its `traceparent` was valid, and the caller's
/// `X-Amzn-Trace-Id` as it came, else one carrying the same trace. No allocation.
pub(crate) fn trace_headers<'a>(
    req: &ModelRequest<'a>,
) -> impl Iterator<Item = (&'static http::HeaderName, TraceValue<'a>)> + 'a {
    let t = *req.trace;
    let state = req.headers.get_all(&trace::TRACESTATE).iter().filter(move |_| t.from_w3c);
    let caller_xray = req.headers.get_all(&trace::XRAY).iter().filter(move |_| t.from_xray);
    let own_xray = (!t.from_xray).then(|| (&trace::XRAY, TraceValue::XRay(t.xray())));
    std::iter::once((&trace::TRACEPARENT, TraceValue::TraceParent(t.traceparent())))
        .chain(state.map(|v| (&trace::TRACESTATE, TraceValue::Caller(v))))
        .chain(caller_xray.map(|v| (&trace::XRAY, TraceValue::Caller(v))))
        .chain(own_xray)
}

/// Where the lean client sends a model's requests.
#[derive(Debug, PartialEq, Eq)]
struct LeanTarget {
    /// `host:port` to dial.
    connect: String,
    /// The host the certificate must name, for `https://`.
    tls_host: Option<String>,
    /// The rendered `POST <path> HTTP/1.1` line with its `host` header.
    head: Box<[u8]>,
}

/// For an `http://` or `https://` URL, where and how to send. `None` (userinfo in the URL, or
/// another scheme) sends the model through the general client.
fn lean_target(url: &Uri) -> Option<LeanTarget> {
    let (tls, default_port) = match url.scheme_str() {
        Some("http") => (false, 80),
        Some("https") => (true, 443),
        _ => return None,
    };
    let authority = url.authority()?;
    if authority.as_str().contains('@') {
        return None;
    }
    let connect = match authority.port_u16() {
        Some(_) => authority.as_str().to_owned(),
        None => format!("{}:{default_port}", authority.host()),
    };
    let path = url.path_and_query().map_or("/", |p| p.as_str());
    let head = format!("POST {path} HTTP/1.1\r\nhost: {authority}\r\n");
    let tls_host = tls.then(|| authority.host().to_owned());
    Some(LeanTarget { connect, tls_host, head: head.into_bytes().into_boxed_slice() })
}

/// End-to-end headers go to the model; hop-by-hop ones, framing, the API key and headers the
/// proxy sets itself do not.
fn forwardable(name: &http::HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authorization"
            | "proxy-authenticate"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "expect"
            | "host"
            | "content-length"
            | "x-api-key"
            | "x-request-id"
            | "x-splitgate-shadow"
            // Written from the request's trace context (a bad one replaced, a missing one minted).
            | "traceparent"
            | "tracestate"
            | "x-amzn-trace-id"
    )
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

#[cfg(test)]
mod tests;
