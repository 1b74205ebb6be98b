//! Long-lived parts that outlive every config snapshot: the metrics registry, the pooled HTTP
//! client, the AWS SDK clients, the CloudWatch sink, the shadow lanes, the per-variant state
//! and the experiment's epochs and user sample kept across reloads. Snapshots are built against them through [`Shared::deps`], the one place
//! a `Deps` is made.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::aws::cloudwatch::CloudWatchSink;
use crate::aws::AwsClients;
use crate::backend::HttpClient;
use crate::metrics::Metrics;
use crate::shadow::ShadowHub;
use crate::snapshot::{Deps, VariantState};

pub struct Shared {
    pub metrics: Metrics,
    pub client: HttpClient,
    pub aws: AwsClients,
    pub cloudwatch: CloudWatchSink,
    pub shadow_hub: ShadowHub,
    /// Guard and experiment counters by variant name: they survive reloads.
    pub states: Mutex<HashMap<String, Arc<VariantState>>>,
    /// The weight epochs and the exact user sample: they survive reloads too.
    pub sampler: Arc<crate::experiment::Sampler>,
}

impl Shared {
    pub fn new(metrics: Metrics, client: HttpClient, aws: AwsClients) -> Shared {
        Shared {
            metrics,
            client,
            aws,
            cloudwatch: CloudWatchSink::default(),
            shadow_hub: ShadowHub::default(),
            states: Mutex::default(),
            sampler: Arc::default(),
        }
    }

    /// What a new snapshot is built against.
    pub fn deps(&self) -> Deps<'_> {
        Deps {
            metrics: &self.metrics,
            client: &self.client,
            hub: &self.shadow_hub,
            aws: &self.aws,
            cloudwatch: &self.cloudwatch,
            states: &self.states,
            sampler: &self.sampler,
        }
    }
}
