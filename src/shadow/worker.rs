//! The shadow worker: drains one shadow's queue under its concurrency limit, calls the model and
//! compares the two answers.

use std::sync::Arc;
use std::time::Instant;

use http::header::{ACCEPT, CONTENT_TYPE};
use tokio::sync::{mpsc, Semaphore};

use super::compare::{compare, extract_ids};
use super::{Job, LaneState};
use crate::backend::ModelRequest;
use crate::error::ProxyError;

/// Runs until every sender (every snapshot holding this lane) is gone.
pub(crate) async fn run(mut rx: mpsc::Receiver<Job>, limit: Arc<Semaphore>, state: Arc<LaneState>) {
    while let Some(job) = rx.recv().await {
        state.queue_depth.decrement(1.0);
        // The semaphore is never closed, so this only waits for a free slot.
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let state = state.clone();
        tokio::spawn(async move {
            execute(job, &state).await;
            drop(permit);
        });
    }
}

async fn execute(job: Job, state: &LaneState) {
    let request = ModelRequest {
        body: &job.body,
        content_type: job.headers.get(CONTENT_TYPE),
        accept: job.headers.get(ACCEPT),
        headers: &job.headers,
        request_id: &job.request_id,
        trace: &job.trace,
        user_id: &job.user_id,
        shadow: true,
    };
    let started = Instant::now();
    let result = job.model.invoke_within(request, job.cfg.timeout).await;
    let latency = started.elapsed();
    state.duration.record(latency.as_secs_f64());
    if let Err(e) = &result {
        job.model.count_error(e);
    }

    let shadow_body = match &result {
        Ok(a) if a.status.is_success() => {
            state.ok.increment(1);
            Some(&a.body)
        }
        Err(ProxyError::UpstreamTimeout { .. }) => {
            state.timeout.increment(1);
            None
        }
        _ => {
            state.failed.increment(1);
            None
        }
    };
    let primary_ok = job.primary.status.is_some_and(|s| (200..300).contains(&s));
    let cfg = &job.cfg;

    let mut comparison = None;
    match (primary_ok, shadow_body) {
        (true, Some(shadow_body)) => {
            let a = extract_ids(&job.primary.body, &cfg.items_pointer, &cfg.id_field, cfg.k);
            let b = extract_ids(shadow_body, &cfg.items_pointer, &cfg.id_field, cfg.k);
            match (a, b) {
                (Ok(a), Ok(b)) => {
                    let c = compare(&a, &b, cfg.k);
                    state.overlap.record(c.overlap_at_k);
                    if let Some(cw) = &cfg.cloudwatch {
                        cw.record(c.overlap_at_k);
                    }
                    state.rbo.record(c.rbo);
                    state.top1[usize::from(c.top1_match)].increment(1);
                    let (p, s) = (job.primary.latency.as_secs_f64(), latency.as_secs_f64());
                    if s >= p {
                        state.slower.record(s - p);
                    } else {
                        state.faster.record(p - s);
                    }
                    if let Some(cap) =
                        cfg.capture.as_ref().filter(|cap| c.overlap_at_k < cap.plan.below_overlap && cap.allow())
                    {
                        cap.write(capture_line(&job, &a, &b, c.overlap_at_k, latency, cap.plan.raw_user_id));
                    }
                    comparison = Some(c);
                }
                (Err(_), _) => state.mismatch_primary_unparseable.increment(1),
                (_, Err(_)) => state.mismatch_shadow_unparseable.increment(1),
            }
        }
        (true, None) => state.mismatch_shadow_failed.increment(1),
        (false, Some(_)) => state.mismatch_primary_failed.increment(1),
        (false, None) => {}
    }

    let primary_latency = job.primary.latency;
    let failed = shadow_body.is_none();
    state.record(|t| {
        t.mirrored += 1;
        t.failed += u64::from(failed);
        t.primary.record(primary_latency.as_secs_f64() * 1e6);
        t.shadow.record(latency.as_secs_f64() * 1e6);
        if let Some(c) = comparison {
            t.compared += 1;
            t.overlap_sum += c.overlap_at_k;
            t.rbo_sum += c.rbo;
            t.top1_matches += u64::from(c.top1_match);
        }
    });
}

fn capture_line(
    job: &Job,
    a: &[std::borrow::Cow<'_, str>],
    b: &[std::borrow::Cow<'_, str>],
    overlap: f64,
    latency: std::time::Duration,
    raw: bool,
) -> String {
    let user = if raw {
        job.user_id.to_string()
    } else {
        format!("{:016x}", crate::split::stable_hash(&job.cfg.salt, job.user_id.as_bytes()))
    };
    serde_json::json!({
        "request_id": job.request_id.to_str().unwrap_or(""),
        "user": user,
        "user_is_hash": !raw,
        "overlap_at_k": overlap,
        "primary_items": a,
        "shadow_items": b,
        "primary_latency_ms": job.primary.latency.as_secs_f64() * 1e3,
        "shadow_latency_ms": latency.as_secs_f64() * 1e3,
    })
    .to_string()
}
