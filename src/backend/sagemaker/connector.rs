//! The SageMaker SDK's HTTP client, served by splitgate's lean HTTP/1.1 client (`backend::h1`):
//! the SDK builds, signs and parses; this module only moves the signed request to the endpoint
//! and the answer back. Connections come from the process-wide pools (one per endpoint origin,
//! plain or rustls), shared with every client and across reloads.
//!
//! No connector-level timeouts: the model's deadline (`Model::invoke_within`) bounds the whole
//! call and drops the connection with it; the pool's connect timeout bounds dialing.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;

use super::scope;
use crate::backend::h1::{self, CallError, Want};
use crate::backend::HttpClient as Upstreams;

/// At most this many header fields in an endpoint's answer.
const MAX_FIELDS: usize = 64;

/// The [`HttpClient`] the SageMaker clients are built with.
#[derive(Debug, Clone)]
pub struct LeanHttpClient {
    connector: SharedHttpConnector,
}

impl LeanHttpClient {
    pub fn new(upstreams: &Upstreams) -> LeanHttpClient {
        let connector = LeanConnector { upstreams: upstreams.clone(), last: ArcSwapOption::empty() };
        LeanHttpClient { connector: SharedHttpConnector::new(connector) }
    }
}

impl HttpClient for LeanHttpClient {
    /// One connector for every setting: timeouts are the model deadline's job (module docs).
    fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        self.connector.clone()
    }
}

#[derive(Debug)]
struct LeanConnector {
    upstreams: Upstreams,
    /// The origin of the last call and its pool: a client has one endpoint, so this saves the
    /// registry lookup on every call after the first.
    last: ArcSwapOption<(Box<str>, Arc<h1::Pool>)>,
}

impl HttpConnector for LeanConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        // An answer the direct path already got (`super::direct`): the SDK only reads it.
        if let Some(answer) = scope::take_replay() {
            return HttpConnectorFuture::ready(response(answer));
        }
        let prepared = self.prepare(&request);
        HttpConnectorFuture::new(async move {
            let (pool, wire) = prepared?;
            let limit = scope::response_limit();
            let answer = pool.call_with(&wire, limit, Want::HeadAndBody).await.map_err(connector_error)?;
            response(answer)
        })
    }
}

impl LeanConnector {
    /// The pool for the request's origin and the request rendered for the wire.
    fn prepare(&self, request: &HttpRequest) -> Result<(Arc<h1::Pool>, Vec<u8>), ConnectorError> {
        let target =
            Target::parse(request.uri()).ok_or_else(|| user(format!("not an http(s) URL: {}", request.uri())))?;
        let pool = self.pool(&target)?;
        let body = request.body().bytes().ok_or_else(|| user("a streaming request body".to_owned()))?;
        Ok((pool, render(request, &target, body)))
    }

    fn pool(&self, t: &Target<'_>) -> Result<Arc<h1::Pool>, ConnectorError> {
        let origin = &t.uri[..t.origin_len];
        if let Some(last) = self.last.load().as_ref() {
            if &*last.0 == origin {
                return Ok(last.1.clone());
            }
        }
        let connect = t.connect_authority();
        let pool = self
            .upstreams
            .lean_pool(&connect, t.tls.then_some(t.host()))
            .map_err(|e| user(format!("{}: {e}", t.host())))?;
        self.last.store(Some(Arc::new((origin.into(), pool.clone()))));
        Ok(pool)
    }
}

/// The parts of an absolute `http(s)://authority/path?query` URL the wire needs.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Target<'a> {
    uri: &'a str,
    pub(super) tls: bool,
    authority: &'a str,
    /// `scheme://authority`.
    origin_len: usize,
    /// Path and query (`/` when empty).
    path: &'a str,
}

impl<'a> Target<'a> {
    pub(super) fn parse(uri: &'a str) -> Option<Target<'a>> {
        let (tls, rest) =
            if let Some(r) = uri.strip_prefix("https://") { (true, r) } else { (false, uri.strip_prefix("http://")?) };
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..end];
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        let path = match &rest[end..] {
            "" => "/",
            p => p,
        };
        Some(Target { uri, tls, authority, origin_len: uri.len() - rest.len() + end, path })
    }

    /// Where the path starts in the URL (its length when it has none).
    pub(super) fn path_offset(&self) -> usize {
        self.origin_len
    }

    /// The host without the port (IPv6 literals keep their brackets).
    pub(super) fn host(&self) -> &'a str {
        self.split_port().0
    }

    fn split_port(&self) -> (&'a str, Option<&'a str>) {
        let a = self.authority;
        match a.rfind(':') {
            Some(i) if !a[i..].contains(']') => (&a[..i], Some(&a[i + 1..])),
            _ => (a, None),
        }
    }

    fn default_port(&self) -> &'static str {
        if self.tls {
            "443"
        } else {
            "80"
        }
    }

    /// `host:port` to dial.
    pub(super) fn connect_authority(&self) -> String {
        match self.split_port() {
            (_, Some(_)) => self.authority.to_owned(),
            (host, None) => format!("{host}:{}", self.default_port()),
        }
    }

    /// The `host` header, as SigV4 signs it when the request has none: the port only when it is
    /// not the scheme's default.
    pub(super) fn host_header(&self) -> &'a str {
        match self.split_port() {
            (host, Some(port)) if port == self.default_port() => host,
            _ => self.authority,
        }
    }
}

/// The whole request in one buffer: request line, `host` (unless the SDK set one), the SDK's
/// signed fields, `content-length`, body. Framing fields the SDK might carry are ours to write.
fn render(request: &HttpRequest, t: &Target<'_>, body: &[u8]) -> Vec<u8> {
    let mut wire = Vec::with_capacity(512 + body.len());
    for part in [request.method().as_bytes(), b" ", t.path.as_bytes(), b" HTTP/1.1\r\n"] {
        wire.extend_from_slice(part);
    }
    if !request.headers().contains_key("host") {
        for part in [b"host: ".as_slice(), t.host_header().as_bytes(), b"\r\n"] {
            wire.extend_from_slice(part);
        }
    }
    for (name, value) in request.headers().iter_bytes() {
        if name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("connection")
        {
            continue;
        }
        for part in [name.as_bytes(), b": ", value, b"\r\n"] {
            wire.extend_from_slice(part);
        }
    }
    wire.extend_from_slice(b"content-length: ");
    wire.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
    wire.extend_from_slice(b"\r\n\r\n");
    wire.extend_from_slice(body);
    wire
}

/// The SDK's view of the answer: status, every header field, the body (no copy).
fn response(answer: h1::Answer) -> Result<HttpResponse, ConnectorError> {
    let mut resp = http::Response::new(SdkBody::from(answer.body));
    *resp.status_mut() = http::StatusCode::from_u16(answer.status)
        .map_err(|_| ConnectorError::other(format!("invalid status {}", answer.status).into(), None))?;
    if let Some(head) = answer.head {
        fields(&head, resp.headers_mut())?;
    }
    HttpResponse::try_from(resp).map_err(|e| ConnectorError::other(e.into(), None))
}

/// The header fields of a raw response head (already validated by the framing parser).
fn fields(head: &Bytes, into: &mut http::HeaderMap) -> Result<(), ConnectorError> {
    let mut parsed = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut r = httparse::Response::new(&mut parsed);
    let bad = |why: &str| ConnectorError::other(format!("response head: {why}").into(), None);
    match r.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(bad("unparseable")),
    }
    into.reserve(r.headers.len());
    for f in r.headers.iter() {
        let name = http::HeaderName::from_bytes(f.name.as_bytes()).map_err(|_| bad("field name"))?;
        let value = http::HeaderValue::from_maybe_shared(head.slice_ref(f.value)).map_err(|_| bad("field value"))?;
        into.append(name, value);
    }
    Ok(())
}

fn user(message: String) -> ConnectorError {
    ConnectorError::user(message.into())
}

/// Dial failures are I/O (the SDK reports a dispatch failure, we answer 502 unavailable, as for
/// http models); the original [`CallError`] stays the source, so the backend can tell "answer
/// too large" apart.
fn connector_error(e: CallError) -> ConnectorError {
    match e {
        CallError::Connect { .. } | CallError::ConnectTimeout(_) => ConnectorError::io(e.into()).never_connected(),
        CallError::Io(_) | CallError::Closed => ConnectorError::io(e.into()),
        CallError::HeadTooLarge | CallError::Frame(_) => ConnectorError::other(e.into(), None),
    }
}

#[cfg(test)]
#[path = "connector_tests.rs"]
mod tests;
