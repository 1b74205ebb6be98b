//! Operator commands: those that talk to AWS (`models list|register|set-status`, `source
//! get|put`), sharing the proxy's config file for table names, regions and endpoints, and the
//! admin API calls (`weights`, `promote`, `rollback`, `status`).

use std::fmt::Write as _;

use crate::aws::dynamo::{ConfigTable, DynamoError, Registry};
use crate::aws::AwsClients;
use crate::config::{self, RawConfig, SourceKind};
use crate::reload::combine;

/// What went wrong, with the exit code it deserves. One variant per cause; the exit code is an
/// exhaustive match.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("this config has no [source] kind = \"dynamodb\"")]
    NoDynamoSource,
    #[error("[source] needs table and key")]
    SourceIncomplete,
    #[error("this config has no [registry] table")]
    NoRegistry,
    #[error("TLS setup: {0}")]
    Tls(#[source] rustls::Error),
    #[error("{uri}: {source}")]
    BadRequest {
        uri: String,
        #[source]
        source: http::Error,
    },
    #[error("unauthorized: set SPLITGATE_ADMIN_TOKEN or --token\n{body}")]
    Unauthorized { body: String },
    #[error("the config item does not exist yet (create it with `source put`)")]
    NoItem,
    #[error("{0}")]
    Config(#[source] config::ConfigError),
    #[error("document rejected, nothing written:\n{}", config::Issue::render(.0))]
    Rejected(Vec<config::Issue>),
    #[error("{uri}: no answer within 30 s")]
    Timeout { uri: String },
    #[error("{uri}: {source}")]
    Unreachable {
        uri: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// The admin API answered with an error; its body is shown as it came.
    #[error("{status}\n{body}")]
    Refused { status: http::StatusCode, body: String },
    #[error(transparent)]
    Dynamo(#[from] DynamoError),
    #[error("conflict: someone else changed the config first\n{body}")]
    Conflict { body: String },
    #[error("--metrics must be a JSON object (e.g. '{{\"ndcg@10\": 0.52}}'), not `{0}`")]
    BadMetrics(String),
}

impl OpsError {
    /// 2 usage, 3 version conflict (someone else wrote first), 1 everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            OpsError::NoDynamoSource
            | OpsError::SourceIncomplete
            | OpsError::NoRegistry
            | OpsError::Tls(_)
            | OpsError::BadRequest { .. }
            | OpsError::Unauthorized { .. }
            | OpsError::BadMetrics(_) => 2,
            OpsError::Dynamo(DynamoError::Conflict { .. }) | OpsError::Conflict { .. } => 3,
            OpsError::NoItem
            | OpsError::Config(_)
            | OpsError::Rejected(_)
            | OpsError::Timeout { .. }
            | OpsError::Unreachable { .. }
            | OpsError::Refused { .. }
            | OpsError::Dynamo(_) => 1,
        }
    }
}

async fn config_table(aws: &AwsClients, file: &RawConfig) -> Result<ConfigTable, OpsError> {
    match &file.source {
        Some(s) if s.kind == SourceKind::Dynamodb => {
            ConfigTable::connect(aws, s).await.ok_or(OpsError::SourceIncomplete)
        }
        _ => Err(OpsError::NoDynamoSource),
    }
}

/// `splitgate models list`: the registry as a table.
pub async fn models_list(file: &RawConfig) -> Result<String, OpsError> {
    let Some(reg) = &file.registry else {
        return Err(OpsError::NoRegistry);
    };
    let aws = AwsClients::new();
    let entries = Registry::connect(&aws, reg).await.list().await?;
    let mut out = String::from("model_id\tstatus\tartifact\tupdated_at\tmetrics\n");
    for e in entries {
        let _ = writeln!(out, "{}\t{}\t{}\t{}\t{}", e.model_id, e.status, e.artifact, e.updated_at, e.metrics);
    }
    Ok(out)
}

/// The statuses `models register` and `models set-status` accept (the deployment guide's lifecycle).
pub const MODEL_STATUSES: [&str; 5] = crate::aws::dynamo::STATUSES;

/// `splitgate models register`: adds or replaces a registry entry.
pub async fn models_register(
    file: &RawConfig,
    model_id: &str,
    artifact: &str,
    status: &str,
    metrics: Option<&str>,
) -> Result<String, OpsError> {
    let Some(reg) = &file.registry else {
        return Err(OpsError::NoRegistry);
    };
    let metrics = match metrics {
        Some(m) => match serde_json::from_str::<serde_json::Value>(m) {
            Ok(v) if v.is_object() => v.to_string(),
            _ => return Err(OpsError::BadMetrics(m.to_owned())),
        },
        None => "{}".to_owned(),
    };
    let aws = AwsClients::new();
    Registry::connect(&aws, reg).await.register(model_id, artifact, status, &metrics).await?;
    Ok(format!("registered {model_id}: {status}\n"))
}

/// `splitgate models set-status`.
pub async fn models_set_status(file: &RawConfig, model_id: &str, status: &str) -> Result<String, OpsError> {
    let Some(reg) = &file.registry else {
        return Err(OpsError::NoRegistry);
    };
    let aws = AwsClients::new();
    Registry::connect(&aws, reg).await.set_status(model_id, status).await?;
    Ok(format!("{model_id}: {status}\n"))
}

/// `splitgate source get`: the live item's version and document.
pub async fn source_get(file: &RawConfig) -> Result<String, OpsError> {
    let aws = AwsClients::new();
    match config_table(&aws, file).await?.fetch().await? {
        Some((version, document)) => Ok(format!("# version = {version}\n{document}")),
        None => Err(OpsError::NoItem),
    }
}

/// `splitgate source put`: validates `document` against the file's static part, then writes it
/// conditionally on `expected` (the version the operator last saw; `None` creates the item).
pub async fn source_put(file: &RawConfig, document: &str, expected: Option<u64>, who: &str) -> Result<u64, OpsError> {
    let next = expected.map_or(1, |v| v + 1);
    let raw = combine(file, next, document).map_err(OpsError::Config)?;
    config::validate(&raw).map_err(OpsError::Rejected)?;
    let aws = AwsClients::new();
    Ok(config_table(&aws, file).await?.put(document, expected, who).await?)
}

/// Calls the admin API (`splitgate weights|promote|rollback|status`). Returns the JSON body, or
/// the error body and a non-zero exit (3 for a 409 conflict).
/// `if_match`: the change applies only while the live config is at that version (409 → exit 3).
pub async fn admin_call(
    base: &str,
    token: &str,
    method: http::Method,
    path: &str,
    body: Option<serde_json::Value>,
    if_match: Option<u64>,
) -> Result<String, OpsError> {
    use http_body_util::BodyExt;
    let client = crate::backend::http_client(std::time::Duration::from_secs(5), 1).map_err(OpsError::Tls)?;
    let uri = format!("{}{path}", base.trim_end_matches('/'));
    let mut req = http::Request::builder();
    if let Some(v) = if_match {
        req = req.header(http::header::IF_MATCH, v.to_string());
    }
    let req = req
        .method(method)
        .uri(&uri)
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(body.map(|b| b.to_string()).unwrap_or_default())))
        .map_err(|source| OpsError::BadRequest { uri: uri.clone(), source })?;
    let resp = tokio::time::timeout(std::time::Duration::from_secs(30), client.request(req))
        .await
        .map_err(|_| OpsError::Timeout { uri: uri.clone() })?
        .map_err(|source| OpsError::Unreachable { uri: uri.clone(), source })?;
    let status = resp.status();
    let text = resp
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    let pretty = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(text);
    match status.as_u16() {
        200..=299 => Ok(pretty + "\n"),
        409 => Err(OpsError::Conflict { body: pretty }),
        401 => Err(OpsError::Unauthorized { body: pretty }),
        _ => Err(OpsError::Refused { status, body: pretty }),
    }
}
