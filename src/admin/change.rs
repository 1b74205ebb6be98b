//! Applying an operator change to the source of truth — the config file (temp file + rename) or
//! the DynamoDB item (conditional on its version) — then to this replica, and auditing it.

use std::sync::Arc;

use serde_json::Value;

use super::audit::Record;
use super::edit::EditError;
use crate::aws::dynamo::{now_rfc3339, DynamoError};
use crate::config;
use crate::proxy::Proxy;
use crate::reload::{apply, apply_raw, combine, digest};
use crate::snapshot::Source;

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("missing or invalid admin token")]
    Unauthorized,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the change would make the config invalid: {0}")]
    Invalid(String),
    #[error("the source of truth is unavailable: {0}")]
    Unavailable(String),
    #[error("no route")]
    NotFound,
}

impl AdminError {
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            AdminError::Unauthorized => S::UNAUTHORIZED,
            AdminError::Conflict(_) => S::CONFLICT,
            AdminError::BadRequest(_) => S::BAD_REQUEST,
            AdminError::Invalid(_) => S::UNPROCESSABLE_ENTITY,
            AdminError::Unavailable(_) => S::SERVICE_UNAVAILABLE,
            AdminError::NotFound => S::NOT_FOUND,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AdminError::Unauthorized => "unauthorized",
            AdminError::Conflict(_) => "conflict",
            AdminError::BadRequest(_) => "bad_request",
            AdminError::Invalid(_) => "invalid_config",
            AdminError::Unavailable(_) => "source_unavailable",
            AdminError::NotFound => "not_found",
        }
    }
}

impl From<EditError> for AdminError {
    fn from(e: EditError) -> Self {
        match e {
            EditError::Parse(_) | EditError::NoVariants | EditError::NoChampion => AdminError::Invalid(e.to_string()),
            other => AdminError::BadRequest(other.to_string()),
        }
    }
}

impl From<DynamoError> for AdminError {
    fn from(e: DynamoError) -> Self {
        match e {
            DynamoError::Conflict { .. } => AdminError::Conflict(e.to_string()),
            DynamoError::Unavailable(m) => AdminError::Unavailable(m),
            DynamoError::BadItem(m) => AdminError::Invalid(m),
        }
    }
}

/// Sets the top-level `version` so every replica reading the file agrees on the number.
fn with_version(text: &str, version: u64) -> Result<String, AdminError> {
    let mut doc: toml_edit::DocumentMut =
        text.parse().map_err(|e: toml_edit::TomlError| AdminError::Invalid(e.to_string()))?;
    doc["version"] = toml_edit::value(version as i64);
    // Keep `version` first: a top-level key after a table would belong to that table.
    doc.sort_values_by(|a, _, b, _| (b.get() == "version").cmp(&(a.get() == "version")));
    Ok(doc.to_string())
}

/// Edits the source of truth with `edit`, applies the result here, audits it, and returns
/// (old version, new version). `expected`: the version the operator saw (409 if stale).
pub async fn change(
    proxy: &Arc<Proxy>,
    who: &str,
    action: &str,
    reason: Option<String>,
    expected: Option<u64>,
    detail: Value,
    edit: impl Fn(&str) -> Result<String, EditError>,
) -> Result<(u64, u64), AdminError> {
    let _one_at_a_time = proxy.admin.lock.lock().await;
    let snap = proxy.snapshot.load_full();
    let old = snap.version;
    if let Some(e) = expected.filter(|e| *e != old) {
        return Err(AdminError::Conflict(format!("expected version {e}, the live config is version {old}")));
    }
    let new = match &snap.source {
        Source::File(path) => {
            let text =
                tokio::fs::read_to_string(path).await.map_err(|e| AdminError::Unavailable(format!("{path}: {e}")))?;
            if digest(text.as_bytes()) != snap.digest {
                return Err(AdminError::Conflict(format!(
                    "{path} changed since version {old} was loaded; reload and retry"
                )));
            }
            let next = with_version(&edit(&text)?, old + 1)?;
            let raw = config::parse(&next).map_err(|e| AdminError::Invalid(e.to_string()))?;
            config::validate(&raw).map_err(|i| AdminError::Invalid(config::Issue::render(&i)))?;
            write_atomically(path, &next).await?;
            apply(proxy, &next, snap.source.clone()).await.map_err(|e| AdminError::Invalid(e.to_string()))?
        }
        Source::Dynamodb(_) => {
            let Some((table, file)) = proxy.admin.dynamo.get() else {
                return Err(AdminError::Unavailable("DynamoDB source not initialised".into()));
            };
            let (version, document) =
                table.fetch().await?.ok_or_else(|| AdminError::Unavailable("the config item is missing".into()))?;
            if version != old {
                return Err(AdminError::Conflict(format!(
                    "the item is at version {version}, this replica serves {old}"
                )));
            }
            let next_doc = edit(&document)?;
            let raw = combine(file, version + 1, &next_doc).map_err(|e| AdminError::Invalid(e.to_string()))?;
            config::validate(&raw).map_err(|i| AdminError::Invalid(config::Issue::render(&i)))?;
            table.put(&next_doc, Some(version), who).await?;
            apply_raw(proxy, &raw, digest(next_doc.as_bytes()), snap.source.clone())
                .await
                .map_err(|e| AdminError::Invalid(e.to_string()))?
        }
        Source::Inline => return Err(AdminError::BadRequest("this proxy has no config source to write to".into())),
    };
    tracing::info!(who, action, old, new, reason = reason.as_deref().unwrap_or(""), "config changed by operator");
    let record = Record {
        time: now_rfc3339(),
        who: who.to_owned(),
        action: action.to_owned(),
        reason,
        change: detail,
        old_version: old,
        new_version: new,
    };
    let audit_table = proxy.snapshot.load().plan.audit_table.clone();
    if let (Some(table), Some((config, _))) = (audit_table, proxy.admin.dynamo.get()) {
        let line = serde_json::to_string(&record).unwrap_or_default();
        if let Err(e) = config.audit(&table, &format!("{}#{new:010}", record.time), &line).await {
            tracing::error!(error = %e, "could not write the audit table; the change itself is applied");
        }
    }
    proxy.admin.audit.append(record).await;
    Ok((old, new))
}

/// Temp file in the same directory, fsync, rename: readers see the old or the new file, never half.
async fn write_atomically(path: &str, text: &str) -> Result<(), AdminError> {
    let (path, text) = (std::path::PathBuf::from(path), text.to_owned());
    let result = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("config");
        let tmp = dir.join(format!(".{name}.splitgate-tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        // Follow a symlinked config (e.g. ConfigMaps) to write where it really lives.
        let target = std::fs::canonicalize(&path).unwrap_or(path);
        std::fs::rename(&tmp, target)
    })
    .await;
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(AdminError::Unavailable(format!("writing the config: {e}"))),
        Err(e) => Err(AdminError::Unavailable(format!("writing the config: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_goes_first_and_comments_stay() {
        let out = with_version("# c\n[split]\nsalt = \"s\"\n", 7).unwrap();
        assert!(out.contains("# c"));
        let parsed: toml::Value = toml::from_str(&out).unwrap();
        assert_eq!(parsed["version"].as_integer(), Some(7));
        assert!(parsed["split"].get("version").is_none(), "{out}");
        let again = with_version(&out, 8).unwrap();
        assert_eq!(toml::from_str::<toml::Value>(&again).unwrap()["version"].as_integer(), Some(8));
    }
}
