//! `GET /admin/audit`: the fleet's audit trail, not only this replica's. With a DynamoDB source
//! and `[admin] audit_table` it is the table (every replica writes there); else the audit file,
//! which every replica sharing it appends to; else this process's in-memory tail.

use serde_json::{json, Value};

use super::Admin;
use crate::snapshot::Snapshot;

pub async fn recent(admin: &Admin, snap: &Snapshot, limit: usize) -> Value {
    let limit = limit.clamp(1, 1_000);
    if let (Some(table), Some((config, _))) = (snap.plan.audit_table.as_deref(), admin.dynamo.get()) {
        let read = tokio::time::timeout(std::time::Duration::from_secs(3), config.audit_records(table, limit)).await;
        match read {
            Ok(Ok(lines)) => {
                let records: Vec<Value> = lines.iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
                return json!({"records": records, "source": "dynamodb"});
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "audit table unreadable; answering from this replica"),
            Err(_) => tracing::warn!("audit table did not answer within 3 s; answering from this replica"),
        }
    } else if let Some(path) = snap.plan.audit_log.clone() {
        let read = tokio::task::spawn_blocking(move || tail_lines(&path, limit)).await;
        if let Ok(Ok(lines)) = read {
            let records: Vec<Value> = lines.iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
            return json!({"records": records, "source": "file"});
        }
    }
    json!({"records": admin.audit.recent(limit), "source": "local"})
}

/// The last `limit` lines of the file, reading at most its last 4 MiB.
fn tail_lines(path: &std::path::Path, limit: usize) -> std::io::Result<Vec<String>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(4 << 20);
    f.seek(SeekFrom::Start(start))?;
    let mut text = String::new();
    f.take(4 << 20).read_to_string(&mut text)?;
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // the first line may be cut
    }
    Ok(lines.iter().skip(lines.len().saturating_sub(limit)).map(|l| (*l).to_owned()).collect())
}
