//! AWS: SDK configuration shared per region/endpoint (the SageMaker backend in `backend` takes its
//! clients from here), the DynamoDB config source and model registry, and the CloudWatch publisher.
//!
//! One HTTP/TLS stack (hyper 1 + rustls with ring) serves every SDK client, and one `SdkConfig` is
//! built per distinct (region, endpoint override), never per request. Credentials and region come
//! from the standard chain (environment, profile, ECS/EC2 role) unless the config names a region.

pub mod cloudwatch;
pub mod dynamo;

use std::collections::HashMap;
use std::sync::Mutex;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_http_client::Builder;

use crate::config::{AwsTarget, Plan};

/// SDK configurations by target; filled before a snapshot that needs them is built.
pub struct AwsClients {
    http: aws_sdk_sagemakerruntime::config::SharedHttpClient,
    configs: Mutex<HashMap<AwsTarget, SdkConfig>>,
    sagemaker: Mutex<HashMap<AwsTarget, aws_sdk_sagemakerruntime::Client>>,
}

impl Default for AwsClients {
    fn default() -> Self {
        AwsClients::new()
    }
}

impl AwsClients {
    pub fn new() -> AwsClients {
        AwsClients {
            http: Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https(),
            configs: Mutex::new(HashMap::new()),
            sagemaker: Mutex::new(HashMap::new()),
        }
    }

    /// The SDK config for `target`, loading it (credentials chain, region) on first use.
    pub async fn config(&self, target: &AwsTarget) -> SdkConfig {
        if let Some(c) = self.lock_configs().get(target) {
            return c.clone();
        }
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(self.http.clone());
        if let Some(r) = &target.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        if let Some(u) = &target.endpoint_url {
            loader = loader.endpoint_url(u.clone());
        }
        let config = loader.load().await;
        self.lock_configs().entry(target.clone()).or_insert(config).clone()
    }

    /// Makes sure every SageMaker client `plan` needs exists, so building its snapshot is sync.
    pub async fn prepare(&self, plan: &Plan) {
        for m in &plan.models {
            if let Some(sm) = &m.sagemaker {
                if self.sagemaker_client(&sm.aws).is_none() {
                    let config = self.config(&sm.aws).await;
                    // No SDK retries on the request path: the model's timeout bounds the call, and a
                    // retry loop hidden inside it would turn "model down" (502) into a timeout (504).
                    let conf = aws_sdk_sagemakerruntime::config::Builder::from(&config)
                        .retry_config(aws_sdk_sagemakerruntime::config::retry::RetryConfig::disabled())
                        .build();
                    let client = aws_sdk_sagemakerruntime::Client::from_conf(conf);
                    self.lock_sagemaker().entry(sm.aws.clone()).or_insert(client);
                }
            }
        }
    }

    /// The shared SageMaker Runtime client for `target`, if prepared.
    pub fn sagemaker_client(&self, target: &AwsTarget) -> Option<aws_sdk_sagemakerruntime::Client> {
        self.lock_sagemaker().get(target).cloned()
    }

    fn lock_configs(&self) -> std::sync::MutexGuard<'_, HashMap<AwsTarget, SdkConfig>> {
        self.configs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_sagemaker(&self) -> std::sync::MutexGuard<'_, HashMap<AwsTarget, aws_sdk_sagemakerruntime::Client>> {
        self.sagemaker.lock().unwrap_or_else(|e| e.into_inner())
    }
}
