//! The SRM watch: once a second, the experiment's sample-ratio-mismatch check over the live
//! counters (the fleet's, with `[fleet]`) sets `splitgate_experiment_srm_flagged` (0/1) and logs once each time it flips, with
//! the p-value and the observed and expected users. The ramp and `POST /admin/promote` run the
//! same pure check themselves when they decide, so they never act on a stale flag.

use std::sync::Weak;
use std::time::Duration;

use super::{views, Admin};
use crate::tally::Tallies;

const EVERY: Duration = Duration::from_secs(1);

/// Runs while the admin service lives.
pub fn spawn(admin: Weak<Admin>) {
    tokio::spawn(async move {
        let mut flagged = false;
        loop {
            let Some(a) = admin.upgrade() else { return };
            let snap = a.proxy.runtime.snapshot.load_full();
            // With a fleet, the fleet's merged counters: the split is judged on all of it.
            let tallies = a.fleet.get().map_or_else(|| Tallies::local(&snap), |f| f.merged());
            let srm = views::srm(&snap, &tallies);
            a.proxy.shared.metrics.srm_flagged.set(if srm.flagged { 1.0 } else { 0.0 });
            if srm.flagged != flagged {
                flagged = srm.flagged;
                let (observed, expected) = (format!("{:?}", srm.observed), format!("{:?}", srm.expected));
                if flagged {
                    tracing::error!(p_value = srm.p_value, %observed, %expected, epoch = %snap.epoch.id(), "sample ratio mismatch: the split is broken; the ramp holds and promote needs force");
                } else {
                    tracing::info!(p_value = srm.p_value, %observed, %expected, "sample ratio mismatch cleared");
                }
            }
            drop(a);
            tokio::time::sleep(EVERY).await;
        }
    });
}
