//! `[models.NAME]`: how each model is reached (builtin, HTTP, SageMaker) and its timeout.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::aws::{aws_target, AwsTarget};
use super::{valid_name, Issues, MAX_TIMEOUT_MS};

/// `[models.NAME]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub version: String,
    pub backend: BackendKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// SageMaker endpoint name (`backend = "sagemaker"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// SageMaker production variant to pin (`TargetVariant`); SageMaker's own weights otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_variant: Option<String>,
    /// AWS region; the standard chain (AWS_REGION, profile) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Override the AWS endpoint (emulators, VPC endpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// How `InvokeEndpoint` is sent: `direct` (default: rendered and SigV4-signed by splitgate
    /// with the SDK's signer, errors read by the SDK) or `sdk` (every call through the SDK's
    /// orchestrator, ~3× the CPU; the escape hatch and the baseline the direct path is measured
    /// against).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sagemaker_client: Option<SageMakerClient>,
}

/// `sagemaker_client`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SageMakerClient {
    #[default]
    Direct,
    Sdk,
}

/// One second: also the default of a `[[shadow]]` call.
pub(super) fn default_timeout_ms() -> u64 {
    1_000
}

/// How a model is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The deterministic demo recommender compiled into the binary.
    Builtin,
    /// A model server speaking HTTP (POST the body, get JSON back).
    Http,
    /// A SageMaker endpoint, called with `InvokeEndpoint`.
    Sagemaker,
}

/// A validated model.
#[derive(Debug, Clone)]
pub struct ModelPlan {
    pub name: String,
    pub version: String,
    pub kind: BackendKind,
    pub url: Option<http::Uri>,
    pub timeout: Duration,
    pub sagemaker: Option<SageMakerPlan>,
}

/// Where a SageMaker model lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SageMakerPlan {
    pub endpoint: String,
    pub target_variant: Option<String>,
    pub aws: AwsTarget,
    pub client: SageMakerClient,
}

/// Checks every model; returns one plan per model, in name order (variants index them).
pub(super) fn validate(issues: &mut Issues, models: &BTreeMap<String, ModelConfig>) -> Vec<ModelPlan> {
    let mut out = Vec::new();
    for (name, m) in models {
        let path = format!("models.{name}");
        if !valid_name(name) {
            issues.add(&path, "model names must be 1-64 characters of A-Z a-z 0-9 - _ .");
        }
        if m.version.is_empty() || m.version.len() > 128 || http::HeaderValue::from_str(&m.version).is_err() {
            issues.add(format!("{path}.version"), "must be 1-128 visible ASCII characters");
        }
        if !(1..=MAX_TIMEOUT_MS).contains(&m.timeout_ms) {
            issues.add(format!("{path}.timeout_ms"), format!("must be between 1 and {MAX_TIMEOUT_MS}"));
        }
        let aws_fields = [
            ("endpoint", m.endpoint.is_some()),
            ("target_variant", m.target_variant.is_some()),
            ("region", m.region.is_some()),
            ("endpoint_url", m.endpoint_url.is_some()),
            ("sagemaker_client", m.sagemaker_client.is_some()),
        ];
        if m.backend != BackendKind::Sagemaker {
            for (field, set) in aws_fields {
                if set {
                    issues.add(format!("{path}.{field}"), "only for backend = \"sagemaker\"");
                }
            }
        }
        let sagemaker = (m.backend == BackendKind::Sagemaker).then(|| {
            if m.url.is_some() {
                issues.add(
                    format!("{path}.url"),
                    "sagemaker models take `endpoint` (and optional `endpoint_url`), not `url`",
                );
            }
            let endpoint = m.endpoint.clone().unwrap_or_default();
            if endpoint.is_empty()
                || endpoint.len() > 63
                || !endpoint.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                issues.add(format!("{path}.endpoint"), "required: the SageMaker endpoint name (1-63 of A-Z a-z 0-9 -)");
            }
            let aws = aws_target(issues, &path, &m.region, &m.endpoint_url);
            SageMakerPlan {
                endpoint,
                target_variant: m.target_variant.clone(),
                aws,
                client: m.sagemaker_client.unwrap_or_default(),
            }
        });
        let url = match (m.backend, &m.url) {
            (BackendKind::Sagemaker, _) => None,
            (BackendKind::Builtin, None) => None,
            (BackendKind::Builtin, Some(_)) => {
                issues.add(format!("{path}.url"), "builtin models take no url");
                None
            }
            (BackendKind::Http, None) => {
                issues.add(format!("{path}.url"), "required for backend = \"http\"");
                None
            }
            (BackendKind::Http, Some(u)) => match u.parse::<http::Uri>() {
                Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => Some(uri),
                _ => {
                    issues.add(format!("{path}.url"), format!("`{u}` is not an absolute http(s):// URL"));
                    None
                }
            },
        };
        out.push(ModelPlan {
            name: name.clone(),
            version: m.version.clone(),
            kind: m.backend,
            url,
            timeout: Duration::from_millis(m.timeout_ms),
            sagemaker,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::support_tests::{paths, GOOD};

    #[test]
    fn http_model_needs_url_and_builtin_refuses_one() {
        let text = GOOD.replacen("backend = \"builtin\"", "backend = \"http\"", 1);
        assert_eq!(paths(&text), vec!["models.rec-v2-2.url".to_owned()]);
        let text = GOOD.replacen("backend = \"builtin\"", "backend = \"builtin\"\nurl = \"http://a/\"", 1);
        assert_eq!(paths(&text), vec!["models.rec-v2-2.url".to_owned()]);
    }

    #[test]
    fn sagemaker_fields_are_checked() {
        let text = GOOD.replacen("backend = \"builtin\"", "backend = \"sagemaker\"\nurl = \"http://x/\"", 1);
        let p = paths(&text);
        assert!(
            p.contains(&"models.rec-v2-2.url".to_owned()) && p.contains(&"models.rec-v2-2.endpoint".to_owned()),
            "{p:?}"
        );
        let text = GOOD.replacen("backend = \"builtin\"", "backend = \"builtin\"\nendpoint = \"e\"", 1);
        assert_eq!(paths(&text), vec!["models.rec-v2-2.endpoint".to_owned()]);
    }
}
