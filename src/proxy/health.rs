//! `GET /health`: liveness by default, readiness with `?ready` (fails while draining).
//!
//! The main listener answers anyone, so it tells status only. The admin listener's `/health`
//! adds what an operator needs (config identity, reload outcomes, variants, models), without the
//! config text: rejection reasons carry line and column only (see `config::SyntaxError`).

use std::sync::atomic::Ordering;
use std::time::UNIX_EPOCH;

use http::{Response, StatusCode};
use serde_json::{json, Value};

use super::{json_response, Body, Proxy};
use crate::snapshot::Snapshot;

impl Proxy {
    /// The main listener's `/health`: `{"status": "ok"|"degraded"|"draining", "ready": bool}`.
    pub(crate) fn health(&self, _snap: &Snapshot, query: Option<&str>) -> Response<Body> {
        let (code, body) = self.status(query);
        json_response(code, &body)
    }

    /// The admin listener's `/health`: the status plus the config and reload details.
    /// `fleet`: the fleet's state with `[fleet]` (`"fleet": "ok"|"degraded"` plus details).
    pub(crate) fn health_detail(&self, snap: &Snapshot, query: Option<&str>, fleet: Option<Value>) -> Response<Body> {
        let (code, mut body) = self.status(query);
        let reload = self.runtime.status.load();
        let epoch = |t: std::time::SystemTime| t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let detail = json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_seconds": self.started.elapsed().as_secs(),
            "config": {
                "version": snap.version,
                "digest": snap.digest,
                "source": snap.source.to_string(),
                "loaded_at": epoch(snap.loaded_at),
                "reloads_applied": reload.applied,
                "reloads_rejected": reload.rejected,
                "last_reload_error": reload.last_error,
                "last_reload_error_at": reload.last_error_at.map(epoch),
                "restart_pending": reload.restart_pending,
                "source_error": reload.source_error,
            },
            "variants": snap.variants.iter().map(|v| json!({
                "name": &*v.name,
                "model": &*v.model.name,
                "weight": v.weight_percent,
                "champion": v.champion,
                "interleave": v.interleave.as_deref().map(|a| [&*a.models[0].name, &*a.models[1].name]),
            })).collect::<Vec<_>>(),
            "models": snap.models.iter().map(|m| {
                let mut model = json!({"name": &*m.name, "version": &*m.version, "backend": m.kind()});
                if let (Some(how), Value::Object(o)) = (m.sagemaker_client(), &mut model) {
                    o.insert("sagemaker_client".into(), how.into());
                }
                model
            }).collect::<Vec<_>>(),
            "shadows": snap.plan.shadows.iter().map(|s| json!({
                "model": &*snap.models[s.model].name,
                "sample_percent": f64::from(s.sample_buckets) / 100.0,
            })).collect::<Vec<_>>(),
        });
        if let (Value::Object(out), Value::Object(more)) = (&mut body, detail) {
            out.extend(more);
            if let Some(f) = fleet {
                out.insert("fleet".into(), f["state"].clone());
                out.insert("fleet_detail".into(), f);
            }
        }
        json_response(code, &body)
    }

    /// Status and readiness; 503 for `?ready` while draining.
    fn status(&self, query: Option<&str>) -> (StatusCode, Value) {
        let readiness = query.is_some_and(|q| q.split('&').any(|p| p == "ready" || p.starts_with("ready=")));
        let draining = self.draining.load(Ordering::Relaxed);
        let status = match (draining, &self.runtime.status.load().source_error) {
            (true, _) => "draining",
            (false, Some(_)) => "degraded",
            (false, None) => "ok",
        };
        let code = if readiness && draining { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
        (code, json!({"status": status, "ready": !draining}))
    }
}
