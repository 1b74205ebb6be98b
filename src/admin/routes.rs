//! Admin listener routes. `/metrics` and `/health` need no token; everything under `/admin/`
//! needs `Authorization: Bearer <token>` (a configured `[[admin.tokens]]` or `SPLITGATE_ADMIN_TOKEN`).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::change::change;
use super::edit;
use super::error::AdminError;
use super::{views, Admin};
use crate::proxy::{json_response, Body, Proxy};
use crate::snapshot::Snapshot;
use crate::tally::Tallies;

const MAX_ADMIN_BODY: usize = 64 * 1024;

/// Entry point for every admin-listener request. An answer sent before the request body was read
/// to its end (a 401 before a large body, a failed body read) says `Connection: close`, as on
/// the main listener: the connection cannot carry another request, and the client must know.
pub async fn handle<B>(admin: &Arc<Admin>, req: Request<B>) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<crate::error::BoxError>,
{
    let had_body = !hyper::body::Body::is_end_stream(req.body());
    let http1 = req.version() < http::Version::HTTP_2;
    let (mut response, body_read) = answer(admin, req).await;
    if had_body && !body_read && http1 {
        response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
    }
    response
}

/// The answer, and whether the request body was read to its end.
async fn answer<B>(admin: &Arc<Admin>, req: Request<B>) -> (Response<Body>, bool)
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<crate::error::BoxError>,
{
    let proxy = &admin.proxy;
    let snap = proxy.runtime.snapshot.load_full();
    let (method, path, query) =
        (req.method().clone(), req.uri().path().to_owned(), req.uri().query().map(str::to_owned));
    match (&method, path.as_str()) {
        (&Method::GET, "/metrics") => return (proxy.metrics_page(), false),
        (&Method::GET, "/health") => {
            let fleet = admin.fleet.get().map(|f| f.health());
            return (proxy.health_detail(&snap, query.as_deref(), fleet), false);
        }
        (_, "/metrics" | "/health") => return (error(&AdminError::MethodNotAllowed { allow: "GET" }), false),
        _ => {}
    }
    // The dashboard's page and assets carry no data: they load without a token (the page asks
    // for one), and every data call below still needs it.
    if let Some(page) = super::ui::asset(&method, &path) {
        return (page, false);
    }
    if !path.starts_with("/admin/") {
        return (error(&AdminError::NotFound), false);
    }
    let who = match operator(admin, &snap, req.headers()) {
        Some(w) => w,
        None => return (error(&AdminError::Unauthorized), false),
    };
    let expected = req
        .headers()
        .get(http::header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim_matches('"').parse().ok());
    let body_timeout = std::time::Duration::from_millis(snap.plan.server.body_timeout_ms);
    let body = match crate::proxy::read_within(req.into_body(), MAX_ADMIN_BODY, body_timeout).await {
        Ok(b) => b,
        Err(e) => return (error(&AdminError::Body(e)), false),
    };
    let result = route(admin, &snap, &method, &path, query.as_deref(), &who, expected, &body).await;
    match result {
        Ok(v) => (json_response(StatusCode::OK, &v), true),
        Err(e) => (error(&e), true),
    }
}

/// `{"error":{"code","message"}}` with the error's own status (never chosen at the call site).
fn error(e: &AdminError) -> Response<Body> {
    let mut r = json_response(e.status(), &json!({"error": {"code": e.code(), "message": e.to_string()}}));
    if let AdminError::MethodNotAllowed { allow } = e {
        r.headers_mut().insert(http::header::ALLOW, http::HeaderValue::from_static(allow));
    }
    r
}

/// The operator's name, if the bearer token matches.
fn operator(admin: &Admin, snap: &Snapshot, headers: &http::HeaderMap) -> Option<String> {
    let token = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")?.trim();
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    if admin.env_token.is_some_and(|d| d == digest) {
        return Some("env".into());
    }
    snap.plan.admin_tokens.iter().find(|(d, _)| *d == digest).map(|(_, name)| name.clone())
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, AdminError> {
    serde_json::from_slice(body).map_err(AdminError::Json)
}

fn query_flag(query: Option<&str>, name: &str) -> bool {
    query.is_some_and(|q| q.split('&').any(|p| p == name || p == format!("{name}=true") || p == format!("{name}=1")))
}

#[allow(clippy::too_many_arguments)]
async fn route(
    admin: &Admin,
    snap: &Snapshot,
    method: &Method,
    path: &str,
    query: Option<&str>,
    who: &str,
    expected: Option<u64>,
    body: &Bytes,
) -> Result<Value, AdminError> {
    match (method, path) {
        (&Method::GET, "/admin/config") => Ok(config_view(snap)),
        (&Method::GET, "/admin/shadow") => {
            let scope = Scope::of(admin, query)?;
            Ok(scope.annotate(crate::shadow::summary(&snap.shadows, &scope.tallies(snap))))
        }
        (&Method::GET, "/admin/status") => {
            let scope = Scope::of(admin, query)?;
            Ok(scope.annotate(views::status(snap, &scope.tallies(snap))))
        }
        (&Method::GET, "/admin/series") => Ok(super::series::view(admin)),
        (&Method::GET, "/admin/guard") => Ok(super::guard_view::view(admin)),
        (&Method::GET, "/admin/experiment") => {
            let scope = Scope::of(admin, query)?;
            let event = query.and_then(|q| q.split('&').find_map(|p| p.strip_prefix("event="))).unwrap_or("click");
            views::experiment(snap, &scope.tallies(snap), event).map(|v| scope.annotate(v))
        }
        (&Method::GET, "/admin/audit") => {
            let limit = query
                .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("limit=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or(100);
            Ok(super::audit_view::recent(admin, snap, limit).await)
        }
        (&Method::PUT, "/admin/weights") => {
            let mut req: BTreeMap<String, Value> = parse(body)?;
            let reason = req.remove("reason").and_then(|r| r.as_str().map(str::to_owned));
            let weights: BTreeMap<String, f64> = req
                .into_iter()
                .map(|(k, v)| {
                    v.as_f64().map(|w| (k.clone(), w)).ok_or_else(|| AdminError::NotANumber { field: k.clone() })
                })
                .collect::<Result<_, _>>()?;
            if weights.is_empty() {
                return Err(AdminError::NoWeights);
            }
            if query_flag(query, "dry_run") {
                return dry_run(&admin.proxy, snap, &weights);
            }
            let (old, new) =
                change(admin, who, "weights", reason, expected, json!(weights), |t| edit::set_weights(t, &weights))
                    .await?;
            Ok(json!({"old_version": old, "version": new, "weights": live_weights(&admin.proxy)}))
        }
        (&Method::POST, "/admin/promote") => {
            #[derive(serde::Deserialize)]
            struct Promote {
                variant: Option<String>,
                reason: Option<String>,
                /// Promote even while the SRM check flags the split (audited as forced).
                #[serde(default)]
                force: bool,
            }
            let p: Promote =
                if body.is_empty() { Promote { variant: None, reason: None, force: false } } else { parse(body)? };
            let variant = match p.variant {
                Some(v) => v,
                None => only_challenger(snap)?,
            };
            // The fleet's numbers when there is a fleet: one replica's share may look fine.
            let tallies = Scope::of(admin, None).map_or_else(|_| Tallies::local(snap), |s| s.tallies(snap));
            let srm = views::srm(snap, &tallies);
            if srm.flagged && !p.force {
                return Err(AdminError::SrmFlagged { p_value: srm.p_value.unwrap_or(0.0) });
            }
            let detail = if srm.flagged {
                json!({"variant": variant, "forced": true, "srm_p_value": srm.p_value})
            } else {
                json!({"variant": variant})
            };
            let (old, new) =
                change(admin, who, "promote", p.reason, expected, detail, |t| edit::promote(t, &variant)).await?;
            Ok(json!({"old_version": old, "version": new, "weights": live_weights(&admin.proxy)}))
        }
        (&Method::POST, "/admin/rollback") => {
            #[derive(serde::Deserialize)]
            struct Rollback {
                reason: Option<String>,
            }
            let r: Rollback = if body.is_empty() { Rollback { reason: None } } else { parse(body)? };
            let (old, new) = change(admin, who, "rollback", r.reason, expected, json!({}), edit::rollback).await?;
            Ok(json!({"old_version": old, "version": new, "weights": live_weights(&admin.proxy)}))
        }
        _ => Err(AdminError::NotFound),
    }
}

/// Whose numbers a read view shows: this process's, or (with `[fleet]`, unless `?scope=local`)
/// the fleet's merged counters.
enum Scope<'a> {
    Local(Option<&'a crate::fleet::Fleet>),
    Fleet(&'a crate::fleet::Fleet),
}

impl<'a> Scope<'a> {
    fn of(admin: &'a Admin, query: Option<&str>) -> Result<Scope<'a>, AdminError> {
        let asked = query.and_then(|q| q.split('&').find_map(|p| p.strip_prefix("scope=")));
        let fleet = admin.fleet.get().map(|f| &**f);
        match (asked, fleet) {
            (Some("local"), f) => Ok(Scope::Local(f)),
            (None | Some("fleet"), Some(f)) => Ok(Scope::Fleet(f)),
            (None, None) => Ok(Scope::Local(None)),
            (Some("fleet"), None) => Err(AdminError::NoFleet),
            (Some(_), _) => Err(AdminError::BadScope),
        }
    }

    fn tallies(&self, snap: &Snapshot) -> Tallies {
        match self {
            Scope::Local(_) => Tallies::local(snap),
            Scope::Fleet(f) => f.merged(),
        }
    }

    /// Adds `"scope"` (and, for the fleet, who counted) to a view.
    fn annotate(&self, mut v: Value) -> Value {
        let extra = match self {
            Scope::Local(f) => json!({
                "scope": "local",
                "replica_id": f.map(|f| f.replica_id.clone()),
                "leader": f.and_then(|f| f.leader()),
            }),
            Scope::Fleet(f) => f.describe(),
        };
        if let (Value::Object(out), Value::Object(more)) = (&mut v, extra) {
            out.extend(more);
        }
        v
    }
}

fn only_challenger(snap: &Snapshot) -> Result<String, AdminError> {
    let others: Vec<_> = snap.variants.iter().filter(|v| !v.champion).collect();
    match others.as_slice() {
        [one] => Ok(one.name.to_string()),
        _ => Err(AdminError::WhichChallenger),
    }
}

fn live_weights(proxy: &Proxy) -> Value {
    let snap = proxy.runtime.snapshot.load();
    snap.variants
        .iter()
        .map(|v| (v.name.to_string(), json!(v.weight_percent)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn dry_run(proxy: &Proxy, snap: &Snapshot, weights: &BTreeMap<String, f64>) -> Result<Value, AdminError> {
    let before: Vec<edit::VariantView> = snap
        .variants
        .iter()
        .map(|v| edit::VariantView {
            name: v.name.to_string(),
            model: v.model.name.to_string(),
            weight: v.weight_percent,
            champion: v.champion,
        })
        .collect();
    // Apply the edit to a minimal document built from the live split, so file and DynamoDB
    // sources get the same answer.
    let mut text = String::from("[split]\n");
    for v in &before {
        text.push_str(&format!(
            "[[split.variants]]\nname = {:?}\nmodel = {:?}\nweight = {}\nchampion = {}\n",
            v.name, v.model, v.weight, v.champion
        ));
    }
    let after = edit::read_variants(&edit::set_weights(&text, weights)?)?;
    let (moved, total) = edit::estimate_moved(&before, &after, &proxy.traffic.counts());
    Ok(json!({
        "dry_run": true,
        "weights": after.iter().map(|v| (v.name.clone(), json!(v.weight))).collect::<serde_json::Map<_, _>>(),
        "last_hour_requests": total,
        "requests_that_would_change_variant": moved,
        "share_that_would_change_variant": if total == 0 { 0.0 } else { moved as f64 / total as f64 },
    }))
}

fn config_view(snap: &Snapshot) -> Value {
    let p = &snap.plan;
    json!({
        "version": snap.version,
        "digest": snap.digest,
        "source": snap.source.to_string(),
        "keys": p.keys.iter().map(|(_, c)| json!({"name": &*c.name, "allow_override": c.allow_override, "sha256": "<redacted>"})).collect::<Vec<_>>(),
        "throttle": p.throttle.map(|_| json!({"enabled": true})),
        "models": snap.models.iter().map(|m| json!({"name": &*m.name, "version": &*m.version, "backend": m.kind(), "timeout_ms": m.timeout.as_millis() as u64})).collect::<Vec<_>>(),
        "split": {
            "salt": p.salt,
            "user_id_field": p.user_id_field,
            "user_id_header": p.user_id_header.as_str(),
            "variants": snap.variants.iter().map(|v| json!({"name": &*v.name, "model": &*v.model.name, "weight": v.weight_percent, "champion": v.champion, "interleave": v.interleave.as_deref().map(|a| [&*a.models[0].name, &*a.models[1].name])})).collect::<Vec<_>>(),
        },
        "shadows": p.shadows.iter().map(|s| json!({"model": &*snap.models[s.model].name, "sample_percent": f64::from(s.sample_buckets) / 100.0})).collect::<Vec<_>>(),
        "guard": p.guard,
        "experiment": p.experiment,
    })
}
