//! This replica's name in the fleet table: `[fleet] replica_id`, else the ECS task id (from the
//! task metadata endpoint, v4), else `<hostname>-<pid>`.

use std::time::Duration;

use http_body_util::BodyExt;

/// Resolves the id once at start-up (the metadata call is bounded to 2 s).
pub async fn resolve(configured: Option<&str>, client: &crate::backend::HttpClient) -> String {
    if let Some(id) = configured {
        return id.to_owned();
    }
    if let Some(id) = ecs_task_id(client).await {
        return id;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| sanitize(h.trim()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "replica".into());
    format!("{host}-{}", std::process::id())
}

/// The task id: the last path segment of the task ARN the metadata endpoint reports.
async fn ecs_task_id(client: &crate::backend::HttpClient) -> Option<String> {
    let base = std::env::var("ECS_CONTAINER_METADATA_URI_V4").ok()?;
    let req = http::Request::get(format!("{}/task", base.trim_end_matches('/')))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .ok()?;
    let resp = tokio::time::timeout(Duration::from_secs(2), client.request(req)).await.ok()?.ok()?;
    let body = tokio::time::timeout(Duration::from_secs(2), resp.into_body().collect()).await.ok()?.ok()?.to_bytes();
    task_id_of(&body)
}

/// Parses the metadata document's `TaskARN` (`arn:aws:ecs:<region>:<acct>:task/<cluster>/<id>`).
pub fn task_id_of(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let arn = v.get("TaskARN")?.as_str()?;
    let id = sanitize(arn.rsplit('/').next()?);
    crate::config::valid_replica_id(&id).then_some(id)
}

fn sanitize(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric() || "-_.:".contains(*c)).take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_from_ecs_metadata() {
        let doc =
            br#"{"Cluster":"prod","TaskARN":"arn:aws:ecs:eu-west-1:123456789012:task/prod/0b69d5c0d0a14d4e8c1b2f1a"}"#;
        assert_eq!(task_id_of(doc).as_deref(), Some("0b69d5c0d0a14d4e8c1b2f1a"));
        assert_eq!(task_id_of(br#"{"TaskARN":""}"#), None);
        assert_eq!(task_id_of(b"not json"), None);
    }
}
