//! `POST /feedback`: attributes a user's event (click, purchase, …) to the variant serving them.
//!
//! An event carrying the `request_id` of a recommendation this replica still remembers (in
//! `proxy::recent`) is credited to the variant that actually served it (`attributed_by:
//! "request_id"`); otherwise the variant is recomputed by the stable hash under the live config
//! (`"hash"`), which needs no state shared between replicas. Counts go to
//! `splitgate_feedback_events_total{variant,event}`.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use serde::Deserialize;

use super::recommend::{identify, read_body};
use super::{json_response, Body, Proxy, REQUEST_ID, VARIANT};
use crate::error::ProxyError;
use crate::metrics::FEEDBACK_EVENTS;
use crate::record::Facts;
use crate::snapshot::Snapshot;

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    event: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    request_id: Option<std::borrow::Cow<'a, str>>,
}

impl Proxy {
    pub(crate) async fn feedback<B>(
        self: &Arc<Self>,
        snap: &Arc<Snapshot>,
        req: Request<B>,
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
        let event: Event = serde_json::from_slice(&body).map_err(ProxyError::InvalidJson)?;
        let kind = FEEDBACK_EVENTS
            .iter()
            .position(|e| Some(*e) == event.event.as_deref())
            .unwrap_or(FEEDBACK_EVENTS.len() - 1);
        // The variant that served that request, when it is still remembered; else the live split.
        let served = event
            .request_id
            .as_deref()
            .and_then(|id| self.recent.lookup(id.as_bytes()))
            .and_then(|h| snap.variants.iter().position(|v| self.recent.name_hash(&v.name) == h));
        let attributed_by = if served.is_some() { "request_id" } else { "hash" };
        let vi = served.unwrap_or_else(|| snap.assign(&user_id));
        ctx.variant = Some(vi);
        ctx.feedback_event = Some(kind);
        let variant = &snap.variants[vi];
        let mut r = json_response(
            StatusCode::ACCEPTED,
            &serde_json::json!({
                "variant": &*variant.name,
                "model": &*variant.model.version,
                "event": FEEDBACK_EVENTS[kind],
                "attributed_by": attributed_by,
                "config_version": snap.version,
            }),
        );
        r.headers_mut().insert(&VARIANT, variant.name_header.clone());
        if let Some(id) = parts.headers.get(&REQUEST_ID) {
            r.headers_mut().insert(&REQUEST_ID, id.clone());
        }
        Ok(r)
    }
}
