//! `GET /health`: liveness by default, readiness with `?ready` (fails while draining).

use std::sync::atomic::Ordering;
use std::time::UNIX_EPOCH;

use http::{Response, StatusCode};
use serde_json::json;

use super::{json_response, Body, Proxy};
use crate::snapshot::Snapshot;

impl Proxy {
    pub(crate) fn health(&self, snap: &Snapshot, query: Option<&str>) -> Response<Body> {
        let readiness = query.is_some_and(|q| q.split('&').any(|p| p == "ready" || p.starts_with("ready=")));
        let draining = self.draining.load(Ordering::Relaxed);
        let reload = self.reload.load();
        let status = match (draining, &reload.source_error) {
            (true, _) => "draining",
            (false, Some(_)) => "degraded",
            (false, None) => "ok",
        };
        let code = if readiness && draining { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
        let epoch = |t: std::time::SystemTime| t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let body = json!({
            "status": status,
            "ready": !draining,
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
                "source_error": reload.source_error,
            },
            "variants": snap.variants.iter().map(|v| json!({
                "name": &*v.name,
                "model": &*v.model.name,
                "weight": v.weight_percent,
                "champion": v.champion,
            })).collect::<Vec<_>>(),
            "models": snap.models.iter().map(|m| json!({
                "name": &*m.name,
                "version": &*m.version,
                "backend": m.kind(),
            })).collect::<Vec<_>>(),
            "shadows": snap.plan.shadows.iter().map(|s| json!({
                "model": &*snap.models[s.model].name,
                "sample_percent": f64::from(s.sample_buckets) / 100.0,
            })).collect::<Vec<_>>(),
        });
        json_response(code, &body)
    }
}
