//! What operators look at, against the real binary: the dashboard page and its headers on the
//! admin listener (data routes still 401 without the token), `/admin/series` filling its
//! 10-second ring, `/admin/guard`'s trigger readings, and `/metrics` hygiene — build info,
//! process metrics, open connections, live weights, guard rollbacks at 0 from the start, no
//! impossible label combinations — and that every metric named in `config/grafana/splitgate.json`
//! and `config/prometheus/alerts.yml` is one `/metrics` exports.
//! The page in a real browser is `tests/browser/dashboard.test.mjs`.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use http::Method;
use support::*;

fn start() -> Proxy {
    Proxy::start(
        Conf::builtin(90.0, 10.0)
            .model_builtin("rec-v2-4", "v2.4.0")
            .shadow("rec-v2-4", |s| s.sample_percent(100.0))
            .guard(|g| g.min_requests(20))
            .ramp(&[10.0, 50.0, 100.0], "15m"),
    )
}

async fn traffic(p: &Proxy, prefix: &str, n: usize) {
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    variants_of(&p.url("/recommend"), &ids, 4).await;
}

/// Metric family names in a Prometheus text exposition (from its sample lines).
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// Every `splitgate_*` / `process_*` identifier in `text` (PromQL in JSON or YAML).
fn referenced(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    for prefix in ["splitgate_", "process_"] {
        let mut from = 0;
        while let Some(i) = text[from..].find(prefix).map(|i| i + from) {
            let starts_word = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
            let end = text[i..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(text.len(), |e| e + i);
            if starts_word {
                out.insert(text[i..end].to_owned());
            }
            from = end;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_page_is_served_with_strict_headers_and_data_needs_the_token() {
    let p = start();
    for path in ["/", "/ui", "/ui/app.js", "/ui/app.css"] {
        let (status, headers, body) = get(&p.admin_url(path)).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(header(&headers, "x-frame-options"), "DENY");
        assert_eq!(header(&headers, "referrer-policy"), "no-referrer");
        assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
        let csp = header(&headers, "content-security-policy");
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
        assert!(!body.is_empty());
    }
    let (_, _, page) = get(&p.admin_url("/")).await;
    let page = String::from_utf8_lossy(&page);
    assert!(page.contains(r#"<script src="/ui/app.js" defer></script>"#) && page.contains(r#"id="login""#));
    for path in ["/admin/series", "/admin/guard", "/admin/status"] {
        let (status, _, body) = get(&p.admin_url(path)).await;
        assert_eq!(status, 401, "{path}");
        assert_eq!(json(&body)["error"]["code"], "unauthorized");
    }
    // The main listener serves no dashboard.
    assert_eq!(get(&p.url("/ui")).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_fill_ten_second_points_and_the_guard_reports_its_triggers() {
    let p = start();
    traffic(&p, "series", 200).await;
    // The first point closes 10 s after start (the sampler's first reading is the baseline).
    let series = eventually(Duration::from_secs(30), "a series point with the traffic", || async {
        let (status, _, body) = admin(&p, Method::GET, "/admin/series", None, &[]).await;
        let v = json(&body);
        let counted: u64 = v["variants"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|x| x["points"].as_array().cloned().unwrap_or_default())
            .map(|pt| pt["requests"].as_u64().unwrap_or(0))
            .sum();
        if status == 200 && counted == 200 {
            Ok(v)
        } else {
            Err(v.to_string())
        }
    })
    .await;
    assert_eq!((series["step_seconds"].as_u64(), series["capacity"].as_u64()), (Some(10), Some(90)));
    let champion = &series["variants"][0];
    assert_eq!(champion["name"], "champion");
    let point = &champion["points"][0];
    assert!(point["rps"].as_f64().unwrap() > 0.0 && point["error_rate"] == 0.0, "{point}");
    assert!(
        point["p50_ms"].as_f64().unwrap() > 0.0
            && point["p99_ms"].as_f64().unwrap() >= point["p50_ms"].as_f64().unwrap()
    );
    let overlap = &series["shadows"][0]["overlap_at_k"];
    assert_eq!(series["shadows"][0]["model"], "rec-v2-4");
    assert!(overlap.as_array().unwrap().iter().map(|b| b["count"].as_u64().unwrap()).sum::<u64>() > 0, "{overlap}");

    let guard = eventually(Duration::from_secs(5), "the guard's view", || async {
        let v = json(&admin(&p, Method::GET, "/admin/guard", None, &[]).await.2);
        if v["variants"][0]["triggers"][0]["requests"].as_u64().unwrap_or(0) > 0 {
            Ok(v)
        } else {
            Err(v.to_string())
        }
    })
    .await;
    assert_eq!(guard["enabled"], true);
    let challenger = &guard["variants"][0];
    assert_eq!(challenger["name"], "challenger");
    let triggers: Vec<&str> =
        challenger["triggers"].as_array().unwrap().iter().map(|t| t["trigger"].as_str().unwrap()).collect();
    assert_eq!(triggers, ["error_rate", "latency", "invocation_errors", "throttling"]);
    assert_eq!(challenger["triggers"][0]["threshold"], 0.05);
    assert_eq!(challenger["triggers"][0]["breached"], false);
    assert_eq!(challenger["ramp"]["next_step"], 50.0);
    assert!(challenger["ramp"]["time_to_next_secs"].as_f64().unwrap() > 800.0, "{challenger}");
    assert_eq!(guard["last_rollback"], serde_json::Value::Null);

    let (status, _, _) =
        admin(&p, Method::POST, "/admin/rollback", Some(serde_json::json!({"reason": "drill"})), &[]).await;
    assert_eq!(status, 200);
    let guard = json(&admin(&p, Method::GET, "/admin/guard", None, &[]).await.2);
    assert_eq!(guard["last_rollback"]["reason"], "drill");
    assert_eq!(guard["last_rollback"]["who"], "ops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_carry_build_process_connection_and_weight_series_and_no_impossible_ones() {
    let p = start();
    let text = p.metrics().await;
    let version = env!("CARGO_PKG_VERSION");
    assert!(text.contains(&format!(r#"splitgate_build_info{{version="{version}",commit=""#)), "{text}");
    for name in
        ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds"]
    {
        assert!(metric(&text, name).is_some(), "{name} missing:\n{text}");
    }
    assert!(metric(&text, "process_resident_memory_bytes").unwrap() > 1e6);
    assert!(
        metric(&text, r#"splitgate_variant_weight{variant="challenger",model="rec-v2-3"}"#) == Some(10.0),
        "{text}"
    );
    assert!(metric(&text, r#"splitgate_variant_weight{variant="champion",model="rec-v2-2"}"#) == Some(90.0));
    for trigger in ["error_rate", "latency", "invocation_errors", "throttling"] {
        let series = format!(r#"splitgate_guard_rollbacks_total{{variant="challenger",trigger="{trigger}"}}"#);
        assert_eq!(metric(&text, &series), Some(0.0), "{series} at 0 from start:\n{text}");
    }
    assert!(!text.contains(r#"kind="missing_user_id""#), "a model call never fails for a missing user id");
    assert!(!text.contains(r#"route="admin""#) && !text.contains(r#"class="1xx""#));
    // This scrape holds one admin connection open.
    assert!(metric(&text, r#"splitgate_open_connections{listener="admin"}"#).unwrap() >= 1.0, "{text}");

    // A held-open main connection is counted, and uncounted when it closes.
    let held = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    wait_metric(&p, r#"splitgate_open_connections{listener="main"}"#, 1.0).await;
    drop(held);
    eventually(Duration::from_secs(5), "the closed connection uncounted", || async {
        let v = value(&p, r#"splitgate_open_connections{listener="main"}"#).await;
        if v == 0.0 {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
    .await;

    // After a weight edit the gauge follows the live split.
    let body = serde_json::json!({"challenger": 30});
    assert_eq!(admin(&p, Method::PUT, "/admin/weights", Some(body), &[]).await.0, 200);
    assert_eq!(value(&p, r#"splitgate_variant_weight{variant="challenger",model="rec-v2-3"}"#).await, 30.0);

    // promtool, where installed (CI installs it), finds nothing wrong with the exposition.
    if let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(p.metrics().await.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let findings = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && findings.trim().is_empty(), "promtool check metrics: {findings}");
    } else {
        eprintln!("promtool not installed: `promtool check metrics` skipped");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_in_the_grafana_dashboard_and_the_alert_rules_is_exported() {
    let p = start();
    // Traffic through every family the dashboard draws: requests, latency, shadows, feedback.
    traffic(&p, "names", 50).await;
    wait_metric(&p, r#"splitgate_shadow_requests_total{shadow="rec-v2-4",outcome="ok"}"#, 1.0).await;
    let names = exported(&p.metrics().await);
    let root = env!("CARGO_MANIFEST_DIR");
    let dashboard = std::fs::read_to_string(format!("{root}/config/grafana/splitgate.json")).unwrap();
    let rules = std::fs::read_to_string(format!("{root}/config/prometheus/alerts.yml")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    assert_eq!(dash["uid"], "splitgate");
    assert!(dash["panels"].as_array().unwrap().len() >= 10);
    for (file, text) in [("config/grafana/splitgate.json", &dashboard), ("config/prometheus/alerts.yml", &rules)] {
        let used = referenced(text);
        assert!(used.len() >= 8, "{file}: {used:?}");
        let missing: Vec<_> = used.iter().filter(|n| !names.contains(*n)).collect();
        assert!(missing.is_empty(), "{file} uses metrics /metrics does not export: {missing:?}\nexported: {names:?}");
    }
    // The dashboard has the panels the issue lists.
    let titles: String = dash["panels"].as_array().unwrap().iter().map(|p| p["title"].as_str().unwrap_or("")).collect();
    for want in ["by variant", "Error", "heatmap", "overlap", "Guard", "Config reloads"] {
        assert!(titles.contains(want), "no panel about {want}: {titles}");
    }
}

#[test]
fn the_metric_name_scanner_finds_names_and_only_names() {
    let used = referenced(r#"rate(splitgate_requests_total{x="1"}[5m]) / process_cpu_seconds_total + my_splitgate_x"#);
    assert_eq!(used.into_iter().collect::<Vec<_>>(), ["process_cpu_seconds_total", "splitgate_requests_total"]);
    let names = exported("# HELP a b\na_total 1\nb_bucket{le=\"1\"} 2\n\nc 3\n");
    assert_eq!(names.into_iter().collect::<Vec<_>>(), ["a_total", "b_bucket", "c"]);
}
