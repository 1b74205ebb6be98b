//! The composition root: from a config to a running proxy — first snapshot, every start-up-only
//! setting checked, listeners bound, the reload watcher, the guard and the CloudWatch publisher
//! started — and the drain that stops it. `splitgate serve` and in-process tests both start
//! splitgate through [`start`], so a test can run the whole app on port 0 and read its addresses.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::accesslog::AccessLog;
use crate::admin::Admin;
use crate::auth::{DemoKeyRefused, DemoPolicy};
use crate::aws::dynamo::{ConfigTable, DynamoError};
use crate::aws::AwsClients;
use crate::config::{self, ConfigError, ConfigInput, Issue, RawConfig, SourceKind};
use crate::metrics::Metrics;
use crate::proxy::Proxy;
use crate::server::Server;
use crate::snapshot::Source;

/// How long start-up keeps trying to read the DynamoDB item before giving up.
const SOURCE_STARTUP: Duration = Duration::from_secs(30);

/// What `serve`'s flags override, and where the access log goes.
#[derive(Default)]
pub struct Options {
    pub listen: Option<SocketAddr>,
    pub admin_listen: Option<SocketAddr>,
    /// `--demo`: the published demo key may serve beyond loopback (never on ECS).
    pub demo: bool,
    /// Access-log lines (default: stdout).
    pub access_log: Option<Box<dyn Write + Send>>,
}

/// Why splitgate did not start. Everything here is found before a port is bound, except `Bind`.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("[source] needs table and key")]
    SourceIncomplete,
    #[error("cannot read the DynamoDB config ({}) and the file has no [split] to start from", no_item(label, cause.as_ref()))]
    NoStartingConfig { label: String, cause: Option<DynamoError> },
    #[error("the DynamoDB item {label} does not fit the static config: {source}")]
    Combine {
        label: String,
        #[source]
        source: ConfigError,
    },
    #[error("{} problem(s):\n{}", .0.len(), Issue::render(.0))]
    Invalid(Vec<Issue>),
    #[error(transparent)]
    Demo(#[from] DemoKeyRefused),
    #[error("server.tls: {0}")]
    Tls(#[source] crate::tls::TlsError),
    #[error("server.upstream_ca_path: cannot set up TLS for upstreams: {0}")]
    UpstreamTls(#[source] rustls::Error),
    #[error("cannot start the access log: {0}")]
    AccessLog(#[source] std::io::Error),
    /// `listener` is the setting (`server.listen` or `server.admin_listen`).
    #[error(
        "cannot listen on {addr} for the {} ({listener}, {}): {}",
        listener_name(listener),
        flag_of(listener),
        bind_reason(source)
    )]
    Bind {
        listener: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The addresses after `--listen` / `--admin-listen`: the same check as `splitgate check`.
    #[error("{}: here {listen} and {admin_listen}", config::LISTENERS_MUST_DIFFER)]
    SameAddress { listen: SocketAddr, admin_listen: SocketAddr },
    #[error("cannot start: {0}")]
    Serve(#[source] std::io::Error),
}

fn listener_name(setting: &str) -> &'static str {
    if setting == "server.admin_listen" {
        "admin listener"
    } else {
        "main listener"
    }
}

fn flag_of(setting: &str) -> &'static str {
    if setting == "server.admin_listen" {
        "--admin-listen"
    } else {
        "--listen"
    }
}

/// The OS error, with what to do about the two an operator meets.
fn bind_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            format!("{e}: another process already listens there (another splitgate?); stop it or choose another port")
        }
        std::io::ErrorKind::PermissionDenied => format!("{e}: ports below 1024 need root or CAP_NET_BIND_SERVICE"),
        std::io::ErrorKind::AddrNotAvailable => format!("{e}: no interface of this machine has that address"),
        _ => e.to_string(),
    }
}

/// A running splitgate.
pub struct App {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub proxy: Arc<Proxy>,
    pub admin: Arc<Admin>,
    server: Server,
}

/// Starts splitgate on `raw` (parsed from `input`, whose text is `text`).
pub async fn start(input: &ConfigInput, text: &str, raw: RawConfig, opts: Options) -> Result<App, StartError> {
    let aws = AwsClients::new();
    let (effective, digest, source, table) = initial(input, text, &raw, &aws).await?;
    let plan = config::validate(&effective).map_err(StartError::Invalid)?;
    let listen = opts.listen.unwrap_or(plan.listen);
    let admin_listen = opts.admin_listen.unwrap_or(plan.admin_listen);
    if config::listeners_conflict(listen, admin_listen) {
        return Err(StartError::SameAddress { listen, admin_listen });
    }
    // Every start-up-only setting is checked before a port is bound: the published demo key never
    // serves beyond this machine unless asked for (`--demo`) and never in a deployment; the TLS
    // files, the upstream CA bundle and the access log must all work.
    let demo_policy = DemoPolicy::from_env(listen, opts.demo);
    demo_policy.check(plan.keys.iter().map(|(d, _)| d))?;
    let tls = match &plan.server.tls {
        Some(t) => Some(crate::tls::Tls::load(t.cert_path.as_ref(), t.key_path.as_ref()).map_err(StartError::Tls)?),
        None => None,
    };
    let ca = plan.server.upstream_ca_path.as_ref().map(std::path::PathBuf::from);
    let client = crate::backend::http_client_with_ca(Duration::from_secs(2), 256, ca.as_deref())
        .map_err(StartError::UpstreamTls)?;
    aws.prepare(&plan, &client).await;
    let metrics = Metrics::new();
    let access_log = if plan.server.access_log {
        let out = opts.access_log.unwrap_or_else(|| Box::new(std::io::stdout()));
        AccessLog::spawn(4_096, out, metrics.access_log_dropped.clone()).map_err(StartError::AccessLog)?
    } else {
        AccessLog::disabled(metrics.access_log_dropped.clone())
    };
    let bind = |listener, addr| async move {
        tokio::net::TcpListener::bind(addr).await.map_err(|source| StartError::Bind { listener, addr, source })
    };
    let main = bind("server.listen", listen).await?;
    let admin_listener = bind("server.admin_listen", admin_listen).await?;

    let poll = raw.source.as_ref().map(|s| Duration::from_millis(s.poll_interval_ms));
    let proxy = Arc::new(Proxy::new(plan, digest, source.clone(), client, access_log, metrics, aws));
    let _ = proxy.runtime.demo_policy.set(demo_policy);
    let admin = Arc::new(Admin::new(proxy.clone()));
    watch_source(&admin, input, text, &raw, table, poll, &source);
    if let Some(cfg) = admin.proxy.runtime.snapshot.load().plan.fleet.clone() {
        let store = crate::fleet::store::Store::connect(&proxy.shared.aws, &cfg).await;
        let id = crate::fleet::replica::resolve(cfg.replica_id.as_deref(), &proxy.shared.client).await;
        tracing::info!(replica = %id, table = %cfg.table, "fleet counters and the guard lease are shared");
        let fleet = Arc::new(crate::fleet::Fleet::new(cfg, id, store, &proxy.shared.metrics));
        crate::fleet::task::spawn(fleet.clone(), Arc::downgrade(&proxy));
        let _ = admin.fleet.set(fleet);
    }
    crate::admin::guard_task::spawn(Arc::downgrade(&admin));
    crate::admin::series::spawn(Arc::downgrade(&admin));
    crate::admin::srm_task::spawn(Arc::downgrade(&admin));
    crate::aws::cloudwatch::spawn(
        Arc::downgrade(&proxy),
        |p: &Proxy| p.runtime.snapshot.load().plan.cloudwatch.clone(),
        |p: &Proxy| (&p.shared.aws, &p.shared.cloudwatch, &p.shared.metrics.cloudwatch),
    );
    if let Some(tls) = &tls {
        crate::tls::Tls::watch(tls);
    }
    let server = Server::start(proxy.clone(), admin.clone(), main, admin_listener, tls).map_err(StartError::Serve)?;
    Ok(App { addr: server.addr, admin_addr: server.admin_addr, proxy, admin, server })
}

impl App {
    /// Drains: readiness fails at once, the listeners close after `grace`, in-flight requests
    /// finish within 30 s, queued shadow copies (bounded) and the last CloudWatch batch are sent,
    /// and the access log gets a last turn. Returns false if connections were still open at the
    /// deadline.
    pub async fn drain(self, grace: Duration) -> bool {
        let App { proxy, server, admin, .. } = self;
        // Hand the guard lease over at once rather than after it expires.
        if let Some(fleet) = admin.fleet.get() {
            fleet.release().await;
        }
        let clean = server.shutdown(grace, Duration::from_secs(30)).await;
        // Let queued shadow copies finish (bounded), so comparisons of the last requests are kept.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while crate::shadow::pending(&proxy.runtime.snapshot.load().shadows) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Last CloudWatch batch, so the final interval's numbers are not lost.
        if let Some(cw) = proxy.runtime.snapshot.load().plan.cloudwatch.clone() {
            let flush = crate::aws::cloudwatch::publish_once(
                &proxy.shared.aws,
                &cw,
                &proxy.shared.cloudwatch,
                &proxy.shared.metrics.cloudwatch,
            );
            let _ = tokio::time::timeout(Duration::from_secs(5), flush).await;
        }
        // The access-log writer drains its queue every few milliseconds; give it one more turn.
        tokio::time::sleep(Duration::from_millis(50)).await;
        clean
    }
}

/// Hot reload from where the config lives: the DynamoDB item, the file, or nowhere (static
/// `SPLITGATE_CONFIG` text).
fn watch_source(
    admin: &Admin,
    input: &ConfigInput,
    text: &str,
    raw: &RawConfig,
    table: Option<ConfigTable>,
    poll: Option<Duration>,
    source: &Source,
) {
    match (table, poll) {
        (Some(table), Some(poll)) => {
            let proxy = &admin.proxy;
            let _ = admin.dynamo.set((table.clone(), raw.clone()));
            let label = match source {
                Source::Dynamodb(_) => source.clone(),
                _ => Source::Dynamodb(source_label(raw)),
            };
            crate::reload::watch_dynamodb(proxy.clone(), raw.clone(), table, poll, label);
        }
        _ => match input {
            ConfigInput::File(path) => {
                if let Err(e) = crate::reload::watch_file(admin.proxy.clone(), path.clone(), text) {
                    tracing::warn!(error = %e, "cannot watch the config file; live reload is off");
                }
            }
            ConfigInput::Inline(_) => tracing::info!(
                "config from SPLITGATE_CONFIG (TOML text) is static: it will not hot-reload and admin edits answer \
                 400; use a file, or [source] kind = \"dynamodb\", for live changes"
            ),
        },
    }
}

fn source_label(raw: &RawConfig) -> String {
    let s = raw.source.as_ref();
    format!(
        "{}/{}",
        s.and_then(|s| s.table.as_deref()).unwrap_or_default(),
        s.and_then(|s| s.key.as_deref()).unwrap_or_default()
    )
}

/// The config to start with, where it came from, and the DynamoDB table when that is the source:
/// the file (or `SPLITGATE_CONFIG` text) as it is, or its static part plus the DynamoDB item.
async fn initial(
    input: &ConfigInput,
    text: &str,
    raw: &RawConfig,
    aws: &AwsClients,
) -> Result<(RawConfig, String, Source, Option<ConfigTable>), StartError> {
    let own = match input {
        ConfigInput::File(path) => Source::File(path.display().to_string()),
        ConfigInput::Inline(_) => Source::Inline,
    };
    let file = (raw.clone(), crate::reload::digest(text.as_bytes()), own, None);
    let Some(src) = raw.source.as_ref().filter(|s| s.kind == SourceKind::Dynamodb) else { return Ok(file) };
    let table = ConfigTable::connect(aws, src).await.ok_or(StartError::SourceIncomplete)?;
    let label = source_label(raw);
    let deadline = tokio::time::Instant::now() + SOURCE_STARTUP;
    let mut delay = Duration::from_millis(250);
    let failure = loop {
        match table.fetch().await {
            Ok(Some((version, document))) => {
                let combined = crate::reload::combine(raw, version, &document)
                    .map_err(|source| StartError::Combine { label: label.clone(), source })?;
                let digest = crate::reload::digest(document.as_bytes());
                return Ok((combined, digest, Source::Dynamodb(label), Some(table)));
            }
            Ok(None) => break None,
            Err(e) if tokio::time::Instant::now() + delay < deadline => {
                tracing::warn!(error = %e, "config source not reachable yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => break Some(e),
        }
    };
    if raw.split.is_some() {
        let error = no_item(&label, failure.as_ref());
        tracing::warn!(%error, "starting from the file's own config until DynamoDB answers");
        Ok((file.0, file.1, file.2, Some(table)))
    } else {
        Err(StartError::NoStartingConfig { label, cause: failure })
    }
}

/// Why the item could not be read: it is missing (`None`), or DynamoDB failed.
fn no_item(label: &str, cause: Option<&DynamoError>) -> String {
    cause.map_or_else(|| format!("item {label} does not exist"), |e| e.to_string())
}
