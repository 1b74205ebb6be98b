//! Which variant served a recent request id: a fixed-size, lock-free, direct-mapped cache.
//!
//! Feedback that names its `request_id` is attributed to the variant that actually served it,
//! even if weights moved since. Each slot holds a 64-bit id hash and the serving variant's name
//! hash, packed so a torn read (two writers racing on one slot) is detected and ignored. An id
//! may live in any of 4 neighbouring slots, so it is only evicted when 4 newer ids land in the
//! same group. Nothing is allocated per request.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// 2^16 slots (1 MiB): at 10k req/s, feedback within ~6 s is always found, and usually far later.
const SLOTS: usize = 1 << 16;
const WAYS: usize = 4;

pub struct RecentRequests {
    keys: Box<[AtomicU64]>,
    values: Box<[AtomicU64]>,
    hasher: ahash::RandomState,
}

impl Default for RecentRequests {
    fn default() -> Self {
        RecentRequests {
            keys: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            values: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            hasher: ahash::RandomState::new(),
        }
    }
}

impl RecentRequests {
    fn hash(&self, bytes: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(bytes);
        h.finish() | 1
    }

    /// The variant name's hash (what is stored and compared).
    pub fn name_hash(&self, name: &str) -> u64 {
        self.hash(name.as_bytes())
    }

    fn group(key: u64) -> impl Iterator<Item = usize> {
        let first = (key as usize) & (SLOTS - 1) & !(WAYS - 1);
        first..first + WAYS
    }

    #[inline]
    pub fn remember(&self, request_id: &[u8], variant: &str) {
        let key = self.hash(request_id);
        // The slot already holding this id, else an empty one, else a pseudo-random victim.
        let slot = Self::group(key)
            .find(|s| self.keys[*s].load(Ordering::Relaxed) == key)
            .or_else(|| Self::group(key).find(|s| self.keys[*s].load(Ordering::Relaxed) == 0))
            .unwrap_or(((key as usize) & (SLOTS - 1) & !(WAYS - 1)) + ((key >> 40) as usize & (WAYS - 1)));
        self.keys[slot].store(key, Ordering::Relaxed);
        self.values[slot].store(key ^ self.name_hash(variant), Ordering::Relaxed);
    }

    /// The hash of the variant that served `request_id`, if it is still cached.
    pub fn lookup(&self, request_id: &[u8]) -> Option<u64> {
        let key = self.hash(request_id);
        Self::group(key)
            .find(|s| self.keys[*s].load(Ordering::Relaxed) == key)
            .map(|s| self.values[s].load(Ordering::Relaxed) ^ key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_evicts() {
        let r = RecentRequests::default();
        r.remember(b"req-1", "challenger");
        assert_eq!(r.lookup(b"req-1"), Some(r.name_hash("challenger")));
        assert_eq!(r.lookup(b"req-2"), None);
        // 1,000 ids in 16,384 groups of 4: a group overflows with probability ~1e-4 (the hasher is
        // randomly seeded, so the count must hold for any seed; 5,000 ids overflowed 1 run in 4).
        let ids: Vec<String> = (0..1_000).map(|i| format!("many-{i}")).collect();
        for id in &ids {
            r.remember(id.as_bytes(), "champion");
        }
        let found = ids.iter().filter(|id| r.lookup(id.as_bytes()).is_some()).count();
        assert_eq!(found, ids.len(), "1,000 ids fit in 65,536 4-way slots without eviction");
        for i in 0..(SLOTS * 4) {
            r.remember(format!("other-{i}").as_bytes(), "champion");
        }
        // Evicted or still right: never attributed to the wrong variant.
        assert!(r.lookup(b"req-1").is_none_or(|v| v == r.name_hash("challenger")));
        r.remember(b"req-3", "challenger");
        r.remember(b"req-3", "champion");
        assert_eq!(r.lookup(b"req-3"), Some(r.name_hash("champion")), "the latest answer wins");
    }
}
