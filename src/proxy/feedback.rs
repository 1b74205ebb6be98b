//! `POST /feedback`: attributes a user's event (click, purchase, …) to the variant serving them.
//!
//! Which variant an event is credited to, first match wins:
//! 1. `"request_id"`: the recommendation's id is still in this replica's cache (`proxy::recent`);
//! 2. `"config_version"`: the event names the config version that served — `config_version` in
//!    the body, the `x-splitgate-config-version` header, or the version inside an id splitgate
//!    minted — and the user's bucket is recomputed under that version's split (`runtime.history`:
//!    this process's versions plus, with `[fleet]`, every version the fleet published). This is
//!    what attributes feedback sent to another replica, after a rollback, correctly;
//! 3. `"hash"`: the user's variant under the live split.
//!
//! An interleaving arm's answer carries a team code (in the id splitgate minted, or sent back as
//! `teams`) that names the arm and, on any replica, credits `item_id` to the model that
//! contributed it (`proxy::interleave`); it is checked first and answers `"request_id"`.
//!
//! Counts go to `splitgate_feedback_events_total{variant,event}`.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use serde::Deserialize;

use super::recommend::{identify, read_body};
use super::{json_response, Body, Proxy, CONFIG_VERSION, REQUEST_ID, VARIANT};
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
    /// The `x-splitgate-config-version` of the recommendation, if the caller kept it (a number,
    /// or the header's text as a string).
    config_version: Option<VersionField<'a>>,
    /// The item the event is about: an interleaving arm credits the model that contributed it.
    item_id: Option<ItemId>,
    /// An interleaved answer's `x-splitgate-teams`, from callers that bring their own request id.
    #[serde(borrow)]
    teams: Option<std::borrow::Cow<'a, str>>,
}

/// An item id as models write them: a string or a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum ItemId {
    Text(String),
    Number(serde_json::Number),
}

impl ItemId {
    fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            ItemId::Text(s) => s.as_str().into(),
            ItemId::Number(n) => n.to_string().into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum VersionField<'a> {
    Number(u64),
    #[serde(borrow)]
    Text(std::borrow::Cow<'a, str>),
}

impl VersionField<'_> {
    fn get(&self) -> Option<u64> {
        match self {
            VersionField::Number(n) => Some(*n),
            VersionField::Text(t) => t.trim().parse().ok(),
        }
    }
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
        if snap.plan.experiment.log_raw_user_id {
            ctx.raw_user_id = Some(user_id.as_ref().into());
        }
        let event: Event = serde_json::from_slice(&body).map_err(ProxyError::InvalidJson)?;
        let kind = FEEDBACK_EVENTS
            .iter()
            .position(|e| Some(*e) == event.event.as_deref())
            .unwrap_or(FEEDBACK_EVENTS.len() - 1);
        let request_id = event.request_id.as_deref();
        let cached = request_id
            .and_then(|id| self.recent.lookup(id.as_bytes()))
            .and_then(|h| snap.variants.iter().position(|v| self.recent.name_hash(&v.name) == h));
        // An interleaved answer's team code names its arm and places the item, on any replica.
        let item = event.item_id.as_ref().map(ItemId::text);
        let teams = event.teams.as_deref();
        let credit =
            super::interleave::attribute(&snap.variants, &snap.plan.salt, request_id, teams, item.as_deref(), kind);
        let cached = credit.as_ref().map(|c| c.variant).or(cached);
        let (vi, attributed_by) = match cached {
            Some(vi) => (vi, "request_id"),
            None => match self.served_under_version(snap, &event, &parts.headers, &user_id) {
                Some(vi) => (vi, "config_version"),
                None => (snap.assign(&user_id), "hash"),
            },
        };
        ctx.variant = Some(vi);
        ctx.feedback_event = Some(kind);
        let user_hash = crate::split::stable_hash(&snap.plan.salt, user_id.as_bytes());
        ctx.feedback_user =
            Some(crate::record::Exposure { user_hash, bucket: Some(crate::split::bucket_of_hash(user_hash)) });
        let variant = &snap.variants[vi];
        let interleave = super::interleave::feedback(variant, credit.map(|c| c.feedback), kind, ctx);
        let mut r = json_response(
            StatusCode::ACCEPTED,
            &serde_json::json!({
                "variant": &*variant.name,
                "model": &*variant.model.version,
                "event": FEEDBACK_EVENTS[kind],
                "attributed_by": attributed_by,
                "config_version": snap.version,
                "interleave": interleave,
            }),
        );
        r.headers_mut().insert(&VARIANT, variant.name_header.clone());
        if let Some(id) = parts.headers.get(&REQUEST_ID) {
            r.headers_mut().insert(&REQUEST_ID, id.clone());
        }
        Ok(r)
    }

    /// The variant (index in `snap`) that served `user_id` under the version the event names,
    /// if that version's split is known and its variant still exists.
    fn served_under_version(
        &self,
        snap: &Snapshot,
        event: &Event<'_>,
        headers: &http::HeaderMap,
        user_id: &str,
    ) -> Option<usize> {
        let from_header = || headers.get(&CONFIG_VERSION).and_then(|v| v.to_str().ok()?.trim().parse().ok());
        // An interleaving arm's minted id is `<minted>.<team code>`: the version is in `<minted>`.
        let from_id = || {
            let id = event.request_id.as_deref()?;
            crate::reqid::version_of(id.split_once('.').map_or(id, |(minted, _)| minted).as_bytes())
        };
        let version =
            event.config_version.as_ref().and_then(VersionField::get).or_else(from_header).or_else(from_id)?;
        let recorded = self.runtime.history.load().get(version)?;
        snap.variant_index(recorded.variant_of(user_id.as_bytes()).as_bytes())
    }
}
