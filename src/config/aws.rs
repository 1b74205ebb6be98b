//! The AWS-backed sections: `[source]` (a DynamoDB config item), `[registry]` (the model
//! registry table) and `[cloudwatch]`, plus the region/endpoint check every AWS client shares
//! (SageMaker models use it too).

use serde::{Deserialize, Serialize};

use super::{Issues, RawConfig};

/// `[source]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub kind: SourceKind,
    /// DynamoDB table holding config items (partition key `pk`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The item's `pk` value, e.g. `splitgate/prod`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
}

fn default_poll_ms() -> u64 {
    1_000
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    File,
    Dynamodb,
}

/// `[registry]`: the model registry table (partition key `model_id`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    pub table: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
}

/// `[cloudwatch]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CloudWatchConfig {
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The `Environment` dimension (dev, staging, prod).
    pub environment: String,
    #[serde(default = "default_interval_secs")]
    pub interval_secs: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
}

fn default_namespace() -> String {
    "Splitgate".into()
}

fn default_interval_secs() -> u64 {
    60
}

/// Region and endpoint override of an AWS client; clients are shared per distinct target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AwsTarget {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

/// Checks `{path}.region` and `{path}.endpoint_url` and returns them as a target.
pub(super) fn aws_target(
    issues: &mut Issues,
    path: &str,
    region: &Option<String>,
    endpoint_url: &Option<String>,
) -> AwsTarget {
    if let Some(r) = region {
        if r.is_empty() || !r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            issues.add(format!("{path}.region"), format!("`{r}` is not an AWS region name"));
        }
    }
    if let Some(u) = endpoint_url {
        match u.parse::<http::Uri>() {
            Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {}
            _ => issues.add(format!("{path}.endpoint_url"), format!("`{u}` is not an absolute http(s) URL")),
        }
    }
    AwsTarget { region: region.clone(), endpoint_url: endpoint_url.clone() }
}

/// Checks `[source]`, `[registry]` and `[cloudwatch]`; the plan keeps them as written.
pub(super) fn validate(issues: &mut Issues, raw: &RawConfig) {
    if let Some(s) = &raw.source {
        match s.kind {
            SourceKind::File => {
                if s.table.is_some() || s.key.is_some() || s.endpoint_url.is_some() || s.region.is_some() {
                    issues.add("source", "kind = \"file\" takes no table, key, region or endpoint_url");
                }
            }
            SourceKind::Dynamodb => {
                if s.table.as_deref().is_none_or(str::is_empty) {
                    issues.add("source.table", "required for kind = \"dynamodb\"");
                }
                if s.key.as_deref().is_none_or(str::is_empty) {
                    issues.add("source.key", "required for kind = \"dynamodb\" (the item's pk)");
                }
                if !(100..=3_600_000).contains(&s.poll_interval_ms) {
                    issues.add("source.poll_interval_ms", "must be between 100 and 3600000");
                }
                aws_target(issues, "source", &s.region, &s.endpoint_url);
            }
        }
    }
    if let Some(r) = &raw.registry {
        if r.table.is_empty() {
            issues.add("registry.table", "must not be empty");
        }
        aws_target(issues, "registry", &r.region, &r.endpoint_url);
    }
    if let Some(c) = &raw.cloudwatch {
        if c.namespace.is_empty() || c.namespace.starts_with("AWS/") || c.namespace.len() > 255 {
            issues.add("cloudwatch.namespace", "must be 1-255 characters and not start with `AWS/`");
        }
        if c.environment.is_empty() || c.environment.len() > 255 {
            issues.add("cloudwatch.environment", "must be 1-255 characters");
        }
        if !(1..=3_600).contains(&c.interval_secs) {
            issues.add("cloudwatch.interval_secs", "must be between 1 and 3600");
        }
        aws_target(issues, "cloudwatch", &c.region, &c.endpoint_url);
    }
}

#[cfg(test)]
mod tests {
    use super::super::support_tests::{paths, GOOD};

    #[test]
    fn dynamodb_source_needs_table_key_and_a_sane_poll() {
        let text = format!("{GOOD}\n[source]\nkind = \"dynamodb\"\npoll_interval_ms = 5\n");
        let p = paths(&text);
        for want in ["source.table", "source.key", "source.poll_interval_ms"] {
            assert!(p.contains(&want.to_owned()), "{p:?}");
        }
    }
}
