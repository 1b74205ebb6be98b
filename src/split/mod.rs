//! The sticky split: which variant serves a user. Pure, no I/O.
//!
//! A user lands in one of [`BUCKETS`] buckets by a stable, salted hash ([`bucket`]), and variants own
//! bucket ranges ([`Layout`]). Both are deterministic across CPUs, builds, replicas and releases, so
//! an analyst can recompute any assignment offline (`loadtest/assignment.py` does exactly this).

pub mod history;
mod layout;
pub mod traffic;

pub use layout::{Layout, LayoutError, Slot};

use sha2::{Digest, Sha256};

/// Number of buckets the hash space is cut into: weights have two decimals, so 100% = 10,000.
pub const BUCKETS: u32 = 10_000;

/// The stable hash: the first 8 bytes of `SHA-256(salt ‖ 0x00 ‖ user_id)`, read big-endian.
///
/// SHA-256 is chosen over faster hashes because it is specified byte-for-byte, available in every
/// language's standard library (Python's `hashlib`, for offline analysis) and never changes between
/// versions or CPUs, unlike `ahash`/`DefaultHasher`. The 0x00 separator keeps `("ab","c")` and
/// `("a","bc")` apart. With SHA-NI it costs well under 100 ns for a typical id.
pub fn stable_hash(salt: &str, user_id: &[u8]) -> u64 {
    hash_parts(salt, &[user_id])
}

/// The first 8 bytes, big-endian, of `SHA-256(salt ‖ 0x00 ‖ part₁ ‖ 0x00 ‖ part₂ …)`: the split's
/// hash with one part, the interleaving coin seed (`interleave::merge::seed`) with two.
pub fn hash_parts(salt: &str, parts: &[&[u8]]) -> u64 {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    for part in parts {
        h.update([0u8]);
        h.update(part);
    }
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// `stable_hash(salt, user_id) mod 10000`. The modulo bias of 2^64 mod 10^4 is ~1e-15: negligible.
pub fn bucket(salt: &str, user_id: &[u8]) -> u32 {
    bucket_of_hash(stable_hash(salt, user_id))
}

/// The bucket of an already computed [`stable_hash`].
#[inline]
pub fn bucket_of_hash(hash: u64) -> u32 {
    (hash % u64::from(BUCKETS)) as u32
}

/// Converts a percentage with at most two decimals into a bucket count, or `None` when it is out of
/// range or has more precision than a bucket can express.
pub fn percent_to_buckets(percent: f64) -> Option<u32> {
    if !percent.is_finite() || !(0.0..=100.0).contains(&percent) {
        return None;
    }
    let scaled = percent * 100.0;
    let rounded = scaled.round();
    if (scaled - rounded).abs() > 1e-6 {
        return None;
    }
    Some(rounded as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_pinned_to_documented_vectors() {
        // These values are the contract with every replica, release and offline script: if this
        // test fails, users would silently change variant. Recompute with:
        // python3 -c "import hashlib;d=hashlib.sha256(b'rec-2026-11\0user-1').digest();print(int.from_bytes(d[:8],'big'))"
        assert_eq!(stable_hash("rec-2026-11", b"user-1"), 0xa525_63fb_69ad_02b7);
        assert_eq!(bucket("rec-2026-11", b"user-1"), (0xa525_63fb_69ad_02b7u64 % 10_000) as u32);
        assert_eq!(stable_hash("", b""), 0x6e34_0b9c_ffb3_7a98);
    }

    #[test]
    fn separator_keeps_salt_and_id_apart() {
        assert_ne!(stable_hash("ab", b"c"), stable_hash("a", b"bc"));
    }

    #[test]
    fn salt_changes_buckets() {
        let moved = (0..1000)
            .filter(|i| {
                let id = format!("u{i}");
                bucket("s1", id.as_bytes()) != bucket("s2", id.as_bytes())
            })
            .count();
        assert!(moved > 990, "a new salt must reshuffle users, moved {moved}");
    }

    #[test]
    fn buckets_are_uniform() {
        let mut counts = [0u32; 10];
        for i in 0..100_000 {
            let id = format!("user-{i}");
            counts[(bucket("salt", id.as_bytes()) / 1000) as usize] += 1;
        }
        for c in counts {
            assert!((9_500..=10_500).contains(&c), "decile count {c}");
        }
    }

    #[test]
    fn percent_conversion() {
        assert_eq!(percent_to_buckets(0.0), Some(0));
        assert_eq!(percent_to_buckets(100.0), Some(10_000));
        assert_eq!(percent_to_buckets(12.34), Some(1_234));
        assert_eq!(percent_to_buckets(0.01), Some(1));
        assert_eq!(percent_to_buckets(33.33), Some(3_333));
        assert_eq!(percent_to_buckets(12.345), None);
        assert_eq!(percent_to_buckets(-1.0), None);
        assert_eq!(percent_to_buckets(100.01), None);
        assert_eq!(percent_to_buckets(f64::NAN), None);
        assert_eq!(percent_to_buckets(f64::INFINITY), None);
    }
}
