//! DynamoDB: the config item every replica polls, and the model registry table.
//!
//! Config item (table from `[source] table`, partition key `pk` = `[source] key`): `version` (N),
//! `document` (S, the TOML of the hot-reloadable part: keys, throttle, models, split, shadows),
//! `updated_at`, `updated_by`. Writes are conditional on `version`, so two operators can never
//! silently overwrite each other. Registry items: `model_id` (S, partition key), `status`,
//! `artifact`, `metrics` (JSON text), `updated_at`.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::AttributeValue;

use super::AwsClients;
use crate::config::{AwsTarget, RegistryConfig, SourceConfig};

/// Why a DynamoDB call failed.
#[derive(Debug, thiserror::Error)]
pub enum DynamoError {
    /// The call failed on the way or at DynamoDB; the SDK error is kept whole as the source.
    #[error("DynamoDB unreachable or failing: {}", DisplayErrorContext(&**.0))]
    Unavailable(#[source] crate::error::BoxError),
    #[error("version conflict: {}", conflict_message(*.expected))]
    Conflict { expected: Option<u64> },
    #[error("malformed item: `{attribute}` {problem}")]
    BadItem { attribute: &'static str, problem: &'static str },
}

/// The operator expected `expected` (`None`: that the item did not exist yet).
fn conflict_message(expected: Option<u64>) -> String {
    match expected {
        Some(v) => format!("the item is no longer at version {v}"),
        None => "the item already exists; pass --expect-version with its current version".to_owned(),
    }
}

pub(crate) fn unavailable<E, R>(e: aws_sdk_dynamodb::error::SdkError<E, R>) -> DynamoError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    DynamoError::Unavailable(Box::new(e))
}

/// The config item.
#[derive(Clone)]
pub struct ConfigTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
    key: String,
}

impl ConfigTable {
    /// Client for `[source]`; `None` unless kind = "dynamodb" with table and key.
    pub async fn connect(aws: &AwsClients, source: &SourceConfig) -> Option<ConfigTable> {
        let (table, key) = (source.table.clone()?, source.key.clone()?);
        let target = AwsTarget { region: source.region.clone(), endpoint_url: source.endpoint_url.clone() };
        let client = aws_sdk_dynamodb::Client::new(&aws.config(&target).await);
        Some(ConfigTable { client, table, key })
    }

    fn pk(&self) -> AttributeValue {
        AttributeValue::S(self.key.clone())
    }

    /// The item's version only (a small consistent read), `None` when the item does not exist.
    pub async fn version(&self) -> Result<Option<u64>, DynamoError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", self.pk())
            .projection_expression("#v")
            .expression_attribute_names("#v", "version")
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        out.item.as_ref().map(|i| number(i, "version")).transpose()
    }

    /// Version and document.
    pub async fn fetch(&self) -> Result<Option<(u64, String)>, DynamoError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", self.pk())
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let Some(item) = out.item else { return Ok(None) };
        let version = number(&item, "version")?;
        let document = match item.get("document") {
            Some(AttributeValue::S(s)) => s.clone(),
            _ => return Err(DynamoError::BadItem { attribute: "document", problem: "must be a string attribute" }),
        };
        Ok(Some((version, document)))
    }

    /// Appends an audit record to `table` under this item's key.
    pub async fn audit(&self, table: &str, sort_key: &str, record_json: &str) -> Result<(), DynamoError> {
        self.client
            .put_item()
            .table_name(table)
            .item("pk", self.pk())
            .item("sk", AttributeValue::S(sort_key.to_owned()))
            .item("record", AttributeValue::S(record_json.to_owned()))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// The newest `limit` audit records under this item's key in `table`, newest last (each
    /// record is the JSON text the admin API wrote).
    pub async fn audit_records(&self, table: &str, limit: usize) -> Result<Vec<String>, DynamoError> {
        let out = self
            .client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", self.pk())
            .scan_index_forward(false)
            .limit(i32::try_from(limit.clamp(1, 1_000)).unwrap_or(1_000))
            .send()
            .await
            .map_err(unavailable)?;
        let mut records: Vec<String> = out
            .items()
            .iter()
            .filter_map(|i| match i.get("record") {
                Some(AttributeValue::S(s)) => Some(s.clone()),
                _ => None,
            })
            .collect();
        records.reverse();
        Ok(records)
    }

    /// Writes `document` as version `expected + 1` (or 1 for a new item), only if the item is
    /// still at `expected` (absent for `None`). Returns the new version.
    pub async fn put(&self, document: &str, expected: Option<u64>, who: &str) -> Result<u64, DynamoError> {
        let next = expected.map_or(1, |v| v + 1);
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", self.pk())
            .item("version", AttributeValue::N(next.to_string()))
            .item("document", AttributeValue::S(document.to_owned()))
            .item("updated_at", AttributeValue::S(now_rfc3339()))
            .item("updated_by", AttributeValue::S(who.to_owned()));
        put = match expected {
            Some(v) => put
                .condition_expression("#v = :expected")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":expected", AttributeValue::N(v.to_string())),
            None => put.condition_expression("attribute_not_exists(pk)"),
        };
        match put.send().await {
            Ok(_) => Ok(next),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Err(DynamoError::Conflict { expected }),
            Err(e) => Err(unavailable(e)),
        }
    }
}

fn number(item: &HashMap<String, AttributeValue>, name: &'static str) -> Result<u64, DynamoError> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => {
            n.parse().map_err(|_| DynamoError::BadItem { attribute: name, problem: "is not a whole number" })
        }
        _ => Err(DynamoError::BadItem { attribute: name, problem: "must be a number attribute" }),
    }
}

/// Seconds since the epoch as RFC 3339 UTC (`2026-11-26T13:47:36Z`).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    aws_sdk_dynamodb::primitives::DateTime::from_secs(secs as i64)
        .fmt(aws_sdk_dynamodb::primitives::DateTimeFormat::DateTime)
        .unwrap_or_default()
}

/// One model registry entry.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct RegistryEntry {
    pub model_id: String,
    pub status: String,
    pub artifact: String,
    pub metrics: String,
    pub updated_at: String,
}

/// Statuses a registry entry may have (the deployment guide's lifecycle).
pub const STATUSES: [&str; 5] = ["candidate", "champion", "challenger", "shadow", "rolled_back"];

/// The model registry table.
pub struct Registry {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl Registry {
    pub async fn connect(aws: &AwsClients, cfg: &RegistryConfig) -> Registry {
        let target = AwsTarget { region: cfg.region.clone(), endpoint_url: cfg.endpoint_url.clone() };
        Registry { client: aws_sdk_dynamodb::Client::new(&aws.config(&target).await), table: cfg.table.clone() }
    }

    /// Every entry, sorted by model id (the table is small: one item per model version).
    pub async fn list(&self) -> Result<Vec<RegistryEntry>, DynamoError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            for item in page.items() {
                let s = |k: &str| match item.get(k) {
                    Some(AttributeValue::S(s)) => s.clone(),
                    Some(AttributeValue::N(n)) => n.clone(),
                    Some(AttributeValue::M(_)) => "{…}".to_owned(),
                    _ => String::new(),
                };
                out.push(RegistryEntry {
                    model_id: s("model_id"),
                    status: s("status"),
                    artifact: s("artifact"),
                    metrics: s("metrics"),
                    updated_at: s("updated_at"),
                });
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        out.sort_by(|a, b| a.model_id.cmp(&b.model_id));
        Ok(out)
    }

    /// Adds or replaces one entry (`metrics` is JSON text).
    pub async fn register(
        &self,
        model_id: &str,
        artifact: &str,
        status: &str,
        metrics: &str,
    ) -> Result<(), DynamoError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("model_id", AttributeValue::S(model_id.to_owned()))
            .item("status", AttributeValue::S(status.to_owned()))
            .item("artifact", AttributeValue::S(artifact.to_owned()))
            .item("metrics", AttributeValue::S(metrics.to_owned()))
            .item("updated_at", AttributeValue::S(now_rfc3339()))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Sets a model's status (e.g. `rolled_back` after a guard trips).
    pub async fn set_status(&self, model_id: &str, status: &str) -> Result<(), DynamoError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("model_id", AttributeValue::S(model_id.to_owned()))
            .update_expression("SET #s = :s, updated_at = :t")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":s", AttributeValue::S(status.to_owned()))
            .expression_attribute_values(":t", AttributeValue::S(now_rfc3339()))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_messages_name_the_version_plainly() {
        let e = DynamoError::Conflict { expected: Some(3) };
        assert_eq!(e.to_string(), "version conflict: the item is no longer at version 3");
        let none = DynamoError::Conflict { expected: None }.to_string();
        assert!(none.contains("already exists") && !none.contains("None"), "{none}");
    }
}
