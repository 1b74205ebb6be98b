//! Applying an operator change to the source of truth — the config file (under its lock, temp
//! file + rename, see `file`) or the DynamoDB item (conditional on its version) — then to this
//! replica, and auditing it.

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
            // Read → check → write under the file's lock, so a writer in another process cannot
            // slip in between: the loser sees a changed file and gets 409, never a lost write.
            let lock = super::file::lock(path).await?;
            let result = edit_file(proxy, &lock, &snap, path, &edit).await;
            lock.release().await;
            result?
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

/// The file branch of [`change`], run while `lock` is held: the text on disk must still be the
/// one `snap` was loaded from, then the edit is validated, written, and applied here.
async fn edit_file(
    proxy: &Arc<Proxy>,
    lock: &super::file::Locked,
    snap: &crate::snapshot::Snapshot,
    path: &str,
    edit: &impl Fn(&str) -> Result<String, EditError>,
) -> Result<u64, AdminError> {
    let old = snap.version;
    let text = lock.read(snap.plan.server.max_config_bytes).await?;
    if digest(text.as_bytes()) != snap.digest {
        return Err(AdminError::Conflict(format!("{path} changed since version {old} was loaded; reload and retry")));
    }
    let next = with_version(&edit(&text)?, old + 1)?;
    let raw = config::parse(&next).map_err(|e| AdminError::Invalid(e.to_string()))?;
    config::validate(&raw).map_err(|i| AdminError::Invalid(config::Issue::render(&i)))?;
    lock.write(next.clone()).await?;
    apply(proxy, &next, snap.source.clone()).await.map_err(|e| AdminError::Invalid(e.to_string()))
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
