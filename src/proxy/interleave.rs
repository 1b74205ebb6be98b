//! The interleaving stage: an arm's request calls both of its models at once with the caller's
//! body, then answers with their team-draft merge (or, when one fails or misses the wait, with
//! the other's answer unchanged). It writes what happened into `record::Facts`; the one `finish`
//! records it through [`Arm::record`]. The pure parts are in `crate::interleave`.
//!
//! **Design of the credit, across replicas.** `/feedback` names a request and an item, and may
//! land on any replica. Nothing is stored per request: every answer of an arm carries a *team
//! code* (`interleave::code`: each position's team and item fingerprint, tagged with the salt,
//! the arm and the request id). When splitgate minted the request id, the answer's
//! `x-request-id` is `<minted>.<code>`, so a caller that feeds back the id it got needs nothing
//! else; the code is also in `x-splitgate-teams`, which callers that bring their own id send back
//! as `teams`. The models are called with the plain id (`<minted>` or the caller's), which is
//! also what the merge's seed is computed from.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use metrics::Counter;

use super::MODEL;
use crate::backend::{Model, ModelRequest, ModelResponse};
use crate::config::InterleavePlan;
use crate::error::ProxyError;
use crate::interleave::answer::{self, Ranked};
use crate::interleave::code::{self, Located};
use crate::interleave::facts::{Fact, Feedback, Outcome, Served};
use crate::interleave::wait::{self, Settled};
use crate::interleave::{merge, page, Counters, Credit, Missing, Team};
use crate::metrics::{Metrics, INTERLEAVE_CREDITS, INTERLEAVE_REQUESTS};
use crate::record::{Facts, ModelError};
use crate::snapshot::Variant;

pub(crate) static INTERLEAVE: http::HeaderName = http::HeaderName::from_static("x-splitgate-interleave");
pub(crate) static TEAMS: http::HeaderName = http::HeaderName::from_static("x-splitgate-teams");

/// An interleaving arm as the request path needs it, built with the snapshot.
pub struct Arm {
    /// `[A, B]`, as in `interleave = [A, B]`.
    pub models: [Arc<Model>; 2],
    pub plan: InterleavePlan,
    /// `<A's version>+<B's version>`: `x-splitgate-model` and the access log's `model` for a
    /// merged answer.
    pub versions: Arc<str>,
    pub versions_header: HeaderValue,
    /// Counters kept across reloads while the arm compares the same two models.
    pub counters: Arc<Counters>,
    metrics: ArmMetrics,
}

/// `splitgate_interleave_requests_total{variant,outcome}` and
/// `splitgate_interleave_credits_total{variant,team}`, resolved once per snapshot.
struct ArmMetrics {
    /// merged, degraded, failed.
    requests: [Counter; 3],
    /// a, b, none.
    credits: [Counter; 3],
}

impl Arm {
    pub fn new(
        variant: &str,
        plan: &InterleavePlan,
        models: &[Arc<Model>],
        metrics: &Metrics,
        slot: &crate::interleave::Slot,
    ) -> Option<Arm> {
        let [a, b] = plan.models.map(|i| models.get(i).cloned());
        let models = [a?, b?];
        let versions: Arc<str> = format!("{}+{}", models[0].version, models[1].version).into();
        let pair = models.clone().map(|m| (m.name.to_string(), m.version.to_string()));
        Some(Arm {
            versions_header: HeaderValue::from_str(&versions).unwrap_or_else(|_| HeaderValue::from_static("invalid")),
            versions,
            counters: slot.bind(pair),
            metrics: ArmMetrics {
                requests: ["merged", "degraded", "failed"]
                    .map(|o| metrics.counter(INTERLEAVE_REQUESTS, &[("variant", variant), ("outcome", o)])),
                credits: ["a", "b", "none"]
                    .map(|t| metrics.counter(INTERLEAVE_CREDITS, &[("variant", variant), ("team", t)])),
            },
            models,
            plan: plan.clone(),
        })
    }

    /// `A+B` by model name: the `model` label of the arm's metrics.
    pub fn label(&self) -> String {
        format!("{}+{}", self.models[0].name, self.models[1].name)
    }

    /// Records one request's interleaving facts (called by the one recording step only).
    pub fn record(&self, fact: &Fact) {
        match fact {
            Fact::Served(s) => {
                match s.outcome {
                    Outcome::Merged { n, b_mask } => {
                        self.counters.merged(n, b_mask);
                        self.metrics.requests[0].increment(1);
                    }
                    Outcome::Degraded { served, missing } => {
                        self.counters.degraded(served.other(), missing);
                        self.metrics.requests[1].increment(1);
                    }
                    Outcome::Failed => {
                        self.counters.failed();
                        self.metrics.requests[2].increment(1);
                    }
                }
                if let Some(c) = s.b_error.and_then(|e| self.models[1].metrics.errors.get(e.code)) {
                    c.increment(1);
                }
            }
            Fact::Feedback(f) => {
                self.counters.credit(f.key, f.b_mask, f.event, f.credit);
                let team = match f.credit {
                    Credit::Team { team, .. } => team.index(),
                    _ => 2,
                };
                self.metrics.credits[team].increment(1);
            }
        }
    }

    /// The model of `team`.
    pub fn model(&self, team: Team) -> &Model {
        &self.models[team.index()]
    }
}

/// One model's call, with its list when it is usable.
type Call = (Result<ModelResponse, ProxyError>, Option<Ranked>);

/// Why a settled call is not usable.
fn missing(s: &Settled<Call>) -> Missing {
    match s {
        Settled::Late => Missing::Late,
        Settled::Done((Ok(r), _)) if r.status.is_success() => Missing::Unusable,
        Settled::Done(_) => Missing::Failed,
    }
}

/// Calls both of `arm`'s models with `req` and answers with their merge (see the module doc).
/// `Err` only when neither answered at all, with team A's error (then, as for any variant, a
/// configured champion fallback applies).
pub(crate) async fn serve(
    arm: &Arm,
    variant: &Variant,
    salt: &str,
    req: ModelRequest<'_>,
    minted: bool,
    ctx: &mut Facts,
) -> Result<ModelResponse, ProxyError> {
    let p = &arm.plan;
    let call = |m: &Arc<Model>| {
        let m = m.clone();
        async move {
            let r = m.invoke(req).await;
            let ranked = match &r {
                Ok(resp) if resp.status.is_success() => {
                    answer::ranked(&resp.body, &p.items_pointer, &p.id_field, p.k).ok()
                }
                _ => None,
            };
            (r, ranked)
        }
    };
    let (sa, sb) = wait::both(call(&arm.models[0]), call(&arm.models[1]), p.wait, |c: &Call| c.1.is_some()).await;
    let error_of = |s: &Settled<Call>| match s {
        Settled::Done((Err(e), _)) => Some(ModelError::of(e)),
        _ => None,
    };
    ctx.model_error = error_of(&sa);
    let b_error = error_of(&sb);
    let (missing_a, missing_b) = (missing(&sa), missing(&sb));
    let base = req.request_id.as_bytes();
    let (outcome, answer, code) = match (sa.done(), sb.done()) {
        (Some((Ok(a), Some(ra))), Some((Ok(b), Some(rb)))) => {
            let seed = merge::seed(salt, req.user_id.as_bytes(), base);
            let tag = page::Tag { salt, variant: &variant.name, request_id: base };
            let page = page::merge((&a.body, &ra), (&b.body, &rb), p.k, seed, tag);
            let outcome = Outcome::Merged { n: page.picks.len(), b_mask: page.b_mask };
            let merged = ModelResponse { status: a.status, content_type: a.content_type, body: Bytes::from(page.body) };
            (outcome, Ok(merged), Some(page.code))
        }
        (Some((Ok(a), Some(_))), _) => (
            Outcome::Degraded { served: Team::A, missing: missing_b },
            Ok(a),
            Some(empty_code(salt, &variant.name, base)),
        ),
        (_, Some((Ok(b), Some(_)))) => (
            Outcome::Degraded { served: Team::B, missing: missing_a },
            Ok(b),
            Some(empty_code(salt, &variant.name, base)),
        ),
        // Neither is usable: whatever answer there is, A's first, else A's error.
        (a, b) => {
            let answer = match (a, b) {
                (Some((Ok(r), _)), _) | (_, Some((Ok(r), _))) => Ok(r),
                (Some((Err(e), _)), _) | (None, Some((Err(e), _))) => Err(e),
                // Unreachable: a Late side needs a usable other side.
                (None, None) => Err(ProxyError::UpstreamFailed {
                    model: arm.models[0].name.to_string(),
                    message: "no answer".into(),
                }),
            };
            (Outcome::Failed, answer, None)
        }
    };
    let code = code.and_then(|c| HeaderValue::from_str(&c).ok());
    let request_id = code.as_ref().filter(|_| minted).and_then(|c| {
        let mut id = Vec::with_capacity(base.len() + 1 + c.len());
        id.extend_from_slice(base);
        id.push(b'.');
        id.extend_from_slice(c.as_bytes());
        HeaderValue::from_bytes(&id).ok()
    });
    ctx.interleave = Some(Fact::Served(Served { outcome, b_error, request_id, code }));
    answer
}

/// The code of a degraded answer: zero positions, so feedback knows it is this arm's and that
/// it carries no preference.
fn empty_code(salt: &str, variant: &str, base: &[u8]) -> String {
    code::encode(salt, variant, base, 0, &[])
}

/// Sets the arm's answer headers: `x-splitgate-interleave`, `x-splitgate-teams`, the model
/// versions, and the minted id with its code. Nothing when the champion answered instead.
pub(crate) fn decorate(h: &mut HeaderMap, arm: &Arm, ctx: &Facts) {
    let Some(Fact::Served(s)) = &ctx.interleave else { return };
    if ctx.fallback {
        return;
    }
    h.insert(&INTERLEAVE, HeaderValue::from_static(s.outcome.as_str()));
    match s.outcome {
        Outcome::Merged { .. } => {
            h.insert(&MODEL, arm.versions_header.clone());
        }
        Outcome::Degraded { served, .. } => {
            h.insert(&MODEL, arm.model(served).version_header.clone());
        }
        Outcome::Failed => {}
    }
    if let Some(c) = &s.code {
        h.insert(&TEAMS, c.clone());
    }
    if let Some(id) = &s.request_id {
        h.insert(&super::REQUEST_ID, id.clone());
    }
}

/// The request id to log (an arm's answer with a minted id carries its code) and the exposure.
pub(crate) fn logged(facts: &Facts, request_id: HeaderValue) -> (HeaderValue, Option<Outcome>) {
    match &facts.interleave {
        Some(Fact::Served(s)) if !facts.fallback => (s.request_id.clone().unwrap_or(request_id), Some(s.outcome)),
        _ => (request_id, None),
    }
}

/// The model versions to log for an arm's answer.
pub(crate) fn logged_model(arm: &Arm, fact: Option<&Fact>) -> Arc<str> {
    match fact {
        Some(Fact::Served(Served { outcome: Outcome::Merged { .. }, .. })) => arm.versions.clone(),
        Some(Fact::Served(Served { outcome: Outcome::Degraded { served, .. }, .. })) => {
            arm.model(*served).version.clone()
        }
        _ => arm.models[0].version.clone(),
    }
}

/// What `/feedback` learns for an interleaving arm: the arm (a variant index), and the fact to
/// record; `None` when the event is not for any arm's interleaved answer.
pub(crate) struct Attribution {
    pub variant: usize,
    pub feedback: Feedback,
}

/// Finds the arm whose team code `request_id` (`<id>.<code>`) or `teams` carries, and places
/// `item_id` on its page.
pub(crate) fn attribute(
    variants: &[Variant],
    salt: &str,
    request_id: Option<&str>,
    teams: Option<&str>,
    item_id: Option<&str>,
    event: usize,
) -> Option<Attribution> {
    let request_id = request_id?;
    let candidates = [teams.map(|t| (request_id, t)), code::split_request_id(request_id)];
    for (base, text) in candidates.into_iter().flatten() {
        for (vi, v) in variants.iter().enumerate().filter(|(_, v)| v.interleave.is_some()) {
            let Some(c) = code::decode(salt, &v.name, base.as_bytes(), text) else { continue };
            let credit = match item_id {
                _ if c.n == 0 => Credit::Degraded,
                None => Credit::NoItem,
                Some(item) => match c.locate(code::fingerprint(base.as_bytes(), item)) {
                    Located::At { position, team } => Credit::Team { team, position },
                    Located::NotShown => Credit::NotShown,
                    Located::Ambiguous => Credit::Ambiguous,
                },
            };
            let key = code::fnv1a64(&[base.as_bytes()]);
            return Some(Attribution { variant: vi, feedback: Feedback { key, b_mask: c.b_mask, event, credit } });
        }
    }
    None
}

/// Feedback attributed to `variant`: when it is an arm, records the code's credit (or, without
/// a verifiable code, none) and returns the answer's `interleave` object; `null` otherwise.
pub(crate) fn feedback(variant: &Variant, found: Option<Feedback>, event: usize, ctx: &mut Facts) -> serde_json::Value {
    let Some(arm) = variant.interleave.as_deref() else { return serde_json::Value::Null };
    let f = found.unwrap_or(Feedback { key: 0, b_mask: 0, event, credit: Credit::NoCode });
    ctx.interleave = Some(Fact::Feedback(f));
    feedback_view(arm, &f)
}

/// The feedback answer's `interleave` object.
fn feedback_view(arm: &Arm, f: &Feedback) -> serde_json::Value {
    match f.credit {
        Credit::Team { team, position } => serde_json::json!({
            "credited": true,
            "team": team.as_str(),
            "model": &*arm.model(team).name,
            "position": position,
        }),
        other => serde_json::json!({"credited": false, "team": null, "reason": other.reason()}),
    }
}
