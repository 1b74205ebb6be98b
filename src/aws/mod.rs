//! AWS: SDK configuration shared per region/endpoint (the SageMaker backend in `backend` takes its
//! clients from here), credentials refreshed off the request path, the DynamoDB config source and
//! model registry, and the CloudWatch publisher.
//!
//! One `SdkConfig` is built per distinct (region, endpoint override), never per request.
//! Credentials and region come from the standard chain (environment, profile, ECS/EC2 role)
//! unless the config names a region. SageMaker clients, on the request path, send through
//! splitgate's lean HTTP/1.1 client (`backend::sagemaker::client`); DynamoDB, CloudWatch and the
//! credential providers, off it, share one hyper + rustls (ring) stack.

pub mod cloudwatch;
pub mod credentials;
pub mod dynamo;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_http_client::Builder;

use crate::backend::sagemaker::client::StaticEndpoint;
use crate::backend::sagemaker::direct::Direct;
use crate::backend::HttpClient;
use crate::config::{AwsTarget, Plan};

/// How long start-up (or a reload adding a region) waits for the first credentials.
const FIRST_CREDENTIALS_WAIT: Duration = Duration::from_secs(5);

/// SDK configurations by target; filled before a snapshot that needs them is built.
pub struct AwsClients {
    http: aws_sdk_sagemakerruntime::config::SharedHttpClient,
    configs: Mutex<HashMap<AwsTarget, SdkConfig>>,
    sagemaker: Mutex<HashMap<AwsTarget, SageMaker>>,
}

/// What SageMaker models on one target share: the SDK client and, when it can serve them, the
/// direct path (`backend::sagemaker::direct`).
#[derive(Debug, Clone)]
pub struct SageMaker {
    pub sdk: aws_sdk_sagemakerruntime::Client,
    pub direct: Option<Arc<Direct>>,
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
    /// The clients send through `upstreams`' lean pools (its trust store included) and get
    /// credentials that refresh in the background.
    pub async fn prepare(&self, plan: &Plan, upstreams: &HttpClient) {
        for m in &plan.models {
            if let Some(sm) = &m.sagemaker {
                if self.sagemaker(&sm.aws).is_none() {
                    let config = self.config(&sm.aws).await;
                    let credentials = match config.credentials_provider() {
                        Some(chain) => Some(credentials::Refreshing::start(chain, FIRST_CREDENTIALS_WAIT).await),
                        None => None,
                    };
                    let direct = match (StaticEndpoint::resolve(&config), config.region(), &credentials) {
                        (Ok(endpoint), Some(region), Some(c)) => {
                            Direct::new(endpoint.url(), region.as_ref(), upstreams, c.clone()).map(Arc::new)
                        }
                        _ => None,
                    };
                    let shared = credentials.map(|c| c.shared());
                    match crate::backend::sagemaker::client::build(&config, upstreams, shared) {
                        Ok(sdk) => {
                            self.lock_sagemaker().entry(sm.aws.clone()).or_insert(SageMaker { sdk, direct });
                        }
                        // The model then answers 502 unavailable, and says why in the log.
                        Err(e) => tracing::error!(model = %m.name, error = %e, "cannot build the SageMaker client"),
                    }
                }
            }
        }
    }

    /// The shared SageMaker Runtime client and direct path for `target`, if prepared.
    pub fn sagemaker(&self, target: &AwsTarget) -> Option<SageMaker> {
        self.lock_sagemaker().get(target).cloned()
    }

    fn lock_configs(&self) -> std::sync::MutexGuard<'_, HashMap<AwsTarget, SdkConfig>> {
        self.configs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_sagemaker(&self) -> std::sync::MutexGuard<'_, HashMap<AwsTarget, SageMaker>> {
        self.sagemaker.lock().unwrap_or_else(|e| e.into_inner())
    }
}
