//! Weight epochs. Every change of *who is assigned where* starts an epoch; every replica names
//! it the same way without talking to the others: its id is a signature of the assignment
//! itself — SHA-256 over the salt and the layout's runs of buckets with the variant that owns
//! each — so two configs that put every user in the same variant share an epoch, and any change
//! of weights, slots, salt or variant names makes a new one. An epoch is labelled with the
//! earliest config version and time any replica saw it (merge = min), and epochs are ordered by
//! that. A return to an earlier assignment (a ramp rolled back to the weights it had) reuses
//! that epoch's stratum: its users were assigned by the very same rule.

use sha2::{Digest, Sha256};

use crate::split::{Layout, BUCKETS};

/// At most this many epochs are kept; beyond it the least recently active one is dropped (its
/// users stay known, so they are not counted again as new, but belong to no stratum).
pub const MAX_EPOCHS: usize = 16;

/// The signature of an assignment: the salt and, bucket run by bucket run, the owning variant's
/// name. `names` are the variants in config order (the layout's indices).
pub fn signature(salt: &str, names: &[&str], layout: &Layout) -> u64 {
    let mut h = Sha256::new();
    h.update(b"splitgate-epoch-v1\0");
    h.update(salt.as_bytes());
    h.update([0u8]);
    let mut start = 0u32;
    while start < BUCKETS {
        let owner = layout.variant_of(start);
        let mut end = start + 1;
        while end < BUCKETS && layout.variant_of(end) == owner {
            end += 1;
        }
        h.update(start.to_be_bytes());
        h.update(end.to_be_bytes());
        h.update(names.get(owner).copied().unwrap_or("").as_bytes());
        h.update([0u8]);
        start = end;
    }
    let d = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    u64::from_be_bytes(first)
}

/// The id as it appears in `/admin/experiment` and the access log: 16 hex digits.
pub fn id(signature: u64) -> String {
    format!("{signature:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(weights: &[u32]) -> Layout {
        Layout::new(weights, 0, &vec![None; weights.len()]).unwrap()
    }

    #[test]
    fn same_assignment_same_epoch_any_change_a_new_one() {
        let names = ["champion", "challenger"];
        let a = signature("s", &names, &layout(&[9_000, 1_000]));
        assert_eq!(a, signature("s", &names, &layout(&[9_000, 1_000])));
        assert_ne!(a, signature("s", &names, &layout(&[5_000, 5_000])), "weights");
        assert_ne!(a, signature("t", &names, &layout(&[9_000, 1_000])), "salt");
        assert_ne!(a, signature("s", &["champion", "treatment"], &layout(&[9_000, 1_000])), "names");
        let moved =
            Layout::new(&[9_000, 1_000], 0, &[None, Some(crate::split::Slot { start: 5_000, end: 10_000 })]).unwrap();
        assert_ne!(a, signature("s", &names, &moved), "same weight, other buckets");
        assert_eq!(id(0xab), "00000000000000ab");
        assert_eq!(id(a).len(), 16);
    }
}
