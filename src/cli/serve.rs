//! `splitgate serve`: start-up (config, runtime, first snapshot, listeners, background tasks)
//! and the drain on SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use splitgate::accesslog::AccessLog;
use splitgate::auth::DemoPolicy;
use splitgate::aws::dynamo::ConfigTable;
use splitgate::aws::AwsClients;
use splitgate::config::{self, ConfigInput, RawConfig, SourceKind};
use splitgate::metrics::Metrics;
use splitgate::proxy::Proxy;
use splitgate::server::Server;
use splitgate::snapshot::Source;

use crate::{fail, within_own_limit};

pub fn serve(
    input: &ConfigInput,
    listen: Option<SocketAddr>,
    admin_listen: Option<SocketAddr>,
    demo: bool,
) -> ExitCode {
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(log_level()).with_ansi(false).init();
    let (text, raw) = match input.read().and_then(|t| config::parse(&t).map(|r| (t, r))) {
        Ok(x) => x,
        Err(e) => return fail(&format!("{}: {e}", input.label())),
    };
    if let Err(e) = within_own_limit(input, &text, &raw) {
        return fail(&e.to_string());
    }
    // One worker: a current-thread runtime, so a request never crosses threads (no work-stealing
    // queues, no cross-thread wake-ups). More: the work-stealing scheduler.
    let mut runtime = if raw.server.workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if raw.server.workers > 0 {
            b.worker_threads(raw.server.workers);
        }
        b
    };
    let runtime = match runtime.enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(run(input, text, raw, listen, admin_listen, demo))
}

fn log_level() -> tracing::Level {
    match std::env::var("SPLITGATE_LOG").unwrap_or_default().to_ascii_lowercase().as_str() {
        "error" => tracing::Level::ERROR,
        "warn" => tracing::Level::WARN,
        "debug" => tracing::Level::DEBUG,
        "trace" => tracing::Level::TRACE,
        _ => tracing::Level::INFO,
    }
}

/// How long start-up keeps trying to read the DynamoDB item before giving up.
const SOURCE_STARTUP: Duration = Duration::from_secs(30);

/// The config to start with: the file (or `SPLITGATE_CONFIG` text), or its static part plus the
/// DynamoDB item.
async fn initial(
    input: &ConfigInput,
    text: &str,
    raw: &RawConfig,
    aws: &AwsClients,
) -> Result<(RawConfig, String, Source, Option<ConfigTable>), String> {
    let own = match input {
        ConfigInput::File(path) => Source::File(path.display().to_string()),
        ConfigInput::Inline(_) => Source::Inline,
    };
    let file = (raw.clone(), splitgate::reload::digest(text.as_bytes()), own, None);
    let Some(src) = raw.source.as_ref().filter(|s| s.kind == SourceKind::Dynamodb) else { return Ok(file) };
    let table = ConfigTable::connect(aws, src).await.ok_or("[source] needs table and key")?;
    let label = format!("{}/{}", src.table.as_deref().unwrap_or(""), src.key.as_deref().unwrap_or(""));
    let deadline = tokio::time::Instant::now() + SOURCE_STARTUP;
    let mut delay = Duration::from_millis(250);
    let failure = loop {
        match table.fetch().await {
            Ok(Some((version, document))) => {
                let combined = splitgate::reload::combine(raw, version, &document).map_err(|e| e.to_string())?;
                let digest = splitgate::reload::digest(document.as_bytes());
                return Ok((combined, digest, Source::Dynamodb(label), Some(table)));
            }
            Ok(None) => break format!("item {label} does not exist"),
            Err(e) if tokio::time::Instant::now() + delay < deadline => {
                tracing::warn!(error = %e, "config source not reachable yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => break e.to_string(),
        }
    };
    if raw.split.is_some() {
        tracing::warn!(error = %failure, "starting from the file's own config until DynamoDB answers");
        Ok((file.0, file.1, file.2, Some(table)))
    } else {
        Err(format!("cannot read the DynamoDB config ({failure}) and the file has no [split] to start from"))
    }
}

async fn run(
    input: &ConfigInput,
    text: String,
    raw: RawConfig,
    listen: Option<SocketAddr>,
    admin_listen: Option<SocketAddr>,
    demo: bool,
) -> ExitCode {
    let aws = AwsClients::new();
    let (effective, digest, source, table) = match initial(input, &text, &raw, &aws).await {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    let plan = match config::validate(&effective) {
        Ok(p) => p,
        Err(issues) => return fail(&format!("{} problem(s):\n{}", issues.len(), config::Issue::render(&issues))),
    };
    aws.prepare(&plan).await;
    let listen = listen.unwrap_or(plan.listen);
    let admin_listen = admin_listen.unwrap_or(plan.admin_listen);
    // Before binding anything: the published demo key never serves beyond this machine unless
    // asked for (`--demo`), and never in a deployment.
    let demo_policy = DemoPolicy::from_env(listen, demo);
    if let Err(e) = demo_policy.check(plan.keys.iter().map(|(d, _)| d)) {
        return fail(&e.to_string());
    }
    let (main, admin) =
        match (tokio::net::TcpListener::bind(listen).await, tokio::net::TcpListener::bind(admin_listen).await) {
            (Ok(m), Ok(a)) => (m, a),
            (Err(e), _) => return fail(&format!("cannot listen on {listen}: {e}")),
            (_, Err(e)) => return fail(&format!("cannot listen on {admin_listen}: {e}")),
        };
    let metrics = Metrics::new();
    let access_log = if plan.server.access_log {
        match AccessLog::spawn(4_096, Box::new(std::io::stdout()), metrics.access_log_dropped.clone()) {
            Ok(l) => l,
            Err(e) => return fail(&format!("cannot start the access log: {e}")),
        }
    } else {
        AccessLog::disabled(metrics.access_log_dropped.clone())
    };
    let ca = plan.server.upstream_ca_path.as_ref().map(std::path::PathBuf::from);
    let client = match splitgate::backend::http_client_with_ca(Duration::from_secs(2), 256, ca.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(&format!("cannot set up TLS for upstreams: {e}")),
    };
    let poll = raw.source.as_ref().map(|s| Duration::from_millis(s.poll_interval_ms));
    let proxy = Arc::new(Proxy::new(plan, digest, source.clone(), client, access_log, metrics, aws));
    let _ = proxy.admin.demo_policy.set(demo_policy);
    match (table, poll) {
        (Some(table), Some(poll)) => {
            let _ = proxy.admin.dynamo.set((table.clone(), raw.clone()));
            let label = match &source {
                Source::Dynamodb(_) => source.clone(),
                _ => Source::Dynamodb(format!(
                    "{}/{}",
                    raw.source.as_ref().and_then(|s| s.table.clone()).unwrap_or_default(),
                    raw.source.as_ref().and_then(|s| s.key.clone()).unwrap_or_default()
                )),
            };
            splitgate::reload::watch_dynamodb(proxy.clone(), raw.clone(), table, poll, label);
        }
        _ => match input {
            ConfigInput::File(path) => {
                if let Err(e) = splitgate::reload::watch_file(proxy.clone(), path.clone(), &text) {
                    tracing::warn!(error = %e, "cannot watch the config file; live reload is off");
                }
            }
            ConfigInput::Inline(_) => tracing::info!(
                "config from SPLITGATE_CONFIG (TOML text) is static: it will not hot-reload and admin edits answer \
                 400; use a file, or [source] kind = \"dynamodb\", for live changes"
            ),
        },
    }
    splitgate::admin::guard_task::spawn(Arc::downgrade(&proxy));
    splitgate::aws::cloudwatch::spawn(
        Arc::downgrade(&proxy),
        |p: &Proxy| p.snapshot.load().plan.cloudwatch.clone(),
        |p: &Proxy| (&p.aws, &p.cloudwatch, &p.metrics.cloudwatch),
    );
    let tls = match &proxy.snapshot.load().plan.server.tls {
        Some(t) => match splitgate::tls::Tls::load(t.cert_path.as_ref(), t.key_path.as_ref()) {
            Ok(tls) => {
                splitgate::tls::Tls::watch(&tls);
                Some(tls)
            }
            Err(e) => return fail(&format!("server.tls: {e}")),
        },
        None => None,
    };
    let server = match Server::start(proxy.clone(), main, admin, tls) {
        Ok(s) => s,
        Err(e) => return fail(&format!("cannot start: {e}")),
    };
    tracing::info!(addr = %server.addr, admin_addr = %server.admin_addr, config = %input.label(), "splitgate listening");
    shutdown_signal().await;
    tracing::info!("draining");
    let clean = server.shutdown(Duration::from_millis(drain_grace_ms()), Duration::from_secs(30)).await;
    if !clean {
        tracing::warn!("drain deadline passed with connections still open");
    }
    // Let queued shadow copies finish (bounded), so comparisons of the last requests are kept.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while splitgate::shadow::pending(&proxy.snapshot.load().shadows) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Last CloudWatch batch, so the final interval's numbers are not lost.
    if let Some(cw) = proxy.snapshot.load().plan.cloudwatch.clone() {
        let flush =
            splitgate::aws::cloudwatch::publish_once(&proxy.aws, &cw, &proxy.cloudwatch, &proxy.metrics.cloudwatch);
        let _ = tokio::time::timeout(Duration::from_secs(5), flush).await;
    }
    // The access-log writer drains its queue every few milliseconds; give it one more turn.
    tokio::time::sleep(Duration::from_millis(50)).await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Time between failing readiness and closing the listener (`SPLITGATE_DRAIN_GRACE_MS`, default
/// 500): long enough for keep-alive clients to get a `Connection: close` answer and move on.
fn drain_grace_ms() -> u64 {
    std::env::var("SPLITGATE_DRAIN_GRACE_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(500)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
