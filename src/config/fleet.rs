//! `[fleet]`: the DynamoDB table through which replicas share their counters and elect the one
//! replica that acts on fleet-wide guard decisions. Static: read at start-up, like `[source]`.

use serde::{Deserialize, Serialize};

use super::aws::aws_target;
use super::{AwsTarget, Issues};

/// `[fleet]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// Partition key `pk` (S), sort key `sk` (S), TTL attribute `expires_at`.
    pub table: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// How often each replica writes its counters (and reads everyone's).
    #[serde(default = "default_flush_ms")]
    pub flush_interval_ms: u64,
    /// How long the guard lease lasts without renewal.
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
    /// This replica's name in the table; default: the ECS task id, else `<hostname>-<pid>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_id: Option<String>,
}

fn default_flush_ms() -> u64 {
    5_000
}

fn default_lease_ms() -> u64 {
    10_000
}

impl FleetConfig {
    pub fn target(&self) -> AwsTarget {
        AwsTarget { region: self.region.clone(), endpoint_url: self.endpoint_url.clone() }
    }
}

pub(super) fn validate(issues: &mut Issues, f: &FleetConfig) {
    if f.table.is_empty() || f.table.len() > 255 {
        issues.add("fleet.table", "must be a DynamoDB table name (1-255 characters)");
    }
    if !(100..=600_000).contains(&f.flush_interval_ms) {
        issues.add("fleet.flush_interval_ms", "must be between 100 and 600000");
    }
    if !(300..=600_000).contains(&f.lease_ms) {
        issues.add("fleet.lease_ms", "must be between 300 and 600000");
    }
    if let Some(id) = &f.replica_id {
        if !valid_replica_id(id) {
            issues.add("fleet.replica_id", "must be 1-128 characters of A-Z a-z 0-9 - _ . :");
        }
    }
    aws_target(issues, "fleet", &f.region, &f.endpoint_url);
}

/// Replica ids end up in sort keys and metric labels: keep them short and plain.
pub fn valid_replica_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::super::support_tests::{paths, GOOD};

    #[test]
    fn fleet_section_is_checked() {
        let ok = format!("{GOOD}\n[fleet]\ntable = \"splitgate-fleet\"\n");
        let raw = crate::config::parse(&ok).unwrap();
        let plan = crate::config::validate(&raw).unwrap();
        assert_eq!(plan.fleet.map(|f| (f.flush_interval_ms, f.lease_ms)), Some((5_000, 10_000)));
        let bad = format!(
            "{GOOD}\n[fleet]\ntable = \"\"\nflush_interval_ms = 5\nlease_ms = 1\nreplica_id = \"a b\"\nregion = \"EU\"\n"
        );
        let p = paths(&bad);
        for want in ["fleet.table", "fleet.flush_interval_ms", "fleet.lease_ms", "fleet.replica_id", "fleet.region"] {
            assert!(p.contains(&want.to_owned()), "{want} missing from {p:?}");
        }
        let unknown = format!("{GOOD}\n[fleet]\ntable = \"t\"\nflush = 1\n");
        assert!(crate::config::parse(&unknown).is_err(), "unknown keys are refused");
    }
}
