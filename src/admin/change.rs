//! Applying an operator change to the source of truth — the config file (under its lock, temp
//! file + rename, see `file`) or the DynamoDB item (conditional on its version) — then to this
//! replica, and auditing it.

use std::sync::Arc;

use serde_json::Value;

use super::audit::Record;
use super::edit::EditError;
use super::error::AdminError;
use super::Admin;
use crate::aws::dynamo::now_rfc3339;
use crate::config;
use crate::proxy::Proxy;
use crate::reload::{apply, apply_raw, combine, digest};
use crate::snapshot::Source;

/// Sets the top-level `version` so every replica reading the file agrees on the number.
fn with_version(text: &str, version: u64) -> Result<String, AdminError> {
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(AdminError::Toml)?;
    doc["version"] = toml_edit::value(version as i64);
    // Keep `version` first: a top-level key after a table would belong to that table.
    doc.sort_values_by(|a, _, b, _| (b.get() == "version").cmp(&(a.get() == "version")));
    Ok(doc.to_string())
}

/// Edits the source of truth with `edit`, applies the result here, audits it, and returns
/// (old version, new version). `expected`: the version the operator saw (409 if stale).
pub async fn change(
    admin: &Admin,
    who: &str,
    action: &str,
    reason: Option<String>,
    expected: Option<u64>,
    detail: Value,
    edit: impl Fn(&str) -> Result<String, EditError>,
) -> Result<(u64, u64), AdminError> {
    let proxy = &admin.proxy;
    let _one_at_a_time = proxy.runtime.changes.lock().await;
    let snap = proxy.runtime.snapshot.load_full();
    let old = snap.version;
    if let Some(e) = expected.filter(|e| *e != old) {
        return Err(AdminError::StaleVersion { expected: e, live: old });
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
            let Some((table, file)) = admin.dynamo.get() else {
                return Err(AdminError::SourceNotReady);
            };
            let (version, document) = table.fetch().await?.ok_or(AdminError::ItemMissing)?;
            if version != old {
                return Err(AdminError::ItemAhead { item: version, live: old });
            }
            let next_doc = edit(&document)?;
            let raw = combine(file, version + 1, &next_doc).map_err(AdminError::Config)?;
            config::validate(&raw).map_err(AdminError::Invalid)?;
            table.put(&next_doc, Some(version), who).await?;
            apply_raw(proxy, &raw, digest(next_doc.as_bytes()), snap.source.clone())
                .await
                .map_err(AdminError::Config)?
        }
        Source::Inline => return Err(AdminError::NoSource),
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
    let audit_table = proxy.runtime.snapshot.load().plan.audit_table.clone();
    if let (Some(table), Some((config, _))) = (audit_table, admin.dynamo.get()) {
        let line = serde_json::to_string(&record).unwrap_or_default();
        if let Err(e) = config.audit(&table, &format!("{}#{new:010}", record.time), &line).await {
            tracing::error!(error = %e, "could not write the audit table; the change itself is applied");
        }
    }
    admin.audit.append(record).await;
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
        return Err(AdminError::FileChanged { path: path.to_owned(), version: old });
    }
    let next = with_version(&edit(&text)?, old + 1)?;
    let raw = config::parse(&next).map_err(AdminError::Config)?;
    config::validate(&raw).map_err(AdminError::Invalid)?;
    lock.write(next.clone()).await?;
    apply(proxy, &next, snap.source.clone()).await.map_err(AdminError::Config)
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
