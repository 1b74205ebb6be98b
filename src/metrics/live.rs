//! Series computed at scrape time rather than kept in the registry: which build is running, and
//! each live variant's weight. Computing them from the live snapshot means a variant removed by
//! a reload disappears from `/metrics` with it, and nothing on the request path touches them.

use std::fmt::Write as _;

use super::hist::render_labels;
use super::{BUILD_INFO, VARIANT_WEIGHT};
use crate::snapshot::Snapshot;

/// The commit the binary was built from (`build.rs`: `SPLITGATE_COMMIT` or `git rev-parse`).
pub const COMMIT: &str = env!("SPLITGATE_COMMIT");
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `splitgate_build_info{version, commit} 1`.
pub fn build_info(out: &mut String) {
    let labels = render_labels(&[("version", VERSION), ("commit", COMMIT)]);
    let _ = writeln!(
        out,
        "# HELP {BUILD_INFO} Always 1; the labels say which build is running.\n# TYPE {BUILD_INFO} gauge\n{BUILD_INFO}{{{labels}}} 1"
    );
}

/// `splitgate_variant_weight{variant, model}` in percent, for every variant of `snap`.
pub fn variant_weights(out: &mut String, snap: &Snapshot) {
    let _ = writeln!(
        out,
        "# HELP {VARIANT_WEIGHT} Live share of traffic per variant, in percent (0-100).\n# TYPE {VARIANT_WEIGHT} gauge"
    );
    for v in &snap.variants {
        let labels = render_labels(&[("variant", &v.name), ("model", &v.model.name)]);
        let _ = writeln!(out, "{VARIANT_WEIGHT}{{{labels}}} {}", v.weight_percent);
    }
}
