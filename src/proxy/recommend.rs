//! `POST /recommend`: auth → throttle → read body → identify → split → forward → shadow → answer.
//! An interleaving arm forwards to both of its models (`proxy::interleave`).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full, Limited};

use super::{Body, Proxy, CONFIG_VERSION, MODEL, REQUEST_ID, VARIANT};
use crate::auth::Caller;
use crate::backend::ModelRequest;
use crate::config::ServerConfig;
use crate::error::ProxyError;
use crate::record::{Exposure, Facts, ModelError};
use crate::snapshot::Snapshot;
use crate::trace::TraceContext;
use crate::userid::{self, MAX_USER_ID_BYTES};

static JSON: HeaderValue = HeaderValue::from_static("application/json");
static FALLBACK: http::HeaderName = http::HeaderName::from_static("x-splitgate-fallback");

impl Proxy {
    pub(crate) async fn recommend<B>(
        self: &Arc<Self>,
        snap: &Arc<Snapshot>,
        req: Request<B>,
        request_id: &HeaderValue,
        trace: &TraceContext,
        ctx: &mut Facts,
    ) -> Result<Response<Body>, ProxyError>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<crate::error::BoxError>,
    {
        let caller = self.authenticate(snap, req.headers(), ctx)?;
        self.throttle(snap, caller)?;
        let (parts, body) = req.into_parts();
        let body = read_body(body, &parts.headers, &snap.plan.server).await?;
        ctx.body_read = true;
        let _slot = self.admit(snap)?;
        let user_id = identify(snap, &body, &parts.headers)?;
        if snap.plan.experiment.log_raw_user_id {
            ctx.raw_user_id = Some(user_id.as_ref().into());
        }
        let (vi, exposure) = choose_variant(snap, caller, &parts.headers, &user_id)?;
        ctx.variant = Some(vi);
        ctx.exposure = Some(exposure);
        let variant = &snap.variants[vi];

        let model_req = ModelRequest {
            body: &body,
            content_type: parts.headers.get(CONTENT_TYPE),
            accept: parts.headers.get(ACCEPT),
            headers: &parts.headers,
            request_id,
            trace,
            user_id: &user_id,
            shadow: false,
        };
        let sent = Instant::now();
        let answer = match &variant.interleave {
            Some(arm) => {
                let minted = parts.headers.get(&REQUEST_ID) != Some(request_id);
                // Boxed: two model calls at once make this future ~18 KB, and inline it would
                // make every request's future that large (the server boxes each one).
                Box::pin(super::interleave::serve(arm, variant, &snap.plan.salt, model_req, minted, ctx)).await
            }
            None => variant.model.invoke(model_req).await,
        };
        let upstream = sent.elapsed();
        ctx.upstream_latency = Some(upstream);

        // Mirroring only enqueues; the answer below never waits for a shadow.
        crate::shadow::mirror(&snap.shadows, &parts.headers, &body, request_id, trace, &user_id, &answer, upstream);

        let failed = match &answer {
            Ok(a) => a.status.is_server_error(),
            Err(e) => e.is_upstream(),
        };
        ctx.model_failed = failed;
        if variant.interleave.is_none() {
            // (An interleaving arm's stage recorded its team A's error itself.)
            ctx.model_error = answer.as_ref().err().map(ModelError::of);
        }
        let mut model = &variant.model;
        let answer = if failed && snap.plan.fallback_to_champion && !variant.champion {
            // The failure still counts against the assigned variant; the caller gets the champion.
            ctx.fallback = true;
            model = &snap.variants[snap.plan.champion].model;
            let second = model.invoke(model_req).await;
            ctx.fallback_error = second.as_ref().err().map(ModelError::of);
            second
        } else {
            answer
        };
        let answer = answer?;
        let response_id = match &ctx.interleave {
            Some(crate::interleave::Fact::Served(s)) if !ctx.fallback => s.request_id.as_ref().unwrap_or(request_id),
            _ => request_id,
        };
        if answer.status.is_success() {
            self.recent.remember(response_id.as_bytes(), &variant.name);
        }
        let mut response = Response::new(Full::new(answer.body));
        *response.status_mut() = answer.status;
        let h = response.headers_mut();
        h.insert(CONTENT_TYPE, answer.content_type.unwrap_or_else(|| JSON.clone()));
        h.insert(&VARIANT, variant.name_header.clone());
        h.insert(&MODEL, model.version_header.clone());
        h.insert(&REQUEST_ID, request_id.clone());
        h.insert(&CONFIG_VERSION, snap.version_header.clone());
        if ctx.fallback {
            h.insert(&FALLBACK, HeaderValue::from_static("1"));
        }
        if let Some(arm) = &variant.interleave {
            super::interleave::decorate(h, arm, ctx);
        }
        Ok(response)
    }
}

/// Reads the whole body within `server.body_timeout_ms`, refusing more than
/// `server.max_body_bytes` while streaming (never buffering past it).
pub(crate) async fn read_body<B>(body: B, headers: &HeaderMap, server: &ServerConfig) -> Result<Bytes, ProxyError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<crate::error::BoxError>,
{
    let limit = server.max_body_bytes;
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ProxyError::PayloadTooLarge { limit });
    }
    read_within(body, limit, Duration::from_millis(server.body_timeout_ms)).await
}

/// Reads a body of at most `limit` bytes within `timeout` (no declared length to check).
pub(crate) async fn read_within<B>(body: B, limit: usize, timeout: Duration) -> Result<Bytes, ProxyError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<crate::error::BoxError>,
{
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(ProxyError::PayloadTooLarge { limit }),
        Ok(Err(e)) => Err(ProxyError::BodyRead(e)),
        Err(_) => Err(ProxyError::BodyTimeout { timeout_ms: timeout.as_millis() as u64 }),
    }
}

/// The user id: the configured top-level JSON string field, else the configured header.
pub(crate) fn identify<'b>(
    snap: &Snapshot,
    body: &'b Bytes,
    headers: &'b HeaderMap,
) -> Result<Cow<'b, str>, ProxyError> {
    let plan = &snap.plan;
    let from_body = userid::from_json(body, &plan.user_id_field).map_err(ProxyError::InvalidJson)?;
    let id = match from_body {
        Some(id) if !id.is_empty() => id,
        _ => match headers.get(&plan.user_id_header).and_then(|v| v.to_str().ok()) {
            Some(h) if !h.is_empty() => Cow::Borrowed(h),
            _ => {
                return Err(ProxyError::MissingUserId {
                    field: plan.user_id_field.clone(),
                    header: plan.user_id_header.to_string(),
                })
            }
        },
    };
    if id.len() > MAX_USER_ID_BYTES {
        return Err(ProxyError::UserIdTooLong { max: MAX_USER_ID_BYTES });
    }
    Ok(id)
}

/// The split: a trusted caller's `x-splitgate-variant` override, else the stable hash. Returns
/// the variant and the exposure to record (one hash serves the split, the dry-run traffic map
/// and the distinct-user estimate).
fn choose_variant(
    snap: &Snapshot,
    caller: &Caller,
    headers: &HeaderMap,
    user_id: &str,
) -> Result<(usize, Exposure), ProxyError> {
    let user_hash = crate::split::stable_hash(&snap.plan.salt, user_id.as_bytes());
    match headers.get(&VARIANT).filter(|_| caller.allow_override) {
        Some(name) => snap
            .variant_index(name.as_bytes())
            .map(|vi| (vi, Exposure { user_hash, bucket: None }))
            .ok_or_else(|| ProxyError::UnknownVariant(String::from_utf8_lossy(name.as_bytes()).into_owned())),
        None => {
            let bucket = crate::split::bucket_of_hash(user_hash);
            Ok((snap.plan.layout.variant_of(bucket), Exposure { user_hash, bucket: Some(bucket) }))
        }
    }
}
