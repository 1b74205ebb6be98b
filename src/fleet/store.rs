//! The fleet table's edge: the only DynamoDB calls the fleet makes. One partition (`pk =
//! "fleet"`) holds every replica's counters (`sk = "tally#<replica>"`) and the guard lease
//! (`sk = "lease"`), so one Query per interval reads the whole fleet state; split layouts for
//! feedback attribution live under `pk = "split"`, `sk = <version, zero-padded>`. Every item has a
//! TTL (`expires_at`, epoch seconds) so nothing outlives its use by more than a day.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;

use super::lease::{Seen, WriteResult};
use super::merge::ReplicaRecord;
use crate::aws::dynamo::{unavailable, DynamoError};
use crate::aws::AwsClients;
use crate::config::FleetConfig;
use crate::split::history::SplitRecord;

const PK: &str = "fleet";
const LEASE_SK: &str = "lease";
const TALLY_PREFIX: &str = "tally#";
const SPLIT_PK: &str = "split";
/// Items live a day past their last write (TTL deletion is lazy; reads never rely on it).
const TTL_SECS: u64 = 86_400;

/// What one read of the fleet partition returned.
#[derive(Debug, Default)]
pub struct FleetRead {
    pub records: Vec<ReplicaRecord>,
    pub lease: Option<Seen>,
    /// Items that could not be decoded (another release's format, or corruption): skipped.
    pub undecodable: usize,
}

#[derive(Clone)]
pub struct Store {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn expires(wall_ms: u64) -> AttributeValue {
    n(wall_ms / 1_000 + TTL_SECS)
}

/// A conditional write whose condition failed has nothing left to do (the lease is not ours, the
/// replica flushed again, the layout is already published): only a failed call is an error.
fn settled<T, E, R>(r: Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>) -> Result<(), DynamoError>
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(()),
        Err(e) => Err(unavailable(e)),
    }
}

fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, k: &str) -> Option<&'a str> {
    match item.get(k) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

fn get_n(item: &HashMap<String, AttributeValue>, k: &str) -> Option<u64> {
    match item.get(k) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

impl Store {
    pub async fn connect(aws: &AwsClients, cfg: &FleetConfig) -> Store {
        let client = aws_sdk_dynamodb::Client::new(&aws.config(&cfg.target()).await);
        Store { client, table: cfg.table.clone() }
    }

    /// Writes this replica's cumulative counters (`body`: JSON of its `Tallies`).
    pub async fn put_tally(&self, replica: &str, wall_ms: u64, body: String) -> Result<(), DynamoError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(PK))
            .item("sk", s(&format!("{TALLY_PREFIX}{replica}")))
            .item("replica", s(replica))
            .item("flushed_at_ms", n(wall_ms))
            .item("tallies", AttributeValue::S(body))
            .item("expires_at", expires(wall_ms))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Every replica's counters and the lease, in one (paginated) Query of the fleet partition.
    pub async fn read(&self) -> Result<FleetRead, DynamoError> {
        let mut out = FleetRead::default();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(PK))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            for item in page.items() {
                match get_s(item, "sk") {
                    Some(LEASE_SK) => {
                        out.lease = match (get_s(item, "holder"), get_n(item, "lease_expires_ms")) {
                            (Some(h), Some(e)) => Some(Seen { holder: h.to_owned(), expires_at_ms: e }),
                            _ => None,
                        }
                    }
                    Some(sk) if sk.starts_with(TALLY_PREFIX) => {
                        let record =
                            match (get_s(item, "replica"), get_n(item, "flushed_at_ms"), get_s(item, "tallies")) {
                                (Some(id), Some(at), Some(body)) => serde_json::from_str(body)
                                    .ok()
                                    .map(|tallies| ReplicaRecord { id: id.to_owned(), flushed_at_ms: at, tallies }),
                                _ => None,
                            };
                        match record {
                            Some(r) => out.records.push(r),
                            None => out.undecodable += 1,
                        }
                    }
                    _ => {}
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// Takes or renews the lease: succeeds only if there is no lease, it is ours, or it expired.
    /// A lost write also returns the lease item that won (the condition check's old item), so
    /// the loser waits for that lease's expiry instead of retrying every period.
    pub async fn write_lease(&self, me: &str, wall_ms: u64, expires_at_ms: u64) -> (WriteResult, Option<Seen>) {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(PK))
            .item("sk", s(LEASE_SK))
            .item("holder", s(me))
            .item("lease_expires_ms", n(expires_at_ms))
            .item("expires_at", expires(wall_ms))
            .condition_expression("attribute_not_exists(pk) OR holder = :me OR lease_expires_ms < :now")
            .expression_attribute_values(":me", s(me))
            .expression_attribute_values(":now", n(wall_ms))
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            );
        match put.send().await {
            Ok(_) => (WriteResult::Won, None),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
                let seen = e.as_service_error().and_then(|se| match se {
                    aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => {
                        let item = c.item()?;
                        Some(Seen {
                            holder: get_s(item, "holder")?.to_owned(),
                            expires_at_ms: get_n(item, "lease_expires_ms")?,
                        })
                    }
                    _ => None,
                });
                let holder = seen.as_ref().map(|s| s.holder.clone()).unwrap_or_default();
                (WriteResult::Held { holder }, seen)
            }
            Err(e) => {
                tracing::debug!(error = %unavailable(e), "fleet lease write failed");
                (WriteResult::Failed, None)
            }
        }
    }

    /// Gives the lease up (on shutdown), if it is still ours, so another replica takes over at once.
    pub async fn release_lease(&self, me: &str) -> Result<(), DynamoError> {
        let r = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(PK))
            .key("sk", s(LEASE_SK))
            .condition_expression("holder = :me")
            .expression_attribute_values(":me", s(me))
            .send()
            .await;
        settled(r)
    }

    /// Deletes a silent replica's counters, unless it flushed again since `flushed_at_ms`.
    pub async fn delete_tally(&self, replica: &str, flushed_at_ms: u64) -> Result<(), DynamoError> {
        let r = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(PK))
            .key("sk", s(&format!("{TALLY_PREFIX}{replica}")))
            .condition_expression("flushed_at_ms <= :at")
            .expression_attribute_values(":at", n(flushed_at_ms))
            .send()
            .await;
        settled(r)
    }

    /// Publishes a version's split layout (first writer wins; a version never changes).
    pub async fn put_split(&self, record: &SplitRecord, wall_ms: u64) -> Result<(), DynamoError> {
        let body = serde_json::to_string(record).unwrap_or_default();
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(SPLIT_PK))
            .item("sk", s(&format!("{:020}", record.version)))
            .item("split", AttributeValue::S(body))
            .item("expires_at", expires(wall_ms))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        settled(r)
    }

    /// The published layouts of versions after `after` (all of them for `None`).
    pub async fn splits(&self, after: Option<u64>) -> Result<Vec<SplitRecord>, DynamoError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk >= :from")
                .expression_attribute_values(":pk", s(SPLIT_PK))
                .expression_attribute_values(":from", s(&format!("{:020}", after.map_or(0, |v| v.saturating_add(1)))))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            out.extend(
                page.items().iter().filter_map(|i| get_s(i, "split")).filter_map(|b| serde_json::from_str(b).ok()),
            );
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(out)
    }
}
