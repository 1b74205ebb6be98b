//! HTTP model servers: POST the caller's body to the model's URL over a shared, pooled client.

use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::{ModelRequest, ModelResponse};
use crate::error::ProxyError;

/// The process-wide upstream client (http:// and https://); its pool outlives config reloads.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

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
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(connector);
    Ok(Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(max_idle_per_host)
        .build(https))
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
    client: HttpClient,
    max_response_bytes: usize,
}

impl HttpBackend {
    pub fn new(url: Uri, client: HttpClient, max_response_bytes: usize) -> HttpBackend {
        HttpBackend { url, client, max_response_bytes }
    }

    /// One exchange, body included; the caller applies the deadline.
    pub async fn call(&self, model: &str, req: ModelRequest<'_>) -> Result<ModelResponse, ProxyError> {
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
        if req.shadow {
            headers.insert(&SHADOW_HEADER, SHADOW.clone());
        }
        let response = self.client.request(request).await.map_err(|e| {
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
            | "host"
            | "content-length"
            | "x-api-key"
            | "x-request-id"
            | "x-splitgate-shadow"
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
