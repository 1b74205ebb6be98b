//! `splitgate serve`: reads the config, builds the runtime (`server.workers`), starts the app
//! (`splitgate::app`, the composition root) and drains it on SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use splitgate::app;
use splitgate::config::{self, ConfigInput, RawConfig};

use super::local::{fail, within_own_limit};
use super::logging::Log;

pub fn serve(
    input: &ConfigInput,
    listen: Option<SocketAddr>,
    admin_listen: Option<SocketAddr>,
    demo: bool,
) -> ExitCode {
    let log = match Log::init() {
        Ok(log) => log,
        Err(e) => return fail(&e),
    };
    let (text, raw) = match input.read().and_then(|t| config::parse(&t).map(|r| (t, r))) {
        Ok(x) => x,
        Err(e) => return log.fatal(&format!("{}: {e}", input.label())),
    };
    if let Err(e) = within_own_limit(input, &text, &raw) {
        return log.fatal(&e.to_string());
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
        Err(e) => return log.fatal(&format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(run(log, input, text, raw, listen, admin_listen, demo))
}

async fn run(
    log: Log,
    input: &ConfigInput,
    text: String,
    raw: RawConfig,
    listen: Option<SocketAddr>,
    admin_listen: Option<SocketAddr>,
    demo: bool,
) -> ExitCode {
    let opts = app::Options { listen, admin_listen, demo, access_log: None };
    let app = match app::start(input, &text, raw, opts).await {
        Ok(app) => app,
        Err(e) => return log.fatal(&e.to_string()),
    };
    tracing::info!(addr = %app.addr, admin_addr = %app.admin_addr, config = %input.label(), "splitgate listening");
    shutdown_signal().await;
    tracing::info!("draining");
    if !app.drain(Duration::from_millis(drain_grace_ms())).await {
        tracing::warn!("drain deadline passed with connections still open");
    }
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
