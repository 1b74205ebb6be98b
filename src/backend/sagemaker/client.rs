//! How a SageMaker Runtime client is built, once per (region, endpoint override) and kept across
//! reloads: the SDK's config from the standard chain, with what it would otherwise do on every
//! request taken off the path.
//!
//! * HTTP: [`super::connector::LeanHttpClient`] over the process-wide lean pools.
//! * Endpoint: resolved once here by the SDK's own rules, then served as a constant.
//! * No retries (a hidden retry loop would turn "model down" (502) into a timeout (504)), no SDK
//!   timeouts and no stalled-stream protection: the model's `timeout_ms` bounds the whole call.
//! * Credentials: resolved by [`crate::aws::credentials::Refreshing`] in the background; the
//!   SDK's own identity cache is off, so no request ever waits for a refresh.

use std::fmt;

use aws_config::SdkConfig;
use aws_sdk_sagemakerruntime::config::endpoint::{DefaultResolver, Endpoint, EndpointFuture, Params, ResolveEndpoint};
use aws_sdk_sagemakerruntime::config::retry::RetryConfig;
use aws_sdk_sagemakerruntime::config::timeout::TimeoutConfig;
use aws_sdk_sagemakerruntime::config::{IdentityCache, SharedCredentialsProvider, StalledStreamProtectionConfig};

use super::connector::LeanHttpClient;
use super::scope::CallInterceptor;
use crate::backend::HttpClient as Upstreams;

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("no region for SageMaker (set `region` on the model or AWS_REGION)")]
    NoRegion,
    #[error("SageMaker endpoint for region {region}: {message}")]
    Endpoint { region: String, message: String },
}

/// The client for `config` (its region, endpoint override and FIPS/dual-stack settings), with
/// `credentials` as the identity source.
pub fn build(
    config: &SdkConfig,
    upstreams: &Upstreams,
    credentials: Option<SharedCredentialsProvider>,
) -> Result<aws_sdk_sagemakerruntime::Client, BuildError> {
    let endpoint = StaticEndpoint::resolve(config)?;
    let mut conf = aws_sdk_sagemakerruntime::config::Builder::from(config)
        .http_client(LeanHttpClient::new(upstreams))
        .endpoint_resolver(endpoint)
        .retry_config(RetryConfig::disabled())
        .timeout_config(TimeoutConfig::disabled())
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .interceptor(CallInterceptor);
    if let Some(c) = credentials {
        conf = conf.credentials_provider(c).identity_cache(IdentityCache::no_cache());
    }
    Ok(aws_sdk_sagemakerruntime::Client::from_conf(conf.build()))
}

/// The endpoint the SDK's rules give for this config, computed once: the rules (region, FIPS,
/// dual-stack, override) cannot change for the life of a client.
#[derive(Clone)]
pub struct StaticEndpoint(Endpoint);

impl fmt::Debug for StaticEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StaticEndpoint").field(&self.0.url()).finish()
    }
}

impl StaticEndpoint {
    pub fn resolve(config: &SdkConfig) -> Result<StaticEndpoint, BuildError> {
        let region = config.region().ok_or(BuildError::NoRegion)?.to_string();
        let err = |message: String| BuildError::Endpoint { region: region.clone(), message };
        let params = Params::builder()
            .region(region.clone())
            .use_fips(config.use_fips().unwrap_or(false))
            .use_dual_stack(config.use_dual_stack().unwrap_or(false))
            .set_endpoint(config.endpoint_url().map(str::to_owned))
            .build()
            .map_err(|e| err(e.to_string()))?;
        // The default resolver answers synchronously (`EndpointFuture::ready`); polling it once
        // with a no-op waker takes that answer without needing a runtime.
        let resolver = DefaultResolver::new();
        let mut future = std::pin::pin!(resolver.resolve_endpoint(&params));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match std::future::Future::poll(future.as_mut(), &mut cx) {
            std::task::Poll::Ready(Ok(endpoint)) => Ok(StaticEndpoint(endpoint)),
            std::task::Poll::Ready(Err(e)) => Err(err(e.to_string())),
            std::task::Poll::Pending => Err(err("the endpoint rules did not resolve synchronously".into())),
        }
    }

    pub fn url(&self) -> &str {
        self.0.url()
    }
}

impl ResolveEndpoint for StaticEndpoint {
    fn resolve_endpoint<'a>(&'a self, _: &'a Params) -> EndpointFuture<'a> {
        EndpointFuture::ready(Ok(self.0.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::{BehaviorVersion, Region};

    fn config(region: &str, endpoint_url: Option<&str>, fips: bool) -> SdkConfig {
        let mut b =
            SdkConfig::builder().behavior_version(BehaviorVersion::latest()).region(Region::new(region.to_owned()));
        if let Some(u) = endpoint_url {
            b = b.endpoint_url(u);
        }
        b.use_fips(fips).build()
    }

    #[test]
    fn the_static_endpoint_is_what_the_sdk_rules_give() {
        let url = |c: &SdkConfig| StaticEndpoint::resolve(c).map(|e| e.url().to_owned()).map_err(|e| e.to_string());
        assert_eq!(
            url(&config("us-east-1", None, false)),
            Ok("https://runtime.sagemaker.us-east-1.amazonaws.com".into())
        );
        assert_eq!(
            url(&config("us-east-1", None, true)),
            Ok("https://runtime-fips.sagemaker.us-east-1.amazonaws.com".into())
        );
        assert_eq!(url(&config("eu-west-1", Some("http://127.0.0.1:9000"), false)), Ok("http://127.0.0.1:9000".into()));
        let no_region = SdkConfig::builder().behavior_version(BehaviorVersion::latest()).build();
        assert!(matches!(StaticEndpoint::resolve(&no_region), Err(BuildError::NoRegion)));
    }
}
