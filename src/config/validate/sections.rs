//! Validation of the optional sections: `[[shadow]]`, AWS targets, `[source]`, `[registry]`,
//! `[cloudwatch]`, `[admin]` and `[guard]`. Pure, like the rest of `validate`.

use super::super::{AdminConfig, GuardConfig, RawConfig, SourceKind};
use std::collections::HashMap;
use std::time::Duration;

use super::{valid_name, AwsTarget, CapturePlan, Issues, ShadowPlan, MAX_TIMEOUT_MS};
use crate::auth::parse_sha256_hex;
use crate::split::percent_to_buckets;

pub(super) fn aws_target(
    issues: &mut Issues,
    path: &str,
    region: &Option<String>,
    endpoint_url: &Option<String>,
) -> AwsTarget {
    if let Some(r) = region {
        if r.is_empty() || !r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            issues.add(format!("{path}.region"), format!("`{r}` is not an AWS region name"));
        }
    }
    if let Some(u) = endpoint_url {
        match u.parse::<http::Uri>() {
            Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {}
            _ => issues.add(format!("{path}.endpoint_url"), format!("`{u}` is not an absolute http(s) URL")),
        }
    }
    AwsTarget { region: region.clone(), endpoint_url: endpoint_url.clone() }
}

pub(super) fn validate_admin(admin: &AdminConfig, issues: &mut Issues) -> Vec<([u8; 32], String)> {
    let mut out = Vec::new();
    for (i, t) in admin.tokens.iter().enumerate() {
        if !valid_name(&t.name) {
            issues.add(format!("admin.tokens[{i}].name"), "must be 1-64 characters of A-Z a-z 0-9 - _ .");
        }
        match parse_sha256_hex(&t.sha256) {
            Some(d) => out.push((d, t.name.clone())),
            None => issues.add(format!("admin.tokens[{i}].sha256"), "must be the 64 hex digits of the token's SHA-256"),
        }
    }
    if admin.audit_log.as_deref() == Some("") {
        issues.add("admin.audit_log", "must not be empty (omit it to keep the audit in memory only)");
    }
    out
}

pub(super) fn validate_guard(issues: &mut Issues, g: &GuardConfig) {
    for (field, v) in [("error_rate", g.error_rate), ("throttle_rate", g.throttle_rate)] {
        if !(v.is_finite() && v > 0.0 && v <= 1.0) {
            issues.add(format!("guard.{field}"), "must be a fraction above 0 and at most 1 (0.05 = 5%)");
        }
    }
    if !(g.latency_ms.is_finite() && g.latency_ms > 0.0) {
        issues.add("guard.latency_ms", "must be above 0");
    }
    for (field, v) in [
        ("error_window_secs", g.error_window_secs),
        ("latency_window_secs", g.latency_window_secs),
        ("throttle_window_secs", g.throttle_window_secs),
    ] {
        if !(1..=86_400).contains(&v) {
            issues.add(format!("guard.{field}"), "must be between 1 and 86400");
        }
    }
    if g.min_requests == 0 {
        issues.add("guard.min_requests", "must be at least 1 (a handful of requests must not roll back a model)");
    }
    if !(100..=60_000).contains(&g.evaluate_every_ms) {
        issues.add("guard.evaluate_every_ms", "must be between 100 and 60000");
    }
    if let Some(r) = &g.ramp {
        let ok = !r.steps.is_empty()
            && r.steps.iter().all(|w| percent_to_buckets(*w).is_some_and(|b| b > 0))
            && r.steps.windows(2).all(|w| w[0] < w[1]);
        if !ok {
            issues.add("guard.ramp.steps", "must be ascending percentages above 0, e.g. [10, 50, 100]");
        }
        if super::super::parse_duration(&r.hold).is_none_or(|d| d.is_zero()) {
            issues.add("guard.ramp.hold", "must be a duration like \"30s\", \"15m\" or \"1h\"");
        }
        if !crate::metrics::FEEDBACK_EVENTS.contains(&r.conversion_event.as_str()) {
            issues.add("guard.ramp.conversion_event", format!("must be one of {:?}", crate::metrics::FEEDBACK_EVENTS));
        }
    }
    if let Some(u) = &g.webhook_url {
        if !matches!(u.parse::<http::Uri>(), Ok(uri) if uri.scheme_str() == Some("http") && uri.host().is_some()) {
            issues.add("guard.webhook_url", "must be an absolute http:// URL");
        }
    }
}

pub(super) fn validate_aws_sections(issues: &mut Issues, raw: &RawConfig) {
    if let Some(s) = &raw.source {
        match s.kind {
            SourceKind::File => {
                if s.table.is_some() || s.key.is_some() || s.endpoint_url.is_some() || s.region.is_some() {
                    issues.add("source", "kind = \"file\" takes no table, key, region or endpoint_url");
                }
            }
            SourceKind::Dynamodb => {
                if s.table.as_deref().is_none_or(str::is_empty) {
                    issues.add("source.table", "required for kind = \"dynamodb\"");
                }
                if s.key.as_deref().is_none_or(str::is_empty) {
                    issues.add("source.key", "required for kind = \"dynamodb\" (the item's pk)");
                }
                if !(100..=3_600_000).contains(&s.poll_interval_ms) {
                    issues.add("source.poll_interval_ms", "must be between 100 and 3600000");
                }
                aws_target(issues, "source", &s.region, &s.endpoint_url);
            }
        }
    }
    if let Some(r) = &raw.registry {
        if r.table.is_empty() {
            issues.add("registry.table", "must not be empty");
        }
        aws_target(issues, "registry", &r.region, &r.endpoint_url);
    }
    if let Some(c) = &raw.cloudwatch {
        if c.namespace.is_empty() || c.namespace.starts_with("AWS/") || c.namespace.len() > 255 {
            issues.add("cloudwatch.namespace", "must be 1-255 characters and not start with `AWS/`");
        }
        if c.environment.is_empty() || c.environment.len() > 255 {
            issues.add("cloudwatch.environment", "must be 1-255 characters");
        }
        if !(1..=3_600).contains(&c.interval_secs) {
            issues.add("cloudwatch.interval_secs", "must be between 1 and 3600");
        }
        aws_target(issues, "cloudwatch", &c.region, &c.endpoint_url);
    }
}

pub(super) fn validate_shadows(
    issues: &mut Issues,
    raw: &RawConfig,
    split_salt: &str,
    model_index: &HashMap<&str, usize>,
) -> Vec<ShadowPlan> {
    let mut out = Vec::new();
    for (i, s) in raw.shadow.iter().enumerate() {
        let path = format!("shadow[{i}]");
        let model = model_index.get(s.model.as_str()).copied();
        if model.is_none() {
            issues.add(format!("{path}.model"), format!("no model named `{}` in [models]", s.model));
        }
        let sample = percent_to_buckets(s.sample_percent);
        if sample.is_none() {
            issues
                .add(format!("{path}.sample_percent"), "must be a percentage from 0 to 100 with at most two decimals");
        }
        if !(1..=1_000_000).contains(&s.queue_capacity) {
            issues.add(format!("{path}.queue_capacity"), "must be between 1 and 1000000");
        }
        if !(1..=100_000).contains(&s.max_in_flight) {
            issues.add(format!("{path}.max_in_flight"), "must be between 1 and 100000");
        }
        if !(1..=MAX_TIMEOUT_MS).contains(&s.timeout_ms) {
            issues.add(format!("{path}.timeout_ms"), format!("must be between 1 and {MAX_TIMEOUT_MS}"));
        }
        if !(s.items_pointer.is_empty() || s.items_pointer.starts_with('/')) {
            issues.add(format!("{path}.items_pointer"), "must be a JSON pointer: empty or starting with `/`");
        }
        if s.id_field.is_empty() {
            issues.add(format!("{path}.id_field"), "must not be empty");
        }
        if !(1..=1_000).contains(&s.k) {
            issues.add(format!("{path}.k"), "must be between 1 and 1000");
        }
        if !(0.0..=1.0).contains(&s.capture_below_overlap) {
            issues.add(format!("{path}.capture_below_overlap"), "must be between 0 and 1");
        }
        if !(s.capture_per_second.is_finite() && s.capture_per_second > 0.0 && s.capture_per_second <= 100_000.0) {
            issues.add(format!("{path}.capture_per_second"), "must be above 0 and at most 100000");
        }
        if s.capture_max_bytes < 4_096 {
            issues.add(format!("{path}.capture_max_bytes"), "must be at least 4096");
        }
        if !(1..=100).contains(&s.capture_files) {
            issues.add(format!("{path}.capture_files"), "must be between 1 and 100");
        }
        if s.capture_path.as_deref() == Some("") {
            issues.add(format!("{path}.capture_path"), "must not be empty (omit it to disable capture)");
        }
        let capture = s.capture_path.as_ref().map(|p| CapturePlan {
            path: p.into(),
            below_overlap: s.capture_below_overlap,
            per_second: s.capture_per_second,
            max_bytes: s.capture_max_bytes,
            files: s.capture_files,
            raw_user_id: s.capture_raw_user_id,
        });
        if let (Some(model), Some(sample_buckets)) = (model, sample) {
            out.push(ShadowPlan {
                model,
                sample_buckets,
                queue_capacity: s.queue_capacity,
                max_in_flight: s.max_in_flight,
                timeout: Duration::from_millis(s.timeout_ms),
                salt: s.salt.clone().unwrap_or_else(|| format!("{split_salt}:shadow")),
                items_pointer: s.items_pointer.clone(),
                id_field: s.id_field.clone(),
                k: s.k,
                capture,
            });
        }
    }
    out
}
