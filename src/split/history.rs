//! The split layouts of recent config versions, so feedback is attributed to the variant that
//! *served* a request even after the weights moved — on any replica, with no per-request state.
//!
//! A recommendation's answer names its config version (`x-splitgate-config-version`, and the
//! request ids splitgate mints carry it, see `reqid`). Feedback that brings the version back is
//! attributed by recomputing the user's bucket under that version's layout. Every replica records
//! the layout of each version it applies; with `[fleet]` it also publishes it to the fleet table
//! and loads the others', so a replica started after a rollback still knows the version before.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Layout, Slot};

/// How many versions are kept (each compiles to a 10,000-entry table, ~10 KB).
pub const KEEP: usize = 256;

/// A version's split, as stored in the fleet table: enough to rebuild its layout exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitRecord {
    pub version: u64,
    pub salt: String,
    pub variants: Vec<RecordedVariant>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedVariant {
    pub name: String,
    /// Weight in buckets (1/100 of a percent).
    pub buckets: u32,
    #[serde(default)]
    pub champion: bool,
    /// The slot `[start, end)` of a non-champion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<(u32, u32)>,
}

/// A version's layout, ready to assign.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub record: SplitRecord,
    layout: Layout,
}

impl Recorded {
    /// Rebuilds the layout; `None` if the record is not a valid split (a corrupt item).
    pub fn new(record: SplitRecord) -> Option<Recorded> {
        let champion = record.variants.iter().position(|v| v.champion)?;
        let weights: Vec<u32> = record.variants.iter().map(|v| v.buckets).collect();
        let slots: Vec<Option<Slot>> =
            record.variants.iter().map(|v| v.slot.map(|(start, end)| Slot { start, end })).collect();
        let layout = Layout::new(&weights, champion, &slots).ok()?;
        Some(Recorded { record, layout })
    }

    /// The name of the variant that served `user_id` under this version.
    pub fn variant_of(&self, user_id: &[u8]) -> &str {
        let i = self.layout.variant_of(super::bucket(&self.record.salt, user_id));
        self.record.variants.get(i).map_or("", |v| v.name.as_str())
    }
}

/// Recent versions' layouts, newest kept.
#[derive(Debug, Default, Clone)]
pub struct History {
    by_version: BTreeMap<u64, Arc<Recorded>>,
}

impl History {
    /// Adds a version (a repeated version replaces the old entry), dropping the oldest beyond [`KEEP`].
    pub fn insert(&mut self, r: Recorded) {
        self.by_version.insert(r.record.version, Arc::new(r));
        while self.by_version.len() > KEEP {
            self.by_version.pop_first();
        }
    }

    pub fn get(&self, version: u64) -> Option<Arc<Recorded>> {
        self.by_version.get(&version).cloned()
    }

    pub fn contains(&self, version: u64) -> bool {
        self.by_version.contains_key(&version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(version: u64, challenger: u32) -> SplitRecord {
        SplitRecord {
            version,
            salt: "s".into(),
            variants: vec![
                RecordedVariant { name: "champion".into(), buckets: 10_000 - challenger, champion: true, slot: None },
                RecordedVariant { name: "challenger".into(), buckets: challenger, champion: false, slot: None },
            ],
        }
    }

    #[test]
    fn a_users_variant_is_recomputed_under_the_version_that_served() {
        let mut h = History::default();
        h.insert(Recorded::new(record(1, 5_000)).unwrap());
        h.insert(Recorded::new(record(2, 0)).unwrap());
        let user = (0..1_000)
            .map(|i| format!("u{i}"))
            .find(|u| h.get(1).unwrap().variant_of(u.as_bytes()) == "challenger")
            .unwrap();
        assert_eq!(h.get(1).unwrap().variant_of(user.as_bytes()), "challenger");
        assert_eq!(h.get(2).unwrap().variant_of(user.as_bytes()), "champion", "after the rollback");
        assert!(h.get(3).is_none());
        // The record round-trips through JSON and rebuilds the same assignment.
        let text = serde_json::to_string(&record(1, 5_000)).unwrap();
        let back = Recorded::new(serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(back.variant_of(user.as_bytes()), "challenger");
    }

    #[test]
    fn corrupt_records_are_refused_and_history_is_bounded() {
        let mut bad = record(1, 5_000);
        bad.variants[1].buckets = 7_000; // sums to 12,000
        assert!(Recorded::new(bad).is_none());
        let mut none = record(1, 0);
        none.variants[0].champion = false;
        assert!(Recorded::new(none).is_none());
        let mut h = History::default();
        for v in 0..(KEEP as u64 + 10) {
            h.insert(Recorded::new(record(v, 100)).unwrap());
        }
        assert!(!h.contains(9) && h.contains(10) && h.contains(KEEP as u64 + 9));
    }
}
