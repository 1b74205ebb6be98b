//! Operator commands that talk to AWS: `models list`, `source get`, `source put`. They share the
//! proxy's config file for table names, regions and endpoints.

use std::fmt::Write as _;

use crate::aws::dynamo::{ConfigTable, DynamoError, Registry};
use crate::aws::AwsClients;
use crate::config::{self, RawConfig, SourceKind};
use crate::reload::combine;

/// What went wrong, with the exit code it deserves.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Dynamo(#[from] DynamoError),
    #[error("conflict: someone else changed the config first\n{0}")]
    Conflict(String),
}

impl OpsError {
    /// 2 usage, 3 version conflict (someone else wrote first), 1 everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            OpsError::Usage(_) => 2,
            OpsError::Dynamo(DynamoError::Conflict { .. }) | OpsError::Conflict(_) => 3,
            _ => 1,
        }
    }
}

async fn config_table(aws: &AwsClients, file: &RawConfig) -> Result<ConfigTable, OpsError> {
    match &file.source {
        Some(s) if s.kind == SourceKind::Dynamodb => {
            ConfigTable::connect(aws, s).await.ok_or_else(|| OpsError::Usage("[source] needs table and key".into()))
        }
        _ => Err(OpsError::Usage("this config has no [source] kind = \"dynamodb\"".into())),
    }
}

/// `splitgate models list`: the registry as a table.
pub async fn models_list(file: &RawConfig) -> Result<String, OpsError> {
    let Some(reg) = &file.registry else {
        return Err(OpsError::Usage("this config has no [registry] table".into()));
    };
    let aws = AwsClients::new();
    let entries = Registry::connect(&aws, reg).await.list().await?;
    let mut out = String::from("model_id\tstatus\tartifact\tupdated_at\tmetrics\n");
    for e in entries {
        let _ = writeln!(out, "{}\t{}\t{}\t{}\t{}", e.model_id, e.status, e.artifact, e.updated_at, e.metrics);
    }
    Ok(out)
}

/// `splitgate source get`: the live item's version and document.
pub async fn source_get(file: &RawConfig) -> Result<String, OpsError> {
    let aws = AwsClients::new();
    match config_table(&aws, file).await?.fetch().await? {
        Some((version, document)) => Ok(format!("# version = {version}\n{document}")),
        None => Err(OpsError::Invalid("the config item does not exist yet (create it with `source put`)".into())),
    }
}

/// `splitgate source put`: validates `document` against the file's static part, then writes it
/// conditionally on `expected` (the version the operator last saw; `None` creates the item).
pub async fn source_put(file: &RawConfig, document: &str, expected: Option<u64>, who: &str) -> Result<u64, OpsError> {
    let next = expected.map_or(1, |v| v + 1);
    let raw = combine(file, next, document).map_err(|e| OpsError::Invalid(e.to_string()))?;
    config::validate(&raw).map_err(|issues| {
        OpsError::Invalid(format!("document rejected, nothing written:\n{}", config::Issue::render(&issues)))
    })?;
    let aws = AwsClients::new();
    Ok(config_table(&aws, file).await?.put(document, expected, who).await?)
}

/// Calls the admin API (`splitgate weights|promote|rollback|status`). Returns the JSON body, or
/// the error body and a non-zero exit (3 for a 409 conflict).
pub async fn admin_call(
    base: &str,
    token: &str,
    method: http::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<String, OpsError> {
    use http_body_util::BodyExt;
    let client = crate::backend::http_client(std::time::Duration::from_secs(5), 1)
        .map_err(|e| OpsError::Usage(format!("TLS setup: {e}")))?;
    let uri = format!("{}{path}", base.trim_end_matches('/'));
    let req = http::Request::builder()
        .method(method)
        .uri(&uri)
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(body.map(|b| b.to_string()).unwrap_or_default())))
        .map_err(|e| OpsError::Usage(format!("{uri}: {e}")))?;
    let resp = tokio::time::timeout(std::time::Duration::from_secs(30), client.request(req))
        .await
        .map_err(|_| OpsError::Invalid(format!("{uri}: no answer within 30 s")))?
        .map_err(|e| OpsError::Invalid(format!("{uri}: {e}")))?;
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
        409 => Err(OpsError::Conflict(pretty)),
        401 => Err(OpsError::Usage(format!("unauthorized: set SPLITGATE_ADMIN_TOKEN or --token\n{pretty}"))),
        _ => Err(OpsError::Invalid(format!("{status}\n{pretty}"))),
    }
}
